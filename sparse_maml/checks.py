"""Configurations that cannot work, rejected before training starts, each with a message naming its keys.

Two passes, so that a wrong setting is reported before any data is read: ``check_config`` looks at the composed
config alone (algorithm, trainer, episode shape, ranks), ``check_data`` at the prepared splits.
"""

from __future__ import annotations

from omegaconf import DictConfig

from .data import EpisodicDataModule

_POSITIVE = ("n_way", "k_shot", "k_query", "meta_batch_size", "train_batches_per_epoch")


class ConfigError(ValueError):
    """A configuration that cannot train; the message lists every problem found."""


class CheckpointNotFoundError(ConfigError, FileNotFoundError):
    """``ckpt_path`` names a checkpoint that does not exist."""


def config_problems(cfg: DictConfig, world_size: int = 1, use_distributed_sampler: bool = False) -> list[str]:
    """What is wrong with ``cfg`` itself on ``world_size`` ranks, without reading any data ([] when nothing)."""
    problems: list[str] = []
    algo, data = cfg.algo, cfg.data
    if world_size > 1 and use_distributed_sampler:
        problems.append(
            "trainer.use_distributed_sampler=true: the datamodule gives each rank its share of every meta-batch "
            "itself; set it to false"
        )
    accumulate = cfg.trainer.get("accumulate_grad_batches", 1)
    if accumulate != 1:
        problems.append(
            f"trainer.accumulate_grad_batches={accumulate}: a meta-batch already accumulates its tasks' "
            "meta-gradients; set it to 1 and raise data.meta_batch_size instead"
        )
    if cfg.trainer.get("sync_batchnorm"):
        problems.append("trainer.sync_batchnorm=true: BatchNorm statistics are those of each task; set it to false")
    if algo.inner_steps < 1:
        problems.append(f"algo.inner_steps={algo.inner_steps}: meta-training needs at least 1 inner step")
    steps_test = algo.get("inner_steps_test")
    if steps_test is not None and steps_test < 1:
        problems.append(f"algo.inner_steps_test={steps_test}: evaluation needs at least 1 inner step (or null)")
    sparsity = algo.get("mask_init_sparsity")
    if sparsity is not None and not 0 <= sparsity <= 1:
        problems.append(f"algo.mask_init_sparsity={sparsity}: the initial update sparsity is a fraction in [0, 1]")
    too_small = [f"data.{key}={data[key]} must be at least 1" for key in _POSITIVE if data[key] < 1]
    if too_small:  # the checks below divide by these or would only repeat them
        return problems + too_small
    if data.meta_batch_size % world_size:
        problems.append(
            f"data.meta_batch_size={data.meta_batch_size} is not divisible by the {world_size} ranks "
            "(trainer.devices x trainer.num_nodes): every rank takes the same number of tasks of a meta-batch"
        )
    for stage in ("val", "test"):
        num_tasks = data[f"num_{stage}_tasks"]
        if num_tasks < world_size:
            problems.append(
                f"data.num_{stage}_tasks={num_tasks} is fewer than the {world_size} ranks: every rank "
                "evaluates a share of the fixed episodes"
            )
    return problems


def data_problems(dm: EpisodicDataModule) -> list[str]:
    """What keeps the episodes of ``dm`` from being drawn from its splits ([] when nothing); reads the splits."""
    problems: list[str] = []
    for stage in ("train", "val", "test"):
        store, split = dm.store(stage), dm.splits[stage]
        where = f"split {split!r} of {dm.dataset!r}"
        if store.num_classes < dm.n_way:
            problems.append(f"data.n_way={dm.n_way} but {where} has {store.num_classes} classes")
        counts = store.class_counts()
        smallest = int(counts.argmin())
        need = dm.k_shot + dm.k_query
        if int(counts[smallest]) < need:
            problems.append(
                f"data.k_shot + data.k_query = {dm.k_shot} + {dm.k_query} = {need} but class "
                f"{store.class_names[smallest]!r} of {where} has {int(counts[smallest])} images"
            )
    return problems


def _raise(problems: list[str]) -> None:
    if problems:
        raise ConfigError("this configuration cannot train:\n  " + "\n  ".join(problems))


def check_config(cfg: DictConfig, world_size: int = 1, use_distributed_sampler: bool = False) -> None:
    """Raise ConfigError with every problem ``config_problems`` finds; reads no data."""
    _raise(config_problems(cfg, world_size, use_distributed_sampler))


def check_data(dm: EpisodicDataModule) -> None:
    """Raise ConfigError with every problem ``data_problems`` finds (after ``prepare_data``: it reads the splits)."""
    _raise(data_problems(dm))
