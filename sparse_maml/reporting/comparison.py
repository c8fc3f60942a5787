"""The markdown of ``comparison.md``: accuracy per group, then each paired contrast with its seed-level test (the
verdict), hierarchical bootstrap CI and, secondary, the t-test over episodes."""

from __future__ import annotations

import math
import statistics

from .contrasts import Change, Pair
from .groups import Group
from .markdown import table
from .stats import MIN_SEEDS, decides, mean_ci

#: What every contrast table says of its statistics.
METHOD = (
    f"The verdict uses the paired t-test over seeds (each shared seed's mean difference one observation; at least "
    f"{MIN_SEEDS} seeds, else inconclusive). Beside it, the 95% interval of a hierarchical bootstrap that resamples "
    "seeds, test characters and episodes. The t-test over episodes holds the trained models fixed and treats the "
    "episodes as independent, which they are not (they share characters): secondary. Two-sided, not corrected for "
    "the number of pairs."
)
CONTRAST_HEAD = [
    "difference (points)",
    "± 95% CI, t over seeds",
    "p (paired t, seeds)",
    "95% CI, hierarchical bootstrap",
    "per seed",
    "seed-level verdict",
    "± 95% CI, episodes",
    "p (paired t, episodes)",
]


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if math.isfinite(x) else "-"


def group_row(g: Group) -> list[str]:
    keys = g.common(g.seeds)
    e = mean_ci(g.per_episode(g.seeds, keys))
    seed_means = [statistics.fmean(g.accs[s][k] for k in keys) for s in g.seeds]
    std = f"{100 * statistics.stdev(seed_means):.2f}" if len(g.seeds) > 1 else "-"
    return [g.label, ",".join(map(str, g.seeds)), str(len(keys)), f"{100 * e.mean:.2f}", f"{100 * e.ci95:.2f}", std]


def contrast_cells(c: Pair | Change) -> list[str]:
    """The cells of ``CONTRAST_HEAD``, in points."""
    if not c.paired:
        return [f"{100 * c.mean:+.2f}", *["-"] * (len(CONTRAST_HEAD) - 1)]
    s, (low, high) = c.seed_level, c.bootstrap
    return [
        f"{100 * c.mean:+.2f}",
        _fmt(100 * s.ci95, ".2f"),
        _fmt(s.p, ".3g"),
        f"{100 * low:+.2f} to {100 * high:+.2f}",
        ", ".join(f"{100 * x:+.2f}" for x in c.per_seed) or "-",
        decides(s),
        _fmt(100 * c.episode.ci95, ".2f"),
        _fmt(c.episode.p, ".3g"),
    ]


def pair_row(p: Pair) -> list[str]:
    shared = ",".join(map(str, p.seeds)) or "-"
    return [f"{p.a.label} − {p.b.label}", shared, str(p.episode.n), *contrast_cells(p), p.note]


def change_row(c: Change, key: str) -> list[str]:
    name = key.split(".")[-1]
    between = f"{name}={c.later.a.config.get(key)} minus {name}={c.earlier.a.config.get(key)}"
    shared = ",".join(map(str, c.seeds)) or "-"
    return [f"{c.later.a.algorithm} − {c.later.b.algorithm}", between, shared, str(c.episode.n), *contrast_cells(c),
            c.note]  # fmt: skip


def report(groups: list[Group], pairs: list[Pair], changes: list[Change] | None = None, key: str | None = None) -> str:
    """The markdown of ``comparison.md``; with ``key`` (``--same``), the changes of A − B between its values."""
    head = ["group", "seeds", "episodes", "test acc (%)", "± 95% CI over episodes", "± std over seeds"]
    pair_head = ["A − B", "shared seeds", "shared episodes", *CONTRAST_HEAD, "note"]
    text = (
        "Test accuracy per configuration (seeds pooled):\n\n"
        + table(head, [group_row(g) for g in groups])
        + "\n\nPaired differences A − B over the shared test episodes and seeds. "
        + METHOD
        + "\n\n"
        + table(pair_head, [pair_row(p) for p in pairs])
    )
    if key and changes:
        change_head = ["A − B", "change between", "shared seeds", "shared episodes", *CONTRAST_HEAD, "note"]
        intro = (
            f"How A − B changes with {key}: the difference of the per-episode differences, over the seeds all four "
            "groups share (like for like)."
        )
        text += f"\n\n{intro}\n\n" + table(change_head, [change_row(c, key) for c in changes])
    return text
