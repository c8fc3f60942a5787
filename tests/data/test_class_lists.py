import hashlib
import json

import pytest

from sparse_maml.data import DatasetError
from sparse_maml.data.class_lists import ASSETS, read_class_list

SIZES = {"cub": (100, 50, 50), "cifar_fs": (64, 16, 20), "fc100": (12, 4, 4), "cars": (98, 49, 49)}


@pytest.mark.parametrize("dataset", SIZES)
def test_shipped_lists_have_the_published_sizes_and_are_disjoint(dataset):
    lists = [read_class_list(dataset, s) for s in ("train", "val", "test")]
    assert tuple(len(c) for c in lists) == SIZES[dataset]
    keys = [json.dumps(c) for cs in lists for c in cs]
    assert len(set(keys)) == len(keys)


#: torchmeta's lists (commit d55d89ebd47f, ``torchmeta/datasets/assets/``), as their SHA256SUMS records them
UPSTREAM = {
    "cifar-fs/test.json": "e199c74ef4f014ea3f74da1b6cf74795d32747183426c2a7e6ee4308d3bf47e3",
    "cifar-fs/train.json": "e0feef3aef13fc7320d5deef5ae77d91edd28041d9a173939ec48cea68135ef0",
    "cifar-fs/val.json": "d9d6e267b5dad5c2267ff7dd98ebb18bb016f7929b56839422bb34fb53bcb3ef",
    "cub/test.json": "41c79218a7bd4c2f805623e52e4fa9653e28e063638e8121efcd81183cf7ecc5",
    "cub/train.json": "ec90b228abb6100266ec7efd5513ec62d42c2507ccb366f25c42debfd2b5da2e",
    "cub/val.json": "fff92a7293e7e529185a3d2be7d6ec3956fafe916996668384d7bc5d798b8903",
    "fc100/test.json": "d2cf86db6ec0250993b18cb78ebde10758f06eaaaff1611390e4442ee7c6fc41",
    "fc100/train.json": "a19e219adef452c071eb09d14758a9c45562643b9aafa38826e679ed285e117b",
    "fc100/val.json": "6d228dac7040959f0c2f0385c53c2cd9a5369ba9eefd1b7cdceecb47041598c4",
}


def test_shipped_lists_match_their_digests_and_sources():
    sums = dict(line.split()[::-1] for line in (ASSETS / "SHA256SUMS").read_text().splitlines())
    assert len(sums) == 12 and (ASSETS / "LICENSE").is_file() and (ASSETS / "README.md").is_file()
    for name, digest in sums.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name
    for name, digest in UPSTREAM.items():  # copied unchanged from torchmeta
        assert sums[name.replace("cifar-fs/", "cifar_fs/")] == digest


def test_bad_lists(tmp_path):
    (tmp_path / "train.json").write_text("{}")
    with pytest.raises(DatasetError, match=r"train.json must hold a non-empty JSON list"):
        read_class_list("cub", "train", tmp_path)
    (tmp_path / "val.json").write_text('["a", "b", "a"]')
    with pytest.raises(DatasetError, match=r"val.json lists a class more than once"):
        read_class_list("cub", "val", tmp_path)
    (tmp_path / "test.json").write_text("[")
    with pytest.raises(DatasetError, match=r"cannot read the class list .*test.json"):
        read_class_list("cub", "test", tmp_path)
