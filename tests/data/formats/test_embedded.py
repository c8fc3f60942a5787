import time

import pytest
import torch

from sparse_maml.data import DatasetError, EpisodeSampler, load_split


def test_shapes_and_splits():
    stores = {k: load_split("embedded", None, k) for k in ("train", "val", "test")}
    assert {k: s.num_classes for k, s in stores.items()} == {"train": 64, "val": 16, "test": 20}
    for s in stores.values():
        assert s.images.shape[1:] == (1, 28, 28) and s.images.dtype == torch.uint8 and s.class_counts().eq(20).all()
    names = [set(s.class_names) for s in stores.values()]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    rgb = load_split("embedded", None, "val", image_size=40, channels=3, classes=[5, 5, 5], images_per_class=25)
    assert rgb.images.shape == (125, 3, 40, 40)


def test_same_seed_same_bytes_and_fast():
    t = time.perf_counter()
    a = load_split("embedded", None, "train")
    assert time.perf_counter() - t < 10
    b = load_split("embedded", None, "train")
    c = load_split("embedded", None, "train", data_seed=1)
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    # a class does not depend on which other splits exist (classes are drawn for all splits at once)
    small = load_split("embedded", None, "train", images_per_class=5)
    assert small.num_classes == 64 and len(small) == 320


def test_learnable_but_not_trivial():
    """Nearest class mean in pixel space: far above chance (class identity is visible), far from perfect."""
    store = load_split("embedded", None, "val")
    s = EpisodeSampler(store, 5, 1, 15, seed=0)
    xs, _, xq, yq = s.batch(s.fixed_episodes(200))
    xs, xq = xs.float().flatten(2), xq.float().flatten(2)
    xs, xq = xs - xs.mean(-1, keepdim=True), xq - xq.mean(-1, keepdim=True)
    acc = (torch.cdist(xq, xs).argmin(-1) == yq).float().mean().item()
    assert 0.3 < acc < 0.8
    # instances vary: no two images of a class are identical
    imgs = store.images[store.labels == 0].flatten(1).float()
    assert torch.cdist(imgs, imgs).add(torch.eye(len(imgs)) * 1e9).min() > 0


def test_errors():
    with pytest.raises(DatasetError, match="splits .*'train', 'val', 'test'.*not 'holdout'"):
        load_split("embedded", None, "holdout")
    with pytest.raises(DatasetError, match="channels must be 1 or 3"):
        load_split("embedded", None, "train", channels=4)
