"""No validation before a given epoch: the official script's ``--val_start`` (e.g. 100 of 400 epochs for Conv4)."""

from __future__ import annotations

import sys
from typing import Any

import pytorch_lightning as pl


class ValidationStart(pl.Callback):
    """Validate as the trainer's ``check_val_every_n_epoch`` says, but only from epoch ``epoch`` on (0-based), so
    that the best checkpoint is chosen among the later ones. 0: from the start (no effect)."""

    def __init__(self, epoch: int = 0) -> None:
        if epoch < 0:
            raise ValueError(f"callbacks.validation_start.epoch={epoch} must be >= 0")
        self.epoch = epoch
        self._every: int | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and self._every is None:  # the configured interval, before this callback changes it
            self._every = trainer.check_val_every_n_epoch

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        # Lightning reads check_val_every_n_epoch after every batch; an interval that never divides skips validation
        # (and keeps ModelCheckpoint from saving at epoch ends without a val/acc to rank by).
        if self._every is not None:
            trainer.check_val_every_n_epoch = self._every if trainer.current_epoch >= self.epoch else sys.maxsize
