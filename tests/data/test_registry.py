import pytest
import torch

from sparse_maml.data import FORMATS, DatasetError, ImageStore, available_formats, load_split, register_format
from sparse_maml.data.registry import _REGISTRY


def test_builtin_formats_registered():
    assert FORMATS == (
        "miniimagenet",
        "omniglot",
        "tiered_imagenet",
        "cifar_fs",
        "fc100",
        "cub",
        "cars",
        "folder",
        "embedded",
    )
    assert set(FORMATS) <= set(available_formats())


def test_unknown_format():
    with pytest.raises(DatasetError, match=r"unknown dataset format 'imagenet9000'; known formats: .*omniglot"):
        load_split("imagenet9000", "/tmp", "train")


def test_unknown_option():
    with pytest.raises(DatasetError, match=r"format 'embedded' has no option\(s\) \['colour'\]"):
        load_split("embedded", None, "train", colour=True)


def test_every_format_reads_at_any_size_and_channel_count(tmp_path):
    """image_size and channels work for a loader that does not take them: load_split converts what it returns."""

    @register_format("toy_rgb")
    def load_toy(root, split) -> ImageStore:
        images = torch.zeros(4, 3, 6, 6, dtype=torch.uint8)
        images[:, 0], images[:, 1], images[:, 2] = 200, 100, 50
        return ImageStore(images, torch.tensor([0, 0, 1, 1]), ["a", "b"])

    try:
        gray = load_split("toy_rgb", tmp_path, "x", image_size=3, channels=1, use_cache=False)
        assert gray.image_shape == (1, 3, 3) and (gray.images == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)).all()
        assert load_split("toy_rgb", tmp_path, "x", channels=None, use_cache=False).image_shape == (3, 6, 6)
        omni = load_split("embedded", None, "val", image_size=12, channels=3)  # a loader that takes both
        assert omni.image_shape == (3, 12, 12)
        back = load_split("toy_rgb", tmp_path, "x", channels=1, use_cache=False)
        rgb = load_split("toy_rgb", tmp_path, "x", channels=3, use_cache=False)
        assert rgb.image_shape == (3, 6, 6) and back.digest != rgb.digest
    finally:
        _REGISTRY.pop("toy_rgb")


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
