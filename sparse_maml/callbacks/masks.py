"""``<run>/masks.json``: the mask logits at initialisation and at the tested checkpoint, small enough to commit.

Per layer (module), quantiles, mean and frozen fraction of its mask logits; and every entry of the output bias's
mask (the paper's Figure 4, right). ``python -m sparse_maml.reporting.mask_drift`` reads it when the run's
checkpoints are gone. A few kilobytes for Conv4: 9 quantiles x 2 steps x ~10 layers, plus n_way entries.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from ..algorithms.engine.masks import layer_of
from ..atomic import write_text

FILENAME = "masks.json"
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
#: The parameters whose every mask entry is kept.
ENTRIES = ("head.bias",)


def snapshot(algo: Any, step: int) -> dict[str, Any]:
    """The masks of ``algo`` (an algorithm with ``masked``, ``meta_parameters()`` and ``frozen``) at ``step``:
    {"step", "layers": {layer: {"numel", "quantiles" [len(QUANTILES)], "mean", "frozen"}}, "entries": {name:
    [numel]}}."""
    masks = {n: m.detach().float().cpu().flatten() for n, m in algo.meta_parameters().items()}
    by_layer: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, m in masks.items():
        by_layer[layer_of(name)].append(m)
    layers = {}
    for layer, parts in by_layer.items():
        m = torch.cat(parts)
        layers[layer] = {
            "numel": m.numel(),
            "quantiles": torch.quantile(m, torch.tensor(QUANTILES)).tolist(),
            "mean": m.mean().item(),
            "frozen": algo.frozen(m).float().mean().item(),
        }
    entries = {n: masks[n].tolist() for n in ENTRIES if n in masks}
    return {"step": int(step), "layers": layers, "entries": entries}


class MaskSnapshot(pl.Callback):
    """Keeps the masks as training starts and writes ``<run>/masks.json`` with them and the tested checkpoint's
    masks when testing ends; nothing for algorithms without a mask. The start is taken in ``setup``, before a resumed
    run's checkpoint is restored, and kept in the checkpoints too, so a resumed run writes its true start even if its
    module was built otherwise (another seed)."""

    def __init__(self, dirpath: str | None = None) -> None:
        self.dirpath = dirpath
        self.initial: dict[str, Any] | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Before a resumed run's checkpoint is restored (load_state_dict then replaces this with the true start).
        if stage == "fit" and self.initial is None and pl_module.algo.masked:
            self.initial = snapshot(pl_module.algo, trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"initial": self.initial}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.initial = state_dict.get("initial") or self.initial

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or self.initial is None or not pl_module.algo.masked:
            return
        tested = snapshot(pl_module.algo, trainer.global_step)
        tested["checkpoint"] = str(trainer.ckpt_path) if trainer.ckpt_path else None
        body = {"quantiles": list(QUANTILES), "initial": self.initial, "tested": tested}
        write_text(Path(self.dirpath or trainer.default_root_dir) / FILENAME, json.dumps(body, indent=1))


def read_masks(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``masks.json``; FileNotFoundError or ValueError naming the file."""
    path = Path(run_dir) / FILENAME
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the run predates masks.json or has no mask")
    body = json.loads(path.read_text())
    missing = [k for k in ("initial", "tested") if k not in body]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: not a masks.json that MaskSnapshot wrote")
    return body
