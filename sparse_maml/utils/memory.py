"""Peak memory of a piece of code: tensor bytes from the profiler's allocation events (CPU and GPU), and the
process's peak resident set size (Linux)."""

from __future__ import annotations

import ctypes
import gc
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
