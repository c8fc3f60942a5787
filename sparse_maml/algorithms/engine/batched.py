"""The tasks of a meta-batch adapted together: one grouped-convolution forward for T tasks (Conv4 and element-wise
inner steps only).

Each task keeps its own phi and its own BatchNorm statistics; the loss is the sum of the per-task mean losses, so
its gradient holds each task's own. Equal to the per-task engine in ``base.py`` up to rounding (tests).

Tasks run together in chunks, sized by their widest activation (the first block's convolution output). On GPU
batching is what keeps the device busy: chunks hold 1 GiB of it. On CPU running tasks together divides the
per-operation overhead, which dominates small tasks, by the chunk size, but oneDNN's grouped convolution of a task
is slower than its own convolution once a task's activation passes about 1.5 MiB (``benchmarks/chunks.py``, table
in benchmarks/RESULTS.md): smaller tasks (Omniglot 1-shot support sets) run together in chunks of up to 32 MiB
(glibc maps larger blocks afresh on every allocation), larger ones (their 75-image query sets, 84x84 tasks) one at a
time. ``pays``: whether a chunk holds two tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from .evaluation import Evaluation, change_sq
from .graphs import graphed_adapt
from .update import Params, inner_loop

if TYPE_CHECKING:
    from .protocol import Adaptable

CPU_TASK_BYTES = 3 * 2**19  # 1.5 MiB
CPU_CHUNK_BYTES = 32 * 2**20
GPU_CHUNK_BYTES = 2**30


def tasks_per_chunk(learner: Adaptable, x: Tensor) -> int:
    """How many tasks of x [T, B, C, H, W] run together: as many as keep their first-block activations [B, hidden,
    H, W] (float32) under the device's chunk budget; on CPU one where a task's own is over ``CPU_TASK_BYTES``."""
    per_task = x.shape[1] * learner._functional.hidden * x.shape[-2] * x.shape[-1] * 4
    if x.is_cuda:
        return max(1, GPU_CHUNK_BYTES // per_task)
    return 1 if per_task > CPU_TASK_BYTES else max(1, CPU_CHUNK_BYTES // per_task)


def pays(learner: Adaptable, xs: Tensor) -> bool:
    """Whether running the tasks of support sets xs [T, N*K, C, H, W] together is the faster choice: wherever at
    least two tasks share a chunk."""
    return len(xs) > 1 and tasks_per_chunk(learner, xs) > 1


def adapt_tasks(
    learner: Adaptable, theta: Params, xs: Tensor, ys: Tensor, steps: int, keep_sum: bool
) -> tuple[Params, list[Tensor] | None]:
    """First-order inner loop on T tasks at once from theta: phi_K [T, ...] per adapted parameter and, with
    ``keep_sum``, sum_k g_k [T, ...] in the order of ``learner.adapted``. Replayed from a CUDA graph where
    ``learner.cuda_graphs`` asks for it on GPU (``graphs.py``)."""
    scales = learner._scales(detach=True)

    def eager(theta: Params, scales: dict, xs: Tensor, ys: Tensor) -> tuple[Params, list[Tensor] | None]:
        return _adapt_tasks(learner, theta, scales, xs, ys, steps, keep_sum)

    if learner.cuda_graphs and xs.is_cuda:
        return graphed_adapt(learner, eager, theta, scales, xs, ys, key=("adapt_tasks", steps, keep_sum))
    return eager(theta, scales, xs, ys)


def _adapt_tasks(
    learner: Adaptable, theta: Params, scales: dict, xs: Tensor, ys: Tensor, steps: int, keep_sum: bool
) -> tuple[Params, list[Tensor] | None]:
    fn, tasks = learner._functional, len(xs)
    frozen = expand({n: p for n, p in theta.items() if n not in learner.adapted}, tasks)
    phi = {n: per_task(theta[n], tasks).requires_grad_() for n in learner.adapted}
    # s(m) laid out as phi, so that s(m) * g is one plain element-wise product rather than a broadcast.
    scales = {n: s if s is None else per_task(s, tasks) for n, s in scales.items()}
    if learner.head_only:
        zs = fn.body_tasks(frozen, xs, fused=True)

        def logits_of(p: Params) -> Tensor:
            return fn.head_tasks({**frozen, **p}, zs)
    else:

        def logits_of(p: Params) -> Tensor:
            return fn.forward_tasks({**frozen, **p}, xs, fused=True)

    def loss_of(p: Params) -> Tensor:
        return F.cross_entropy(logits_of(p).flatten(0, 1), ys.flatten(), reduction="none").view(tasks, -1).mean(1).sum()

    return inner_loop(phi, scales, loss_of, steps, learner.step_lr, create_graph=False, keep_sum=keep_sum)


def batched_first_order(
    learner: Adaptable, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor
) -> tuple[Params, Params, Tensor, Tensor]:
    """The per-task first-order engine for all T tasks, in chunks: (sum over tasks of the query gradients, sum over
    tasks of -alpha * g_query * sum_k g_k for modulated algorithms, losses [T], accuracies [T])."""
    theta = {n: p.detach() for n, p in learner.backbone.named_parameters()}
    trainable = [n for n, p in learner.backbone.named_parameters() if p.requires_grad]
    # Per-task query gradients and gradient sums, gathered over the chunks and reduced once at the end.
    per_task_grads: dict[str, list[Tensor]] = {n: [] for n in trainable}
    per_task_sums: dict[str, list[Tensor]] = {n: [] for n in learner.adapted}
    losses, accs = [], []
    for a in chunks(len(xs), tasks_per_chunk(learner, xs)):
        phi, grad_sum = adapt_tasks(learner, theta, xs[a], ys[a], learner.inner_steps, keep_sum=True)
        for n, g in zip(learner.adapted, grad_sum):
            per_task_sums[n].append(g)
        # The query pass, whose sets are larger, in chunks of its own.
        for q in chunks(a.stop - a.start, tasks_per_chunk(learner, xq)):
            tasks = q.stop - q.start
            # Parameters that did not adapt are one leaf shared by the tasks: their gradient is the sum over tasks.
            leaves = {n: (phi[n][q] if n in phi else theta[n]).detach().requires_grad_() for n in trainable}
            params = {**expand(theta, tasks), **expand({n: leaves[n] for n in leaves if n not in phi}, tasks)}
            params.update({n: leaves[n] for n in phi})
            logits = learner._functional.forward_tasks(params, xq[a][q], fused=True)
            y = yq[a][q]
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(tasks, -1).mean(1)
            for n, g in zip(leaves, torch.autograd.grad(loss.sum(), list(leaves.values()))):
                per_task_grads[n].append(g if n in phi else g.unsqueeze(0))
            losses.append(loss.detach())
            accs.append((logits.argmax(-1) == y).float().mean(1))
    grads = {n: torch.cat(gs) for n, gs in per_task_grads.items()}
    g_query = {n: g.sum(0) for n, g in grads.items()}
    g_m = {}
    if learner.modulated:
        g_m = {n: (grads[n] * torch.cat(per_task_sums[n])).sum(0).mul_(-learner.step_lr) for n in learner.adapted}
    return g_query, g_m, torch.cat(losses), torch.cat(accs)


def batched_evaluate(
    learner: Adaptable, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor, steps: int, chunk: int | None
) -> Evaluation:
    """``Evaluation`` of T tasks after ``steps`` inner steps, ``chunk`` tasks at a time (default: as many as fit
    the budget)."""
    fn = learner._functional
    theta = {n: p.detach() for n, p in learner.backbone.named_parameters()}
    accs, changes = [], []
    for a in chunks(len(xs), chunk or tasks_per_chunk(learner, xs)):
        with torch.enable_grad():
            phi, _ = adapt_tasks(learner, theta, xs[a], ys[a], steps, keep_sum=False)
        changes.append(change_sq(theta, phi, tasks=a.stop - a.start))
        for q in chunks(a.stop - a.start, tasks_per_chunk(learner, xq)):
            params = {**expand(theta, q.stop - q.start), **{n: p[q].detach() for n, p in phi.items()}}
            logits = fn.forward_tasks(params, xq[a][q], fused=True)
            accs.append((logits.argmax(-1) == yq[a][q]).float().mean(1))
    return Evaluation(torch.cat(accs), {n: torch.cat([c[n] for c in changes]) for n in theta})


def chunks(total: int, size: int) -> list[slice]:
    """Consecutive slices of at most ``size`` covering range(total)."""
    return [slice(lo, min(lo + size, total)) for lo in range(0, total, size)]


def expand(params: Params, tasks: int) -> Params:
    """Each tensor repeated along a new leading task dim (a view)."""
    return {n: p.unsqueeze(0).expand(tasks, *p.shape) for n, p in params.items()}


def per_task(p: Tensor, tasks: int) -> Tensor:
    """A copy of p for each of ``tasks`` tasks, [T, *p.shape]. Convolution weights [T, C_out, C_in, kh, kw] are
    laid out so that folding T into C_out gives channels-last weights, the layout oneDNN would otherwise copy them
    into on every call."""
    if p.dim() != 4:
        return p.unsqueeze(0).repeat(tasks, *([1] * p.dim()))
    c_out, c_in, kh, kw = p.shape
    out = p.new_empty(tasks, c_out, kh, kw, c_in).permute(0, 1, 4, 2, 3)
    return out.copy_(p.unsqueeze(0).expand_as(out))
