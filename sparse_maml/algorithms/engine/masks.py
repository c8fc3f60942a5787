"""Gradient modulations s(m), mask initialisation and update sparsity (paper, Sections 2 and 3)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: which entries of m the inner loop never changes: m < 0 for the step mask 1[m >= 0]
Frozen = Callable[[torch.Tensor], torch.Tensor]
MASK_INITS = ("quantile", "shift")


def step_ste(m: torch.Tensor) -> torch.Tensor:
    """1[m >= 0] in the forward pass, identity derivative in the backward pass (straight-through)."""
    return (m >= 0).to(m.dtype) + (m - m.detach())


def relu_ste(m: torch.Tensor) -> torch.Tensor:
    """ReLU(m) in the forward pass, identity derivative in the backward pass (official `meta_relu_through`)."""
    return torch.relu(m).detach() + (m - m.detach())


def below_zero(m: torch.Tensor) -> torch.Tensor:
    """Entries the step mask 1[m >= 0] freezes."""
    return m < 0


def mask_draw(param: torch.Tensor, kaiming: bool = True) -> torch.Tensor:
    """The official code's draw for the mask of ``param``: Kaiming-uniform for matrices (``--kaiming_init``),
    U(-0.5, 0.5) for vectors, or for every tensor when ``kaiming`` is false."""
    m = torch.empty_like(param, requires_grad=False)
    if kaiming and m.dim() > 1:
        nn.init.kaiming_uniform_(m)
    else:
        nn.init.uniform_(m, -0.5, 0.5)
    return m


def _threshold(values: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A value t with exactly round(sparsity * n) entries of ``values`` strictly below it."""
    flat = values.flatten().sort().values
    n = flat.numel()
    k = round(sparsity * n)
    if k == 0:
        return flat[0] - 1e-3
    if k == n:
        return flat[-1] + 1e-3
    return (flat[k - 1] + flat[k]) / 2


def _check_sparsity(sparsity: float) -> None:
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"mask_init_sparsity must be in [0, 1], got {sparsity}")


def init_mask(param: torch.Tensor, sparsity: float, kaiming: bool = True) -> torch.Tensor:
    """Mask logits m for ``param`` (``mask_init=quantile``): the official draw, shifted per tensor so that the
    fraction of entries with m < 0 (the update sparsity) is ``sparsity``, exact up to whole entries."""
    _check_sparsity(sparsity)
    m = mask_draw(param, kaiming)
    return m - _threshold(m, sparsity)


def init_masks_shift(params: dict[str, torch.Tensor], sparsity: float, kaiming: bool = True) -> dict[str, torch.Tensor]:
    """Mask logits for all ``params`` as the official code makes them (``mask_init=shift``): each tensor's draw
    minus its own mean, plus one shift c shared by all tensors (the code's ``--init_shift``).

    c is chosen so that the whole network starts at ``sparsity``; each tensor then starts near, not at, it. At
    0.5, c is the median of the centred draws, within rounding of the code's default ``init_shift=0``.
    """
    _check_sparsity(sparsity)
    centred = {}
    for n, p in params.items():
        m = mask_draw(p, kaiming)
        centred[n] = m - m.mean()
    c = -_threshold(torch.cat([m.flatten() for m in centred.values()]), sparsity)
    return {n: m + c for n, m in centred.items()}


def tensor_sparsity(m: torch.Tensor, frozen: Frozen = below_zero) -> float:
    """Update sparsity 1 - ||1[m >= 0]||^2 / dim(m): the fraction of entries the inner loop never changes."""
    return frozen(m).float().mean().item()


def layer_of(name: str) -> str:
    """The module a parameter belongs to: ``body.0.0.weight`` -> ``body.0.0``."""
    return name.rsplit(".", 1)[0] if "." in name else name


def grouped_sparsity(masks: dict[str, torch.Tensor], frozen: Frozen = below_zero) -> dict[str, float]:
    """Update sparsity of each layer (module) over all its masked tensors together."""
    count: dict[str, float] = {}
    total: dict[str, int] = {}
    for name, m in masks.items():
        layer = layer_of(name)
        count[layer] = count.get(layer, 0.0) + frozen(m).sum().item()
        total[layer] = total.get(layer, 0) + m.numel()
    return {layer: count[layer] / total[layer] for layer in count}


def network_sparsity(masks: dict[str, torch.Tensor], frozen: Frozen = below_zero) -> float:
    """Update sparsity of the whole network: frozen entries over all masked entries."""
    count = sum(frozen(m).sum().item() for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return count / max(total, 1)


M_INITS = ("constant", "uniform")


def init_step_size(param: torch.Tensor, how: str, inner_lr: float) -> torch.Tensor:
    """A learned per-entry step size m for ``param``: ``constant``, every entry ``inner_lr`` (the official code's
    ``--meta_constant_init``), or ``uniform``, each entry from U(0.005, 0.1) (Li et al., 2017; the code's
    ``--meta_sgd_init``)."""
    if how == "constant":
        return torch.full_like(param, inner_lr)
    if how == "uniform":
        return torch.empty_like(param).uniform_(0.005, 0.1)
    raise ValueError(f"m_init={how!r}: choose one of {', '.join(M_INITS)}")


def batch_norm_parameters(backbone: nn.Module) -> set[str]:
    """Names of the parameters of every BatchNorm layer of ``backbone``."""
    return {
        f"{prefix}.{n}" if prefix else n
        for prefix, module in backbone.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm)
        for n, _ in module.named_parameters(recurse=False)
    }
