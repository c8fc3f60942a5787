import os
import time

import torch
from PIL import Image

from sparse_maml.data import load_split
from sparse_maml.data.cache import cache_path, default_cache_dir

from .helpers import write_omniglot


def test_second_load_hits_cache_and_is_faster(tmp_path):
    root = tmp_path / "omniglot"
    write_omniglot(root, "background", {"Alpha": 6, "Beta": 5}, drawers=20, size=105)
    cache = tmp_path / "cache"
    t0 = time.perf_counter()
    first = load_split("omniglot", root, "background", cache_dir=cache)
    t1 = time.perf_counter()
    second = load_split("omniglot", root, "background", cache_dir=cache)
    t2 = time.perf_counter()
    assert not first.from_cache and second.from_cache
    assert t2 - t1 < t1 - t0
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.class_names == second.class_names and first.class_groups == second.class_groups
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # nothing half-written left
    assert second._digest == first.digest  # read with the split: not hashed again


def test_cache_invalidated_when_source_changes(tmp_path):
    root = tmp_path / "omniglot"
    write_omniglot(root, "background", {"Alpha": 3}, drawers=2)
    cache = tmp_path / "cache"
    load_split("omniglot", root, "background", cache_dir=cache)
    png = next((root / "images_background").rglob("*.png"))
    st = os.stat(png)
    png.write_bytes(png.read_bytes())  # same bytes, new modification time
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not load_split("omniglot", root, "background", cache_dir=cache).from_cache
    assert load_split("omniglot", root, "background", cache_dir=cache).from_cache
    write_omniglot(root, "background", {"Alpha": 3, "Gamma": 2}, drawers=2)  # a new alphabet appears
    store = load_split("omniglot", root, "background", cache_dir=cache)
    assert not store.from_cache and store.num_classes == 5


def test_corrupt_cache_file_is_a_miss(tmp_path):
    root = tmp_path / "omniglot"
    write_omniglot(root, "background", {"Alpha": 2}, drawers=2)
    load_split("omniglot", root, "background", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("omniglot-*.pt")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated
    store = load_split("omniglot", root, "background", cache_dir=tmp_path)
    assert not store.from_cache and len(store) == 4
    assert load_split("omniglot", root, "background", cache_dir=tmp_path).from_cache


def test_cache_location(tmp_path, monkeypatch):
    assert default_cache_dir(tmp_path) == tmp_path / ".sparse_maml_cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir(tmp_path / "missing") == tmp_path / "xdg" / "sparse_maml"
    a = cache_path(tmp_path, "omniglot", tmp_path, "background", {"image_size": 28})
    b = cache_path(tmp_path, "omniglot", tmp_path, "background", {"image_size": 32})
    assert a != b and a.parent == tmp_path and a.name.startswith("omniglot-background-")


def test_read_only_root_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "omniglot"
    write_omniglot(root, "background", {"Alpha": 2}, drawers=2)
    root.chmod(0o555)  # read-only, as a shared dataset folder (root may still write: the mode bits decide)
    try:
        assert load_split("omniglot", root, "background").from_cache is False
        assert load_split("omniglot", root, "background").from_cache is True
        assert sorted(p.name for p in root.iterdir()) == ["images_background"]
        assert list((tmp_path / "xdg" / "sparse_maml").glob("omniglot-background-*.pt"))
    finally:
        root.chmod(0o755)


def test_digest_changes_when_one_image_changes(tmp_path):
    root = tmp_path / "omniglot"
    write_omniglot(root, "background", {"Alpha": 3}, drawers=2)
    before = load_split("omniglot", root, "background", cache_dir=tmp_path / "c")
    png = sorted((root / "images_background").rglob("*.png"))[4]
    img = Image.open(png).convert("L")
    img.putpixel((10, 10), 0 if img.getpixel((10, 10)) else 255)
    img.convert("1").save(png)
    after = load_split("omniglot", root, "background", cache_dir=tmp_path / "c")
    assert not after.from_cache and after.digest != before.digest
    assert load_split("omniglot", root, "background", cache_dir=tmp_path / "c").digest == after.digest
