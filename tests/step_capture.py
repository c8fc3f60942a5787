"""A callback for the DDP tests: what each rank saw and computed in the first meta-iteration.

Added to a run with ``+callbacks.capture._target_=tests.step_capture.StepOneCapture +callbacks.capture.folder=DIR``;
each rank writes ``DIR/rank{r}.pt``: its share of the first meta-batch (normalised, as the step used it), theta and m
before the step, and their meta-gradients as the optimiser received them (after DDP's all-reduce).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch


class StepOneCapture(pl.Callback):
    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.record: dict[str, Any] = {}

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        if trainer.global_step == 0 and not self.record:
            self.record["batch"] = [t.detach().clone() for t in batch]
            self.record["params"] = {n: p.detach().clone() for n, p in pl_module.named_parameters()}

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        # Called for theta's optimiser only (m's steps outside Lightning), after the backward that filled both.
        if trainer.global_step == 0 and "grads" not in self.record:
            self.record["grads"] = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters()}
            self.folder.mkdir(parents=True, exist_ok=True)
            torch.save(self.record, self.folder / f"rank{trainer.global_rank}.pt")
