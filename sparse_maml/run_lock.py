"""One run folder, one writer: a training job holds ``<run>/.lock`` for as long as it trains or resumes there.

The lock is an operating-system file lock (``filelock``): the kernel releases it when its process ends, however it
ends (SIGKILL included; a lost machine's locks on a network file system expire with its lease), so a lock left by a
dead run never blocks the next resume. Beside it, ``.lock.owner`` says who holds it (host, PID, since when), for
the message a second process gets and for the note the next holder prints when it takes over a dead run's folder.

Under DDP only the job's first process takes the lock: the ranks it (or a cluster) starts work under it.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .atomic import write_text
from .logs import get_logger

log = get_logger(__name__)

LOCK = ".lock"
OWNER = ".lock.owner"
#: Environment variables that mark a process as one of a job's later ranks (Lightning, torchrun, SLURM).
_RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "RANK", "SLURM_PROCID")


class RunLockedError(RuntimeError):
    """Another process trains in this run folder; the message names the folder and the holder."""


def is_first_process() -> bool:
    """True unless the environment says this process is a later rank of a distributed job."""
    return all(os.environ.get(key, "0") in ("", "0") for key in _RANK_VARIABLES)


def _owner(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / OWNER).read_text())
    except (OSError, ValueError):
        return None


def _describe(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "another process (it has not said who it is yet)"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(owner.get("since", 0)))
    return f"{owner.get('host', '?')}, PID {owner.get('pid', '?')} (since {since})"


@contextmanager
def hold(folder: str | Path) -> Iterator[None]:
    """Hold ``folder``'s run lock for the block; re-entrant within a process, a no-op in a job's later ranks.

    Raises ``RunLockedError`` at once, having written nothing, when another live process holds it.
    """
    if not is_first_process():
        yield
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # One lock object per path and process (is_singleton), so that nested holds count up instead of deadlocking.
    lock = FileLock(str(folder / LOCK), timeout=0, is_singleton=True)
    first = not lock.is_locked
    try:
        lock.acquire()
    except Timeout:
        raise RunLockedError(
            f"run folder {folder} is in use by {_describe(_owner(folder))}: another train.py is training in it. "
            "Wait for it to finish, or give this run its own folder (hydra.run.dir=...)"
        ) from None
    try:
        if first:
            _claim(folder)
        yield
    finally:
        if lock.lock_counter == 1:
            (folder / OWNER).unlink(missing_ok=True)
        lock.release()


def _claim(folder: Path) -> None:
    """Record this process as the holder; say so when the previous holder died without releasing its folder."""
    me = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    before = _owner(folder)
    if before and (before.get("host"), before.get("pid")) != (me["host"], me["pid"]):
        log.warning(
            "run folder %s: taking over the lock of %s, which is no longer running (killed or its machine lost)",
            folder,
            _describe(before),
        )
    write_text(folder / OWNER, json.dumps(me))
