"""What train.py and evaluate.py do, given a composed Hydra config.

``train`` reads top to bottom: config (checked) -> trainer -> data (prepared, then checked) -> module -> fit ->
test -> results. DDP specifics live in ``ddp.py``; results.json and the printed summary in ``results.py``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar
from pytorch_lightning.loggers import WandbLogger

from . import ddp, run_lock
from .callbacks import LastCheckpoint, TrainingCurves
from .checkpoint_io import AtomicCheckpointIO, read_checkpoint_entry
from .checks import CheckpointNotFoundError, ConfigError, check_config, check_data, check_eval_config
from .cross_domain import at_input_shape, cross_domain_data
from .data import EpisodicDataModule
from .episodes import write_test_episodes
from .logs import get_logger
from .module import MetaLearner
from .results import print_evaluation, print_summary, results_of, write_results

log = get_logger(__name__)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Meta-train (or resume, with ``ckpt_path``), then test the best checkpoint; returns the test metrics."""
    output_dir = Path(cfg.paths.output_dir)
    with ddp.distributed_job(cfg), run_lock.hold(output_dir):
        pl.seed_everything(cfg.seed, workers=True)
        callbacks = build_callbacks(cfg)
        ckpt_path = resolve_ckpt(cfg.get("ckpt_path"), _last_checkpoint(callbacks, output_dir), output_dir)
        loggers = build_loggers(cfg, ckpt_path)
        trainer = build_trainer(cfg, callbacks, loggers, ckpt_path)
        check_config(cfg, trainer.world_size, cfg.trainer.get("use_distributed_sampler", True))

        dm = build_datamodule(cfg.data)
        ddp.prepare_data(dm)
        check_data(dm)
        module = build_module(cfg, dm.image_shape, *dm.normalization)

        for logger in loggers:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        if ckpt_path:
            log.info("resuming from %s", ckpt_path)
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)

        checkpoint = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
        best = checkpoint.best_model_path if checkpoint is not None else ""
        results: dict[str, Any] = {"run_dir": str(output_dir)}
        if cfg.get("test_after_fit", True):
            # The best checkpoint by val/acc, as in the paper; the final weights when nothing was validated.
            trainer.test(module, datamodule=dm, ckpt_path=best or None, verbose=False, weights_only=True)
            results.update(results_of(trainer, module, dm, best or "final weights"))
            episodes = module.test_episode_accuracies  # before the cross-domain tests replace them
            if cfg.get("cross_domain"):
                results["cross_domain"] = cross_domain_results(cfg, trainer, module, best or "final weights")
            if trainer.is_global_zero:
                write_results(output_dir, results)
                write_test_episodes(output_dir, episodes, dm, trainer.world_size)
        if trainer.is_global_zero:
            for logger in loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.finish()  # flush the run files now, not at interpreter exit
            curves = next((c for c in callbacks if isinstance(c, TrainingCurves)), None)
            print_summary(output_dir, best, curves.figure_path if curves else None, results)
        return results


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate a checkpoint on the fixed test episodes with its own saved configuration.

    ``cfg.data`` (when given) replaces the checkpoint's data config: cross-dataset evaluation.
    """
    with ddp.evaluation_job():
        return _evaluate(cfg)


def _evaluate(cfg: DictConfig) -> dict[str, Any]:
    check_eval_config(cfg)
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.exists():
        raise CheckpointNotFoundError(f"ckpt_path={ckpt} does not exist")
    module = MetaLearner.from_checkpoint(ckpt, map_location="cpu")
    if cfg.get("inner_steps_test"):
        module.inner_steps_test = int(cfg.inner_steps_test)
    # The checkpoint's own normalisation, so that the model sees inputs on the scale it was trained on.
    data_cfg = _evaluation_data(cfg, module, ckpt)
    dm = build_datamodule(data_cfg, **_normalization(module))
    ddp.prepare_data(dm)
    _check_data_fits_checkpoint(dm, module, ckpt)
    if cfg.get("data") is not None:
        hp = module.hparams
        log.info(
            "%s images read at the checkpoint's input shape %sx%sx%s",
            dm.dataset,
            hp.in_channels,
            hp.image_size,
            hp.image_size,
        )
    trainer = pl.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        logger=False,
        inference_mode=False,
        enable_checkpointing=False,
        default_root_dir=cfg.paths.output_dir,
        callbacks=build_callbacks(cfg),
    )
    trainer.test(module, datamodule=dm, verbose=False)
    results = results_of(trainer, module, dm, str(ckpt))
    if cfg.get("data") is None:
        _warn_if_test_split_changed(ckpt, dm)
    results["config"] = _evaluated_config(module, data_cfg, cfg.get("inner_steps_test"))
    output_dir = Path(cfg.paths.output_dir)
    write_results(output_dir, results)
    write_test_episodes(output_dir, module.test_episode_accuracies, dm)
    print_evaluation(output_dir, results, module.inner_steps_test)
    return results


# ---- builders -------------------------------------------------------------------------------------------------
def build_datamodule(data_cfg: DictConfig, **overrides: Any) -> EpisodicDataModule:
    """The datamodule of ``cfg.data`` (reads nothing yet)."""
    return hydra.utils.instantiate(data_cfg, _convert_="partial", **overrides)


def build_module(
    cfg: DictConfig, image_shape: tuple[int, int, int], mean: list[float], std: list[float]
) -> MetaLearner:
    """The MetaLearner for ``cfg.algo`` and ``cfg.model`` on images of ``image_shape`` (C, H, W), recording the
    datamodule's normalisation ``mean`` and ``std`` (per channel)."""
    channels, height, width = image_shape
    if height != width:
        raise ConfigError(f"backbones expect square images, the data has {height}x{width}: set data.image_size")
    algo = OmegaConf.to_container(cfg.algo, resolve=True)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    return MetaLearner(
        algorithm=algo.pop("name"),
        backbone=model.pop("name"),
        backbone_kwargs=model,
        n_way=cfg.data.n_way,
        in_channels=channels,
        image_size=height,
        mean=tuple(mean),
        std=tuple(std),
        config=OmegaConf.to_container(cfg, resolve=True),
        **algo,
    )


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The configured callbacks; ``trainer.enable_progress_bar=false`` alone is enough to silence the bar."""
    group = cfg.get("callbacks") or {}
    callbacks = [hydra.utils.instantiate(c) for c in group.values() if c is not None and "_target_" in c]
    if not (cfg.get("trainer") or {}).get("enable_progress_bar", True):  # evaluate.py's config has no trainer
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    return callbacks


def build_loggers(cfg: DictConfig, ckpt_path: str | None) -> list[Any]:
    """The configured loggers; a resumed run continues the W&B run of its checkpoint."""
    loggers = []
    wandb_id = read_checkpoint_entry(ckpt_path, "wandb_run_id") if ckpt_path else None
    for c in (cfg.get("logger") or {}).values():
        if c is None or "_target_" not in c:
            continue
        if wandb_id and issubclass(hydra.utils.get_class(c._target_), WandbLogger):
            loggers.append(hydra.utils.instantiate(c, id=wandb_id, resume="allow"))
        else:
            loggers.append(hydra.utils.instantiate(c))
    return loggers


def build_trainer(
    cfg: DictConfig, callbacks: list[pl.Callback], loggers: list[Any], ckpt_path: str | None
) -> pl.Trainer:
    """Lightning's Trainer of ``cfg.trainer``, writing checkpoints atomically."""
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.last_saved = ckpt_path  # the one to go back to should training fail before the next save
    return hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[checkpoint_io])


def resolve_ckpt(ckpt_path: str | None, last: Path, run_dir: Path | None = None) -> str | None:
    """The checkpoint to resume from: None, ``last`` (the run folder's resume checkpoint), ``auto`` (for jobs that a
    cluster may requeue: the newest of ``last`` and the ``hpc_ckpt_*.ckpt`` Lightning's SLURM requeue may have
    written in ``run_dir``, else a fresh start) or a path."""
    if ckpt_path == "auto":
        return _newest([last, *(run_dir.glob("hpc_ckpt_*.ckpt") if run_dir else [])])
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        if not last.exists():
            raise CheckpointNotFoundError(
                f"ckpt_path=last but {last} does not exist: point hydra.run.dir at the run to "
                "resume, or pass the checkpoint's path"
            )
        return str(last)
    if not Path(ckpt_path).exists():
        raise CheckpointNotFoundError(f"checkpoint {ckpt_path} does not exist")
    return str(ckpt_path)


def _newest(candidates: list[Path]) -> str | None:
    """The existing checkpoint with the most meta-iterations (the first of equals), or None."""
    found = [p for p in candidates if p.exists()]
    if not found:
        return None
    return str(max(found, key=lambda p: (read_checkpoint_entry(p, "global_step", -1), -found.index(p))))


def _normalization(module: MetaLearner) -> dict[str, list[float]]:
    return {"mean": module.mean.flatten().tolist(), "std": module.std.flatten().tolist()}


def _last_checkpoint(callbacks: list[pl.Callback], output_dir: Path) -> Path:
    last = next((c for c in callbacks if isinstance(c, LastCheckpoint)), None)
    return last.path if last else output_dir / "checkpoints" / "last.ckpt"


# ---- evaluation ------------------------------------------------------------------------------------------------
def _evaluation_data(cfg: DictConfig, module: MetaLearner, ckpt: Path) -> DictConfig:
    """The data config to evaluate on: ``cfg.data`` or the checkpoint's, with the test episodes of ``cfg``."""
    saved = OmegaConf.create(module.hparams.config or {})
    if "data" not in saved and cfg.get("data") is None:
        raise ConfigError(f"{ckpt} holds no data configuration: pass data=<name> to evaluate it")
    data_cfg = cfg.data if cfg.get("data") is not None else saved.data
    with open_dict(data_cfg):
        data_cfg.num_test_tasks = cfg.num_test_tasks
        data_cfg.seed = cfg.seed if cfg.get("seed") is not None else saved.get("seed", 0)
        if cfg.get("seed") is not None:  # an explicit seed picks other test episodes
            data_cfg.eval_seed = cfg.seed
    if cfg.get("data") is None:
        return data_cfg
    # Another dataset is read at the model's input shape (e.g. CUB at 28x28 gray for an Omniglot model).
    return at_input_shape(data_cfg, module.hparams.in_channels, module.hparams.image_size)


def _warn_if_test_split_changed(ckpt: Path, dm: EpisodicDataModule) -> None:
    """The checkpoint's own test split, read again: warn when its bytes differ from those the run was tested on."""
    saved = (read_checkpoint_entry(ckpt, type(dm).__qualname__) or {}).get("split_digests") or {}
    now = dm.split_digests.get("test")
    if saved.get("test") and now != saved["test"]:
        warnings.warn(
            f"the test split of {dm.dataset!r} read now (SHA-256 {now[:12]}...) is not the one {ckpt} was tested on "
            f"({saved['test'][:12]}...): the data changed, so this result is not comparable with the run's",
            stacklevel=2,
        )


def cross_domain_results(cfg: DictConfig, trainer: pl.Trainer, module: MetaLearner, checkpoint: str) -> dict[str, Any]:
    """The model (the ``checkpoint``'s weights, as the test left them) on the test split of each dataset in
    ``cfg.cross_domain``, read at the model's input shape; the run's loggers keep the run's own test metrics."""
    results, loggers = {}, trainer.loggers
    hp = module.hparams
    for name in cfg.cross_domain:
        dm = build_datamodule(cross_domain_data(name, cfg, hp.in_channels, hp.image_size), **_normalization(module))
        ddp.prepare_data(dm)
        trainer.loggers = []
        try:
            trainer.test(module, datamodule=dm, verbose=False)
        finally:
            trainer.loggers = loggers
        results[name] = results_of(trainer, module, dm, checkpoint)
    return results


def _evaluated_config(module: MetaLearner, data_cfg: DictConfig, inner_steps_test: int | None) -> dict[str, Any]:
    """The checkpoint's training config with the data (and inner steps) it was evaluated with: what
    ``python -m sparse_maml.compare`` groups evaluations by."""
    config = OmegaConf.create(module.hparams.config or {})
    with open_dict(config):
        config.data = data_cfg
        if inner_steps_test:
            config.algo = {**(config.get("algo") or {}), "inner_steps_test": int(inner_steps_test)}
    return OmegaConf.to_container(config, resolve=True)


def _check_data_fits_checkpoint(dm: EpisodicDataModule, module: MetaLearner, ckpt: Path) -> None:
    hp, shape = module.hparams, dm.store("test").image_shape
    if tuple(shape) != (hp.in_channels, hp.image_size, hp.image_size):
        raise ConfigError(
            f"{ckpt} was trained on {hp.in_channels}x{hp.image_size}x{hp.image_size} images but data "
            f"{dm.dataset!r} gives {'x'.join(map(str, shape))}: set data.image_size (and channels) to match"
        )
    if dm.n_way != hp.n_way:
        raise ConfigError(f"{ckpt} has a {hp.n_way}-way head; set data.n_way={hp.n_way}")
