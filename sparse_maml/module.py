"""MetaLearner: the LightningModule that meta-trains an algorithm of the registry on episodic meta-batches."""

from __future__ import annotations

import inspect
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.trainer.states import TrainerFn
from torch import Tensor
from torchmetrics import CatMetric, MeanMetric

from .algorithms import REGISTRY, build_algorithm
from .algorithms.engine.evaluation import Evaluation
from .checkpoint_io import load_checkpoint
from .data import augment
from .models import build_backbone
from .optimizers import build_optimizer, optimizer_spec

#: The algorithms' own options (``build_algorithm``'s ``options``); None: the algorithm's default.
ALGORITHM_OPTIONS = ("mask_init_sparsity", "mask_init", "mask_kaiming", "m_init", "adapt_bn")


class NonFiniteLossError(RuntimeError):
    """Raised when the meta-training loss (or a parameter to be checkpointed) becomes NaN or infinite."""


class MetaLearner(pl.LightningModule):
    """Backbone + algorithm + their meta-parameters, trained with two optimisers (theta and m; Adam or SGD).

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
        mask_init_sparsity: float | None = None,
        mask_init: str | None = None,
        mask_kaiming: bool | None = None,
        m_init: str | None = None,
        adapt_bn: bool | None = None,
        lr: float = 1e-3,
        mask_lr: float = 1e-3,
        outer_optimizer: str | Mapping[str, Any] = "adam",
        mask_optimizer: str | Mapping[str, Any] = "adam",
        grad_clip: float | None = None,
        grad_clamp: float | None = None,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        batch_tasks: bool | None = None,
        cuda_graphs: bool = False,
        config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        # Checked now, built when training starts (``optimizers.py``): reading a checkpoint instantiates nothing.
        self.optimizer_specs = {
            key: optimizer_spec(spec, f"algo.{key}")
            for key, spec in (("outer_optimizer", outer_optimizer), ("mask_optimizer", mask_optimizer))
        }
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
            # the algorithm's own options; None: its default
            mask_init_sparsity=mask_init_sparsity,
            mask_init=mask_init,
            mask_kaiming=mask_kaiming,
            m_init=m_init,
            adapt_bn=adapt_bn,
        )
        # Engine settings: the tasks of a batch run together (None: where it pays), inner loops replayed from CUDA
        # graphs (GPU only). Under trainer.precision=bf16-mixed Lightning autocasts the steps: the inner loop runs in
        # bf16, theta, m, their meta-gradients and the optimiser states stay float32.
        self.algo.batch_tasks, self.algo.cuda_graphs = batch_tasks, bool(cuda_graphs)
        self.inner_steps_test = inner_steps_test or inner_steps
        self.automatic_optimization = False
        # The datamodule's normalisation (its ``normalization``), kept with the weights so that a checkpoint alone
        # can classify raw images; batches in training arrive normalised by the datamodule itself.
        self.register_buffer("mean", torch.tensor(mean or [0.0] * in_channels).view(-1, 1, 1), persistent=True)
        self.register_buffer("std", torch.tensor(std or [1.0] * in_channels).view(-1, 1, 1), persistent=True)
        self.train_loss, self.train_acc = MeanMetric(), MeanMetric()
        # Saved with the weights, so that the epoch means of a run resumed mid-epoch include the batches before.
        self.train_loss.persistent(True)
        self.train_acc.persistent(True)
        self.val_accs, self.test_accs = CatMetric(), CatMetric()
        #: each fixed test episode's accuracy, in episode order, from the last test (episodes.json)
        self.test_episode_accuracies: list[float] = []
        self.best_val_acc: float | None = None
        self._rng_to_restore: dict[str, Any] | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, map_location: str | torch.device = "cpu") -> MetaLearner:
        """The module a checkpoint holds, read as data only (``checkpoint_io.load_checkpoint``: nothing in the file
        runs). Checkpoints from when every algorithm stored the masked algorithms' options (``mask_init_sparsity=0.5``
        for MAML, say) load too: the options its algorithm does not take are dropped."""
        checkpoint = load_checkpoint(path, map_location="cpu")
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        algorithm = REGISTRY.get(hparams.get("algorithm", ""))
        accepted = inspect.signature(algorithm).parameters if algorithm else ALGORITHM_OPTIONS
        hparams.update({k: None for k in ALGORITHM_OPTIONS if k not in accepted and hparams.get(k) is not None})
        module = cls(**hparams)
        module.on_load_checkpoint(checkpoint)
        module.load_state_dict(checkpoint["state_dict"])
        return module.to(map_location)

    @property
    def last_good_checkpoint(self) -> str | None:
        """The last checkpoint written completely (or resumed from), as recorded by the trainer's checkpoint IO."""
        trainer = self._trainer
        if trainer is None:
            return None
        return getattr(trainer.strategy.checkpoint_io, "last_saved", None)

    # ---- optimisation -------------------------------------------------------------------------------------
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        hp = self.hparams
        specs = self.optimizer_specs
        optimizers = [build_optimizer(specs["outer_optimizer"], self.algo.backbone.parameters(), hp.lr)]
        masks = list(self.algo.meta_parameters().values())
        if masks:
            optimizers.append(build_optimizer(specs["mask_optimizer"], masks, hp.mask_lr))
        return optimizers

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for opt in optimizers:
            opt.zero_grad()
        surrogate, loss, acc = self.algo.meta_loss(*batch)
        # One decision for all ranks, so that they all stop (a rank that raised alone would hang the others).
        finite = bool(torch.isfinite(loss.detach()))
        if not self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            self._non_finite(f"the meta-training loss is {loss.item() if not finite else 'not finite on another rank'}")
        self.manual_backward(surrogate)
        if self.hparams.grad_clamp:
            # Entry by entry, theta's meta-gradient only (the official code's --clamp_outer_gradients).
            for p in self.algo.backbone.parameters():
                if p.grad is not None:
                    p.grad.clamp_(-self.hparams.grad_clamp, self.hparams.grad_clamp)
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

    def _non_finite(self, what: str) -> None:
        last = self.trainer.strategy.broadcast(self.last_good_checkpoint)  # rank 0 is the one that writes
        raise NonFiniteLossError(
            f"{self.hparams.algorithm}: {what} at global step {self.global_step} (epoch {self.current_epoch}); "
            f"last good checkpoint: {last or 'none saved yet'}. Lower the inner or outer learning rate, "
            "or set algo.grad_clip."
        )

    # ---- checkpoints ----------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.trainer.state.fn == TrainerFn.FITTING and not all(torch.isfinite(p).all() for p in self.parameters()):
            # Never replace a good checkpoint with a broken one.
            self._non_finite("a parameter is not finite")
        checkpoint["rng_states"] = _rng_states()
        checkpoint["best_val_acc"] = self.best_val_acc
        wandb_id = next((lg.version for lg in self.trainer.loggers if isinstance(lg, WandbLogger)), None)
        if wandb_id is not None:
            checkpoint["wandb_run_id"] = wandb_id
        # The running sums of the epoch's training metrics, over all ranks (every rank saves; rank 0 writes).
        for key in self._metric_sums(checkpoint["state_dict"]):
            # A copy: the reduction is in place, and the live sums of this rank must stay its own.
            total = checkpoint["state_dict"][key].clone()
            checkpoint["state_dict"][key] = self.trainer.strategy.reduce(total, reduce_op="sum")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.best_val_acc = checkpoint.get("best_val_acc")
        self._rng_to_restore = checkpoint.get("rng_states")
        if self._trainer is not None and self.trainer.global_rank != 0:
            # Rank 0 alone carries the sums of all ranks on, so that they are counted once when the ranks sync.
            for key in self._metric_sums(checkpoint["state_dict"]):
                checkpoint["state_dict"][key] = torch.zeros_like(checkpoint["state_dict"][key])

    @staticmethod
    def _metric_sums(state_dict: dict[str, Tensor]) -> list[str]:
        return [k for k in state_dict if k.startswith(("train_loss.", "train_acc."))]

    def on_train_epoch_start(self) -> None:
        # Lightning skips this hook when it resumes inside an epoch (or at its end), so the restored sums of that
        # epoch are kept, and are cleared only when a new epoch starts.
        self.train_loss.reset()
        self.train_acc.reset()

    def on_train_start(self) -> None:
        # Restored here, not on load: from now on the state evolves exactly as in the run that saved it.
        if self._rng_to_restore is not None:
            _set_rng_states(self._rng_to_restore)
            self._rng_to_restore = None

    # ---- evaluation ---------------------------------------------------------------------------------------
    def evaluate_episodes(self, xs: Tensor, ys: Tensor, xq: Tensor, yq: Tensor) -> Evaluation:
        """Adapt to each episode of a batch with ``inner_steps_test`` steps: ``(accuracy [T], change_sq)``, the query
        accuracies and the squared change ||phi_K - theta||^2 of every backbone parameter [T] (``algo.evaluate``:
        the episodes run together wherever that is faster, in chunks that fit memory)."""
        return self.algo.evaluate(xs, ys, xq, yq, steps=self.inner_steps_test)

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Evaluation:
        evaluation = self.evaluate_episodes(*batch)
        self.val_accs.update(evaluation.accuracy)
        return evaluation  # for callbacks: AdaptationLogger reads its change norms

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self.test_accs.update(self.evaluate_episodes(*batch).accuracy)

    def on_validation_epoch_end(self) -> None:
        self._log_accuracy("val", self.val_accs)

    def on_test_epoch_end(self) -> None:
        self._log_accuracy("test", self.test_accs)

    def _log_accuracy(self, stage: str, metric: CatMetric) -> None:
        accs = metric.compute().flatten().float()
        metric.reset()
        if stage == "test":  # the ranks' contiguous shares gathered in rank order: episode order
            self.test_episode_accuracies = accs.tolist()
        mean, ci = mean_ci95(accs)
        # metric.compute() gathered the episodes of every rank: the values are the same on all ranks.
        self.log(f"{stage}/acc", mean, sync_dist=False, prog_bar=True)
        self.log(f"{stage}/acc_ci95", ci, sync_dist=False)
        self.log(f"{stage}/num_tasks", float(accs.numel()), sync_dist=False)
        if stage == "val" and not self.trainer.sanity_checking:
            self.best_val_acc = mean if self.best_val_acc is None else max(self.best_val_acc, mean)
            self.log("val/acc_best", self.best_val_acc, sync_dist=False)

    # ---- user-facing helpers ------------------------------------------------------------------------------
    def normalize(self, x: Tensor) -> Tensor:
        """Raw images [..., C, H, W] (uint8 in [0, 255] or float in [0, 1]) -> normalised float on this module's
        device, with the constants the datamodule gave at training time (the datamodule's own ``normalize``)."""
        return augment.normalize(x.to(self.mean.device), self.mean.flatten(), self.std.flatten())


def _rng_states() -> dict[str, Any]:
    """Global RNG states as tensors and plain Python values (loadable with torch.load(weights_only=True))."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def mean_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and 95% confidence half-width 1.96 * std / sqrt(n) of per-task values."""
    n = values.numel()
    if n == 0:
        return float("nan"), float("nan")
    std = values.std(unbiased=True).item() if n > 1 else 0.0
    return values.mean().item(), 1.96 * std / math.sqrt(n)
