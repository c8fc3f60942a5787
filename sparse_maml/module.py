"""MetaLearner: the LightningModule that meta-trains an algorithm of the registry on episodic meta-batches."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torchmetrics import CatMetric, MeanMetric

from .algorithms import build_algorithm
from .models import build_backbone


class NonFiniteLossError(RuntimeError):
    """Raised when the meta-training loss becomes NaN or infinite."""


class MetaLearner(pl.LightningModule):
    """Backbone + algorithm + their meta-parameters, trained with two Adam optimisers (theta and m).

    Batches are ``(xs [T, N*K, C, H, W], ys [T, N*K], xq [T, N*Q, C, H, W], yq [T, N*Q])``, already normalised
    on the device by the datamodule. Validation and test adapt each episode with ``inner_steps_test`` steps and
    report the mean accuracy over tasks with its 95% confidence interval, 1.96 * std / sqrt(n).
    """

    def __init__(
        self,
        algorithm: str = "sparse_maml",
        backbone: str = "conv4",
        backbone_kwargs: dict[str, Any] | None = None,
        n_way: int = 5,
        in_channels: int = 3,
        image_size: int = 84,
        inner_lr: float = 0.1,
        inner_steps: int = 25,
        inner_steps_test: int | None = None,
        first_order: bool | None = None,
        mask_init_sparsity: float = 0.5,
        lr: float = 1e-3,
        mask_lr: float = 1e-3,
        grad_clip: float | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # Not sent to the loggers: train.py logs the whole resolved config instead.
        self.save_hyperparameters(logger=False)
        net = build_backbone(
            backbone, in_channels=in_channels, image_size=image_size, n_way=n_way, **(backbone_kwargs or {})
        )
        self.algo = build_algorithm(
            algorithm,
            net,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            first_order=first_order,
            mask_init_sparsity=mask_init_sparsity,
        )
        self.inner_steps_test = inner_steps_test or inner_steps
        self.automatic_optimization = False
        # Per-image normalisation kept with the weights, so a checkpoint alone can classify raw images.
        self.register_buffer("mean", torch.tensor(mean or [0.0] * in_channels).view(-1, 1, 1), persistent=True)
        self.register_buffer("std", torch.tensor(std or [1.0] * in_channels).view(-1, 1, 1), persistent=True)
        self.train_loss, self.train_acc = MeanMetric(), MeanMetric()
        self.val_accs, self.test_accs = CatMetric(), CatMetric()
        self.last_good_checkpoint: str | None = None

    # ---- optimisation -------------------------------------------------------------------------------------
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        optimizers = [torch.optim.Adam(self.algo.backbone.parameters(), lr=self.hparams.lr)]
        masks = list(self.algo.meta_parameters().values())
        if masks:
            optimizers.append(torch.optim.Adam(masks, lr=self.hparams.mask_lr))
        return optimizers

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for opt in optimizers:
            opt.zero_grad()
        surrogate, loss, acc = self.algo.meta_loss(*batch)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"{self.hparams.algorithm}: the meta-training loss is {loss.item()} at global step "
                f"{self.global_step} (epoch {self.current_epoch}); last good checkpoint: "
                f"{self.last_good_checkpoint or 'none saved yet'}. Lower the inner or outer learning rate, "
                "or set algo.grad_clip."
            )
        self.manual_backward(surrogate)
        if self.hparams.grad_clip:
            for opt in optimizers:
                self.clip_gradients(opt, gradient_clip_val=self.hparams.grad_clip, gradient_clip_algorithm="norm")
        optimizers[0].step()
        for opt in optimizers[1:]:
            # The mask optimiser steps outside Lightning's count, so that global_step counts meta-iterations.
            opt.optimizer.step()
        self.train_loss(loss)
        self.train_acc(acc)
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    # ---- evaluation ---------------------------------------------------------------------------------------
    def episode_accuracies(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> Tensor:
        """Query accuracy of each episode after adaptation with ``inner_steps_test`` steps: [T]."""
        with torch.enable_grad():
            accs = []
            for t in range(xs.shape[0]):
                logits = self.algo(xs[t], ys[t], xq[t], steps=self.inner_steps_test)
                accs.append((logits.argmax(-1) == yq[t]).float().mean())
        return torch.stack(accs)

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self.val_accs.update(self.episode_accuracies(*batch))

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self.test_accs.update(self.episode_accuracies(*batch))

    def on_validation_epoch_end(self) -> None:
        self._log_accuracy("val", self.val_accs)

    def on_test_epoch_end(self) -> None:
        self._log_accuracy("test", self.test_accs)

    def _log_accuracy(self, stage: str, metric: CatMetric) -> None:
        accs = metric.compute().flatten().float()
        metric.reset()
        mean, ci = mean_ci95(accs)
        self.log(f"{stage}/acc", mean, sync_dist=False, prog_bar=True)
        self.log(f"{stage}/acc_ci95", ci, sync_dist=False)
        self.log(f"{stage}/num_tasks", float(accs.numel()), sync_dist=False)

    # ---- user-facing helpers ------------------------------------------------------------------------------
    def normalize(self, x: Tensor) -> Tensor:
        """Raw images [..., C, H, W] (uint8 in [0, 255] or float in [0, 1]) -> normalised float."""
        x = x.to(self.mean.device)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
        return (x - self.mean) / self.std


def mean_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and 95% confidence half-width 1.96 * std / sqrt(n) of per-task values."""
    n = values.numel()
    if n == 0:
        return float("nan"), float("nan")
    std = values.std(unbiased=True).item() if n > 1 else 0.0
    return values.mean().item(), 1.96 * std / math.sqrt(n)
