"""Peak memory of a piece of code: tensor bytes from the profiler's allocation events (CPU and GPU), and the
process's peak resident set size (Linux)."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable, Iterator

from torch._C._profiler import _EventType
from torch.profiler import ProfilerActivity, profile


def peak_tensor_bytes(fn: Callable[[], object]) -> int:
    """Run ``fn`` and return the peak of tensor bytes allocated and still alive during it.

    Only blocks allocated inside the call count, and a free counts only for such a block (matched by address): the
    profiler records some frees of blocks allocated before it started, which would otherwise lower the figure by a
    different amount from one call to the next. The result is the extra memory ``fn`` needs.
    """
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    allocations = sorted(
        (e for e in _walk(prof.profiler.kineto_results.experimental_event_tree()) if e.tag == _EventType.Allocation),
        key=lambda e: e.start_time_ns,
    )
    mine: dict[int, int] = {}
    live = peak = 0
    for e in allocations:
        ptr, size = e.extra_fields.ptr, e.extra_fields.alloc_size
        if size > 0:
            mine[ptr] = size
            live += size
            peak = max(peak, live)
        elif ptr in mine:
            live -= mine.pop(ptr)
    return peak


def _walk(events: list) -> Iterator:
    for e in events:
        yield e
        yield from _walk(e.children)


def reset_peak_rss() -> bool:
    """Reset the process's peak resident set size (Linux ``/proc/self/clear_refs``) to the memory in use now;
    False where unsupported. Free memory the C allocator still holds is handed back first (glibc
    ``malloc_trim``), so that an earlier, larger peak does not linger as resident but unused pages."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since start or the last ``reset_peak_rss`` (Linux VmHWM)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource  # fallback: lifetime peak (kilobytes on Linux)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
