"""Matplotlib figures (headless: the Agg backend) of sparsity and accuracy: one run's training curves, and
finished runs against what was swept (the paper's Figures 1-3)."""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .runs import (  # noqa: E402
    Run,
    adaptation_groups,
    curve_groups,
    final_sparsity,
    masked_groups,
    mean_std,
    sortable,
    validation_groups,
)


def _save(fig: plt.Figure, path: Path, dpi: int = 100) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_training_curves(history: dict[str, Any], path: Path, title: str = "") -> Path:
    """Per-layer update sparsity over training steps (left), validation accuracy (middle) and the inner loop's
    relative change per layer at each validation (right) -> PNG at ``path``.

    ``history``: {"sparsity": [{"step", "network", "layers": {layer: value}}], "val": [{"step", "acc", "ci95"}],
    "adaptation": [{"step", "layers": {layer: ||phi_K - theta|| / ||theta||}}]}.
    """
    fig, (ax_s, ax_v, ax_a) = plt.subplots(1, 3, figsize=(16, 4))
    records = history.get("sparsity", [])
    if records:
        steps = [r["step"] for r in records]
        for layer in records[-1]["layers"]:
            ax_s.plot(steps, [100 * r["layers"].get(layer, float("nan")) for r in records], label=layer)
        ax_s.plot(steps, [100 * r["network"] for r in records], "k--", label="network")
        ax_s.legend(fontsize=7, ncol=2)
    else:
        ax_s.text(0.5, 0.5, "no gradient mask", ha="center", va="center", transform=ax_s.transAxes)
    ax_s.set(xlabel="meta-training step", ylabel="update sparsity (%)", title="update sparsity per layer")
    val = history.get("val", [])
    if val:
        steps = [r["step"] for r in val]
        accs = [100 * r["acc"] for r in val]
        cis = [100 * r.get("ci95", 0.0) for r in val]
        ax_v.errorbar(steps, accs, yerr=cis, marker="o", capsize=3)
    ax_v.set(xlabel="meta-training step", ylabel="accuracy (%)", title="validation accuracy")
    adaptation = history.get("adaptation", [])
    if adaptation:
        steps = [r["step"] for r in adaptation]
        for layer in adaptation[-1]["layers"]:
            ax_a.plot(steps, [r["layers"].get(layer, float("nan")) for r in adaptation], marker=".", label=layer)
        ax_a.set_yscale("symlog", linthresh=1e-4)  # layers that do not adapt sit at 0
        ax_a.legend(fontsize=7, ncol=2)
    ax_a.set(xlabel="meta-training step", ylabel="||phi_K - theta|| / ||theta||", title="adaptation per layer")
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi=110)


def plot_adaptation_by_layer(runs: list[Run], keys: list[str], out: Path) -> Path | None:
    """The inner loop's relative change per layer at the last validation, one line per configuration (every
    algorithm on one axis: where each adapts; mean ± std over seeds)."""
    groups = adaptation_groups(runs, keys)
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for label, members in groups.items():
        layers = list(members[0].history["adaptation"][-1]["layers"])
        stats = [mean_std([r.history["adaptation"][-1]["layers"].get(layer, 0.0) for r in members]) for layer in layers]
        names = [layer.removeprefix("body.") for layer in layers]
        ax.errorbar(names, [m for m, _ in stats], yerr=[d for _, d in stats], marker="o", capsize=3, label=label)
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set(ylabel="||phi_K - theta|| / ||theta||", title="adaptation per layer at the last validation")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.legend(fontsize=7)
    return _save(fig, out / "adaptation_by_layer.png")


def _errorbar(
    ax: plt.Axes, groups: dict[Any, list[Run]], value: Any, label: str, color: str, single: Any = None
) -> None:
    """Mean ± std over each group's runs of ``value(run)``, against the group keys in order; a group of one run
    gets ``single(run)`` as its error bar when given (e.g. the 95% CI over test episodes)."""
    xs = sorted(groups, key=sortable)
    stats = [
        (value(groups[x][0]), single(groups[x][0]))
        if single and len(groups[x]) == 1
        else mean_std([value(r) for r in groups[x]])
        for x in xs
    ]
    ax.errorbar(
        [str(x) for x in xs],
        [m for m, _ in stats],
        yerr=[s for _, s in stats],
        marker="o",
        capsize=3,
        label=label,
        color=color,
    )


def plot_versus(runs: list[Run], key: str, out: Path) -> Path:
    """Final network update sparsity (sparse algorithms) and test accuracy against ``key``, per algorithm."""
    fig, (ax_s, ax_a) = plt.subplots(1, 2, figsize=(10, 4))
    by_algo: dict[str, dict[Any, list[Run]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        by_algo[r.algorithm][r.config.get(key)].append(r)
    ci = lambda r: 100 * r.results.get("ci95", 0.0)  # noqa: E731
    for color, (algo, groups) in enumerate(sorted(by_algo.items())):
        _errorbar(ax_a, groups, lambda r: 100 * r.results["accuracy"], algo, f"C{color}", single=ci)
        if any("network" in r.results.get("sparsity", {}) for g in groups.values() for r in g):
            _errorbar(ax_s, groups, lambda r: 100 * r.results["sparsity"]["network"], algo, f"C{color}")
    ax_s.set(xlabel=key, ylabel="final update sparsity (%)", title="update sparsity")
    lo, hi = ax_s.get_ylim()
    if hi - lo < 10:  # at least 10 points of sparsity on the axis, so that noise does not look like a trend
        mid = (hi + lo) / 2
        ax_s.set_ylim(mid - 5, mid + 5)
    ax_a.set(xlabel=key, ylabel="test accuracy (%)", title="test accuracy (± std over seeds; one seed: ± 95% CI)")
    for ax in (ax_s, ax_a):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    return _save(fig, out / f"vs_{key.replace('.', '_')}.png")


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9=._-]+", "_", label).strip("_")


def _band(ax: plt.Axes, steps: list[int], curves: list[list[float]], **style: Any) -> None:
    """Mean line and ± std band of equally long curves."""
    mean = [statistics.fmean(c) for c in zip(*curves)]
    std = [statistics.stdev(c) if len(c) > 1 else 0.0 for c in zip(*curves)]
    line = ax.plot(steps, mean, **style)[0]
    lo, hi = [m - d for m, d in zip(mean, std)], [m + d for m, d in zip(mean, std)]
    ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2)


def _series(members: list[Run], key: str, pick: Any) -> tuple[list[int], list[list[float]]]:
    """Steps and each run's curve (%) of ``pick(record)`` over its history's ``key`` records, cut to the shortest."""
    length = min(len(r.history[key]) for r in members)
    steps = [rec["step"] for rec in members[0].history[key][:length]]
    return steps, [[100 * pick(rec) for rec in r.history[key][:length]] for r in members]


def _curves(members: list[Run], layer: str) -> tuple[list[int], list[list[float]]]:
    """Steps and each run's sparsity curve (%) of ``layer`` ("network" for the whole network), cut to the shortest."""
    pick = (lambda rec: rec["network"]) if layer == "network" else (lambda rec: rec["layers"][layer])
    return _series(members, "sparsity", pick)


def plot_layer_curves(runs: list[Run], keys: list[str], out: Path) -> list[Path]:
    """Per-layer update sparsity over training for each configuration of the masked runs, mean ± std over seeds
    (the paper's Figure 1, centre: weight layers; BatchNorm layers are in the summary table)."""
    paths = []
    for label, members in curve_groups(runs, keys).items():
        fig, ax = plt.subplots(figsize=(6.5, 4))
        layers = [k for k in members[0].history["sparsity"][-1]["layers"] if "norm" not in k]  # as in Fig. 1
        for layer in [*layers, "network"]:
            style = {"color": "k", "linestyle": "--"} if layer == "network" else {}
            _band(ax, *_curves(members, layer), label=layer, **style)
        ax.set(
            xlabel="meta-training step",
            ylabel="update sparsity (%)",
            title=f"{label} ({len(members)} seed{'s' if len(members) > 1 else ''})",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7, ncol=2)
        paths.append(_save(fig, out / f"sparsity_curves_{_slug(label)}.png"))
    return paths


def plot_network_curves(runs: list[Run], keys: list[str], out: Path) -> Path | None:
    """Network update sparsity over training, one line per masked configuration (the paper's Figure 1, left)."""
    groups = curve_groups(runs, keys)
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, members in groups.items():
        _band(ax, *_curves(members, "network"), label=f"{label} (n={len(members)})")
    ax.set(xlabel="meta-training step", ylabel="network update sparsity (%)", title="network update sparsity")
    ax.legend(fontsize=7)
    return _save(fig, out / "network_sparsity_curves.png")


def plot_validation_curves(runs: list[Run], keys: list[str], out: Path) -> Path | None:
    """Validation accuracy over training, one line per configuration of every algorithm, mean ± std over seeds:
    where it peaks and whether it falls after (over-fitting the training classes)."""
    groups = validation_groups(runs, keys)
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, members in groups.items():
        _band(ax, *_series(members, "val", lambda rec: rec["acc"]), marker=".", label=f"{label} (n={len(members)})")
    ax.set(xlabel="meta-training step", ylabel="validation accuracy (%)", title="validation accuracy")
    ax.legend(fontsize=7)
    return _save(fig, out / "validation_curves.png")


def plot_final_layers(runs: list[Run], keys: list[str], out: Path) -> Path | None:
    """Final update sparsity of each layer, one line per masked configuration (mean ± std over seeds)."""
    groups = masked_groups(runs, keys)
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, members in groups.items():
        layers = [k for k in members[0].results["sparsity"] if k != "network"]
        stats = [mean_std([final_sparsity(r, layer) for r in members]) for layer in layers]
        names = [layer.removeprefix("body.") for layer in layers]
        ax.errorbar(names, [m for m, _ in stats], yerr=[d for _, d in stats], marker="o", capsize=3, label=label)
    ax.set(ylabel="final update sparsity (%)", title="final update sparsity per layer (mean ± std over seeds)")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.legend(fontsize=7)
    return _save(fig, out / "final_sparsity_by_layer.png")


def plot_differences(pairs: list[Any], path: Path) -> Path:
    """A − B in points with its 95% hierarchical bootstrap interval, one row per pair (``contrasts.Pair``), each
    seed's own difference as a dot; unpaired (flagged) pairs as grey crosses."""
    fig, ax = plt.subplots(figsize=(7.5, 1.5 + 0.4 * len(pairs)))
    for y, p in enumerate(pairs):
        if p.paired:
            low, high = (100 * x for x in p.bootstrap)
            mean = 100 * p.mean
            ax.errorbar(mean, y, xerr=[[mean - low], [high - mean]], fmt="o", color="C0", capsize=3)
            ax.plot([100 * x for x in p.per_seed], [y] * len(p.per_seed), ".", color="C1", alpha=0.7)
        else:
            ax.plot(100 * p.mean, y, "x", color="grey")
    ax.axvline(0, color="k", linewidth=0.8)
    ax.set_yticks(range(len(pairs)), [f"{p.a.label} − {p.b.label}" for p in pairs], fontsize=7)
    ax.invert_yaxis()
    ax.set(
        xlabel="test accuracy difference A − B (points)",
        title="paired differences, 95% CI of the hierarchical bootstrap (seeds, characters, episodes)\n"
        "(dots: seeds; ×: different episodes, unpaired)",
    )
    ax.title.set_fontsize(9)
    return _save(fig, path)
