"""Reading the pickles few-shot datasets are distributed as, without letting a pickle run code."""

from __future__ import annotations

import math
import os
import pickle
import zlib
from pathlib import Path
from typing import IO, Any

from .errors import DatasetError


class ArrayUnpickler(pickle._Unpickler):
    """Builds numpy arrays, dicts, lists and scalars only: a pickle from the internet cannot run code. With a
    ``limit`` (the pickle's size in bytes) it cannot make the reader allocate more than the file could hold either:
    a corrupt length field or an array constructed empty at a huge shape is refused before any memory is taken.

    The pure-Python unpickler, because the C one allocates a bytes object of the length a pickle states before it
    reads a byte of it; dataset pickles hold few, large objects, so it is hardly slower here."""

    _ALLOWED = {
        ("collections", "OrderedDict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("codecs", "encode"),
        ("_codecs", "encode"),  # with bytes: how protocol 2 pickles bytes (numpy array buffers) from Python 3
        ("builtins", "bytes"),
    }
    _NUMPY = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}

    def __init__(self, file: IO[bytes], limit: int | None = None, **kwargs: Any) -> None:
        self.limit = limit
        super().__init__(file if limit is None else _Bounded(file, limit), **kwargs)

    def find_class(self, module: str, name: str):  # noqa: ANN201 (pickle protocol)
        if module.split(".")[0] == "numpy" and name in self._NUMPY:
            found = super().find_class(module, name)
            return self._bounded(found) if name in ("ndarray", "_reconstruct") and self.limit is not None else found
        if ("builtins" if module == "__builtin__" else module, name) in self._ALLOWED:  # Python 2's name too
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def _bounded(self, make: Any) -> Any:
        """``make`` (ndarray or _reconstruct), refusing shapes larger than the pickle could fill."""

        def checked(*args: Any, **kwargs: Any) -> Any:
            # _reconstruct(subtype, shape, dtype) is given the ndarray this method wrapped: pass the real one on
            args = tuple(getattr(a, "__wrapped__", a) for a in args)
            shape = args[1] if make.__name__ == "_reconstruct" and len(args) > 1 else (args[0] if args else ())
            shape = (shape,) if isinstance(shape, int) else tuple(shape)
            if not all(isinstance(n, int) and n >= 0 for n in shape) or math.prod(shape) > self.limit:
                raise pickle.UnpicklingError(f"an array of shape {shape} in a pickle of {self.limit} bytes")
            return make(*args, **kwargs)

        checked.__wrapped__ = make
        return checked


class _Bounded:
    """A file's ``read`` and ``readline`` that refuse to go past ``limit`` bytes in all (no ``readinto``, so that
    the unpickler never allocates a buffer for a length it was told before checking it)."""

    def __init__(self, file: IO[bytes], limit: int) -> None:
        self.file, self.left = file, limit

    def read(self, n: int = -1) -> bytes:
        if n > self.left:
            raise pickle.UnpicklingError(f"asks for {n} bytes where the file has {self.left} left")
        data = self.file.read(self.left if n < 0 else n)
        self.left -= len(data)
        return data

    def readline(self) -> bytes:
        line = self.file.readline(self.left)
        self.left -= len(line)
        return line


def read_pickle(
    path: Path, what: str, file: IO[bytes] | None = None, encoding: str = "latin1", size: int | None = None
) -> Any:
    """The contents of a (Python 2 or 3) pickle of arrays and containers; `file` reads it from an open stream
    (e.g. a tar member of `size` bytes) named `path` in errors. Raises DatasetError naming the file and `what` it
    should be; reads no more than the file holds and allocates no array larger than it."""
    try:
        if file is not None:
            return ArrayUnpickler(file, limit=size, encoding=encoding).load()
        with open(path, "rb") as f:
            return ArrayUnpickler(f, limit=os.fstat(f.fileno()).st_size, encoding=encoding).load()
    except (
        pickle.UnpicklingError,
        EOFError,
        OSError,
        ValueError,
        AttributeError,
        ImportError,
        IndexError,
        MemoryError,
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
