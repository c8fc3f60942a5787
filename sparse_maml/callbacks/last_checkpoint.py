"""The resume checkpoint: ``last.ckpt`` written often enough that a killed run loses little work, and at once when
the cluster says the job is about to be stopped, so that a preempted run loses nothing."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint

from ..preemption import STOP_SIGNALS, Preempted, StopSignals

#: ``Trainer.save_checkpoint``'s ``weights_only`` for last.ckpt, a save option: not weights only, but the whole training
#: state (optimisers, loops, callbacks) that resume needs, said outright because Lightning logs a defaulted one. It
#: opens nothing: every read of a checkpoint is ``checkpoint_io.load_checkpoint``, ``torch.load(weights_only=True)``.
SAVE_WEIGHTS_ONLY = False


class LastCheckpoint(Checkpoint):
    """Writes ``<dirpath>/<filename>`` every ``every_n_train_steps`` meta-iterations and at the end of every training
    epoch (after validation), replacing the previous one. ``python train.py ... ckpt_path=last`` resumes from it.

    Mid-epoch saves happen at the end of a training batch; the last batch of an epoch is left to the epoch-end save,
    so that every checkpoint is either between two batches or after a whole epoch, the two points Lightning resumes
    from exactly. Nothing is saved when training fails (a NaN loss must not overwrite a good checkpoint).

    While training, the ``stop_signals`` (SIGTERM, SIGUSR1, SIGUSR2: see ``preemption``) are recorded instead of
    ending the process; at the next of those two points the checkpoint is saved and ``Preempted`` is raised, on
    every rank at the same meta-iteration (the ranks agree on it after each batch).
    """

    def __init__(
        self,
        dirpath: str | Path,
        every_n_train_steps: int = 50,
        filename: str = "last.ckpt",
        stop_signals: Sequence[str] = STOP_SIGNALS,
    ) -> None:
        if every_n_train_steps < 0:
            raise ValueError(f"every_n_train_steps must be >= 0 (0: only at epoch ends), got {every_n_train_steps}")
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.filename = filename
        self.signals = StopSignals(stop_signals)
        self._stop_at_epoch_end = False

    @property
    def path(self) -> Path:
        return self.dirpath / self.filename

    @property
    def state_key(self) -> str:
        return self._generate_state_key(dirpath=str(self.dirpath), filename=self.filename)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After Lightning registered its own handlers (at the start of fit): ours take over for the training loop.
        self._stop_at_epoch_end = False
        self.signals.install()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.signals.restore()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.signals.restore()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        last_batch = trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if trainer.strategy.reduce_boolean_decision(self.signals.received is not None, all=False):
            if last_batch:  # not a point to resume from exactly: finish the epoch, save, then stop
                self._stop_at_epoch_end = True
                return
            self._save(trainer)
            self._stop(trainer)
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0 and not last_batch:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save(trainer)
        if self._stop_at_epoch_end:
            self._stop(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        if trainer.sanity_checking or bool(trainer.fast_dev_run):
            return
        # on every rank (the strategy writes on rank 0 only)
        trainer.save_checkpoint(self.path, weights_only=SAVE_WEIGHTS_ONLY)

    def _stop(self, trainer: pl.Trainer) -> None:
        signum = self.signals.received or signal.SIGTERM  # a rank that was not signalled stops with the others
        self.signals.hand_on()
        raise Preempted(signum, trainer.global_step, self.path)
