"""What a finished run reports: the test metrics as ``results.json`` and a few lines on the terminal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from .atomic import write_text
from .callbacks import sparsity_metrics
from .data import EpisodicDataModule
from .module import MetaLearner


def results_of(trainer: pl.Trainer, module: MetaLearner, dm: EpisodicDataModule, checkpoint: str) -> dict[str, Any]:
    """The test metrics ``trainer.test`` just logged, with what was tested and the learned update sparsity."""
    metrics = trainer.callback_metrics
    sparsity = sparsity_metrics(module.algo)
    return {
        "accuracy": float(metrics["test/acc"]),
        "ci95": float(metrics["test/acc_ci95"]),
        "num_tasks": int(metrics["test/num_tasks"]),
        "algorithm": module.hparams.algorithm,
        "dataset": dm.dataset,
        "n_way": dm.n_way,
        "k_shot": dm.k_shot,
        "inner_steps_test": module.inner_steps_test,
        "checkpoint": checkpoint,
        "split_sha256": dm.split_digests,  # the exact images and labels read (see EpisodicDataModule.split_digests)
        "sparsity": {k.split("/", 1)[1]: v for k, v in sparsity.items() if k.startswith("sparsity/")},
        "sparsity_per_tensor": {k.split("/", 1)[1]: v for k, v in sparsity.items() if k.startswith("sparsity_param/")},
    }


def write_results(output_dir: Path, results: dict[str, Any]) -> Path:
    """``<output_dir>/results.json``, written atomically."""
    return write_text(output_dir / "results.json", json.dumps(results, indent=2))


def print_summary(output_dir: Path, best: str, figure: Path | None, results: dict[str, Any]) -> None:
    """Where a training run wrote what, and its test accuracy and update sparsity."""
    lines = [f"run folder: {output_dir}"]
    if best:
        lines.append(f"best checkpoint: {best}")
    if figure is not None and figure.exists():
        lines.append(f"figure: {figure}")
    if "accuracy" in results:
        lines.append(
            f"test accuracy: {100 * results['accuracy']:.2f} ± {100 * results['ci95']:.2f}% "
            f"({results['num_tasks']} tasks); results: {output_dir / 'results.json'}"
        )
    for name, r in results.get("cross_domain", {}).items():
        lines.append(
            f"cross-domain {name}: {100 * r['accuracy']:.2f} ± {100 * r['ci95']:.2f}% ({r['num_tasks']} tasks)"
        )
    if results.get("sparsity"):
        lines.append("update sparsity: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in results["sparsity"].items()))
    print("\n".join(lines))


def print_evaluation(output_dir: Path, results: dict[str, Any], inner_steps: int) -> None:
    """An evaluated checkpoint's test accuracy and update sparsity per layer."""
    print(
        f"{results['algorithm']} on {results['dataset']} ({results['n_way']}-way {results['k_shot']}-shot, "
        f"{inner_steps} inner steps): {100 * results['accuracy']:.2f} ± {100 * results['ci95']:.2f}% "
        f"over {results['num_tasks']} test tasks"
    )
    for layer, value in results["sparsity"].items():
        print(f"  update sparsity {layer}: {100 * value:.1f}%")
    print(f"results: {output_dir / 'results.json'}")
