"""On-disk cache of decoded splits: one torch file per (format, root, split, options), checked against the
size and modification time of every source file so that a changed source is decoded again. The split's SHA-256
digest is stored with it, and the file is memory-mapped when read: a reload costs neither a hash nor a copy, and
processes on one machine (DDP ranks) share the pages.

Files are written to a temporary name in the cache folder and renamed into place, so a crash or a concurrent
writer never leaves a half-written cache; an unreadable cache file is treated as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch

from .store import ImageStore

CACHE_VERSION = 2


def _writable(folder: Path) -> bool:
    """Writable, and not marked read-only (root may write anywhere, but a read-only dataset stays untouched)."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return folder.is_dir() and os.access(folder, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def default_cache_dir(root: Path | None) -> Path:
    """`<root>/.sparse_maml_cache` when root is writable, else `$XDG_CACHE_HOME/sparse_maml` (~/.cache)."""
    if root is not None and _writable(root):
        return root / ".sparse_maml_cache"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sparse_maml"


def fingerprint(sources: Iterable[Path]) -> str:
    """A digest of the paths, sizes and modification times of the source files (missing files included)."""
    h = hashlib.sha256()
    for p in sorted(str(s) for s in sources):
        try:
            st = os.stat(p)
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}\0missing\n".encode())
    return h.hexdigest()


def cache_path(cache_dir: Path, fmt: str, root: Path | None, split: str, options: dict) -> Path:
    """The cache file for one request; `options` must be JSON-serialisable plain values."""
    key = json.dumps(
        [CACHE_VERSION, fmt, None if root is None else str(root.resolve()), split, options], sort_keys=True, default=str
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", split)[:60]
    return cache_dir / f"{fmt}-{safe}-{digest}.pt"


def read_cache(path: Path, source_fingerprint: str) -> ImageStore | None:
    """The cached store, or None when absent, unreadable or made from other sources."""
    if not path.is_file():
        return None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        if data.get("version") != CACHE_VERSION or data.get("fingerprint") != source_fingerprint:
            return None
        return ImageStore.from_dict(data["store"], from_cache=True)
    except Exception:  # a truncated or foreign file is only a miss: the split is decoded again
        return None


def write_cache(path: Path, store: ImageStore, source_fingerprint: str) -> bool:
    """Write atomically (temp file + rename); warn and return False when the folder is not writable."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            torch.save({"version": CACHE_VERSION, "fingerprint": source_fingerprint, "store": store.to_dict()}, f)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache is as readable as the data it comes from
        os.replace(tmp, path)
        return True
    except OSError as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        warnings.warn(
            f"could not write the dataset cache {path} ({e}); pass cache_dir=<writable folder> to cache decoded splits",
            stacklevel=3,
        )
        return False
