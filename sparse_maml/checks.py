"""Configurations that cannot work, rejected before training starts, each with a message naming its keys.

Two passes, so that a wrong setting is reported before any data is read: ``check_config`` looks at the composed
config alone (algorithm, trainer, episode shape, ranks), ``check_data`` at the prepared splits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from .data import EpisodicDataModule


@dataclass(frozen=True)
class Setting:
    """A numeric setting: ``key`` (dotted, skipped where the config has no such key) holds a ``kind`` (int or
    float; a bool is neither) for which ``ok`` holds, or null where ``nullable``; ``rule`` says so in words."""

    key: str
    kind: type
    ok: Callable[[float], bool]
    rule: str
    nullable: bool = False


def _at_least(n: float) -> Callable[[float], bool]:
    return lambda v: v >= n


def _positive(v: float) -> bool:
    return v > 0


#: Every numeric setting of a training config, checked for type and range before anything else.
TRAIN_SETTINGS = (
    Setting("seed", int, lambda v: True, "the seed is an integer"),
    Setting("algo.inner_lr", float, _positive, "the inner loop's step size is a number > 0"),
    Setting("algo.inner_steps", int, _at_least(1), "meta-training needs at least 1 inner step"),
    Setting("algo.inner_steps_test", int, _at_least(1), "evaluation needs at least 1 inner step (or null)", True),
    Setting("algo.lr", float, _positive, "the outer learning rate is a number > 0"),
    Setting("algo.mask_lr", float, _at_least(0), "the mask's learning rate is a number >= 0 (0: a fixed mask)"),
    Setting(
        "algo.mask_init_sparsity",
        float,
        lambda v: 0 <= v <= 1,
        "the initial update sparsity is a fraction in [0, 1]",
        True,
    ),
    Setting("algo.grad_clip", float, _positive, "the gradient norm clip is a number > 0 (or null: none)", True),
    Setting("algo.grad_clamp", float, _positive, "the gradient clamp is a number > 0 (or null: none)", True),
    Setting("model.hidden", int, _at_least(1), "every Conv4 block needs at least 1 channel"),
    *(
        Setting(f"data.{key}", int, _at_least(1), "must be at least 1")
        for key in ("n_way", "k_shot", "k_query", "meta_batch_size", "train_batches_per_epoch", "eval_batch_size")
    ),
    Setting("data.num_val_tasks", int, _at_least(1), "validation needs at least 1 episode"),
    Setting("data.num_test_tasks", int, _at_least(1), "the test needs at least 1 episode"),
    Setting("data.image_size", int, _at_least(1), "images need at least 1 pixel (or null: the format's own)", True),
    Setting(
        "data.channels", int, lambda v: v in (1, 3), "images have 1 or 3 channels (or null: the format's own)", True
    ),
    Setting("data.eval_seed", int, lambda v: True, "the evaluation seed is an integer"),
    Setting("trainer.max_epochs", int, lambda v: v >= 1 or v == -1, "train for at least 1 epoch (or -1)", True),
    Setting("trainer.check_val_every_n_epoch", int, _at_least(1), "validate every 1 or more epochs (or null)", True),
)
#: Those of evaluate.py's config.
EVAL_SETTINGS = (
    Setting("num_test_tasks", int, _at_least(1), "the test needs at least 1 episode"),
    Setting("inner_steps_test", int, _at_least(1), "evaluation needs at least 1 inner step (or null)", True),
    Setting("seed", int, lambda v: True, "the seed is an integer (or null: the checkpoint's test episodes)", True),
)


_ABSENT = object()


def setting_problems(cfg: DictConfig, settings: tuple[Setting, ...]) -> list[str]:
    """Each of ``settings`` that ``cfg`` holds with the wrong type or out of range ([] when none)."""
    problems = []
    for s in settings:
        value = OmegaConf.select(cfg, s.key, default=_ABSENT)
        if value is _ABSENT or (value is None and s.nullable):
            continue
        number = isinstance(value, int) if s.kind is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not number or (s.kind is float and not math.isfinite(value)):
            kind = "an integer" if s.kind is int else "a finite number"
            problems.append(f"{s.key}={value!r} is not {kind}: {s.rule}")
        elif not s.ok(value):
            problems.append(f"{s.key}={value}: {s.rule}")
    return problems


class ConfigError(ValueError):
    """A configuration that cannot train; the message lists every problem found."""


class CheckpointNotFoundError(ConfigError, FileNotFoundError):
    """``ckpt_path`` names a checkpoint that does not exist."""


def config_problems(cfg: DictConfig, world_size: int = 1, use_distributed_sampler: bool = False) -> list[str]:
    """What is wrong with ``cfg`` itself on ``world_size`` ranks, without reading any data ([] when nothing)."""
    problems = setting_problems(cfg, TRAIN_SETTINGS)
    settings_ok, data = not problems, cfg.data
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
    if not settings_ok:  # the checks below divide and compare those settings
        return problems
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


def _raise(problems: list[str], what: str = "this configuration cannot train") -> None:
    if problems:
        raise ConfigError(f"{what}:\n  " + "\n  ".join(problems))


def check_config(cfg: DictConfig, world_size: int = 1, use_distributed_sampler: bool = False) -> None:
    """Raise ConfigError with every problem ``config_problems`` finds; reads no data."""
    _raise(config_problems(cfg, world_size, use_distributed_sampler))


def check_eval_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming every setting of evaluate.py's ``cfg`` of the wrong type or out of range."""
    _raise(setting_problems(cfg, EVAL_SETTINGS), "this evaluation cannot run")


def check_data(dm: EpisodicDataModule) -> None:
    """Raise ConfigError with every problem ``data_problems`` finds (after ``prepare_data``: it reads the splits)."""
    _raise(data_problems(dm))
