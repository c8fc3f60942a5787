"""Sparse-ReLU-MAML, as the official code of "Learning where to learn" runs it (``--meta_relu_through
--meta_constant_init``, run_sparse_MAML.sh): a learned step size per weight that can switch learning off.

    phi_{k+1} = phi_k - ReLU(m) * g_k,   dReLU(m)/dm := 1 (straight-through),   m_0 = alpha

ReLU(m) is the step size itself (no alpha); entries with m <= 0 never change, so update sparsity is the fraction
of them. The paper mentions the variant in Section 3.3 (ReLU(m) * gradient).
"""

from typing import Any

import torch

from .engine.masks import M_INITS, init_step_size, relu_ste
from .sparse_maml import SparseMAML


class SparseReLUMAML(SparseMAML):
    """s(m) = ReLU(m), straight-through, without alpha. ``m_init``: ``constant`` (every entry ``inner_lr``: the
    code's ``--meta_constant_init``), ``uniform`` (U(0.005, 0.1): ``--meta_sgd_init``) or ``mask`` (sparse-MAML's
    mask initialisation, ``mask_init`` at ``mask_init_sparsity``: the code without either flag)."""

    name = "sparse_relu_maml"
    learned_step = True

    def __init__(self, *args: Any, m_init: str = "constant", **kwargs: Any) -> None:
        if m_init not in (*M_INITS, "mask"):
            raise ValueError(f"m_init={m_init!r}: choose one of {', '.join((*M_INITS, 'mask'))}")
        self.m_init = m_init
        super().__init__(*args, **kwargs)

    def init_modulations(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.m_init == "mask":
            return super().init_modulations(params)
        return {n: init_step_size(p, self.m_init, self.inner_lr) for n, p in params.items()}

    def scale(self, m: torch.Tensor) -> torch.Tensor:
        return relu_ste(m)

    def frozen(self, m: torch.Tensor) -> torch.Tensor:
        return m <= 0
