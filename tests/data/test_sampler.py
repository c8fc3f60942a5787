import pytest
import torch

from sparse_maml.data import DatasetError, EpisodeSampler, ImageStore


def make_store(n_classes=10, per_class=20, groups=None, name="toy/train"):
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    images = torch.arange(len(labels)).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).to(torch.uint8).clone()
    return ImageStore(images, labels, [f"c{i}" for i in range(n_classes)], groups, name)


def test_shapes_balance_and_disjointness():
    store = make_store()
    s = EpisodeSampler(store, n_way=5, k_shot=2, k_query=3, seed=0)
    for i in range(50):
        ep = s.episode(i)
        assert ep.support.shape == (10,) and ep.query.shape == (15,) and ep.classes.shape == (5,)
        assert len(set(ep.classes.tolist())) == 5
        assert not set(ep.support.tolist()) & set(ep.query.tolist())
        # label j is class classes[j]: support and query are label-major
        assert torch.equal(store.labels[ep.support], ep.classes.repeat_interleave(2))
        assert torch.equal(store.labels[ep.query], ep.classes.repeat_interleave(3))
    xs, ys, xq, yq = s.batch([s.episode(i) for i in range(4)])
    assert xs.shape == (4, 10, 1, 2, 2) and xq.shape == (4, 15, 1, 2, 2) and xs.dtype == torch.uint8
    assert ys.tolist() == [[0, 0, 1, 1, 2, 2, 3, 3, 4, 4]] * 4 and (yq.flatten().bincount() == 12).all()
    ep = s.episode(1)
    assert torch.equal(xs[1, :, 0, 0, 0].long(), ep.support) and torch.equal(xq[1, :, 0, 0, 0].long(), ep.query)


def test_label_order_is_random_per_episode():
    s = EpisodeSampler(make_store(), 5, 1, 1, seed=0)
    orders = {tuple(s.episode(i).classes.tolist()) for i in range(30)}
    assert len(orders) == 30
    assert any(list(o) != sorted(o) for o in orders)


def test_every_class_and_image_reachable():
    store = make_store(n_classes=12, per_class=6)
    s = EpisodeSampler(store, 5, 1, 2, seed=3)
    eps = [next(s) for _ in range(300)]
    assert set(torch.cat([e.classes for e in eps]).tolist()) == set(range(12))
    assert set(torch.cat([torch.cat([e.support, e.query]) for e in eps]).tolist()) == set(range(72))


def test_determinism_and_seeds():
    a = EpisodeSampler(make_store(), 5, 1, 15 - 10, seed=0).fixed_episodes(20)
    b = EpisodeSampler(make_store(), 5, 1, 5, seed=0).fixed_episodes(20)
    c = EpisodeSampler(make_store(), 5, 1, 5, seed=1).fixed_episodes(20)
    d = EpisodeSampler(make_store(name="toy/val"), 5, 1, 5, seed=0).fixed_episodes(20)
    same = all(torch.equal(x.support, y.support) and torch.equal(x.query, y.query) for x, y in zip(a, b, strict=True))
    assert same
    assert not all(torch.equal(x.support, y.support) for x, y in zip(a, c, strict=True))
    assert not all(torch.equal(x.support, y.support) for x, y in zip(a, d, strict=True))
    train = EpisodeSampler(make_store(), 5, 1, 5, seed=0)
    assert not torch.equal(train.episode(0).support, a[0].support)  # training stream differs from eval list


def test_stream_state_restores_exactly():
    s = EpisodeSampler(make_store(), 5, 1, 5, seed=7)
    for _ in range(13):
        next(s)
    state = s.state_dict()
    expected = [next(s) for _ in range(5)]
    fresh = EpisodeSampler(make_store(), 5, 1, 5, seed=7)
    fresh.load_state_dict(state)
    assert state["position"] == 13 and fresh.position == 13
    got = [next(fresh) for _ in range(5)]
    assert all(
        torch.equal(x.support, y.support) and torch.equal(x.query, y.query) for x, y in zip(expected, got, strict=True)
    )
    with pytest.warns(UserWarning, match="restoring the position"):
        EpisodeSampler(make_store(), 5, 1, 5, seed=8).load_state_dict(state)


def test_within_group():
    groups = ["a"] * 6 + ["b"] * 5 + ["c"] * 2  # "c" has too few classes for 5-way and is never drawn
    store = make_store(n_classes=13, per_class=4, groups=groups)
    s = EpisodeSampler(store, 5, 1, 1, within_group=True)
    seen = set()
    for i in range(100):
        g = {groups[c] for c in s.episode(i).classes.tolist()}
        assert len(g) == 1
        seen |= g
    assert seen == {"a", "b"}
    with pytest.raises(DatasetError, match="needs class groups"):
        EpisodeSampler(make_store(), 5, 1, 1, within_group=True)
    with pytest.raises(DatasetError, match="no group of split 'toy/train' has n_way=7 classes; largest has 6"):
        EpisodeSampler(store, 7, 1, 1, within_group=True)


def test_errors():
    with pytest.raises(DatasetError, match="split 'toy/train' has 4 classes, fewer than n_way=5"):
        EpisodeSampler(make_store(n_classes=4), 5, 1, 15)
    store = ImageStore(torch.zeros(25, 1, 2, 2, dtype=torch.uint8), torch.tensor([0] * 20 + [1] * 5), ["a", "b"])
    with pytest.raises(DatasetError, match=r"class 'b' of split '' has 5 images, fewer than k_shot \+ k_query = 16"):
        EpisodeSampler(store, 2, 1, 15)
    with pytest.raises(DatasetError, match="need n_way >= 1"):
        EpisodeSampler(make_store(), 0, 1, 1)
