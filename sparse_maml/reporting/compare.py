"""Compare finished runs episode by episode: ``python -m sparse_maml.compare RUN_OR_MULTIRUN_DIR ... --out DIR``.

Runs are grouped by configuration, seeds pooled (runs whose configs differ only in ``seed`` and bookkeeping keys).
Per group: mean test accuracy, its 95% CI over the test episodes (each episode's accuracy averaged over the group's
seeds) and its std over seeds. For each pair of groups A, B: the paired difference A - B over the test episodes both
were tested on (matched by episode key, see ``episodes.py``), each episode's accuracy averaged over the seeds the
groups share (over all their seeds when they share none), with a 95% CI and the two-sided p-value of a paired
t-test over episodes; beside it each shared seed's own difference and, with two or more shared seeds, a paired
t-test over seeds. The t-test over episodes treats the trained models as fixed: training noise shows in the
seed columns. p-values are not corrected for the number of pairs. Pairs without common episodes are flagged and get
only the difference of their means. Writes ``comparison.md`` and ``differences.png`` (A - B with its CI per pair).

``--same KEY`` keeps the pairs whose groups agree on KEY (sparse-MAML - MAML at each inner lr:
``--of sparse_maml --same inner_lr``), and adds how A - B changes between two such settings: for two pairs of the
same two algorithms, (A - B) - (A' - B') per shared episode, averaged over the seeds all four groups share, with its
95% CI and paired t-test (the interaction: does the gap grow with K?).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from ..episodes import read_episodes  # noqa: E402
from .runs import Run, _flatten, distinguishing_keys, find_runs, is_bookkeeping, sortable  # noqa: E402
from .stats import Estimate, estimate  # noqa: E402

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
        config = _flatten(run.results["config"])
    else:  # train.py's .hydra/config.yaml, each value resolved where it can be outside Hydra
        path = run.path / ".hydra" / "config.yaml"
        raw = OmegaConf.load(path) if path.exists() else OmegaConf.create()
        config = {k: _resolve(raw, k, v) for k, v in run.config.items()}
    return {k: v for k, v in config.items() if not (is_bookkeeping(k) or k in HOW)}


def _resolve(raw: Any, key: str, value: Any) -> Any:
    try:
        resolved = OmegaConf.select(raw, key, throw_on_resolution_failure=True)
    except Exception:  # e.g. ${hydra:...}: only Hydra resolves it
        return value
    return OmegaConf.to_container(resolved, resolve=True) if OmegaConf.is_config(resolved) else resolved


def _seed(run: Run) -> Any:
    return run.results["config"].get("seed", 0) if "config" in run.results else run.seed


@dataclass
class Group:
    label: str
    algorithm: str
    config: dict[str, Any]
    order: list[Any] = field(default_factory=list)  # sorts groups by algorithm, then by the varying keys' values
    runs: dict[Any, Run] = field(default_factory=dict)  # seed -> run
    accs: dict[Any, dict[str, float]] = field(default_factory=dict)  # seed -> {episode key: accuracy}

    def common(self, seeds: list[Any]) -> list[str]:
        """Keys of the episodes every one of ``seeds`` was tested on, in the first seed's order."""
        shared = set.intersection(*(set(self.accs[s]) for s in seeds))
        return [k for k in self.accs[seeds[0]] if k in shared]

    def per_episode(self, seeds: list[Any], keys: list[str]) -> list[float]:
        """Accuracy on each episode of ``keys``, averaged over ``seeds``."""
        return [statistics.fmean(self.accs[s][k] for s in seeds) for k in keys]


def group_runs(runs: list[Run]) -> list[Group]:
    """Runs grouped by configuration (seeds pooled), labelled by algorithm and the keys that vary between groups."""
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
            seed = _seed(r)
            if seed in group.runs:
                raise ValueError(
                    f"{group.runs[seed].path} and {r.path} are the same configuration with the same seed {seed}: "
                    "pass only one of them"
                )
            group.runs[seed] = r
            group.accs[seed] = read_episodes(r.path).by_key()
        if not group.common(_seeds(group)):
            runs_of = ", ".join(str(r.path) for r in group.runs.values())
            raise ValueError(f"the seeds of {group.label} were tested on no common episode: {runs_of}")
        groups.append(group)
    return sorted(groups, key=lambda g: g.order)


def _seeds(group: Group) -> list[Any]:
    return sorted(group.runs, key=sortable)


def group_row(g: Group) -> list[str]:
    seeds = _seeds(g)
    keys = g.common(seeds)
    e = estimate(g.per_episode(seeds, keys))
    seed_means = [statistics.fmean(g.accs[s][k] for k in keys) for s in seeds]
    std = f"{100 * statistics.stdev(seed_means):.2f}" if len(seeds) > 1 else "-"
    return [g.label, ",".join(map(str, seeds)), str(len(keys)), f"{100 * e.mean:.2f}", f"{100 * e.ci95:.2f}", std]


@dataclass
class Pair:
    a: Group
    b: Group
    seeds: list[Any]  # shared seeds; empty when the groups share none (then each is averaged over all its seeds)
    diff: Estimate  # over episodes, in accuracy units
    per_seed: list[float]
    note: str
    episodes: dict[str, float] = field(default_factory=dict)  # episode key -> A - B averaged over the shared seeds

    @property
    def paired(self) -> bool:
        return self.diff.n > 0 and math.isfinite(self.diff.ci95)


def compare_pair(a: Group, b: Group) -> Pair:
    shared = sorted(set(a.runs) & set(b.runs), key=sortable)
    seeds_a, seeds_b = (shared, shared) if shared else (_seeds(a), _seeds(b))
    keys_a, keys_b = set(a.common(seeds_a)), b.common(seeds_b)
    keys = [k for k in keys_b if k in keys_a]
    notes = [] if shared else ["no shared seed: each group averaged over all its seeds"]
    if not keys:
        mean = statistics.fmean(a.per_episode(seeds_a, list(keys_a))) - statistics.fmean(b.per_episode(seeds_b, keys_b))
        return Pair(
            a,
            b,
            shared,
            Estimate(mean, math.nan, math.nan, 0),
            [],
            "; ".join(["DIFFERENT EPISODES: unpaired difference of means", *notes]),
        )
    if len(keys) < max(len(keys_a), len(keys_b)):
        notes.append(f"{len(keys)} of {max(len(keys_a), len(keys_b))} episodes shared")
    diffs = [x - y for x, y in zip(a.per_episode(seeds_a, keys), b.per_episode(seeds_b, keys))]
    per_seed = [statistics.fmean(a.accs[s][k] - b.accs[s][k] for k in keys) for s in shared]
    return Pair(a, b, shared, estimate(diffs), per_seed, "; ".join(notes), dict(zip(keys, diffs)))


def matching_key(groups: list[Group], key: str) -> str:
    """The config key ``key`` names: itself or the one key ending in ``.key``; ValueError naming the candidates."""
    names = sorted(set().union(*(g.config for g in groups)))
    found = [k for k in names if k == key] or [k for k in names if k.endswith("." + key)]
    if len(found) != 1:
        what = "matches no config key" if not found else f"is ambiguous: {', '.join(found)}"
        raise ValueError(f"--same {key} {what}; give the full dotted key (e.g. algo.inner_lr)")
    return found[0]


def same(pairs: list[Pair], key: str) -> list[Pair]:
    """The pairs whose two groups set ``key`` to the same value."""
    return [p for p in pairs if p.a.config.get(key) == p.b.config.get(key)]


@dataclass
class Change:
    """How A - B changes between two settings: (A - B of ``p``) - (A - B of ``q``), per shared episode."""

    p: Pair
    q: Pair
    diff: Estimate


def changes(pairs: list[Pair]) -> list[Change]:
    """For every two paired pairs of the same two algorithms: the later pair's per-episode differences minus the
    earlier's (pairs come in the groups' order: for a numeric key, the larger value minus the smaller), over the
    episodes both share. Each pair's differences are averaged over its own shared seeds."""
    out = []
    for p, q in itertools.combinations([p for p in pairs if p.paired], 2):
        if (p.a.algorithm, p.b.algorithm) != (q.a.algorithm, q.b.algorithm):
            continue
        keys = [k for k in q.episodes if k in p.episodes]
        if keys:
            out.append(Change(q, p, estimate([q.episodes[k] - p.episodes[k] for k in keys])))
    return out


def change_row(c: Change, key: str) -> list[str]:
    d = c.diff
    return [
        f"{c.p.a.algorithm} − {c.p.b.algorithm}",
        f"{key.split('.')[-1]}={c.p.a.config.get(key)} minus {key.split('.')[-1]}={c.q.a.config.get(key)}",
        str(d.n),
        f"{100 * d.mean:+.2f}",
        f"{100 * d.ci95:.2f}",
        f"{d.p:.3g}",
    ]


def pair_row(p: Pair) -> list[str]:
    d = p.diff
    seed_p = estimate(p.per_seed).p if len(p.per_seed) > 1 else math.nan
    fmt = lambda x, spec: "-" if not math.isfinite(x) else format(x, spec)  # noqa: E731
    return [
        f"{p.a.label} − {p.b.label}",
        ",".join(map(str, p.seeds)) or "-",
        str(d.n),
        f"{100 * d.mean:+.2f}",
        fmt(100 * d.ci95, ".2f"),
        fmt(d.p, ".3g"),
        ", ".join(f"{100 * x:+.2f}" for x in p.per_seed) or "-",
        fmt(seed_p, ".3g"),
        p.note,
    ]


def _table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]
    )


def report(groups: list[Group], pairs: list[Pair], key: str | None = None) -> str:
    """The markdown of ``comparison.md``; with ``key`` (``--same``), the changes of A - B between its values."""
    head = ["group", "seeds", "episodes", "test acc (%)", "± 95% CI over episodes", "± std over seeds"]
    pair_head = [
        "A − B",
        "shared seeds",
        "shared episodes",
        "difference (points)",
        "± 95% CI",
        "p (paired t, episodes)",
        "per seed",
        "p (paired t, seeds)",
        "note",
    ]
    return (
        "Test accuracy per configuration (seeds pooled):\n\n"
        + _table(head, [group_row(g) for g in groups])
        + "\n\nPaired differences over the shared test episodes (accuracy averaged over the shared seeds); "
        "two-sided paired t-tests, not corrected for the number of pairs:\n\n"
        + _table(pair_head, [pair_row(p) for p in pairs])
        + (_changes_text(pairs, key) if key else "")
    )


def _changes_text(pairs: list[Pair], key: str) -> str:
    rows = [change_row(c, key) for c in changes(pairs)]
    if not rows:
        return ""
    head = ["A − B", "change between", "shared episodes", "change (points)", "± 95% CI", "p (paired t, episodes)"]
    intro = f"How A − B changes with {key} (the difference of the per-episode differences):"
    return f"\n\n{intro}\n\n{_table(head, rows)}"


def plot_differences(pairs: list[Pair], path: Path) -> Path:
    """A - B in points with its 95% CI over episodes, one row per pair; unpaired (flagged) pairs as grey crosses."""
    fig, ax = plt.subplots(figsize=(7.5, 1.5 + 0.4 * len(pairs)))
    for y, p in enumerate(pairs):
        if p.paired:
            ax.errorbar(100 * p.diff.mean, y, xerr=100 * p.diff.ci95, fmt="o", color="C0", capsize=3)
            ax.plot([100 * x for x in p.per_seed], [y] * len(p.per_seed), ".", color="C1", alpha=0.7)
        else:
            ax.plot(100 * p.diff.mean, y, "x", color="grey")
    ax.axvline(0, color="k", linewidth=0.8)
    ax.set_yticks(range(len(pairs)), [f"{p.a.label} − {p.b.label}" for p in pairs], fontsize=7)
    ax.invert_yaxis()
    ax.set(
        xlabel="test accuracy difference A − B (points)",
        title="paired differences, 95% CI over episodes\n(dots: seeds; ×: different episodes, unpaired)",
    )
    ax.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m sparse_maml.compare", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or multirun folders")
    parser.add_argument(
        "--out", type=Path, default=Path("comparison"), help="folder for comparison.md and differences.png"
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--against", metavar="TEXT", help="only the pairs whose B group's label contains TEXT")
    which.add_argument("--of", metavar="TEXT", help="only the pairs whose A group's label contains TEXT")
    parser.add_argument(
        "--same", metavar="KEY", help="only the pairs whose groups agree on KEY (e.g. inner_lr), and A − B's changes"
    )
    args = parser.parse_args(argv)
    groups = group_runs(find_runs(args.runs))
    key = None
    if args.same:
        try:
            key = matching_key(groups, args.same)
        except ValueError as e:
            parser.error(str(e))
    if args.against or args.of:
        flag, text = ("--against", args.against) if args.against else ("--of", args.of)
        refs = [g for g in groups if text in g.label]
        if not refs:
            parser.error(f"{flag} {text}: no group's label contains it ({'; '.join(g.label for g in groups)})")
        others = [g for g in groups if g not in refs]
        pairs = (
            [compare_pair(a, b) for b in refs for a in others]
            if args.against
            else [compare_pair(a, b) for a in refs for b in others]
        )
    else:
        pairs = [compare_pair(a, b) for a, b in itertools.combinations(groups, 2)]
    if key:
        pairs = same(pairs, key)
    text = report(groups, pairs, key)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.md").write_text(text + "\n")
    print(text)
    if pairs:
        print(f"wrote {args.out / 'comparison.md'} and {plot_differences(pairs, args.out / 'differences.png')}")
    return text


if __name__ == "__main__":
    main()
