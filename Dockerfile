# CPU by default; for CUDA: --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu124
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    WANDB_MODE=offline

WORKDIR /app

# PyTorch first, from the chosen index, so the package install below does not pull another build.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"

COPY pyproject.toml README.md ./
COPY sparse_maml ./sparse_maml
RUN pip install .

COPY conf ./conf
COPY train.py evaluate.py ./

RUN useradd --uid 1000 --create-home runner && chown -R 1000 /app
USER 1000

ENTRYPOINT ["python", "train.py"]
