"""Where adaptation happens: per layer, the inner loop's relative change ||phi_K - theta|| / ||theta|| averaged over
the validation tasks, logged as ``adaptation/<layer>`` after every validation, the same way for every algorithm
(the question the paper joins: feature reuse or rapid learning; Raghu et al., 2020).

A layer is a module (``body.block1.conv``, ``head``, ...); its norms run over all its tensors together. Layers an
algorithm does not adapt (ANIL's body, BOIL's head, entries a mask freezes) read 0.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from ..algorithms.engine.masks import layer_of


def relative_change(change_sq: dict[str, Tensor], theta: dict[str, Tensor]) -> dict[str, Tensor]:
    """{layer: [T] ||phi_K - theta|| / ||theta||} from ``change_sq`` {parameter: [T] ||phi_K - theta||^2} and the
    parameters ``theta`` {parameter: tensor}, norms over all tensors of a layer."""
    change: dict[str, Tensor] = {}
    size: dict[str, Tensor] = {}
    for name, sq in change_sq.items():
        layer = layer_of(name)
        change[layer] = change[layer] + sq if layer in change else sq
        norm_sq = theta[name].detach().float().square().sum()
        size[layer] = size[layer] + norm_sq if layer in size else norm_sq
    return {layer: change[layer].sqrt() / size[layer].sqrt().clamp_min(1e-12) for layer in change}


class AdaptationLogger(pl.Callback):
    """Logs ``adaptation/<layer>`` at the end of every validation, from the ``Evaluation`` (accuracy [T] and
    change_sq) that ``MetaLearner.validation_step`` returns for each batch; the tasks of every rank count alike."""

    def __init__(self) -> None:
        self._sums: dict[str, Tensor] = {}
        self._tasks = 0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._sums, self._tasks = {}, 0

    def on_validation_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int, *args: Any
    ) -> None:
        change_sq = getattr(outputs, "change_sq", None)
        if change_sq is None:
            return
        theta = dict(pl_module.algo.backbone.named_parameters())
        for layer, values in relative_change(change_sq, theta).items():
            self._sums[layer] = self._sums.get(layer, 0.0) + values.sum()
        self._tasks += len(outputs.accuracy)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._sums:
            return
        layers = list(self._sums)
        sums = torch.stack([self._sums[layer] for layer in layers])
        totals = trainer.strategy.reduce(torch.cat([sums, sums.new_tensor([self._tasks])]), reduce_op="sum")
        means = totals[:-1] / totals[-1]
        pl_module.log_dict({f"adaptation/{layer}": means[i] for i, layer in enumerate(layers)}, sync_dist=False)
