"""The signals a cluster sends before it kills a job, turned into "save at the next meta-iteration, then stop".

Schedulers warn a job before killing it: SLURM with the signal of ``--signal`` (``USR1@90`` in docs/RUNNING.md),
submitit with SIGUSR2, Kubernetes and most others with SIGTERM. Acting inside the signal handler would save in the
middle of a meta-iteration (some parameters stepped, the loop's counters not), which does not resume exactly. So
``StopSignals`` only records the signal; ``LastCheckpoint`` saves ``last.ckpt`` at the next point Lightning resumes
from exactly and raises ``Preempted``. A requeue signal (SIGUSR1, SIGUSR2) is then handed to the handler that had it
before training started (Lightning's SLURM auto-requeue, submitit's), which requeues the job; the requeued job, run
with ``ckpt_path=auto``, continues from that checkpoint.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Signals that mean "you are about to be stopped": recorded, acted upon at the next meta-iteration boundary.
STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")
#: Of those, the ones a scheduler sends to have the job requeued: handed on to their previous handler after saving.
REQUEUE_SIGNALS = ("SIGUSR1", "SIGUSR2")


class Preempted(Exception):
    """Training stopped on a stop signal after saving its resume checkpoint; ``exit_status`` is 128 + the signal,
    the shell's status for a process ended by it."""

    def __init__(self, signum: int, step: int, checkpoint: Path) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.exit_status = 128 + signum
        super().__init__(
            f"stopped by {signal.Signals(signum).name} at meta-iteration {step}: {checkpoint} holds the run; "
            "run the same command with ckpt_path=auto to continue it"
        )


class StopSignals:
    """Records the first stop signal received between ``install`` and ``restore`` instead of dying of it."""

    def __init__(self, names: Sequence[str] = STOP_SIGNALS) -> None:
        unknown = [n for n in names if not hasattr(signal, n)]
        if unknown:
            raise ValueError(f"unknown signal names {unknown}: use names such as {', '.join(STOP_SIGNALS)}")
        self.signums = [getattr(signal, n) for n in names]
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Record the signals from now on (only the main thread may set handlers; elsewhere this does nothing)."""
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return
        self.received = None
        self._previous = {s: signal.signal(s, self._record) for s in self.signums}

    def _record(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum

    def restore(self) -> None:
        """Put back the handlers that were there before ``install``."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def hand_on(self) -> None:
        """Restore the previous handlers and, for a requeue signal, call the previous one (if it is Python code)."""
        previous = self._previous.get(self.received) if self.received is not None else None
        self.restore()
        if callable(previous) and signal.Signals(self.received).name in REQUEUE_SIGNALS:
            previous(self.received, None)
