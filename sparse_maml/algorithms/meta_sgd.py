"""Meta-SGD (Li, Zhou, Chen and Li, 2017, "Meta-SGD: Learning to learn quickly for few-shot learning", Eq. 1):
a learned learning rate for every parameter entry.

    phi_{k+1} = phi_k - m * g_k,   m_0 ~ U(0.005, 0.1) entry by entry

m is the step size itself (no alpha); Li et al. take one inner step and differentiate through it (second order).
"""

from typing import Any

import torch

from .engine.base import InnerLoopLearner
from .engine.masks import init_step_size


class MetaSGD(InnerLoopLearner):
    """s(m) = m, without alpha. ``m_init``: ``uniform`` (Li et al.) or ``constant`` (every entry ``inner_lr``, so
    that the first step is MAML's); ``inner_lr`` is used only by ``constant``."""

    name = "meta_sgd"
    default_first_order = True
    modulated = True
    learned_step = True

    def __init__(self, *args: Any, m_init: str = "uniform", **kwargs: Any) -> None:
        init_step_size(torch.zeros(1), m_init, 0.0)  # an unknown m_init fails before anything is built
        self.m_init = m_init
        super().__init__(*args, **kwargs)

    def init_modulation(self, param: torch.Tensor) -> torch.Tensor:
        return init_step_size(param, self.m_init, self.inner_lr)

    def scale(self, m: torch.Tensor) -> torch.Tensor:
        return m
