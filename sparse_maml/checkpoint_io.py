"""Checkpoint files: data, never code. Every read goes through ``load_checkpoint``; every write is atomic.

A checkpoint is a pickle, and unpickling can call any importable function: a ``.ckpt`` received from someone else
could run code the moment it is opened. ``load_checkpoint`` reads with ``torch.load(weights_only=True)``, which
builds tensors, containers and plain values only and refuses any other global before calling it. Everything this
package writes into a checkpoint (weights, masks, optimiser, loop, callback and RNG states, hyperparameters and the
resolved config as plain containers) loads that way, so no type is added to torch's allow-list.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.cloud_io import _load as fsspec_load

from .atomic import atomic_file


class CheckpointError(ValueError):
    """A file given as a checkpoint cannot be read as one, or holds something other than data; the message names
    the file."""


def load_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict[str, Any]:
    """The contents of the checkpoint at ``path``, read as data only (``torch.load(weights_only=True)``).

    ``mmap=True`` maps a local file instead of reading it, for a look at a few entries. Raises ``CheckpointError``
    naming the file when it holds a pickled global that is not plain data (nothing of it runs), or when it is not
    a readable checkpoint (truncated, empty, another format).
    """
    where = str(path)
    try:
        if "://" in where:  # remote file systems, through fsspec
            checkpoint = fsspec_load(where, map_location=map_location, weights_only=True)
        else:
            checkpoint = torch.load(where, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        if found is None:  # not a refused object but bytes that are no pickle at all
            raise _unreadable(where, error) from error
        raise CheckpointError(
            f"checkpoint {where} holds a pickled {found.group(1)!r}; refusing to load it: a checkpoint should hold "
            "tensors and plain values only, and unpickling this one could run code. If you trust its author "
            "completely, re-save its data (state_dict, hyper_parameters) with torch.save"
        ) from None
    except FileNotFoundError:
        raise
    except Exception as error:  # the zip reader, the legacy reader and the file system all fail differently
        raise _unreadable(where, error) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        found = sorted(map(str, checkpoint))[:8] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise CheckpointError(f"{where} is not a checkpoint written by train.py: no 'state_dict' (found {found})")
    return checkpoint


def _unreadable(where: str, error: Exception) -> CheckpointError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else "no data"
    return CheckpointError(
        f"{where} is not a readable checkpoint ({type(error).__name__}: {reason}): the file is truncated, empty or "
        "not one written by train.py; point ckpt_path at a complete .ckpt file"
    )


def read_checkpoint_entry(path: str | Path, key: str, default: Any = None) -> Any:
    """One top-level entry of a checkpoint; memory-mapped (local files), so the tensors are not read."""
    return load_checkpoint(path, mmap=True).get(key, default)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with both ends made safe: checkpoints are read by ``load_checkpoint`` (data only,
    whatever ``weights_only`` Lightning asks for) and written atomically (``atomic.atomic_file``), so that a crash,
    a kill or a full disk while saving leaves the previous checkpoint of that name intact and loadable.

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
        with atomic_file(path) as f:
            torch.save(checkpoint, f)
        self.last_saved = str(path)

    def load_checkpoint(
        self, path: str | Path, map_location: Any = lambda storage, loc: storage, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location=map_location)  # a missing file: torch's FileNotFoundError
