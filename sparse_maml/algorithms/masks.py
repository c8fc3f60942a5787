"""Gradient modulations s(m), mask initialisation and update sparsity (paper, Sections 2 and 3)."""

from __future__ import annotations

import torch
from torch import nn


def step_ste(m: torch.Tensor) -> torch.Tensor:
    """1[m >= 0] in the forward pass, identity derivative in the backward pass (straight-through)."""
    return (m >= 0).to(m.dtype) + (m - m.detach())


def relu_ste(m: torch.Tensor) -> torch.Tensor:
    """ReLU(m) in the forward pass, identity derivative in the backward pass (official `meta_relu_through`)."""
    return torch.relu(m).detach() + (m - m.detach())


def init_mask(param: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Mask logits m for ``param``: Kaiming-uniform (matrices) or U(-0.5, 0.5) (vectors) as in the official code,
    shifted per tensor so that the fraction of entries with m < 0 (the update sparsity) is ``sparsity``.

    The fraction is exact up to rounding to a whole number of entries.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"mask_init_sparsity must be in [0, 1], got {sparsity}")
    m = torch.empty_like(param, requires_grad=False)
    if m.dim() > 1:
        nn.init.kaiming_uniform_(m)
    else:
        nn.init.uniform_(m, -0.5, 0.5)
    flat = m.flatten().sort().values
    n = flat.numel()
    k = round(sparsity * n)  # entries that must end up strictly below zero
    if k == 0:
        threshold = flat[0] - 1e-3
    elif k == n:
        threshold = flat[-1] + 1e-3
    else:
        threshold = (flat[k - 1] + flat[k]) / 2
    return m - threshold


def tensor_sparsity(m: torch.Tensor) -> float:
    """Update sparsity 1 - ||1[m >= 0]||^2 / dim(m): the fraction of entries the inner loop never changes."""
    return (m < 0).float().mean().item()


def layer_of(name: str) -> str:
    """The module a parameter belongs to: ``body.0.0.weight`` -> ``body.0.0``."""
    return name.rsplit(".", 1)[0] if "." in name else name


def grouped_sparsity(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Update sparsity of each layer (module) over all its masked tensors together."""
    frozen: dict[str, float] = {}
    total: dict[str, int] = {}
    for name, m in masks.items():
        layer = layer_of(name)
        frozen[layer] = frozen.get(layer, 0.0) + (m < 0).sum().item()
        total[layer] = total.get(layer, 0) + m.numel()
    return {layer: frozen[layer] / total[layer] for layer in frozen}


def network_sparsity(masks: dict[str, torch.Tensor]) -> float:
    """Update sparsity of the whole network: frozen entries over all masked entries."""
    frozen = sum((m < 0).sum().item() for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    return frozen / max(total, 1)
