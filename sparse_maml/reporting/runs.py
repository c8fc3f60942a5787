"""Finished run folders: finding them, what differs between them, and grouping them for plots and tables.

A run folder is what train.py writes: ``.hydra/config.yaml``, ``history.json`` (sparsity per layer over training,
validation accuracy) and ``results.json`` (test accuracy, final sparsity).
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from ..optimizers import NAMED as NAMED_OPTIMIZERS

# Keys that name a run but do not change what it computes.
IGNORED = (
    "seed",
    "data.seed",
    "paths.",
    "logger.",
    "callbacks.",
    "task_name",
    "ckpt_path",
    "skip_finished",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "test_after_fit",
    "hydra.",
)


#: Keys added to the configuration since runs were first committed, with the value every run written before them ran
#: with (conf/<group>/_base.yaml), so that a run of today and an equal one of then compare as one configuration.
ADDED = {"trainer.overfit_batches": 0.0, "data.train_rotations": False}
#: Optimiser keys that older runs hold as a name ("adam"), today's as a spec (``optimizers.NAMED``).
OPTIMIZER_KEYS = ("algo.outer_optimizer", "algo.mask_optimizer")


def is_bookkeeping(key: str) -> bool:
    """Whether a flattened config key is one of ``IGNORED`` (or under one of its groups)."""
    return key.startswith(IGNORED)


class Run:
    """One finished run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: dict[str, Any] = json.loads((path / "results.json").read_text())
        history = path / "history.json"
        self.history: dict[str, Any] = json.loads(history.read_text()) if history.exists() else {}
        config = path / ".hydra" / "config.yaml"
        raw = _flatten(OmegaConf.to_container(OmegaConf.load(config))) if config.exists() else {}
        self.config = current_schema(raw) if raw else {}
        self.algorithm: str = self.results.get("algorithm") or str(self.config.get("algo.name", "?"))
        self.seed = self.config.get("seed", 0)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def current_schema(config: dict[str, Any]) -> dict[str, Any]:
    """A flattened run config in today's schema: a named optimiser becomes its spec (``algo.outer_optimizer: adam``
    -> ``algo.outer_optimizer._target_: torch.optim.Adam``, ``..._partial_: True``) and each key of ``ADDED`` that
    the run predates gets the value it ran with. Runs of any version then differ only where they computed
    differently."""
    out = dict(config)
    for key in OPTIMIZER_KEYS:
        name = out.get(key)
        if isinstance(name, str) and name in NAMED_OPTIMIZERS:
            del out[key]
            out.update({f"{key}.{k}": v for k, v in NAMED_OPTIMIZERS[name].items()})
    for key, value in ADDED.items():
        out.setdefault(key, value)
    return out


def find_runs(paths: list[Path]) -> list[Run]:
    """Every run folder (holding results.json) under the given folders."""
    found = sorted({p.parent for root in paths for p in Path(root).rglob("results.json")})
    if not found:
        raise FileNotFoundError(f"no results.json under {', '.join(map(str, paths))}: pass run or multirun folders")
    return [Run(p) for p in found]


def varying_keys(runs: list[Run]) -> list[str]:
    """Configuration keys whose value differs between runs (seeds and bookkeeping excluded; see
    ``distinguishing_keys``)."""
    configs = [(r.algorithm, {k: v for k, v in r.config.items() if not is_bookkeeping(k)}) for r in runs]
    return distinguishing_keys(configs)


def distinguishing_keys(configs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The keys that tell (algorithm, flattened config) pairs apart beyond their algorithm: set to two or more
    values, or set in some configs of an algorithm and not in others. An option only one algorithm has (sparse-MAML's
    ``mask_lr``, absent from MAML's config) is left out: the algorithm already says it."""
    keys = []
    for k in sorted(set().union(*(c for _, c in configs)) - {"algo.name"}):
        values = {json.dumps(c[k], sort_keys=True, default=str) for _, c in configs if k in c}
        partly = any(len({k in c for a, c in configs if a == algo}) > 1 for algo in {a for a, _ in configs})
        if len(values) > 1 or partly:
            keys.append(k)
    return keys


def sortable(value: Any) -> tuple[int, Any]:
    """A sort key that puts numbers (in order) before everything else (by its text)."""
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _groups(runs: list[Run], keys: list[str], keep: Callable[[Run], Any]) -> dict[str, list[Run]]:
    """The runs for which ``keep`` is true, grouped by algorithm and varying keys: label -> runs, in the order of
    the algorithm's name, then of each key's values (numbers in numeric order)."""
    groups: dict[str, list[Run]] = defaultdict(list)
    for r in sorted(runs, key=lambda r: [r.algorithm, *(sortable(r.config.get(k)) for k in keys)]):
        if keep(r):
            groups[", ".join([r.algorithm] + [f"{k.split('.')[-1]}={r.config.get(k)}" for k in keys])].append(r)
    return groups


def masked_groups(runs: list[Run], keys: list[str]) -> dict[str, list[Run]]:
    """The runs that have a mask (sparsity logged), grouped by algorithm and varying keys: label -> runs."""
    return _groups(runs, keys, lambda r: r.history.get("sparsity") or "network" in r.results.get("sparsity", {}))


def adaptation_groups(runs: list[Run], keys: list[str]) -> dict[str, list[Run]]:
    """The runs with the inner loop's change per layer logged (history.json), grouped as ``masked_groups``."""
    return _groups(runs, keys, lambda r: r.history.get("adaptation"))


def validation_groups(runs: list[Run], keys: list[str]) -> dict[str, list[Run]]:
    """The runs with validation accuracy logged over training (history.json), grouped as ``masked_groups``."""
    return _groups(runs, keys, lambda r: r.history.get("val"))


def curve_groups(runs: list[Run], keys: list[str]) -> dict[str, list[Run]]:
    """``masked_groups`` restricted to the runs with sparsity logged over training (history.json)."""
    groups = {k: [r for r in v if r.history.get("sparsity")] for k, v in masked_groups(runs, keys).items()}
    return {k: v for k, v in groups.items() if v}


def final_sparsity(r: Run, name: str) -> float | None:
    """Final sparsity (%) of a layer (results' "sparsity") or a single tensor ("sparsity_per_tensor")."""
    value = r.results.get("sparsity", {}).get(name, r.results.get("sparsity_per_tensor", {}).get(name))
    return None if value is None else 100 * value
