"""The array-only unpickler: runs no code, and allocates no more than the file could hold."""

import pickle
import struct

import numpy as np
import pytest

from sparse_maml.data import DatasetError
from sparse_maml.data.pickles import read_pickle


def test_arrays_and_containers_round_trip(tmp_path):
    data = {"image_data": np.arange(24, dtype=np.uint8).reshape(2, 3, 4), "labels": [1, 2], "names": {"a"}}
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        got = read_pickle(path, "a test pickle")
        assert np.array_equal(got["image_data"], data["image_data"]) and got["labels"] == [1, 2]


class _HugeEmptyArray:
    def __reduce__(self):
        return np.ndarray, ((2**40,),)  # 1 TiB, constructed without any data in the file


class _Code:
    def __reduce__(self):
        import os

        return os.system, ("true",)


@pytest.mark.parametrize(
    "content, reason",
    [
        (pickle.dumps({"image_data": _HugeEmptyArray()}, protocol=2), r"an array of shape \(1099511627776,\)"),
        # BINBYTES8 saying 2**60 bytes follow: a corrupt length field
        (b"\x80\x04\x8e" + struct.pack("<Q", 2**60) + b"abc", "asks for 1152921504606846976 bytes"),
        (pickle.dumps(_Code(), protocol=2), "refusing to load posix.system"),
        (b"", "the file has 0 left"),
    ],
)
def test_corrupt_pickles_are_named_without_allocating(tmp_path, content, reason):
    path = tmp_path / "mini-imagenet-cache-train.pkl"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=reason) as error:
        read_pickle(path, "a miniImageNet cache")
    assert str(error.value).startswith(f"cannot read {path}") and "download it again" in str(error.value)
