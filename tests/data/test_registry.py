import pytest
import torch

from sparse_maml.data import FORMATS, DatasetError, ImageStore, available_formats, load_split, register_format
from sparse_maml.data.registry import _REGISTRY


def test_builtin_formats_registered():
    assert FORMATS == ("miniimagenet", "omniglot", "folder", "embedded")
    assert set(FORMATS) <= set(available_formats())


def test_unknown_format():
    with pytest.raises(DatasetError, match=r"unknown dataset format 'imagenet9000'; known formats: .*omniglot"):
        load_split("imagenet9000", "/tmp", "train")


def test_unknown_option():
    with pytest.raises(DatasetError, match=r"format 'embedded' has no option\(s\) \['colour'\]"):
        load_split("embedded", None, "train", colour=True)


def test_missing_root(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DatasetError, match=f"dataset root {missing} does not exist.*download=True"):
        load_split("omniglot", missing, "background_small1")
    with pytest.raises(DatasetError, match=f"dataset root {missing} does not exist"):
        load_split("miniimagenet", missing, "train")
    with pytest.raises(DatasetError, match="needs root="):
        load_split("folder", None, "train")


def test_download_without_downloader(tmp_path):
    with pytest.raises(DatasetError, match="has no downloader"):
        load_split("miniimagenet", tmp_path, "train", download=True)


def test_user_format_is_cached_and_invalidated(tmp_path):
    calls = []

    @register_format("toy_counter")
    def load_toy(root, split, scale: int = 1) -> ImageStore:
        calls.append(split)
        n = int((root / "n.txt").read_text())
        images = torch.full((n, 1, 2, 2), scale, dtype=torch.uint8)
        return ImageStore(images, torch.arange(n), [f"c{i}" for i in range(n)])

    try:
        (tmp_path / "n.txt").write_text("3")
        a = load_split("toy_counter", tmp_path, "train")
        b = load_split("toy_counter", tmp_path, "train")
        assert calls == ["train"] and not a.from_cache and b.from_cache and torch.equal(a.images, b.images)
        assert b.name == "toy_counter/train" and (tmp_path / ".sparse_maml_cache").is_dir()
        load_split("toy_counter", tmp_path, "train", scale=2)  # other options: another cache entry
        assert len(calls) == 2
        (tmp_path / "n.txt").write_text("4")  # the source changed (size differs)
        c = load_split("toy_counter", tmp_path, "train")
        assert len(calls) == 3 and len(c) == 4 and not c.from_cache
    finally:
        _REGISTRY.pop("toy_counter")
