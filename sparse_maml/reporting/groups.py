"""Finished runs grouped for a comparison: one group per configuration, its seeds pooled, each seed's accuracy on
each test episode (``episodes.json``) and, where known, each episode's test characters."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ..episodes import read_episodes
from .runs import Run, _flatten, current_schema, distinguishing_keys, is_bookkeeping, sortable

#: Keys that say where data lives and how a run was executed, not what it computed (the episode keys say which
#: data it saw; the engine's paths and device counts are tested equal), so runs differing only in them pool.
HOW = (
    "data.root", "data.cache_dir", "data.download", "data.num_workers", "data.eval_batch_size",
    "trainer.accelerator", "trainer.devices", "trainer.num_nodes", "trainer.strategy",
    "algo.batch_tasks", "algo.cuda_graphs",
)  # fmt: skip


def configuration(run: Run) -> dict[str, Any]:
    """What a run computed: its resolved config (evaluate.py's results carry the checkpoint's), without the seed
    and the bookkeeping keys."""
    if "config" in run.results:
        config = current_schema(_flatten(run.results["config"]))
    else:  # train.py's .hydra/config.yaml, each value resolved where it can be outside Hydra
        path = run.path / ".hydra" / "config.yaml"
        raw = OmegaConf.load(path) if path.exists() else OmegaConf.create()
        flat = _flatten(OmegaConf.to_container(raw))
        config = current_schema({k: _resolve(raw, k, v) for k, v in flat.items()})
    return {k: v for k, v in config.items() if not (is_bookkeeping(k) or k in HOW)}


def _resolve(raw: Any, key: str, value: Any) -> Any:
    try:
        resolved = OmegaConf.select(raw, key, throw_on_resolution_failure=True)
    except Exception:  # e.g. ${hydra:...}: only Hydra resolves it
        return value
    return OmegaConf.to_container(resolved, resolve=True) if OmegaConf.is_config(resolved) else resolved


def run_seed(run: Run) -> Any:
    """The seed a run was trained with (evaluate.py's results carry the checkpoint's config)."""
    return run.results["config"].get("seed", 0) if "config" in run.results else run.seed


@dataclass
class Group:
    label: str
    algorithm: str
    config: dict[str, Any]
    order: list[Any] = field(default_factory=list)  # sorts groups by algorithm, then by the varying keys' values
    runs: dict[Any, Run] = field(default_factory=dict)  # seed -> run
    accs: dict[Any, dict[str, float]] = field(default_factory=dict)  # seed -> {episode key: accuracy}
    classes: dict[str, list[int]] = field(default_factory=dict)  # episode key -> its classes (where known)

    @property
    def seeds(self) -> list[Any]:
        return sorted(self.runs, key=sortable)

    def common(self, seeds: list[Any]) -> list[str]:
        """Keys of the episodes every one of ``seeds`` was tested on, in the first seed's order."""
        shared = set.intersection(*(set(self.accs[s]) for s in seeds))
        return [k for k in self.accs[seeds[0]] if k in shared]

    def per_episode(self, seeds: list[Any], keys: list[str]) -> list[float]:
        """Accuracy on each episode of ``keys``, averaged over ``seeds``."""
        return [statistics.fmean(self.accs[s][k] for s in seeds) for k in keys]


def group_runs(runs: list[Run], class_map: dict[str, list[int]] | None = None) -> list[Group]:
    """Runs grouped by configuration (seeds pooled), labelled by algorithm and the keys that vary between groups.
    Each episode's classes come from its ``episodes.json`` or, for runs written before they were recorded, from
    ``class_map`` (episode key -> class ids, see ``episode_classes``)."""
    configs = {r.path: configuration(r) for r in runs}
    by_config: dict[str, list[Run]] = {}
    for r in runs:
        by_config.setdefault(json.dumps(configs[r.path], sort_keys=True, default=str), []).append(r)
    keys = distinguishing_keys([(r.algorithm, configs[r.path]) for r in runs])
    short = [k.split(".")[-1] for k in keys]
    names = short if len(set(short)) == len(short) else keys
    groups = []
    for members in by_config.values():
        cfg = configs[members[0].path]
        parts = [f"{n}={cfg[k]}" for k, n in zip(keys, names) if cfg.get(k) is not None]
        group = Group(
            ", ".join([members[0].algorithm, *parts]),
            members[0].algorithm,
            cfg,
            [members[0].algorithm, *map(sortable, (cfg.get(k) for k in keys))],
        )
        for r in members:
            seed = run_seed(r)
            if seed in group.runs:
                raise ValueError(
                    f"{group.runs[seed].path} and {r.path} are the same configuration with the same seed {seed}: "
                    "pass only one of them"
                )
            episodes = read_episodes(r.path)
            group.runs[seed] = r
            group.accs[seed] = episodes.by_key()
            if episodes.classes is not None:
                group.classes.update(zip(episodes.key, episodes.classes))
        if class_map:
            group.classes.update({k: class_map[k] for s in group.accs for k in group.accs[s] if k in class_map})
        if not group.common(group.seeds):
            runs_of = ", ".join(str(r.path) for r in group.runs.values())
            raise ValueError(f"the seeds of {group.label} were tested on no common episode: {runs_of}")
        groups.append(group)
    return sorted(groups, key=lambda g: g.order)


def read_class_map(path: Path) -> dict[str, list[int]]:
    """An ``episode_classes.json`` (see ``episode_classes``): episode key -> class ids; ValueError naming the file
    when it is not one."""
    body = json.loads(Path(path).read_text())
    if not isinstance(body, dict) or not isinstance(body.get("classes"), dict):
        raise ValueError(
            f"{path} has no 'classes' object: not an episode class map; write one with "
            "python -m sparse_maml.reporting.episode_classes RUN_DIR ... --out FILE"
        )
    return {k: [int(c) for c in v] for k, v in body["classes"].items()}
