import pytest
import torch

from sparse_maml.data import DatasetError, load_split

from ..helpers import write_folder


@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "bmp", "gif", "webp"])
def test_round_trip_formats(tmp_path, ext):
    write_folder(tmp_path, "train", {"cat": 3, "ant": 2}, ext=ext)
    s = load_split("folder", tmp_path, "train", image_size=16, use_cache=False)
    assert s.images.shape == (5, 3, 16, 16) and s.images.dtype == torch.uint8
    assert s.class_names == ["ant", "cat"] and s.labels.tolist() == [0, 0, 1, 1, 1]
    lossy = ext in ("jpg", "jpeg", "webp", "gif")
    assert (s.images[:, 0, 0, 0].tolist() == [1, 1, 0, 0, 0]) or lossy  # pattern() stores the label at (0, 0)


def test_resize_grayscale_and_ignored_files(tmp_path):
    write_folder(tmp_path, "val", {"a": 2, "b": 2}, size=40)
    (tmp_path / "val" / "a" / "notes.txt").write_text("ignored")
    (tmp_path / "val" / "empty").mkdir()
    s = load_split("folder", tmp_path, "val", image_size=[24, 20], channels=1, use_cache=False)
    assert s.images.shape == (4, 1, 24, 20) and s.class_names == ["a", "b"]


def test_errors(tmp_path):
    write_folder(tmp_path, "train", {"a": 2})
    with pytest.raises(DatasetError, match=r"no folder .*test: the folder format expects .*\['train'\]"):
        load_split("folder", tmp_path, "test", use_cache=False)
    (tmp_path / "val" / "x").mkdir(parents=True)
    with pytest.raises(DatasetError, match="holds no <class>/<image> files"):
        load_split("folder", tmp_path, "val", use_cache=False)
    bad = tmp_path / "train" / "a" / "000.png"
    bad.write_bytes(bad.read_bytes()[:30])
    with pytest.raises(DatasetError, match=f"cannot decode image {bad}"):
        load_split("folder", tmp_path, "train", use_cache=False)
    with pytest.raises(DatasetError, match="channels must be 1"):
        load_split("folder", tmp_path, "train", channels=2, use_cache=False)
