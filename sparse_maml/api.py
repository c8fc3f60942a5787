"""Use a trained checkpoint on your own few-shot task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .module import MetaLearner


class Learner:
    """A trained meta-learner: ``adapt`` on a support set, ``predict`` on queries.

    Images are raw, at the training resolution: uint8 in [0, 255] or float in [0, 1], [B, C, H, W]; the
    checkpoint's normalisation is applied here.
    """

    def __init__(self, module: MetaLearner) -> None:
        self.module = module.eval()
        self.algo = module.algo
        self.config: dict[str, Any] = dict(module.hparams.config or {})

    @property
    def device(self) -> torch.device:
        return self.module.mean.device

    def adapt(self, xs: Tensor, ys: Tensor, steps: int | None = None) -> dict[str, Tensor]:
        """Adapted parameters for the support set xs [N*K, C, H, W], ys [N*K] (labels 0..N-1)."""
        steps = self.module.inner_steps_test if steps is None else steps
        return self.algo.adapt(self.module.normalize(xs), ys.to(self.device), steps=steps)

    @torch.no_grad()
    def predict(self, fast: dict[str, Tensor], xq: Tensor) -> Tensor:
        """Logits [B, n_way] of the adapted network on xq [B, C, H, W]."""
        return self.algo.predict(fast, self.module.normalize(xq))

    def update_sparsity(self) -> dict[str, float]:
        """Per-tensor update sparsity of the learned mask ({} without a mask)."""
        return self.algo.update_sparsity()


def load_learner(ckpt_path: str | Path, map_location: str | torch.device = "cpu") -> Learner:
    """Load a checkpoint written by train.py as a ready-to-use ``Learner``."""
    path = Path(ckpt_path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return Learner(MetaLearner.load_from_checkpoint(path, map_location=map_location))
