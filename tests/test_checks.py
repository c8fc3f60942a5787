"""Configurations that cannot work are rejected before training; a non-finite loss stops training clearly."""

import re

import pytest
import torch

from sparse_maml.algorithms.engine.base import InnerLoopLearner
from sparse_maml.checks import ConfigError
from sparse_maml.data import EpisodicDataModule
from sparse_maml.module import NonFiniteLossError
from sparse_maml.run import train

from .app_helpers import TINY, compose_config

BAD = {  # overrides, the message, how many problems (lines): the embedded dataset has 64/16/20 classes of 20 images
    "n_way": (["data.n_way=17"], "data.n_way=17 but split 'val' of 'embedded' has 16 classes", 1),
    "k_plus_q": (
        ["data.k_shot=5", "data.k_query=16"],
        "data.k_shot + data.k_query = 5 + 16 = 21 but class 'class0000' of split 'train' of 'embedded' has 20 images",
        3,  # and the same for val and test
    ),
    "ranks": (
        ["trainer=ddp", "trainer.accelerator=cpu", "data.meta_batch_size=3"],
        "data.meta_batch_size=3 is not divisible by the 2 ranks (trainer.devices x trainer.num_nodes)",
        1,
    ),
    "inner_steps": (["algo.inner_steps=0"], "algo.inner_steps=0: meta-training needs at least 1 inner step", 1),
    "inner_steps_test": (["algo.inner_steps_test=0"], "algo.inner_steps_test=0: evaluation needs at least 1", 1),
    "sampler": (
        ["trainer=ddp", "trainer.accelerator=cpu", "trainer.use_distributed_sampler=true"],
        "trainer.use_distributed_sampler=true: the datamodule gives each rank its share",
        1,
    ),
    "sync_bn": (["trainer.sync_batchnorm=true"], "trainer.sync_batchnorm=true: BatchNorm statistics are those of", 1),
    "accumulate": (
        ["trainer.accumulate_grad_batches=2"],
        "trainer.accumulate_grad_batches=2: a meta-batch already accumulates its tasks' meta-gradients",
        1,
    ),
    "mask_init_sparsity": (["algo.mask_init_sparsity=-0.1"], "algo.mask_init_sparsity=-0.1: the initial update", 1),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_configuration_is_rejected_before_training(tmp_path, case):
    overrides, message, count = BAD[case]
    override_keys = {o.split("=")[0].lstrip("+") for o in overrides}
    base = [o for o in TINY if o.split("=")[0].lstrip("+") not in override_keys]
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        train(compose_config([*base, "logger=none", *overrides], output_dir=tmp_path))
    assert str(error.value).startswith("this configuration cannot train:")
    assert len(re.findall(r"\n  ", str(error.value))) == count
    assert not (tmp_path / "checkpoints").exists()  # nothing was trained


def test_several_problems_are_reported_together(tmp_path):
    # The settings are checked before any data is read, the splits after: each pass reports all it finds.
    with pytest.raises(ConfigError) as error:
        train(compose_config([*TINY, "algo.inner_steps=0", "algo.mask_init_sparsity=2"], output_dir=tmp_path))
    assert "algo.inner_steps=0" in str(error.value) and "algo.mask_init_sparsity=2" in str(error.value)
    with pytest.raises(ConfigError) as error:
        train(compose_config([*TINY, "data.n_way=30"], output_dir=tmp_path))
    assert "data.n_way=30 but split 'train'" not in str(error.value)
    assert "data.n_way=30 but split 'val' of 'embedded' has 16 classes" in str(error.value)
    assert "data.n_way=30 but split 'test' of 'embedded' has 20 classes" in str(error.value)


def test_settings_are_checked_before_any_data_is_read(tmp_path, monkeypatch):
    read = []
    monkeypatch.setattr(EpisodicDataModule, "store", lambda self, stage: read.append(stage))
    monkeypatch.setattr(EpisodicDataModule, "prepare_data", lambda self: read.append("prepare"))
    with pytest.raises(ConfigError, match=r"algo.mask_init_sparsity=1.5: the initial update sparsity is a fraction"):
        train(compose_config([*TINY, "algo.mask_init_sparsity=1.5"], output_dir=tmp_path))
    assert read == []


def test_data_is_prepared_before_it_is_checked(tmp_path, monkeypatch):
    calls = []
    store, prepare = EpisodicDataModule.store, EpisodicDataModule.prepare_data
    monkeypatch.setattr(EpisodicDataModule, "store", lambda self, stage: calls.append(stage) or store(self, stage))
    monkeypatch.setattr(EpisodicDataModule, "prepare_data", lambda self: calls.append("prepare") or prepare(self))
    with pytest.raises(ConfigError, match="data.n_way=17"):
        train(compose_config([*TINY, "data.n_way=17"], output_dir=tmp_path))
    assert calls[0] == "prepare" and calls.count("prepare") == 1 and "train" in calls


def inject(monkeypatch, at_call, corrupt):
    """Make the algorithm's meta_loss go wrong from its `at_call`-th call on."""
    original = InnerLoopLearner.meta_loss
    calls = []

    def meta_loss(self, *batch):
        calls.append(1)
        surrogate, loss, acc = original(self, *batch)
        return corrupt(surrogate, loss, acc) if len(calls) >= at_call else (surrogate, loss, acc)

    monkeypatch.setattr(InnerLoopLearner, "meta_loss", meta_loss)


OVERRIDES = [*TINY, "logger=none", "callbacks.last_checkpoint.every_n_train_steps=1"]


def test_nan_loss_stops_training_naming_step_algorithm_and_last_good_checkpoint(tmp_path, monkeypatch):
    inject(monkeypatch, 3, lambda s, loss, a: (s, loss * float("nan"), a))
    last = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(NonFiniteLossError) as error:
        train(compose_config(OVERRIDES, output_dir=tmp_path))
    message = str(error.value)
    assert message.startswith("sparse_maml: the meta-training loss is nan at global step 2 (epoch 0)")
    assert f"last good checkpoint: {last}" in message
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())


def test_non_finite_parameters_are_never_checkpointed(tmp_path, monkeypatch):
    # A finite loss whose gradient is infinite: the step makes the weights NaN, and the save after it must not
    # replace the good checkpoint of step 1.
    inject(monkeypatch, 2, lambda s, loss, a: (s * float("inf"), loss, a))
    last = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(NonFiniteLossError, match="a parameter is not finite at global step 2") as error:
        train(compose_config(OVERRIDES, output_dir=tmp_path))
    assert f"last good checkpoint: {last}" in str(error.value)
    assert torch.load(last, weights_only=True)["global_step"] == 1


def test_nan_before_any_checkpoint(tmp_path, monkeypatch):
    inject(monkeypatch, 1, lambda s, loss, a: (s, loss * float("inf"), a))
    with pytest.raises(NonFiniteLossError, match="loss is inf at global step 0 .*last good checkpoint: none saved yet"):
        train(compose_config([*TINY, "logger=none"], output_dir=tmp_path))
