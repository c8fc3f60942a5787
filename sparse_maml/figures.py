"""Draw the paper's figures from finished runs: ``python -m sparse_maml.figures RUN_OR_MULTIRUN_DIR ... --out DIR``.

A run folder is what train.py writes: ``.hydra/config.yaml``, ``history.json`` (sparsity per layer over training,
validation accuracy) and ``results.json`` (test accuracy, final sparsity). Runs are grouped by their configuration
without the seed; groups with several seeds are drawn as mean ± std. Every configuration key that differs between
the groups (for example ``algo.inner_steps``, ``algo.inner_lr``, ``model.hidden``, ``algo.mask_init_sparsity``)
gets a figure of final update sparsity and test accuracy against it, per algorithm (the paper's Figures 1-3), and
the sparse runs get their per-layer sparsity curves over training (Figure 1, centre).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

# Keys that name a run but do not change what it computes.
IGNORED = (
    "seed",
    "data.seed",
    "paths.",
    "logger.",
    "callbacks.",
    "task_name",
    "ckpt_path",
    "trainer.default_root_dir",
    "trainer.enable_progress_bar",
    "test_after_fit",
    "hydra.",
)


class Run:
    """One finished run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.results: dict[str, Any] = json.loads((path / "results.json").read_text())
        history = path / "history.json"
        self.history: dict[str, Any] = json.loads(history.read_text()) if history.exists() else {}
        config = path / ".hydra" / "config.yaml"
        self.config = _flatten(OmegaConf.to_container(OmegaConf.load(config))) if config.exists() else {}
        self.algorithm: str = self.results.get("algorithm") or str(self.config.get("algo.name", "?"))
        self.seed = self.config.get("seed", 0)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def find_runs(paths: list[Path]) -> list[Run]:
    """Every run folder (holding results.json) under the given folders."""
    found = sorted({p.parent for root in paths for p in Path(root).rglob("results.json")})
    if not found:
        raise FileNotFoundError(f"no results.json under {', '.join(map(str, paths))}: pass run or multirun folders")
    return [Run(p) for p in found]


def varying_keys(runs: list[Run]) -> list[str]:
    """Configuration keys whose value differs between runs (seeds and bookkeeping excluded)."""
    keys = set().union(*(r.config for r in runs))
    keep = []
    for key in sorted(keys):
        if key.startswith(IGNORED) or key in IGNORED or key == "algo.name":
            continue
        if len({json.dumps(r.config.get(key), sort_keys=True) for r in runs}) > 1:
            keep.append(key)
    return keep


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _errorbar(
    ax: plt.Axes, groups: dict[Any, list[Run]], value: Any, label: str, color: str, single: Any = None
) -> None:
    """Mean ± std over each group's runs of ``value(run)``, against the group keys in order; a group of one run
    gets ``single(run)`` as its error bar when given (e.g. the 95% CI over test episodes)."""
    xs = sorted(groups, key=_sortable)
    stats = [
        (value(groups[x][0]), single(groups[x][0]))
        if single and len(groups[x]) == 1
        else _mean_std([value(r) for r in groups[x]])
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


def masked_groups(runs: list[Run], keys: list[str]) -> dict[str, list[Run]]:
    """The runs that have a mask (sparsity logged), grouped by algorithm and varying keys: label -> runs."""
    groups: dict[str, list[Run]] = defaultdict(list)
    for r in sorted(runs, key=lambda r: [_sortable(r.config.get(k)) for k in keys]):
        if r.history.get("sparsity") or "network" in r.results.get("sparsity", {}):
            groups[", ".join([r.algorithm] + [f"{k.split('.')[-1]}={r.config.get(k)}" for k in keys])].append(r)
    return groups


def curve_groups(runs: list[Run], keys: list[str]) -> dict[str, list[Run]]:
    """``masked_groups`` restricted to the runs with sparsity logged over training (history.json)."""
    groups = {k: [r for r in v if r.history.get("sparsity")] for k, v in masked_groups(runs, keys).items()}
    return {k: v for k, v in groups.items() if v}


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9=._-]+", "_", label).strip("_")


def _band(ax: plt.Axes, steps: list[int], curves: list[list[float]], **style: Any) -> None:
    """Mean line and ± std band of equally long curves."""
    mean = [statistics.fmean(c) for c in zip(*curves)]
    std = [statistics.stdev(c) if len(c) > 1 else 0.0 for c in zip(*curves)]
    line = ax.plot(steps, mean, **style)[0]
    lo, hi = [m - d for m, d in zip(mean, std)], [m + d for m, d in zip(mean, std)]
    ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2)


def _curves(members: list[Run], layer: str) -> tuple[list[int], list[list[float]]]:
    """Steps and each run's sparsity curve (%) of ``layer`` ("network" for the whole network), cut to the shortest."""
    length = min(len(r.history["sparsity"]) for r in members)
    steps = [rec["step"] for rec in members[0].history["sparsity"][:length]]
    pick = (lambda rec: rec["network"]) if layer == "network" else (lambda rec: rec["layers"][layer])
    return steps, [[100 * pick(rec) for rec in r.history["sparsity"][:length]] for r in members]


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


def _final(r: Run, name: str) -> float | None:
    """Final sparsity (%) of a layer (results' "sparsity") or a single tensor ("sparsity_per_tensor")."""
    value = r.results.get("sparsity", {}).get(name, r.results.get("sparsity_per_tensor", {}).get(name))
    return None if value is None else 100 * value


def plot_final_layers(runs: list[Run], keys: list[str], out: Path) -> Path | None:
    """Final update sparsity of each layer, one line per masked configuration (mean ± std over seeds)."""
    groups = masked_groups(runs, keys)
    if not groups:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, members in groups.items():
        layers = [k for k in members[0].results["sparsity"] if k != "network"]
        stats = [_mean_std([_final(r, layer) for r in members]) for layer in layers]
        names = [layer.removeprefix("body.") for layer in layers]
        ax.errorbar(names, [m for m, _ in stats], yerr=[d for _, d in stats], marker="o", capsize=3, label=label)
    ax.set(ylabel="final update sparsity (%)", title="final update sparsity per layer (mean ± std over seeds)")
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.legend(fontsize=7)
    return _save(fig, out / "final_sparsity_by_layer.png")


def layer_table(runs: list[Run], keys: list[str]) -> str:
    """A markdown table of the masked configurations' final sparsity (%) per layer, and of the output bias and the
    BatchNorm gains (the paper's Figure 4), mean over seeds."""
    groups = masked_groups(runs, keys)
    if not groups:
        return ""
    first = next(iter(groups.values()))[0]
    layers = [k for k in first.results["sparsity"] if k != "network" and "norm" not in k]  # BN: gains below
    tensors = [t for t in first.results.get("sparsity_per_tensor", {}) if t == "head.bias" or ".norm.weight" in t]
    cols = [*layers, *tensors]
    lines = [
        "| configuration | " + " | ".join(c.removeprefix("body.") for c in cols) + " |",
        "|" + "---|" * (1 + len(cols)),
    ]
    for label, members in groups.items():
        cells = []
        for c in cols:
            values = [v for r in members if (v := _final(r, c)) is not None]
            cells.append(f"{statistics.fmean(values):.1f}" if values else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _spread(values: list[float], digits: int) -> str:
    """ "mean ± std" over seeds, or the value alone for a single seed (no spread measured)."""
    mean, std = _mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def summary_table(runs: list[Run], keys: list[str]) -> str:
    """A markdown table: one row per configuration, test accuracy and final sparsity as mean ± std over seeds (the
    value alone for one seed), and the mean 95% CI over test episodes."""
    groups: dict[tuple, list[Run]] = defaultdict(list)
    for r in runs:
        groups[(r.algorithm, *(json.dumps(r.config.get(k)) for k in keys))].append(r)
    head = ["algorithm", *keys, "seeds", "test acc (%)", "95% CI (%)", "network sparsity (%)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    order = lambda kv: (kv[0][0], [_sortable(json.loads(v)) for v in kv[0][1:]])  # noqa: E731
    for key, members in sorted(groups.items(), key=order):
        acc = _spread([100 * r.results["accuracy"] for r in members], 2)
        ci = statistics.fmean(100 * r.results["ci95"] for r in members)
        sparsity = [
            100 * r.results["sparsity"]["network"] for r in members if "network" in r.results.get("sparsity", {})
        ]
        sp = _spread(sparsity, 1) if sparsity else "-"
        lines.append("| " + " | ".join([*key, str(len(members)), acc, f"{ci:.2f}", sp]) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sparse_maml.figures", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders or multirun folders")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="folder for the PNG files and summary.md")
    parser.add_argument(
        "--vs",
        nargs="*",
        metavar="KEY",
        help="draw and tabulate against these keys only (default: every key that varies; none: a plain comparison)",
    )
    args = parser.parse_args(argv)
    runs = find_runs(args.runs)
    keys = varying_keys(runs)
    if args.vs is not None:
        unknown = [k for k in args.vs if k not in keys]
        if unknown:
            parser.error(
                f"--vs {' '.join(unknown)}: not a key that varies between these runs ({', '.join(keys) or 'none'})"
            )
        keys = args.vs
    args.out.mkdir(parents=True, exist_ok=True)
    written = [plot_versus(runs, k, args.out) for k in keys]
    written += plot_layer_curves(runs, keys, args.out)
    written += [p for p in (plot_network_curves(runs, keys, args.out), plot_final_layers(runs, keys, args.out)) if p]
    table = summary_table(runs, keys)
    layers = layer_table(runs, keys)
    if layers:
        table += "\n\nFinal update sparsity (%) per layer, output bias and BatchNorm gains:\n\n" + layers
    (args.out / "summary.md").write_text(table + "\n")
    print(f"{len(runs)} runs; varying: {', '.join(keys) or 'nothing but the seed'}")
    print(table)
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
