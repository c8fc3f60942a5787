"""The reference loop the benchmark compares against, written the way the paper's public code does it.

One task at a time; the network's parameters live in an ordered dict and the forward pass is the functional
Conv4 of torchmeta's ``MetaModule`` (conv -> batch norm on batch statistics -> ReLU -> max-pool, NCHW); every inner
step calls ``torch.autograd.grad`` on the support loss and builds

    params[name] = param - step_size * s(m) * grad

with ``grad`` detached (first order) but ``param`` and the straight-through s(m) kept in the graph, so that one
``backward`` of the query loss through all K steps yields the first-order meta-gradients of theta and m.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sparse_maml.algorithms import InnerLoopLearner
from sparse_maml.models import Conv4


def conv4_forward(params: OrderedDict[str, Tensor], x: Tensor, eps: float = 1e-5) -> Tensor:
    """Conv4 logits [B, n_way] of x [B, C, H, W]; ``params`` in the order of ``Conv4.named_parameters()``:
    (conv weight, conv bias, norm weight, norm bias) for each of the four blocks, then the head."""
    p = list(params.values())
    for i in range(0, 16, 4):
        x = F.conv2d(x, p[i], p[i + 1], padding=1)
        x = F.batch_norm(x, None, None, p[i + 2], p[i + 3], True, 0.0, eps)
        x = F.max_pool2d(F.relu(x), 2)
    return F.linear(x.flatten(1), p[16], p[17])


def binarizer(m: Tensor) -> Tensor:
    """1[m >= 0] with the straight-through derivative, as in the official code."""
    return (m >= 0).to(m.dtype) + m - m.detach()


def meta_backward(algo: InnerLoopLearner, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> tuple[float, float]:
    """Accumulate first-order meta-gradients of ``algo`` (fomaml or sparse_maml on Conv4) into ``.grad``.

    Same inputs and the same gradients as ``algo.meta_backward``; returns (mean query loss, mean query accuracy).
    """
    masks = algo.meta_parameters() if algo.masked else {}
    tasks = xs.shape[0]
    loss_sum = acc_sum = 0.0
    for t in range(tasks):
        params = OrderedDict(algo.backbone.named_parameters())
        for _ in range(algo.inner_steps):
            loss = F.cross_entropy(conv4_forward(params, xs[t]), ys[t])
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=False)
            params = OrderedDict(
                (name, p - algo.inner_lr * (binarizer(masks[name]) * g if name in masks else g))
                for (name, p), g in zip(params.items(), grads)
            )
        logits = conv4_forward(params, xq[t])
        query_loss = F.cross_entropy(logits, yq[t])
        (query_loss / tasks).backward()
        loss_sum += query_loss.item()
        acc_sum += (logits.argmax(-1) == yq[t]).float().mean().item()
    return loss_sum / tasks, acc_sum / tasks


def evaluate(algo: InnerLoopLearner, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> Tensor:
    """Query accuracy [T] after adapting to each task in turn, task by task."""
    masks = {n: binarizer(m).detach() for n, m in algo.meta_parameters().items()} if algo.masked else {}
    accs = []
    for t in range(xs.shape[0]):
        params = OrderedDict((n, p.detach().requires_grad_()) for n, p in algo.backbone.named_parameters())
        for _ in range(algo.inner_steps):
            loss = F.cross_entropy(conv4_forward(params, xs[t]), ys[t])
            grads = torch.autograd.grad(loss, list(params.values()))
            params = OrderedDict(
                (n, (p - algo.inner_lr * (masks[n] * g if n in masks else g)).detach().requires_grad_())
                for (n, p), g in zip(params.items(), grads)
            )
        with torch.no_grad():
            accs.append((conv4_forward(params, xq[t]).argmax(-1) == yq[t]).float().mean())
    return torch.stack(accs)


def check_backbone(backbone: nn.Module) -> None:
    """The baseline is written for Conv4 only."""
    if not isinstance(backbone, Conv4):
        raise TypeError("the baseline loop is written for the Conv4 backbone")
