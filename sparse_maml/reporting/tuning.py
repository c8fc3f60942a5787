"""Which setting each method chose on validation: ``python -m sparse_maml.reporting.tuning RUN_DIRS ... [--out DIR]``.

The fair-baseline protocol of docs/RESULTS.md: every configuration of a grid is trained once at the same budget, and
each algorithm takes the configuration with the highest validation accuracy (the best of its validations,
``history.json``; the fixed validation episodes are the same for every run). Test accuracy is shown beside it but
plays no part in the choice. Writes ``choices.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .markdown import table
from .runs import Run, find_runs, sortable, varying_keys


@dataclass(frozen=True)
class Candidate:
    """One configuration of the grid: ``setting`` (key=value of the keys that vary), its best validation
    accuracy and the step it was reached at, and the test accuracy of that checkpoint."""

    algorithm: str
    setting: str
    best_val: float
    step: int
    test: float


def candidate(run: Run, keys: list[str]) -> Candidate:
    """``run`` as a candidate; ValueError naming the run when it has no validation."""
    val = run.history.get("val") or []
    if not val:
        raise ValueError(f"{run.path}: history.json holds no validation accuracy, so it cannot be chosen on it")
    best = max(val, key=lambda v: v["acc"])  # the first of equals: the checkpoint the run kept and tested
    # a null option is one this algorithm leaves to its own default (sparse-MAML's first_order beside Meta-SGD's)
    shown = [k for k in keys if run.config.get(k) is not None]
    setting = ", ".join(f"{k.split('.')[-1]}={run.config[k]}" for k in shown) or "default"
    return Candidate(run.algorithm, setting, float(best["acc"]), int(best["step"]), float(run.results["accuracy"]))


def choose(runs: list[Run]) -> tuple[list[Candidate], dict[str, Candidate]]:
    """Every candidate, sorted by algorithm and setting, and each algorithm's choice (highest validation)."""
    keys = [k for k in varying_keys(runs) if k != "algo.name"]
    runs = sorted(runs, key=lambda r: (r.algorithm, *(sortable(r.config.get(k)) for k in keys)))
    found = [candidate(r, keys) for r in runs]
    chosen: dict[str, Candidate] = {}
    for c in found:
        if c.algorithm not in chosen or c.best_val > chosen[c.algorithm].best_val:
            chosen[c.algorithm] = c
    return found, chosen


def report(found: list[Candidate], chosen: dict[str, Candidate]) -> str:
    rows = [
        [
            c.algorithm,
            c.setting,
            f"{100 * c.best_val:.2f}" + (" **chosen**" if chosen[c.algorithm] is c else ""),
            str(c.step),
            f"{100 * c.test:.2f}",
        ]
        for c in found
    ]
    return table(["algorithm", "setting", "best validation accuracy (%)", "at step", "test accuracy (%)"], rows)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(prog="python -m sparse_maml.reporting.tuning", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run or sweep folders of one grid (one seed)")
    parser.add_argument("--out", type=Path, help="write choices.md here")
    args = parser.parse_args(argv)
    text = report(*choose(find_runs(args.runs)))
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "choices.md").write_text(text + "\n")
    return text


if __name__ == "__main__":
    main()
