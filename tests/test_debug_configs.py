"""The debug= presets (conf/debug) and the optional, git-ignored conf/local/default.yaml."""

import shutil
from collections import Counter

import pytest
import pytorch_lightning as pl
from hydra import compose, initialize_config_dir

from sparse_maml.run import train

from .app_helpers import CONF, TINY, compose_config

DEBUG = sorted(p.stem for p in (CONF / "debug").glob("*.yaml") if not p.stem.startswith("_"))
BATCHES: Counter = Counter()


class BatchCounter(pl.Callback):
    """Counts the batches each stage runs (into BATCHES; Hydra builds the callback from its config)."""

    def on_train_batch_end(self, *args, **kwargs) -> None:
        BATCHES["train"] += 1

    def on_validation_batch_end(self, *args, **kwargs) -> None:
        BATCHES["val"] += 1

    def on_test_batch_end(self, *args, **kwargs) -> None:
        BATCHES["test"] += 1


def test_the_debug_presets_are_the_four_of_the_readme():
    assert DEBUG == ["fdr", "limit", "overfit", "profiler"]


@pytest.mark.parametrize("name", DEBUG)
def test_each_debug_preset_composes_on_top_of_an_experiment(name):
    cfg = compose_config([f"debug={name}", "experiment=omniglot/cpu"])
    assert cfg.task_name == f"debug/{name}" and not cfg.logger  # logger=none: nothing but the run folder
    assert cfg.trainer.detect_anomaly


def test_fdr_runs_one_batch_of_train_val_and_test_end_to_end(tmp_path):
    BATCHES.clear()
    counter = ["+callbacks.count._target_=tests.test_debug_configs.BatchCounter"]
    results = train(compose_config([*TINY, "debug=fdr", "algo=fomaml", *counter], output_dir=tmp_path))
    assert BATCHES == {"train": 1, "val": 1, "test": 1}
    assert results["num_tasks"] == 3  # one test batch of data.eval_batch_size episodes, of num_test_tasks=6


def test_overfit_trains_on_one_meta_batch_again_and_again(tmp_path):
    from sparse_maml.data import EpisodicDataModule

    dm = EpisodicDataModule("embedded", n_way=3, k_shot=1, k_query=2, meta_batch_size=2, train_batches_per_epoch=1)
    trainer = pl.Trainer(overfit_batches=1, max_epochs=1, logger=False, enable_checkpointing=False)
    dm.trainer = trainer
    loader = dm.train_dataloader()
    first = [dm.on_after_batch_transfer(b, 0)[0] for b in loader]
    again = [dm.on_after_batch_transfer(b, 0)[0] for b in loader]
    assert len(first) == 1 and first[0].equal(again[0])


def test_local_default_overrides_the_data_dir(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "local" / "default.yaml").unlink(missing_ok=True)  # this machine's own, if it has one
    with initialize_config_dir(str(conf), version_base="1.3"):
        absent = compose("config", overrides=["paths.output_dir=/tmp/unused"])
    (conf / "local" / "default.yaml").write_text("# @package _global_\npaths:\n  data_dir: /big/disk/datasets\n")
    with initialize_config_dir(str(conf), version_base="1.3"):
        present = compose("config", overrides=["paths.output_dir=/tmp/unused", "data=miniimagenet"])
    assert absent.paths.data_dir != "/big/disk/datasets"
    assert present.paths.data_dir == "/big/disk/datasets"
    assert present.data.root == "/big/disk/datasets/miniimagenet"


def test_local_configs_are_ignored_by_git():
    ignored = (CONF.parent / ".gitignore").read_text().splitlines()
    assert "conf/local/*.yaml" in ignored
