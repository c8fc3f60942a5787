"""Files a run writes, written whole or not at all: a crash, a kill or a full disk leaves the previous version."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


class WriteError(OSError):
    """A run file could not be written (disk full, permission denied, ...); the previous version is untouched."""


@contextmanager
def atomic_file(path: str | Path) -> Iterator[IO[bytes]]:
    """An open binary file whose contents replace ``path`` when the block ends without an error.

    The bytes go to a hidden temporary file beside ``path`` (same file system, so that the rename is atomic; no
    suffix of ``path``, so that an unfinished file is never mistaken for a finished one), are flushed to disk, and
    the temporary file is renamed over ``path``. On any error the temporary file is removed and ``path`` is left as
    it was; an ``OSError`` is raised as a ``WriteError`` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, WriteError):
            failure = WriteError(_message(path, error))
            failure.errno = error.errno
            raise failure from error
        raise
    _fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> Path:
    """Replace ``path``'s contents with ``text`` (UTF-8) atomically; returns ``path``."""
    with atomic_file(path) as f:
        f.write(text.encode())
    return Path(path)


def _message(path: Path, error: OSError) -> str:
    reason = error.strerror or str(error)
    hint = {
        errno.ENOSPC: "free some space or point the run elsewhere (hydra.run.dir=...)",
        errno.EDQUOT: "free some space or point the run elsewhere (hydra.run.dir=...)",
        errno.EACCES: "check the folder's permissions or point the run elsewhere (hydra.run.dir=...)",
        errno.EROFS: "the file system is read-only: point the run elsewhere (hydra.run.dir=...)",
    }.get(error.errno or 0, "")
    kept = f"; {path.name} as it was before is left intact" if path.exists() else ""
    return f"could not write {path}: {reason}{kept}" + (f": {hint}" if hint else "")


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
