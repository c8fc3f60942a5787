"""Validate one checkpoint on N CPU ranks (Lightning DDP, gloo) and write each fixed episode's accuracy, in order:

    python -m tests.validate_ranks CHECKPOINT OUT.json RANKS HYDRA_OVERRIDES...

A helper of tests/test_ddp_validation.py: Lightning starts the other ranks by running this same command again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from sparse_maml.module import MetaLearner
from sparse_maml.run import build_datamodule

from .app_helpers import compose_config


class EpisodeAccuracies(pl.Callback):
    """The accuracies of every rank's episodes, gathered (callbacks run before the module's own epoch end)."""

    def __init__(self) -> None:
        self.accuracies: list[float] = []

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.accuracies = pl_module.val_accs.compute().flatten().tolist()


def main(checkpoint: str, out: str, ranks: int, overrides: list[str]) -> None:
    torch.set_num_threads(1)
    cfg = compose_config(overrides)
    module = MetaLearner.from_checkpoint(checkpoint)
    dm = build_datamodule(cfg.data)
    capture = EpisodeAccuracies()
    strategy = "ddp" if ranks > 1 else "auto"
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=ranks,
        strategy=strategy,
        logger=False,
        inference_mode=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[capture],
        use_distributed_sampler=False,
    )
    metrics = trainer.validate(module, datamodule=dm, verbose=False)[0]
    if trainer.is_global_zero:
        Path(out).write_text(json.dumps({"acc": metrics["val/acc"], "episodes": capture.accuracies}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:])
