"""Use a trained checkpoint on your own few-shot task."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .module import MetaLearner


class LearnerInputError(ValueError):
    """Images or labels that do not fit the checkpoint; the message says what it expects."""


class Learner:
    """A trained meta-learner: ``adapt`` on a support set, ``predict`` on queries.

    Images are raw, at the training resolution: uint8 in [0, 255] or float in [0, 1], [B, C, H, W]; the
    checkpoint's normalisation is applied here. Inputs that do not fit the checkpoint raise ``LearnerInputError``.

    >>> module = MetaLearner("fomaml", n_way=5, in_channels=1, image_size=28, backbone_kwargs={"hidden": 8})
    >>> learner = Learner(module)  # load_learner(path) gives one from a checkpoint
    >>> xs, ys = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8), torch.arange(5)  # 5-way 1-shot
    >>> fast = learner.adapt(xs, ys, steps=2)
    >>> learner.predict(fast, torch.rand(3, 1, 28, 28)).shape
    torch.Size([3, 5])
    >>> learner.adapt(xs, ys + 1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sparse_maml.api.LearnerInputError: Learner.adapt: ys holds labels 1..5; this checkpoint expects ys of shape [5] ...
    """

    def __init__(self, module: MetaLearner) -> None:
        self.module = module.eval()
        self.algo = module.algo
        self.config: dict[str, Any] = dict(module.hparams.config or {})
        hp = module.hparams
        self.image_shape: tuple[int, int, int] = (hp.in_channels, hp.image_size, hp.image_size)
        self.n_way: int = hp.n_way

    @property
    def device(self) -> torch.device:
        return self.module.mean.device

    def adapt(self, xs: Tensor, ys: Tensor, steps: int | None = None) -> dict[str, Tensor]:
        """Adapted parameters for the support set xs [N*K, C, H, W], ys [N*K] (labels 0..N-1)."""
        problems = self._image_problems("xs", xs) + self._label_problems(xs, ys) + self._steps_problems(steps)
        if problems:
            raise LearnerInputError("Learner.adapt: " + "; ".join(problems))
        steps = self.module.inner_steps_test if steps is None else steps
        return self.algo.adapt(self.module.normalize(xs), ys.to(self.device), steps=steps)

    @torch.no_grad()
    def predict(self, fast: dict[str, Tensor], xq: Tensor) -> Tensor:
        """Logits [B, n_way] of the adapted network on xq [B, C, H, W]."""
        problems = self._image_problems("xq", xq)
        if problems:
            raise LearnerInputError("Learner.predict: " + "; ".join(problems))
        return self.algo.predict(fast, self.module.normalize(xq))

    def update_sparsity(self) -> dict[str, float]:
        """Per-tensor update sparsity of the learned mask ({} without a mask)."""
        return self.algo.update_sparsity()

    # ---- input checks: what the checkpoint was trained on ---------------------------------------------------------
    def _steps_problems(self, steps: Any) -> list[str]:
        try:  # any integer type (int, numpy, 0-d torch: __index__), but not a bool
            count = None if isinstance(steps, bool) else operator.index(steps)
        except TypeError:
            count = None
        if steps is None or (count is not None and count >= 0):
            return []
        return [
            f"steps is {steps!r}; this checkpoint expects a whole number of inner steps >= 0 "
            f"(None: its own {self.module.inner_steps_test})"
        ]

    def _image_problems(self, name: str, x: Any) -> list[str]:
        c, h, w = self.image_shape
        expected = f"[B, {c}, {h}, {w}] images, uint8 in [0, 255] or float in [0, 1]"
        if not isinstance(x, Tensor):
            return [f"{name} is a {type(x).__name__}; this checkpoint expects a tensor of {expected}"]
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape or x.shape[0] == 0:
            return [f"{name} has shape {list(x.shape)}; this checkpoint expects {expected}"]
        if x.dtype == torch.uint8:
            return []
        if not x.is_floating_point():
            return [f"{name} has dtype {x.dtype}; this checkpoint expects {expected}"]
        low, high = x.min().item(), x.max().item()
        if not 0.0 <= low <= high <= 1.0:  # also false for NaN
            return [f"{name} holds values in [{low:g}, {high:g}]; this checkpoint expects {expected}"]
        return []

    def _label_problems(self, xs: Any, ys: Any) -> list[str]:
        n = len(xs) if isinstance(xs, Tensor) and xs.dim() == 4 else None
        shape = "N*K" if n is None else n
        expected = f"ys of shape [{shape}] with integer labels 0..{self.n_way - 1} ({self.n_way}-way)"
        if not isinstance(ys, Tensor):
            return [f"ys is a {type(ys).__name__}; this checkpoint expects {expected}"]
        integer = not (ys.is_floating_point() or ys.is_complex() or ys.dtype == torch.bool)
        if ys.dim() != 1 or not integer or len(ys) == 0 or (n is not None and len(ys) != n):
            return [f"ys has shape {list(ys.shape)} and dtype {ys.dtype}; this checkpoint expects {expected}"]
        low, high = int(ys.min()), int(ys.max())
        if low < 0 or high >= self.n_way:
            return [f"ys holds labels {low}..{high}; this checkpoint expects {expected}"]
        return []


def load_learner(ckpt_path: str | Path, map_location: str | torch.device = "cpu") -> Learner:
    """Load a checkpoint written by train.py as a ready-to-use ``Learner`` (read as data: nothing in it runs).

    >>> import os, tempfile
    >>> module = MetaLearner("fomaml", n_way=5, in_channels=1, image_size=28, backbone_kwargs={"hidden": 8})
    >>> path = os.path.join(tempfile.mkdtemp(), "last.ckpt")  # a run's checkpoints/last.ckpt holds the same keys
    >>> torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    >>> learner = load_learner(path)
    >>> learner.image_shape, learner.n_way, learner.algo.name
    ((1, 28, 28), 5, 'fomaml')
    """
    path = Path(ckpt_path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return Learner(MetaLearner.from_checkpoint(path, map_location=map_location))
