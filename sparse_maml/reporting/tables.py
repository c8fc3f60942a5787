"""Markdown tables of finished runs: accuracy and sparsity per configuration, final sparsity per layer."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict

from .markdown import table
from .runs import Run, adaptation_groups, final_sparsity, masked_groups, mean_std, sortable


def _spread(values: list[float], digits: int) -> str:
    """ "mean ± std" over seeds, or the value alone for a single seed (no spread measured)."""
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def summary_table(runs: list[Run], keys: list[str]) -> str:
    """A markdown table: one row per configuration, test accuracy and the tested checkpoint's network sparsity as
    mean ± std over seeds (the value alone for one seed), the mean 95% CI over test episodes, the step each seed's
    tested checkpoint comes from (its best validation) and the network sparsity at the end of training: the two
    differ where validation peaked early."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for r in runs:
        groups[(r.algorithm, *(json.dumps(r.config.get(k)) for k in keys))].append(r)
    head = [
        "algorithm",
        *keys,
        "seeds",
        "test acc (%)",
        "95% CI (%)",
        "network sparsity (%)",
        "tested at step",
        "network sparsity at the last step (%)",
    ]
    rows = []
    order = lambda kv: (kv[0][0], [sortable(json.loads(v)) for v in kv[0][1:]])  # noqa: E731
    for key, members in sorted(groups.items(), key=order):
        acc = _spread([100 * r.results["accuracy"] for r in members], 2)
        ci = statistics.fmean(100 * r.results["ci95"] for r in members)
        sparsity = [
            100 * r.results["sparsity"]["network"] for r in members if "network" in r.results.get("sparsity", {})
        ]
        sp = _spread(sparsity, 1) if sparsity else "-"
        steps = "/".join(str(step) for r in members if (step := tested_step(r)) is not None) or "-"
        last = [100 * r.history["sparsity"][-1]["network"] for r in members if r.history.get("sparsity")]
        rows.append([*key, str(len(members)), acc, f"{ci:.2f}", sp, steps, _spread(last, 1) if last else "-"])
    return table(head, rows)


def tested_step(r: Run) -> int | None:
    """The step of the run's best validation accuracy (the first, as the checkpoint callback keeps it): the tested
    checkpoint's."""
    val = r.history.get("val") or []
    return max(val, key=lambda v: v["acc"])["step"] if val else None


def layer_table(runs: list[Run], keys: list[str]) -> str:
    """A markdown table of the masked configurations' final sparsity (%) per layer, and of the output bias and the
    BatchNorm gains (the paper's Figure 4), mean ± std over seeds (the value alone for one seed)."""
    groups = masked_groups(runs, keys)
    if not groups:
        return ""
    first = next(iter(groups.values()))[0]
    layers = [k for k in first.results["sparsity"] if k != "network" and "norm" not in k]  # BN: gains below
    tensors = [t for t in first.results.get("sparsity_per_tensor", {}) if t == "head.bias" or ".norm.weight" in t]
    cols = [*layers, *tensors]
    rows = []
    for label, members in groups.items():
        cells = [label]
        for c in cols:
            values = [v for r in members if (v := final_sparsity(r, c)) is not None]
            cells.append(_spread(values, 1) if values else "-")
        rows.append(cells)
    return table(["configuration", *(c.removeprefix("body.") for c in cols)], rows)


def adaptation_table(runs: list[Run], keys: list[str]) -> str:
    """A markdown table of the inner loop's relative change per layer at the last validation, ‖φ_K − θ‖ / ‖θ‖ in %,
    mean ± std over seeds, one row per configuration that logged it (where each method adapts)."""
    groups = adaptation_groups(runs, keys)
    if not groups:
        return ""
    layers = list(
        dict.fromkeys(la for rs in groups.values() for r in rs for la in r.history["adaptation"][-1]["layers"])
    )
    rows = []
    for label, members in groups.items():
        last = [r.history["adaptation"][-1]["layers"] for r in members]
        rows.append([label, str(len(members)), *(_spread([100 * a.get(la, 0.0) for a in last], 2) for la in layers)])
    return table(["configuration", "seeds", *(la.removeprefix("body.") for la in layers)], rows)
