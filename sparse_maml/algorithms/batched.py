"""The tasks of a meta-batch adapted together: one grouped-convolution forward for T tasks (Conv4 only).

Each task keeps its own phi and its own BatchNorm statistics; the loss is the sum of the per-task mean losses, so
its gradient holds each task's own. Equal to the per-task engine in ``base.py`` up to rounding (tests), and used by
it where running the tasks together pays (first-order ``meta_loss`` and ``evaluate``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from .update import Params, inner_loop

if TYPE_CHECKING:
    from .base import InnerLoopLearner


def adapt_tasks(
    learner: InnerLoopLearner, theta: Params, xs: Tensor, ys: Tensor, steps: int, keep_sum: bool
) -> tuple[Params, list[Tensor] | None]:
    """First-order inner loop on T tasks at once from theta: phi_K [T, ...] per adapted parameter and, with
    ``keep_sum``, sum_k g_k [T, ...] in the order of ``learner.adapted``."""
    fn, tasks = learner._functional, len(xs)
    frozen = expand({n: p for n, p in theta.items() if n not in learner.adapted}, tasks)
    phi = {n: p.clone().requires_grad_() for n, p in expand({n: theta[n] for n in learner.adapted}, tasks).items()}
    if learner.head_only:
        zs = fn.body_tasks(frozen, xs, fused=True)

        def logits_of(p: Params) -> Tensor:
            return fn.head_tasks({**frozen, **p}, zs)
    else:

        def logits_of(p: Params) -> Tensor:
            return fn.forward_tasks({**frozen, **p}, xs, fused=True)

    def loss_of(p: Params) -> Tensor:
        return F.cross_entropy(logits_of(p).flatten(0, 1), ys.flatten(), reduction="none").view(tasks, -1).mean(1).sum()

    scales = learner._scales(detach=True)
    return inner_loop(phi, scales, loss_of, steps, learner.step_lr, create_graph=False, keep_sum=keep_sum)


def batched_first_order(
    learner: InnerLoopLearner, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor
) -> tuple[Params, Params, Tensor, Tensor]:
    """The per-task first-order engine for all T tasks at once: (sum over tasks of the query gradients, sum over
    tasks of -alpha * g_query * sum_k g_k for modulated algorithms, losses [T], accuracies [T])."""
    tasks = len(xs)
    theta = {n: p.detach() for n, p in learner.backbone.named_parameters()}
    phi, grad_sum = adapt_tasks(learner, theta, xs, ys, learner.inner_steps, keep_sum=True)
    # Parameters that did not adapt are one leaf shared by all tasks: their gradient is the sum over tasks.
    shared = {
        n: theta[n].clone().requires_grad_()
        for n, p in learner.backbone.named_parameters()
        if p.requires_grad and n not in phi
    }
    params = {**expand(theta, tasks), **expand(shared, tasks), **phi}
    logits = learner._functional.forward_tasks(params, xq, fused=True)
    losses = F.cross_entropy(logits.flatten(0, 1), yq.flatten(), reduction="none").view(tasks, -1).mean(1)
    leaves = {**phi, **shared}
    grads = dict(zip(leaves, torch.autograd.grad(losses.sum(), list(leaves.values()))))
    g_query = {n: (g.sum(0) if n in phi else g) for n, g in grads.items()}
    g_m = {}
    if learner.modulated:
        g_m = {n: -learner.step_lr * (grads[n] * s).sum(0) for n, s in zip(learner.adapted, grad_sum)}
    accs = (logits.argmax(-1) == yq).float().mean(1)
    return g_query, g_m, losses.detach(), accs


def batched_evaluate(
    learner: InnerLoopLearner, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor, steps: int, chunk: int | None
) -> Tensor:
    """Query accuracy [T] of each task after ``steps`` inner steps, ``chunk`` tasks at a time (default: as many as
    keep one first-layer activation under 2^28 values)."""
    fn = learner._functional
    if chunk is None:
        per_task = max(xs.shape[1], xq.shape[1]) * fn.hidden * xs.shape[-1] * xs.shape[-2]
        chunk = max(1, 2**28 // per_task)
    theta = {n: p.detach() for n, p in learner.backbone.named_parameters()}
    accs = []
    for lo in range(0, len(xs), chunk):
        sl = slice(lo, lo + chunk)
        tasks = len(xs[sl])
        with torch.enable_grad():
            phi, _ = adapt_tasks(learner, theta, xs[sl], ys[sl], steps, keep_sum=False)
        params = {**expand(theta, tasks), **{n: p.detach() for n, p in phi.items()}}
        logits = fn.forward_tasks(params, xq[sl], fused=True)
        accs.append((logits.argmax(-1) == yq[sl]).float().mean(1))
    return torch.cat(accs)


def expand(params: Params, tasks: int) -> Params:
    """Each tensor repeated along a new leading task dim (a view)."""
    return {n: p.unsqueeze(0).expand(tasks, *p.shape) for n, p in params.items()}
