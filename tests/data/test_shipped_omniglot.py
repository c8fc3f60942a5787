"""data=omniglot with no root reads the minimal archives shipped with the package: no dataset folder, no download."""

import hashlib

from sparse_maml.data.formats.omniglot import SHA256, SHIPPED
from sparse_maml.run import build_datamodule

from ..app_helpers import compose_config

#: (classes, images, alphabets) of each split of the "minimal" preset
SPLITS = {
    "train": (136, 2720, {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"}),
    "val": (42, 840, {"Sanskrit"}),
    "test": (64, 1280, {"Japanese_(katakana)", "Tagalog"}),
}


def test_the_shipped_archives_match_their_digests_and_licence():
    sums = dict(line.split()[::-1] for line in (SHIPPED / "SHA256SUMS").read_text().splitlines())
    assert sums == {f"images_{name}.zip": digest for name, digest in SHA256.items()}
    for name, digest in sums.items():
        assert hashlib.sha256((SHIPPED / name).read_bytes()).hexdigest() == digest, name
    assert "MIT License" in (SHIPPED / "LICENSE").read_text()


def test_data_omniglot_without_a_root_loads_the_shipped_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # decoded splits are cached there, not in the package
    cfg = compose_config(["data=omniglot"])
    assert cfg.data.root is None and cfg.data.download is False
    dm = build_datamodule(cfg.data)
    dm.prepare_data()
    for stage, (classes, images, alphabets) in SPLITS.items():
        store = dm.store(stage)
        assert (store.num_classes, len(store), set(store.class_groups)) == (classes, images, alphabets)
        assert store.images.shape[1:] == (1, 28, 28) and store.class_counts().eq(20).all()
    assert sorted(p.name for p in SHIPPED.iterdir()) == [
        "LICENSE",
        "SHA256SUMS",
        "images_background_small1.zip",
        "images_background_small2.zip",
    ]
    assert any((tmp_path / "sparse_maml").iterdir())
