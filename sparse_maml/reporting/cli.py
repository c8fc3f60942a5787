"""Draw the paper's figures from finished runs: ``python -m sparse_maml.figures RUN_OR_MULTIRUN_DIR ... --out DIR``.

Runs are grouped by their configuration without the seed; groups with several seeds are drawn as mean ± std. Every
configuration key that differs between the groups (for example ``algo.inner_steps``, ``algo.inner_lr``,
``model.hidden``, ``algo.mask_init_sparsity``) gets a figure of final update sparsity and test accuracy against it,
per algorithm (the paper's Figures 1-3), the sparse runs get their per-layer sparsity curves over training
(Figure 1, centre), and every run with adaptation logged its relative inner-loop change per layer
(``adaptation_by_layer.png``). ``validation_curves.png`` draws each configuration's validation accuracy over
training, where over-fitting shows as a peak. ``summary.md`` holds the tables.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .plots import (
    plot_adaptation_by_layer,
    plot_final_layers,
    plot_layer_curves,
    plot_network_curves,
    plot_validation_curves,
    plot_versus,
)
from .runs import find_runs, varying_keys
from .tables import adaptation_table, layer_table, summary_table


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
    extra = (plot_network_curves, plot_final_layers, plot_adaptation_by_layer, plot_validation_curves)
    written += [p for p in (plot(runs, keys, args.out) for plot in extra) if p]
    table = summary_table(runs, keys)
    layers = layer_table(runs, keys)
    if layers:
        table += "\n\nFinal update sparsity (%) per layer, output bias and BatchNorm gains:\n\n" + layers
    adaptation = adaptation_table(runs, keys)
    if adaptation:
        table += "\n\nThe inner loop's change per layer at the last validation, ‖φ_K − θ‖ / ‖θ‖ (%):\n\n" + adaptation
    (args.out / "summary.md").write_text(table + "\n")
    print(f"{len(runs)} runs; varying: {', '.join(keys) or 'nothing but the seed'}")
    print(table)
    for path in written:
        print(f"wrote {path}")
