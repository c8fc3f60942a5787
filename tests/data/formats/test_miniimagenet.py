import pickle

import pytest
import torch

from sparse_maml.data import DatasetError, load_split
from sparse_maml.data.formats.miniimagenet import detect, read_split_csv

from ..helpers import pattern, write_mini_csv, write_mini_hdf5, write_mini_pickle

NAMES = ["n00001000", "n00001001", "n00001002"]


def check(store, size=84):
    assert store.images.shape == (12, 3, size, size) and store.images.dtype == torch.uint8
    assert store.class_names == NAMES and store.class_counts().tolist() == [4, 4, 4]
    assert store.labels.tolist() == [c for c in range(3) for _ in range(4)]


def test_pickle_round_trip(tmp_path):
    write_mini_pickle(tmp_path, "train")
    s = load_split("miniimagenet", tmp_path, "train", use_cache=False)
    check(s)
    for c in range(3):  # pattern() writes the class id into pixel (0, 0) of every channel
        assert (s.images[s.labels == c][:, :, 0, 0] == c).all()
    assert torch.equal(s.images[1].permute(1, 2, 0), torch.from_numpy(pattern(0, 1, 84)))
    check(load_split("miniimagenet", tmp_path, "train", image_size=32, use_cache=False), 32)


def test_hdf5_round_trip(tmp_path):
    pytest.importorskip("h5py")
    write_mini_hdf5(tmp_path / "miniimagenet", "val")  # torchmeta keeps its files in a subfolder
    assert detect(tmp_path, "val")[0] == "hdf5"
    s = load_split("miniimagenet", tmp_path, "val", use_cache=False)
    check(s)
    write_mini_pickle(tmp_path, "val")
    assert torch.equal(load_split("miniimagenet", tmp_path, "val", use_cache=False).images, s.images)


def test_csv_round_trip(tmp_path):
    write_mini_csv(tmp_path, "test")
    assert detect(tmp_path, "test")[0] == "csv"
    s = load_split("miniimagenet", tmp_path, "test", use_cache=False)
    check(s)
    assert (
        s.images.float().mean((1, 2, 3))
        - torch.tensor([pattern(c, i)[1, 1, 0] for c in range(3) for i in range(4)]).float()
    ).abs().max() < 3


def test_csv_dir_option(tmp_path):
    write_mini_csv(tmp_path / "data", "train")
    (tmp_path / "splits").mkdir()
    (tmp_path / "data" / "train.csv").rename(tmp_path / "splits" / "train.csv")
    with pytest.raises(DatasetError, match="no miniImageNet files for split 'train'"):
        load_split("miniimagenet", tmp_path / "data", "train", use_cache=False)
    check(load_split("miniimagenet", tmp_path / "data", "train", csv_dir=str(tmp_path / "splits"), use_cache=False))


def test_ravi_split_files(shared_data):
    splits = {k: read_split_csv(shared_data / "miniimagenet-split" / f"{k}.csv") for k in ("train", "val", "test")}
    assert {k: len(v) for k, v in splits.items()} == {"train": 64, "val": 16, "test": 20}
    assert all(len(files) == 600 for v in splits.values() for files in v.values())
    train, val, test = (set(v) for v in splits.values())
    assert not train & val and not train & test and not val & test


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"no miniImageNet files for split 'train' in .*mini-imagenet-cache-train"):
        load_split("miniimagenet", tmp_path, "train")
    with pytest.raises(DatasetError, match="source 'hdf5' for split 'train' needs"):
        load_split("miniimagenet", tmp_path, "train", source="hdf5")
    path = write_mini_pickle(tmp_path, "train")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match=f"cannot read {path} .*corrupt, truncated"):
        load_split("miniimagenet", tmp_path, "train", use_cache=False)
    with open(path, "wb") as f:  # a pickle that would run code is refused
        pickle.dump({"image_data": print, "class_dict": {}}, f)
    with pytest.raises(DatasetError, match="refusing to load builtins.print"):
        load_split("miniimagenet", tmp_path, "train", use_cache=False)
    (tmp_path / "val.csv").write_text("filename,label\nonly_one_column\n")
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="val.csv, line 2: expected 'filename,label'"):
        load_split("miniimagenet", tmp_path, "val", use_cache=False)
    (tmp_path / "test.csv").write_text("filename,label\nmissing.jpg,n1\n")
    with pytest.raises(DatasetError, match="missing from .*images"):
        load_split("miniimagenet", tmp_path, "test", use_cache=False)
