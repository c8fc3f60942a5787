"""First-order meta-gradients (paper, Appendix B) and the surrogate loss that delivers them.

They need only the running sum of the inner gradients. Since P_m is linear, phi_K = theta - alpha * P_m(sum_k g_k)
with the g_k held constant, so

    dL/dtheta ~= grad L_query(phi_K),   dL/dm ~= d/dm < -alpha * grad L_query(phi_K), P_m(sum_k g_k) >

which is -alpha * s'(m) * grad L_query(phi_K) * sum_k g_k element-wise. No graph is kept across inner steps and
memory does not grow with K. They are delivered through a surrogate loss, sum(theta * G_theta) + sum(s(m) * G_m)
(sum(m * G_m) for a non-element-wise P), whose backward writes exactly these gradients: Lightning's
``manual_backward`` and DDP's all-reduce then work unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .update import Params

if TYPE_CHECKING:
    from .protocol import Modulated


def first_order_meta_grads(learner: Modulated, g_query: Params, grad_sum: Params) -> Params:
    """One task's first-order gradient of the query loss: with respect to s(m) for element-wise algorithms,
    -alpha * g_query * sum_k g_k; with respect to the learned tensors otherwise, the gradient of
    < -alpha * g_query, P_m(sum_k g_k) >."""
    if learner.elementwise:
        return {n: -learner.step_lr * g_query[n] * grad_sum[n] for n in learner.adapted}
    meta = learner.meta_parameters()
    with torch.enable_grad():
        inner = sum((g_query[n] * learner.precondition(n, grad_sum[n], meta)).sum() for n in learner.adapted)
        grads = torch.autograd.grad(-learner.step_lr * inner, list(meta.values()))
    return dict(zip(meta, grads))


def first_order_surrogate(learner: Modulated, g_theta: Params, g_m: Params, tasks: int) -> Tensor:
    """sum(theta * G_theta) + sum(s(m) * G_m) (sum(m * G_m) if not element-wise), G the per-task sums divided by
    T: its backward writes the first-order meta-gradients of the mean query loss."""
    params = dict(learner.backbone.named_parameters())
    loss = sum((params[n] * (g / tasks)).sum() for n, g in g_theta.items())
    if learner.modulated:
        m = learner.meta_parameters()
        s = (lambda v: v) if not learner.elementwise else learner.scale
        loss = loss + sum((s(m[n]) * (g / tasks)).sum() for n, g in g_m.items())
    return loss
