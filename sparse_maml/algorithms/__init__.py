"""The algorithm registry: every algorithm is a row of DESIGN.md's table on one inner-loop engine."""

from __future__ import annotations

from typing import Any

from torch import nn

from .anil import ANIL, BOIL
from .engine.base import InnerLoopLearner
from .maml import FOMAML, MAML
from .meta_curvature import MetaCurvature
from .meta_sgd import MetaSGD
from .sparse_maml import SparseMAML
from .sparse_relu_maml import SparseReLUMAML

REGISTRY: dict[str, type[InnerLoopLearner]] = {
    cls.name: cls for cls in (MAML, FOMAML, ANIL, BOIL, MetaSGD, MetaCurvature, SparseMAML, SparseReLUMAML)
}
ALGORITHMS: tuple[str, ...] = tuple(REGISTRY)


def register_algorithm(cls: type[InnerLoopLearner]) -> type[InnerLoopLearner]:
    """Class decorator adding a user algorithm (a subclass of InnerLoopLearner with a ``name``)."""
    global ALGORITHMS
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a class attribute `name` to be registered")
    REGISTRY[cls.name] = cls
    ALGORITHMS = tuple(REGISTRY)
    return cls


def build_algorithm(
    name: str,
    backbone: nn.Module,
    inner_lr: float = 0.1,
    inner_steps: int = 25,
    first_order: bool | None = None,
    **options: Any,
) -> InnerLoopLearner:
    """Build a registered algorithm around ``backbone``.

    ``first_order=None`` takes the algorithm's own default (maml: second order, fomaml and sparse_maml: first).
    ``options`` are the algorithm's own (``adapt_bn`` for all; ``mask_init_sparsity``, ``mask_init``,
    ``mask_kaiming`` for the masked ones; ``m_init`` for meta_sgd and sparse_relu_maml); None means its default.

    >>> from sparse_maml.models import build_backbone
    >>> net = build_backbone("conv4", in_channels=1, image_size=28, n_way=5, hidden=8)
    >>> learner = build_algorithm("sparse_maml", net, inner_steps=3, mask_init_sparsity=0.5)
    >>> learner.first_order, learner.inner_steps, round(learner.network_sparsity(), 2)
    (True, 3, 0.5)
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; choose one of {', '.join(REGISTRY)}")
    given = {k: v for k, v in options.items() if v is not None}
    return REGISTRY[name](backbone, inner_lr=inner_lr, inner_steps=inner_steps, first_order=first_order, **given)


__all__ = ["ALGORITHMS", "REGISTRY", "InnerLoopLearner", "build_algorithm", "register_algorithm"]
