"""One task's inner loop and query pass: the per-task engine behind ``InnerLoopLearner`` (``base.py``).

First order keeps no graph across inner steps and returns the gradients the surrogate loss needs; second order
keeps the unrolled graph (``create_graph``) and returns the query loss itself. Every backbone runs here; a plain
Conv4 uses the lean functional forward (``models/fused/functional.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call

from ...models.fused.functional import channels_last
from .update import Params, inner_loop

if TYPE_CHECKING:
    from .protocol import Adaptable


def encoders(learner: Adaptable, frozen: Params, need_graph: bool) -> tuple[Callable[[Tensor], Tensor], Callable]:
    """(encode, model): ``model(phi, encode(x))`` are the logits with adapted parameters phi.

    With only the head adapting, ``encode`` runs the body once per input; otherwise it only puts x in the
    layout the forward wants. ``need_graph``: second order (the fused, once-differentiable ops are not used).
    """
    fn, fused = learner._fast(), not need_graph
    if learner.head_only:
        body = {n[len("body.") :]: p for n, p in frozen.items() if n.startswith("body.")}
        head = {n: p for n, p in frozen.items() if n.startswith("head.")}

        def encode(x: Tensor) -> Tensor:
            with torch.set_grad_enabled(need_graph):
                if fn is not None:
                    return fn.body(frozen, x, fused)
                return functional_call(learner.backbone.body, body, (x,))

        def model(phi: Params, z: Tensor) -> Tensor:
            if fn is not None:
                return fn.head({**head, **phi}, z)
            return functional_call(learner.backbone.head, {n[len("head.") :]: p for n, p in phi.items()}, (z,))

        return encode, model

    def model_full(phi: Params, x: Tensor) -> Tensor:
        return learner._forward({**frozen, **phi}, x, fused)

    if fn is not None:
        return channels_last, model_full
    return (lambda x: x), model_full


def adapt_first_order(
    learner: Adaptable, theta: Params, xs: Tensor, ys: Tensor, steps: int, keep_sum: bool
) -> tuple[Params, list[Tensor] | None]:
    """First-order inner loop on one task from theta (detached): (phi_K, sum_k g_k or None)."""
    encode, model = encoders(learner, theta, need_graph=False)
    zs = encode(xs)
    phi = {n: theta[n].detach().requires_grad_() for n in learner.adapted}
    return inner_loop(
        phi,
        learner._scales(detach=True),
        lambda p: F.cross_entropy(model(p, zs), ys),
        steps,
        learner.step_lr,
        create_graph=False,
        keep_sum=keep_sum,
    )


def first_order_task(
    learner: Adaptable, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor
) -> tuple[Params, Params, Tensor, Tensor]:
    """(grad of the query loss at phi_K for every trainable parameter, sum_k g_k, query loss, accuracy)."""
    theta = {n: p.detach() for n, p in learner.backbone.named_parameters()}
    phi, grad_sum = adapt_first_order(learner, theta, xs, ys, learner.inner_steps, keep_sum=True)
    # Query loss at phi_K; parameters that did not adapt enter as theta itself.
    leaves = {
        n: (phi[n] if n in phi else theta[n].detach().requires_grad_())
        for n, p in learner.backbone.named_parameters()
        if p.requires_grad
    }
    logits = learner._forward({**theta, **leaves}, xq, fused=True)
    loss = F.cross_entropy(logits, yq)
    grads = torch.autograd.grad(loss, list(leaves.values()))
    return dict(zip(leaves, grads)), dict(zip(learner.adapted, grad_sum)), loss.detach(), accuracy(logits, yq)


def second_order_task(
    learner: Adaptable, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """(query loss at phi_K with the unrolled graph, the same detached, accuracy) of one task."""
    theta = dict(learner.backbone.named_parameters())
    encode, model = encoders(learner, theta, need_graph=True)
    zs = encode(xs)
    phi, _ = inner_loop(
        {n: theta[n] for n in learner.adapted},
        learner._scales(detach=False),
        lambda p: F.cross_entropy(model(p, zs), ys),
        learner.inner_steps,
        learner.step_lr,
        create_graph=True,
        keep_sum=False,
    )
    logits = model(phi, encode(xq))
    loss = F.cross_entropy(logits, yq)
    return loss, loss.detach(), accuracy(logits, yq)


def accuracy(logits: Tensor, y: Tensor) -> Tensor:
    """Fraction of correct argmax predictions, detached: a 0-dim tensor."""
    return (logits.argmax(-1) == y).float().mean().detach()
