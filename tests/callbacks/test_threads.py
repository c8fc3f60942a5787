"""CPUThreads sets PyTorch's thread count for runs on CPU only."""

import pytest
import pytorch_lightning as pl
import torch

from sparse_maml.callbacks import CPUThreads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_sets_threads_on_cpu(restore_threads):
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False)
    torch.set_num_threads(2)
    CPUThreads(1).setup(trainer, pl.LightningModule(), "fit")
    assert torch.get_num_threads() == 1
    CPUThreads(None).setup(trainer, pl.LightningModule(), "fit")  # None leaves the count alone
    assert torch.get_num_threads() == 1


def test_rejects_a_count_below_one():
    with pytest.raises(ValueError, match="threads must be >= 1"):
        CPUThreads(0)
