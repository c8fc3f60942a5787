"""Compare finished runs episode by episode: ``python -m sparse_maml.compare RUN_OR_MULTIRUN_DIR ... --out DIR``.

Runs are grouped by configuration, seeds pooled (runs whose configs differ only in ``seed`` and bookkeeping keys;
``groups.py``). Per group: mean test accuracy, its 95% CI over the test episodes and its std over seeds. For each
pair of groups A, B: A − B over the test episodes both were tested on (matched by episode key, see
``episodes.py``) and the seeds they share, with (``stats.py``) the paired t-test over seeds that decides a verdict
(at least 3 seeds), the 95% interval of a hierarchical bootstrap over seeds, test characters and episodes, and,
secondary, the paired t-test over episodes. Pairs without common episodes are flagged and get only the difference
of their means. Writes ``comparison.md`` and ``differences.png``.

``--same KEY`` keeps the pairs whose groups agree on KEY (sparse-MAML − MAML at each inner lr:
``--of sparse_maml --same inner_lr``), and adds how A − B changes between two such settings, over the seeds all four
groups share (the interaction: does the gap grow with K?).

The bootstrap needs each episode's classes: ``episodes.json`` records them; for runs written before it did, pass
``--classes FILE`` from ``python -m sparse_maml.reporting.episode_classes``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from .comparison import report
from .contrasts import Pair, changes, compare_pair
from .groups import Group, group_runs, read_class_map
from .plots import plot_differences
from .runs import find_runs


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
    parser.add_argument(
        "--classes", type=Path, metavar="FILE", help="episode_classes.json: the classes of episodes that lack them"
    )
    args = parser.parse_args(argv)
    try:
        class_map = read_class_map(args.classes) if args.classes else None
    except (OSError, ValueError) as e:
        parser.error(f"--classes: {e}")
    groups = group_runs(find_runs(args.runs), class_map)
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
    text = report(groups, pairs, changes(pairs) if key else None, key)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.md").write_text(text + "\n")
    print(text)
    if pairs:
        print(f"wrote {args.out / 'comparison.md'} and {plot_differences(pairs, args.out / 'differences.png')}")
    return text


if __name__ == "__main__":
    main()
