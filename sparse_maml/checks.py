"""Configurations that cannot work, rejected before training starts, each with a message naming its keys."""

from __future__ import annotations

from omegaconf import DictConfig

from .data import EpisodicDataModule

_POSITIVE = ("n_way", "k_shot", "k_query", "meta_batch_size", "train_batches_per_epoch")


class ConfigError(ValueError):
    """A configuration that cannot train; the message lists every problem found."""


def config_problems(
    cfg: DictConfig, dm: EpisodicDataModule, world_size: int = 1, use_distributed_sampler: bool = False
) -> list[str]:
    """What is wrong with ``cfg`` for the data of ``dm`` on ``world_size`` ranks ([] when it can train)."""
    problems: list[str] = []
    algo, data = cfg.algo, cfg.data
    if world_size > 1 and use_distributed_sampler:
        problems.append(
            "trainer.use_distributed_sampler=true: the datamodule gives each rank its share of every meta-batch "
            "itself; set it to false"
        )
    if cfg.trainer.get("sync_batchnorm"):
        problems.append("trainer.sync_batchnorm=true: BatchNorm statistics are those of each task; set it to false")
    if algo.inner_steps < 1:
        problems.append(f"algo.inner_steps={algo.inner_steps}: meta-training needs at least 1 inner step")
    steps_test = algo.get("inner_steps_test")
    if steps_test is not None and steps_test < 1:
        problems.append(f"algo.inner_steps_test={steps_test}: evaluation needs at least 1 inner step (or null)")
    too_small = [f"data.{key}={data[key]} must be at least 1" for key in _POSITIVE if data[key] < 1]
    if too_small:  # the checks below divide by these or would only repeat them
        return problems + too_small

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

    if dm.meta_batch_size % world_size:
        problems.append(
            f"data.meta_batch_size={dm.meta_batch_size} is not divisible by the {world_size} ranks "
            "(trainer.devices x trainer.num_nodes): every rank takes the same number of tasks of a meta-batch"
        )
    for stage in ("val", "test"):
        if dm.num_tasks[stage] < world_size:
            problems.append(
                f"data.num_{stage}_tasks={dm.num_tasks[stage]} is fewer than the {world_size} ranks: every rank "
                "evaluates a share of the fixed episodes"
            )
    return problems


def check_config(
    cfg: DictConfig, dm: EpisodicDataModule, world_size: int = 1, use_distributed_sampler: bool = False
) -> None:
    """Raise ConfigError with every problem ``config_problems`` finds."""
    problems = config_problems(cfg, dm, world_size, use_distributed_sampler)
    if problems:
        raise ConfigError("this configuration cannot train:\n  " + "\n  ".join(problems))
