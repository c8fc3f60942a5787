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


def test_shipped_lists_match_their_digests_and_sources(shared_data):
    sums = dict(line.split()[::-1] for line in (ASSETS / "SHA256SUMS").read_text().splitlines())
    assert len(sums) == 12 and (ASSETS / "LICENSE").is_file() and (ASSETS / "README.md").is_file()
    for name, digest in sums.items():
        assert hashlib.sha256((ASSETS / name).read_bytes()).hexdigest() == digest, name
    upstream = dict(
        line.split()[::-1] for line in (shared_data / "fewshot-splits" / "SHA256SUMS").read_text().splitlines()
    )
    for name, digest in upstream.items():  # copied unchanged from the few-shot splits beside the project
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
