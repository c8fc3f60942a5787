"""The K-step inner update every algorithm shares, as one function a reader sees whole (cf. learn2learn's
``maml_update``):

    phi_0 = theta,   phi_{k+1} = phi_k - alpha * P(g_k),   g_k = grad_phi L(phi_k; support)

with P(g) = s(m) * g element-wise for most algorithms, or a linear map of the gradient tensor (Meta-Curvature).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Params = dict[str, Tensor]
#: how one parameter's gradient becomes its step before the factor alpha: None (g itself), an element-wise
#: factor s(m) (s(m) * g), or a linear map g -> P(g)
Step = Tensor | Callable[[Tensor], Tensor] | None


def inner_loop(
    phi: Params,
    scales: dict[str, Step],
    loss_of: Callable[[Params], Tensor],
    steps: int,
    inner_lr: float,
    create_graph: bool,
    keep_sum: bool,
) -> tuple[Params, list[Tensor] | None]:
    """K steps of phi <- phi - alpha * P(grad loss_of(phi)), P given per parameter by ``scales[name]`` (``Step``).

    First order (``create_graph=False``) keeps no graph between steps: each phi_k is a fresh leaf, and
    ``keep_sum`` also returns sum_k g_k in the order of ``phi``. Second order keeps the whole unrolled graph.
    """
    names = list(phi)
    params = [phi[n] for n in names]
    s = [scales[n] for n in names]
    grad_sum: list[Tensor] | None = None
    for _ in range(steps):
        grads = torch.autograd.grad(loss_of(dict(zip(names, params))), params, create_graph=create_graph)
        steps_ = [g if sc is None else sc(g) if callable(sc) else sc * g for g, sc in zip(grads, s)]
        if create_graph:
            params = [p - inner_lr * d for p, d in zip(params, steps_)]
            continue
        with torch.no_grad():
            if keep_sum:
                grad_sum = [g.clone() for g in grads] if grad_sum is None else torch._foreach_add(grad_sum, grads)
            # phi - (alpha * d), rounded as written (a fused multiply-add would round differently)
            new = torch._foreach_sub(params, torch._foreach_mul(steps_, inner_lr))
            params = [p.requires_grad_() for p in new]
    return dict(zip(names, params)), grad_sum


def accumulate(total: Params, new: Params) -> None:
    """total[n] += new[n] for every n, starting a sum where total has none."""
    for n, g in new.items():
        total[n] = total[n] + g if n in total else g
