"""The resume checkpoint: ``last.ckpt`` written often enough that a killed run loses little work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint


class LastCheckpoint(Checkpoint):
    """Writes ``<dirpath>/<filename>`` every ``every_n_train_steps`` meta-iterations and at the end of every training
    epoch (after validation), replacing the previous one. ``python train.py ... ckpt_path=last`` resumes from it.

    Mid-epoch saves happen at the end of a training batch; the last batch of an epoch is left to the epoch-end save,
    so that every checkpoint is either between two batches or after a whole epoch, the two points Lightning resumes
    from exactly. Nothing is saved when training fails (a NaN loss must not overwrite a good checkpoint).
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 50, filename: str = "last.ckpt") -> None:
        if every_n_train_steps < 0:
            raise ValueError(f"every_n_train_steps must be >= 0 (0: only at epoch ends), got {every_n_train_steps}")
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.filename = filename

    @property
    def path(self) -> Path:
        return self.dirpath / self.filename

    @property
    def state_key(self) -> str:
        return self._generate_state_key(dirpath=str(self.dirpath), filename=self.filename)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0 and not trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        if trainer.sanity_checking or bool(trainer.fast_dev_run):
            return
        trainer.save_checkpoint(self.path)  # on every rank: the strategy writes on rank 0 only
