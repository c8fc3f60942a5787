"""What evaluating T tasks returns, and the task-by-task evaluation every algorithm and backbone supports.

The batched evaluation of ``batched.py`` returns the same ``Evaluation`` up to rounding (tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from .update import Params

if TYPE_CHECKING:
    from .protocol import Adaptable


class Evaluation(NamedTuple):
    """Per-task results of adapting to T tasks: ``accuracy`` [T], the query accuracy after adaptation, and
    ``change_sq`` {backbone parameter name: [T]}, the squared change ||phi_K - theta||^2 the inner loop made to each
    parameter (zeros for the parameters that do not adapt). Unpacks as ``accuracy, change_sq = ...``."""

    accuracy: Tensor
    change_sq: dict[str, Tensor]

    def relative_change(self, theta: Params) -> dict[str, Tensor]:
        """{name: [T] ||phi_K - theta|| / ||theta||} for the parameters ``theta`` (e.g. the backbone's)."""
        return {n: sq.sqrt() / theta[n].detach().norm().clamp_min(1e-12) for n, sq in self.change_sq.items()}


def change_sq(theta: Params, phi: Params, tasks: int | None = None) -> dict[str, Tensor]:
    """{name: ||phi - theta||^2} for every tensor of ``theta``, zero where ``phi`` has none: a scalar for one task,
    [T] where ``tasks`` gives phi's leading task dim."""
    out = {}
    for n, p in theta.items():
        if n not in phi:
            out[n] = p.new_zeros(()) if tasks is None else p.new_zeros(tasks)
            continue
        d = (phi[n].detach() - p).square()
        out[n] = d.sum() if tasks is None else d.flatten(1).sum(1)
    return out


def evaluate_per_task(learner: Adaptable, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor, steps: int) -> Evaluation:
    """``Evaluation`` of xs [T, N*K, C, H, W], ys [T, N*K], xq [T, N*Q, C, H, W], yq [T, N*Q], one task at a time
    (``adapt`` and ``predict``)."""
    theta = {n: p.detach() for n, p in learner.backbone.named_parameters()}
    accs, changes = [], []
    for t in range(len(xs)):
        phi = learner.adapt(xs[t], ys[t], steps)
        accs.append((learner.predict(phi, xq[t]).argmax(-1) == yq[t]).float().mean())
        changes.append(change_sq(theta, {n: phi[n] for n in learner.adapted}))
    return Evaluation(torch.stack(accs), {n: torch.stack([c[n] for c in changes]) for n in theta})
