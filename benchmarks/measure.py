"""Timing and peak-memory measurement of one piece of work, on CPU or GPU."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .memory import peak_rss_bytes, reset_peak_rss


@dataclass
class Timing:
    """Wall-clock seconds of the timed runs and the peak memory (bytes) of the first of them.

    On CPU only the first run's peak RSS is kept: a later run inherits heap the other implementation's runs
    fragmented (its RSS then says more about glibc than about the code being measured).
    """

    seconds: list[float] = field(default_factory=list)
    peak_bytes: int = 0
    #: CPU time (user + system) of the process in each run: on a shared machine, less affected by other jobs
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_seconds) if self.cpu_seconds else float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_once(fn: Callable[[], object], device: torch.device, timing: Timing) -> float:
    """Run ``fn`` once and append its wall-clock seconds to ``timing``; on the first run, record its peak memory.

    Peak memory is ``torch.cuda.max_memory_allocated`` on GPU and the process's peak RSS on CPU, both reset first.
    """
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        reset_peak_rss()
    _sync(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    seconds = time.perf_counter() - start
    timing.cpu_seconds.append(time.process_time() - cpu_start)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else peak_rss_bytes()
    if not timing.seconds:
        timing.peak_bytes = peak
    timing.seconds.append(seconds)
    return seconds


def interleaved(
    fns: dict[str, Callable[[], object]], device: torch.device, repeats: int, budget_s: float
) -> dict[str, Timing]:
    """Time every function ``repeats`` times, alternating between them so that both see the same machine load
    (in the order given: the first one's first run follows only the warm-ups).

    After the first round, rounds stop once the total time of one round exceeds ``budget_s`` / ``repeats``
    worth of the remaining budget (slow cells get fewer runs; the table reports how many).
    """
    timings = {name: Timing() for name in fns}
    spent = 0.0
    for r in range(repeats):
        round_s = sum(run_once(fn, device, timings[name]) for name, fn in fns.items())
        spent += round_s
        if r + 1 < repeats and spent + round_s > budget_s:
            break
    return timings
