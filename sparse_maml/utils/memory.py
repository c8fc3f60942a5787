"""Peak tensor memory of a piece of code, from the profiler's allocation events (works on CPU and GPU)."""

from __future__ import annotations

from collections.abc import Callable

from torch.profiler import ProfilerActivity, profile


def peak_tensor_bytes(fn: Callable[[], object]) -> int:
    """Run ``fn`` and return the peak of tensor bytes allocated and still alive during it.

    Bytes already allocated before the call are not counted, so the figure is the extra memory ``fn`` needs.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak
