"""Records sparsity, validation accuracy and adaptation per layer during training and draws them as a figure at the
end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from ..atomic import write_text
from ..reporting.plots import plot_training_curves


class TrainingCurves(pl.Callback):
    """Keeps per-layer update sparsity (every ``every_n_steps``), ``val/acc`` and ``adaptation/<layer>`` (every
    validation), writes them to ``<run>/history.json`` and draws ``<run>/figures/training_curves.png`` when fitting
    ends (like the paper's Figure 1, centre), also logged to W&B."""

    def __init__(self, every_n_steps: int = 10, dirpath: str | None = None) -> None:
        self.every_n_steps = every_n_steps
        self.dirpath = dirpath
        self.history: dict[str, Any] = {"sparsity": [], "val": [], "adaptation": []}
        self.figure_path: Path | None = None

    def _record_sparsity(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        algo = pl_module.algo
        if algo.masked:
            self.history["sparsity"].append(
                {"step": trainer.global_step, "network": algo.network_sparsity(), "layers": algo.layer_sparsity()}
            )

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._record_sparsity(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the module's on_validation_epoch_end has logged val/acc.
        if trainer.sanity_checking or "val/acc" not in trainer.callback_metrics:
            return
        self.history["val"].append(
            {
                "step": trainer.global_step,
                "epoch": trainer.current_epoch,
                "acc": float(trainer.callback_metrics["val/acc"]),
                "ci95": float(trainer.callback_metrics.get("val/acc_ci95", float("nan"))),
            }
        )
        layers = {
            k.split("/", 1)[1]: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("adaptation/")
        }
        if layers:
            self.history.setdefault("adaptation", []).append({"step": trainer.global_step, "layers": layers})

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        self._record_sparsity(trainer, pl_module)
        run_dir = Path(self.dirpath or trainer.default_root_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.history["algorithm"] = pl_module.hparams.algorithm
        write_text(run_dir / "history.json", json.dumps(self.history, indent=1))
        self.figure_path = run_dir / "figures" / "training_curves.png"
        title = f"{pl_module.hparams.algorithm}, {pl_module.hparams.inner_steps} inner steps"
        plot_training_curves(self.history, self.figure_path, title=title)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                logger.experiment.log({"figures/training_curves": wandb.Image(str(self.figure_path))})

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = state_dict["history"]
