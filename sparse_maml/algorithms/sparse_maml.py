"""Sparse-MAML (Zhao, Zucchet, Sacramento and von Oswald, 2021, "Learning where to learn", Eq. 3): a learned
binary mask decides which weights the inner loop may change.

    phi_{k+1} = phi_k - alpha * 1[m >= 0] * g_k,   d1[m >= 0]/dm := 1 (straight-through)

Masks start at ``mask_init_sparsity``: exactly in every tensor (``mask_init=quantile``), or, as the official code
does, through one shift shared by all tensors, so that each tensor starts near it (``mask_init=shift``).
"""

from typing import Any

import torch

from .engine.base import InnerLoopLearner
from .engine.masks import MASK_INITS, init_mask, init_masks_shift, step_ste
from .engine.update import Params


class SparseMAML(InnerLoopLearner):
    """s(m) = 1[m >= 0] with a straight-through derivative; update sparsity = fraction of m < 0.

    ``mask_kaiming``: matrix masks drawn Kaiming-uniform (the paper; the code's ``--kaiming_init``), else every
    mask from U(-0.5, 0.5) (the code's ResNet-12 runs).
    """

    name = "sparse_maml"
    default_first_order = True
    modulated = True
    masked = True

    def __init__(
        self,
        *args: Any,
        mask_init_sparsity: float = 0.5,
        mask_init: str = "quantile",
        mask_kaiming: bool = True,
        **kwargs: Any,
    ) -> None:
        if mask_init not in MASK_INITS:
            raise ValueError(f"mask_init={mask_init!r}: choose one of {', '.join(MASK_INITS)}")
        if not 0.0 <= mask_init_sparsity <= 1.0:
            raise ValueError(f"mask_init_sparsity must be in [0, 1], got {mask_init_sparsity}")
        self.mask_init_sparsity = float(mask_init_sparsity)
        self.mask_init = mask_init
        self.mask_kaiming = bool(mask_kaiming)
        super().__init__(*args, **kwargs)

    def init_modulations(self, params: Params) -> dict[str, torch.Tensor]:
        if self.mask_init == "shift":
            return init_masks_shift(params, self.mask_init_sparsity, self.mask_kaiming)
        return {n: init_mask(p, self.mask_init_sparsity, self.mask_kaiming) for n, p in params.items()}

    def scale(self, m: torch.Tensor) -> torch.Tensor:
        return step_ste(m)
