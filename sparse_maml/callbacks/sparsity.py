"""Update sparsity per parameter tensor, per layer and for the whole network, logged as training goes."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from ..algorithms.engine.masks import layer_of


def sparsity_metrics(algo: Any) -> dict[str, float]:
    """``sparsity/network``, ``sparsity/<layer>`` and ``sparsity_param/<parameter>``; {} without a mask."""
    if not algo.masked:
        return {}
    metrics = {"sparsity/network": algo.network_sparsity()}
    metrics.update({f"sparsity/{layer}": v for layer, v in algo.layer_sparsity().items()})
    metrics.update({f"sparsity_param/{name}": v for name, v in algo.update_sparsity().items()})
    return metrics


class SparsityLogger(pl.Callback):
    """Logs the paper's update sparsity, 1 - ||1[m >= 0]||^2 / dim(m), every ``every_n_steps`` optimiser steps
    (and before the first one), plus a histogram of m per layer to W&B every ``histogram_every_n_steps``."""

    def __init__(self, every_n_steps: int = 10, histogram_every_n_steps: int = 500) -> None:
        self.every_n_steps = every_n_steps
        self.histogram_every_n_steps = histogram_every_n_steps

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, idx: int) -> None:
        step = trainer.global_step
        if step % self.every_n_steps == 0:
            metrics = sparsity_metrics(pl_module.algo)
            if metrics:
                pl_module.log_dict(metrics, on_step=True, on_epoch=False)
        if self.histogram_every_n_steps and step % self.histogram_every_n_steps == 0:
            self._histograms(trainer, pl_module)

    def _histograms(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not pl_module.algo.masked or not trainer.is_global_zero:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import torch
                import wandb

                layers: dict[str, list] = {}
                for name, m in pl_module.algo.meta_parameters().items():
                    layers.setdefault(layer_of(name), []).append(m.detach().flatten().cpu())
                logger.experiment.log(
                    {f"mask_hist/{layer}": wandb.Histogram(torch.cat(ms).numpy()) for layer, ms in layers.items()}
                    | {"trainer/global_step": trainer.global_step}
                )
