"""Matplotlib figures of sparsity and accuracy (headless: the Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curves(history: dict[str, Any], path: Path, title: str = "") -> Path:
    """Per-layer update sparsity over training steps (left) and validation accuracy (right) -> PNG at ``path``.

    ``history``: {"sparsity": [{"step", "network", "layers": {layer: value}}], "val": [{"step", "acc", "ci95"}]}.
    """
    fig, (ax_s, ax_v) = plt.subplots(1, 2, figsize=(11, 4))
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
