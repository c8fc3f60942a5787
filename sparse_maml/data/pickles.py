"""Reading the pickles few-shot datasets are distributed as, without letting a pickle run code."""

from __future__ import annotations

import pickle
import zlib
from pathlib import Path
from typing import IO, Any

from .errors import DatasetError


class ArrayUnpickler(pickle.Unpickler):
    """Builds numpy arrays, dicts, lists and scalars only: a pickle from the internet cannot run code."""

    _ALLOWED = {
        ("collections", "OrderedDict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("codecs", "encode"),
        ("_codecs", "encode"),  # with bytes: how protocol 2 pickles bytes (numpy array buffers) from Python 3
        ("builtins", "bytes"),
        ("__builtin__", "bytes"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle protocol)
        if (
            module.split(".")[0] == "numpy" and name in {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}
        ) or (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_pickle(path: Path, what: str, file: IO[bytes] | None = None, encoding: str = "latin1") -> Any:
    """The contents of a (Python 2 or 3) pickle of arrays and containers; `file` reads it from an open stream
    (e.g. a tar member) named `path` in errors. Raises DatasetError naming the file and `what` it should be."""
    try:
        if file is not None:
            return ArrayUnpickler(file, encoding=encoding).load()
        with open(path, "rb") as f:
            return ArrayUnpickler(f, encoding=encoding).load()
    except (
        pickle.UnpicklingError,
        EOFError,
        OSError,
        ValueError,
        AttributeError,
        ImportError,
        IndexError,
        zlib.error,
    ) as e:
        raise DatasetError(
            f"cannot read {path} ({type(e).__name__}: {e}); the file is corrupt, truncated or not {what}, "
            "download it again"
        ) from e


def entry(data: Any, key: str, path: Path, what: str) -> Any:
    """data[key] for a dict whose keys may be str or bytes (Python 2 pickles read with encoding="bytes")."""
    if isinstance(data, dict):
        for k in (key, key.encode()):
            if k in data:
                return data[k]
    keys = sorted(str(k) for k in data) if isinstance(data, dict) else type(data).__name__
    raise DatasetError(f"{path} is not {what}: expected a dict with the key {key!r}, found {keys}")
