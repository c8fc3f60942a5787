"""Sparse-MAML (Zhao et al., 2021): a learned binary mask decides which weights the inner loop may change.

phi_{k+1} = phi_k - alpha * 1[m >= 0] * g_k,   d1[m >= 0]/dm := 1 (straight-through)
"""

import torch

from .base import InnerLoopLearner
from .masks import init_mask, relu_ste, step_ste


class SparseMAML(InnerLoopLearner):
    """s(m) = 1[m >= 0] with a straight-through derivative; update sparsity = fraction of m < 0."""

    name = "sparse_maml"
    default_first_order = True
    modulated = True
    masked = True

    def init_modulation(self, param: torch.Tensor) -> torch.Tensor:
        return init_mask(param, self.mask_init_sparsity)

    def scale(self, m: torch.Tensor) -> torch.Tensor:
        return step_ste(m)


class SparseReLUMAML(SparseMAML):
    """s(m) = ReLU(m) with a straight-through derivative (the official code's ``meta_relu_through``): entries with
    m < 0 are frozen, the others get a learned learning rate."""

    name = "sparse_relu_maml"

    def scale(self, m: torch.Tensor) -> torch.Tensor:
        return relu_ste(m)
