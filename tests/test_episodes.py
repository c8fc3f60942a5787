"""Per-episode test results: written and read back, and keys that identify the episodes."""

import json

import pytest

from sparse_maml.data import EpisodicDataModule
from sparse_maml.episodes import describe, episode_key, read_episodes, write_episodes, write_test_episodes


def datamodule(**kwargs):
    args = {"dataset": "embedded", "n_way": 5, "k_shot": 1, "k_query": 2, "num_test_tasks": 6, "eval_seed": 0}
    return EpisodicDataModule(**(args | kwargs))


def test_round_trip(tmp_path):
    identity, keys = describe(datamodule())
    accuracy = [0.2, 0.4, 0.6, 0.8, 1.0, 0.1 + 1e-9]
    path = write_episodes(tmp_path, accuracy, identity, keys)
    assert path == tmp_path / "episodes.json"
    back = read_episodes(tmp_path)
    assert back.identity == identity
    assert back.index == list(range(6))
    assert back.key == keys
    assert back.accuracy == accuracy  # exactly, not rounded
    assert back.by_key() == dict(zip(keys, accuracy))
    assert read_episodes(path).accuracy == accuracy


def test_identity_and_keys():
    identity, keys = describe(datamodule())
    assert identity == {
        "dataset": "embedded",
        "split": "test",
        "store": identity["store"],
        "eval_seed": 0,
        "n_way": 5,
        "k_shot": 1,
        "k_query": 2,
        "num_tasks": 6,
    }
    assert identity["store"].startswith(datamodule().sampler("test").store.name + ":")
    assert len(set(keys)) == 6
    # The same episodes for any training seed and longer lists; others for another eval_seed or episode shape.
    assert describe(datamodule(seed=3))[1] == keys
    assert describe(datamodule(num_test_tasks=9))[1][:6] == keys
    assert not set(describe(datamodule(eval_seed=1))[1]) & set(keys)
    assert not set(describe(datamodule(k_shot=2))[1]) & set(keys)


def test_key_depends_on_store_and_indices():
    import torch

    s, q = torch.tensor([1, 2]), torch.tensor([3, 4])
    assert episode_key("a", s, q) == episode_key("a", s.clone(), q.numpy())
    assert episode_key("a", s, q) != episode_key("b", s, q)
    assert episode_key("a", s, q) != episode_key("a", q, s)


def test_bad_input(tmp_path):
    identity, keys = describe(datamodule())
    with pytest.raises(ValueError, match="5 accuracies and 6 episode keys for num_tasks=6"):
        write_episodes(tmp_path, [0.5] * 5, identity, keys)
    assert not (tmp_path / "episodes.json").exists()
    with pytest.raises(FileNotFoundError, match="episodes.json does not exist: .*evaluate.py"):
        read_episodes(tmp_path)
    (tmp_path / "episodes.json").write_text(json.dumps({"identity": identity, "index": [0], "key": ["x"]}))
    with pytest.raises(ValueError, match="lacks accuracy"):
        read_episodes(tmp_path)


def test_a_test_cut_short_keeps_its_first_episodes(tmp_path):
    dm = datamodule()
    identity, keys = describe(dm)
    assert write_test_episodes(tmp_path, [0.5, 0.25], dm).name == "episodes.json"
    back = read_episodes(tmp_path)
    assert back.key == keys[:2] and back.accuracy == [0.5, 0.25] and back.identity == {**identity, "num_tasks": 2}
    assert write_test_episodes(tmp_path / "ddp", [0.5, 0.25], dm, ranks=2) is None  # no prefix: nothing written
    assert not (tmp_path / "ddp").exists()
