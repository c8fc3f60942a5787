"""Checkpoint files: written atomically, and read back in parts without loading the whole file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file beside its destination, flushes it to disk, then renames it over the
    destination, so that a crash (or a kill) while saving leaves the previous checkpoint of that name intact.

    ``last_saved`` is the path of the last checkpoint written completely by this process (or the one training was
    resumed from): the one to go back to when training fails.
    """

    def __init__(self) -> None:
        super().__init__()
        self.last_saved: str | None = None

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        if "://" in str(path):  # remote file systems: fsspec's own transaction
            super().save_checkpoint(checkpoint, path, storage_options)
            self.last_saved = str(path)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} does not take storage_options, got {storage_options!r}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Same folder, so that the rename stays on one file system and is atomic; no ".ckpt" suffix, so that an
        # unfinished file is never mistaken for a checkpoint.
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        self.last_saved = str(path)


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


def read_checkpoint_entry(path: str | Path, key: str, default: Any = None) -> Any:
    """One top-level entry of a checkpoint; memory-mapped, so the tensors are not read."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    return checkpoint.get(key, default)
