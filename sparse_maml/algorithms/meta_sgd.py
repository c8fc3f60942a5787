"""Meta-SGD (Li et al., 2017): a learned learning rate per parameter, s(m) = m."""

import torch

from .base import InnerLoopLearner


class MetaSGD(InnerLoopLearner):
    """phi_{k+1} = phi_k - alpha * m * g_k, with m initialised to 1 (MAML at the start of meta-training)."""

    name = "meta_sgd"
    default_first_order = True
    modulated = True

    def init_modulation(self, param: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(param)

    def scale(self, m: torch.Tensor) -> torch.Tensor:
        return m
