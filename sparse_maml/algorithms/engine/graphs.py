"""The first-order inner loop of a chunk of tasks as one CUDA graph, captured once per shape and replayed
(``InnerLoopLearner.cuda_graphs``, config key ``algo.cuda_graphs``).

With small images a GPU idles between kernel launches: an inner step of Conv4 is about sixty kernels of a few
microseconds each, and Python and the dispatcher take longer to issue them than the GPU takes to run them. The
shapes of an inner loop are fixed for a run, so its K steps are recorded once (``torch.cuda.graph``) and then
replayed as one launch. Before each replay the inputs (theta, s(m), the support set) are copied into the graph's
own tensors, and after it the outputs are cloned, so a replay gives exactly what the eager loop gives
(``tests/test_gpu.py``). On CPU there is nothing to capture and the eager loop runs.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .update import Params

if TYPE_CHECKING:
    from .protocol import Adaptable

#: (function, its static inputs) -> (replay, static outputs); ``cuda_capture`` on GPU, replaced in CPU tests
Capture = Callable[[Callable[[], list[Tensor]]], tuple[Callable[[], None], list[Tensor]]]
Eager = Callable[[Params, dict, Tensor, Tensor], tuple[Params, list[Tensor] | None]]

_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # learner -> {shape key: _Graph}


def cuda_capture(fn: Callable[[], list[Tensor]]) -> tuple[Callable[[], None], list[Tensor]]:
    """Record ``fn`` as a CUDA graph after two warm-up runs on a side stream (cuDNN chooses its algorithms and the
    allocator its blocks outside the capture, as ``torch.cuda.graph`` requires)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = fn()
    return graph.replay, outputs


class _Graph:
    """One captured inner loop: static inputs, the replay, and static outputs."""

    def __init__(self, eager: Eager, inputs: dict[str, Tensor], adapted: list[str], capture: Capture) -> None:
        self.inputs = {n: t.detach().clone() for n, t in inputs.items()}
        self.adapted = adapted

        def run() -> list[Tensor]:
            theta = {n[len("theta:") :]: t for n, t in self.inputs.items() if n.startswith("theta:")}
            scales = {n: self.inputs.get(f"scale:{n}") for n in adapted}
            phi, grad_sum = eager(theta, scales, self.inputs["xs"], self.inputs["ys"])
            return [phi[n] for n in adapted] + list(grad_sum or [])

        self.replay, self.outputs = capture(run)

    def __call__(self, inputs: dict[str, Tensor]) -> tuple[Params, list[Tensor] | None]:
        for n, t in inputs.items():
            self.inputs[n].copy_(t)
        self.replay()
        outs = [t.detach().clone() for t in self.outputs]
        k = len(self.adapted)
        phi = {n: p.requires_grad_() for n, p in zip(self.adapted, outs[:k])}
        return phi, (outs[k:] or None)


def graphed_adapt(
    learner: Adaptable,
    eager: Eager,
    theta: Params,
    scales: dict,
    xs: Tensor,
    ys: Tensor,
    key: tuple,
    capture: Capture | None = None,
) -> tuple[Params, list[Tensor] | None]:
    """``eager(theta, scales, xs, ys)`` replayed from the graph captured for ``key`` (captured on first use).

    ``key`` names what the captured loop depends on besides the input values (steps, what it returns); shapes,
    dtypes, device and autocast state are added here.
    """
    device = xs.device.type
    autocast = torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device)
    inputs = {f"theta:{n}": t for n, t in theta.items()}
    inputs.update({f"scale:{n}": s for n, s in scales.items() if s is not None})
    inputs.update(xs=xs, ys=ys)
    full_key = (*key, autocast, tuple((n, t.shape, t.dtype, t.device) for n, t in inputs.items()))
    graphs = _CACHE.setdefault(learner, {})
    if full_key not in graphs:
        graphs[full_key] = _Graph(eager, inputs, list(learner.adapted), capture or cuda_capture)
    return graphs[full_key](inputs)
