"""Per-episode test results, ``episodes.json`` beside ``results.json``: each fixed evaluation episode's accuracy by
its index, with what identifies the episode list, so that two runs tested on the same episodes can be compared
episode by episode (``python -m sparse_maml.compare``).

Each episode also carries a key, a hash of its split (name and SHA-256 of its images and labels) and its image
indices: two runs share an episode exactly when they share its key, whatever else (code version, number of tasks)
differs; and its classes (ids in the split's class list, label order), so that a comparison can resample the test
characters the episodes share (``reporting/stats.py``). Files written before the classes were recorded lack them;
``reporting/episode_classes.py`` recovers them from the data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .atomic import write_text

FILENAME = "episodes.json"


@dataclass
class EpisodeResults:
    """``identity``: dataset, split, store (its name and the digest of its bytes), eval_seed, n_way, k_shot, k_query,
    num_tasks. ``index``, ``key`` and ``accuracy`` are parallel lists of length num_tasks: episode index in the fixed
    list, its key, query accuracy; ``classes`` [num_tasks][n_way] the class ids of each episode (None in files
    written before they were recorded)."""

    identity: dict[str, Any]
    index: list[int]
    key: list[str]
    accuracy: list[float]
    classes: list[list[int]] | None = None

    def by_key(self) -> dict[str, float]:
        """{episode key: accuracy}."""
        return dict(zip(self.key, self.accuracy))


def episode_key(store: str, support: Any, query: Any) -> str:
    """A 12-hex-digit hash of an episode: its split (``store``, as ``describe`` names it) and the image indices of
    its support and query sets (int64 tensors or arrays, label-major)."""
    h = hashlib.blake2b(digest_size=6)
    h.update(store.encode())
    for part in (support, query):
        h.update(b"|" + bytes(memoryview(part.numpy() if hasattr(part, "numpy") else part).cast("B")))
    return h.hexdigest()


def episode_classes(dm: Any, stage: str = "test") -> list[list[int]]:
    """The class ids (in the split's class list, label order) of each of ``dm``'s fixed ``stage`` episodes."""
    return [[int(c) for c in e.classes] for e in dm.episodes(stage)]


def describe(dm: Any, stage: str = "test") -> tuple[dict[str, Any], list[str]]:
    """(identity, per-episode keys) of an ``EpisodicDataModule``'s fixed ``stage`` episodes, in index order."""
    sampler, episodes = dm.sampler(stage), dm.episodes(stage)
    # The split's name and the digest of its bytes: the same indices into other data are other images.
    store = f"{sampler.store.name}:{sampler.store.digest[:12]}"
    identity = {
        "dataset": dm.dataset,
        "split": dm.splits[stage],
        "store": store,
        "eval_seed": dm.eval_seed,
        "n_way": dm.n_way,
        "k_shot": dm.k_shot,
        "k_query": dm.k_query,
        "num_tasks": len(episodes),
    }
    return identity, [episode_key(store, e.support, e.query) for e in episodes]


def write_episodes(
    run_dir: str | Path,
    accuracy: Sequence[float],
    identity: dict[str, Any],
    keys: Sequence[str],
    classes: Sequence[Sequence[int]] | None = None,
) -> Path:
    """Write ``<run_dir>/episodes.json``: episode i of the fixed list has ``accuracy[i]``, ``keys[i]`` and, when
    given, ``classes[i]``."""
    if not len(accuracy) == len(keys) == identity["num_tasks"] or (classes is not None and len(classes) != len(keys)):
        lists = "" if classes is None else f" and {len(classes)} class lists"
        raise ValueError(
            f"{len(accuracy)} accuracies and {len(keys)} episode keys{lists} for num_tasks={identity['num_tasks']}: "
            "every fixed episode needs exactly one of each"
        )
    path = Path(run_dir) / FILENAME
    body = {
        "identity": identity,
        "index": list(range(len(keys))),
        "key": list(keys),
        "accuracy": [float(a) for a in accuracy],
    }
    if classes is not None:
        body["classes"] = [[int(c) for c in cs] for cs in classes]
    return write_text(path, json.dumps(body, indent=1))


def write_test_episodes(run_dir: str | Path, accuracy: Sequence[float], dm: Any, ranks: int = 1) -> Path | None:
    """``episodes.json`` of a test of ``dm``'s fixed test episodes, ``accuracy`` in episode order. A test cut short
    (``trainer.limit_test_batches``) covers the first episodes on one process and is written as such; on several
    processes it covers no prefix, and nothing is written."""
    identity, keys = describe(dm)
    classes = episode_classes(dm)
    if len(accuracy) != len(keys):
        if ranks > 1:
            return None
        identity["num_tasks"], keys, classes = len(accuracy), keys[: len(accuracy)], classes[: len(accuracy)]
    return write_episodes(run_dir, accuracy, identity, keys, classes)


def read_episodes(run_dir: str | Path) -> EpisodeResults:
    """The per-episode results of a run folder (or of an ``episodes.json`` path)."""
    path = Path(run_dir)
    path = path if path.suffix == ".json" else path / FILENAME
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist: the run was tested before per-episode results were kept; test its best "
            "checkpoint again with python evaluate.py ckpt_path=<run>/checkpoints/<best>.ckpt and pass the folder "
            "evaluate.py writes"
        )
    body = json.loads(path.read_text())
    missing = [k for k in ("identity", "index", "key", "accuracy") if k not in body]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: not a per-episode results file")
    if not len(body["index"]) == len(body["key"]) == len(body["accuracy"]):
        raise ValueError(f"{path}: index, key and accuracy have different lengths")
    classes = body.get("classes")
    if classes is not None and len(classes) != len(body["key"]):
        raise ValueError(f"{path}: {len(classes)} class lists for {len(body['key'])} episodes")
    return EpisodeResults(body["identity"], [int(i) for i in body["index"]], body["key"], body["accuracy"], classes)
