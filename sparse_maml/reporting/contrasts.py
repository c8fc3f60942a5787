"""Paired contrasts between groups of runs: A - B per shared seed and test episode, and how A - B changes between
two settings; each with its seed-level test (the verdict), hierarchical bootstrap CI and episode-level t-test
(``stats.py``)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from .groups import Group
from .runs import sortable
from .stats import Estimate, hierarchical_bootstrap, mean_ci, seed_test


@dataclass
class Contrast:
    """A difference per seed and episode, ``d`` [seeds, episodes] in accuracy units, and what is said of it.

    ``seeds`` names d's rows; empty when the compared groups share no seed (then d has one row, each group averaged
    over all its seeds, and there is no seed-level test). ``keys`` names d's columns (episode keys)."""

    seeds: list
    keys: list[str]
    d: np.ndarray
    classes: list[list[int]] | None  # [episodes][n_way], None where an episode's characters are unknown
    notes: list[str] = field(default_factory=list)
    episode: Estimate = field(init=False)  # t-test over episodes of d averaged over its rows (models held fixed)
    seed_level: Estimate = field(init=False)  # t-test over the seeds' mean differences: the verdict statistic
    bootstrap: tuple[float, float] = field(init=False)  # 95% hierarchical bootstrap interval of the mean

    def __post_init__(self) -> None:
        paired = self.d.shape[1] > 0
        self.episode = mean_ci(self.d.mean(axis=0)) if paired else Estimate(math.nan, math.nan, math.nan, 0)
        self.seed_level = seed_test(self.per_seed)
        self.bootstrap = hierarchical_bootstrap(self.d, self.classes) if paired else (math.nan, math.nan)

    @property
    def per_seed(self) -> list[float]:
        """Each shared seed's mean difference over the shared episodes."""
        return [float(x) for x in self.d.mean(axis=1)] if self.seeds else []

    @property
    def mean(self) -> float:
        return self.episode.mean

    @property
    def paired(self) -> bool:
        return self.episode.n > 0 and math.isfinite(self.episode.ci95)

    @property
    def note(self) -> str:
        return "; ".join(self.notes)


@dataclass
class Pair(Contrast):
    a: Group | None = None
    b: Group | None = None


@dataclass
class Change(Contrast):
    """(A - B in ``later``) - (A - B in ``earlier``): does the gap move between two settings?"""

    later: Pair | None = None
    earlier: Pair | None = None


def _classes(groups: list[Group], keys: list[str]) -> list[list[int]] | None:
    known = {k: cs for g in groups for k, cs in g.classes.items()}
    return [known[k] for k in keys] if all(k in known for k in keys) else None


def compare_pair(a: Group, b: Group) -> Pair:
    """A - B over the episodes both were tested on, per seed they share."""
    shared = sorted(set(a.runs) & set(b.runs), key=sortable)
    seeds_a, seeds_b = (shared, shared) if shared else (a.seeds, b.seeds)
    keys_a, keys_b = set(a.common(seeds_a)), b.common(seeds_b)
    keys = [k for k in keys_b if k in keys_a]
    notes = [] if shared else ["no shared seed: each group averaged over all its seeds"]
    if not keys:
        mean = np.mean(a.per_episode(seeds_a, sorted(keys_a))) - np.mean(b.per_episode(seeds_b, keys_b))
        notes.insert(0, "DIFFERENT EPISODES: unpaired difference of means")
        pair = Pair([], [], np.zeros((1, 0)), None, notes, a=a, b=b)
        pair.episode = Estimate(float(mean), math.nan, math.nan, 0)
        return pair
    if len(keys) < max(len(keys_a), len(keys_b)):
        notes.append(f"{len(keys)} of {max(len(keys_a), len(keys_b))} episodes shared")
    if shared:
        d = np.array([[a.accs[s][k] - b.accs[s][k] for k in keys] for s in shared])
    else:
        d = np.array([a.per_episode(seeds_a, keys)]) - np.array([b.per_episode(seeds_b, keys)])
    classes = _classes([a, b], keys)
    if classes is None:
        notes.append("characters unknown: bootstrap over seeds and episodes")
    return Pair(shared, keys, d, classes, notes, a=a, b=b)


def changes(pairs: list[Pair]) -> list[Change]:
    """For every two paired pairs of the same two algorithms, the later pair's differences minus the earlier's
    (pairs come in the groups' order: for a numeric key, the larger value minus the smaller), over the episodes
    both share and the seeds all four groups share (like for like). With no seed shared by all four, each pair
    is averaged over its own seeds, noted, and there is no seed-level test."""
    out = []
    for earlier, later in itertools.combinations([p for p in pairs if p.paired], 2):
        if (earlier.a.algorithm, earlier.b.algorithm) != (later.a.algorithm, later.b.algorithm):
            continue
        keys = [k for k in later.keys if k in set(earlier.keys)]
        if not keys:
            continue
        cols_l, cols_e = ([p.keys.index(k) for k in keys] for p in (later, earlier))
        seeds = [s for s in later.seeds if s in earlier.seeds]
        notes = []
        if seeds:
            rows_l, rows_e = ([p.seeds.index(s) for s in seeds] for p in (later, earlier))
            d = later.d[np.ix_(rows_l, cols_l)] - earlier.d[np.ix_(rows_e, cols_e)]
        else:
            d = later.d[:, cols_l].mean(axis=0, keepdims=True) - earlier.d[:, cols_e].mean(axis=0, keepdims=True)
            notes.append("no seed shared by all four groups: each pair averaged over its own seeds")
        classes = _classes([later.a, later.b, earlier.a, earlier.b], keys)
        if classes is None:
            notes.append("characters unknown: bootstrap over seeds and episodes")
        out.append(Change(seeds, keys, d, classes, notes, later=later, earlier=earlier))
    return out
