"""PyTorch's intra-op threads for a run on CPU."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.accelerators import CPUAccelerator


class CPUThreads(pl.Callback):
    """``torch.set_num_threads(threads)`` when the trainer runs on CPU (None: PyTorch's default, one per core).

    Conv4's operations at Omniglot scale are small: on 2 cores a second thread brought no speed, and on a machine
    shared with other jobs every parallel region waits for a descheduled thread (a quickstart run took 7x longer
    with 2 threads than with 1; benchmarks/RESULTS.md).
    """

    def __init__(self, threads: int | None = 1) -> None:
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads must be >= 1 or null (PyTorch's default), got {threads}")
        self.threads = None if threads is None else int(threads)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.threads is not None and isinstance(trainer.accelerator, CPUAccelerator):
            torch.set_num_threads(self.threads)
