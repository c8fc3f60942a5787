"""What train.py and evaluate.py do, given a composed Hydra config."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar
from pytorch_lightning.loggers import WandbLogger

from .callbacks import LastCheckpoint, TrainingCurves, sparsity_metrics
from .checkpointing import AtomicCheckpointIO, read_checkpoint_entry
from .checks import check_config
from .data import EpisodicDataModule
from .module import MetaLearner

log = logging.getLogger(__name__)

#: The Hydra overrides of the job a DDP rank-0 process is running, for the ranks Lightning starts (see train.py).
DDP_JOB_ENV = "SPARSE_MAML_DDP_JOB"


def build_datamodule(data_cfg: DictConfig) -> EpisodicDataModule:
    return hydra.utils.instantiate(data_cfg, _convert_="partial")


def build_module(
    cfg: DictConfig, image_shape: tuple[int, int, int], mean: list[float], std: list[float]
) -> MetaLearner:
    """The MetaLearner for ``cfg.algo`` and ``cfg.model`` on images of ``image_shape`` (C, H, W)."""
    channels, height, width = image_shape
    if height != width:
        raise ValueError(f"backbones expect square images, the data has {height}x{width}: set data.image_size")
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


def _instantiate_all(group: DictConfig | None) -> list[Any]:
    if not group:
        return []
    return [hydra.utils.instantiate(c) for c in group.values() if c is not None and "_target_" in c]


def _resolve_ckpt(ckpt_path: str | None, last: Path) -> str | None:
    """The checkpoint to resume from: None, ``last`` (the run folder's resume checkpoint), ``auto`` (``last`` when
    it exists, else a fresh start: for jobs that a cluster may requeue) or a path."""
    if ckpt_path is None or (ckpt_path == "auto" and not last.exists()):
        return None
    if ckpt_path == "auto":
        return str(last)
    if ckpt_path == "last":
        if not last.exists():
            raise FileNotFoundError(
                f"ckpt_path=last but {last} does not exist: point hydra.run.dir at the run to "
                "resume, or pass the checkpoint's path"
            )
        return str(last)
    if not Path(ckpt_path).exists():
        raise FileNotFoundError(f"checkpoint {ckpt_path} does not exist")
    return str(ckpt_path)


def _share_job_with_ddp_ranks(cfg: DictConfig) -> None:
    """Lightning starts DDP ranks 1.. by re-running the script with this process's command line, which in a Hydra
    multirun is the whole sweep: record the job's own overrides and folder for train.py to give them instead."""
    if "LOCAL_RANK" in os.environ or not HydraConfig.initialized():
        return
    overrides = list(HydraConfig.get().overrides.task)
    os.environ[DDP_JOB_ENV] = json.dumps(
        [*overrides, f'hydra.run.dir="{cfg.paths.output_dir}"', "hydra.output_subdir=null"]
    )


def _build_loggers(cfg: DictConfig, ckpt_path: str | None) -> list[Any]:
    """The configured loggers; a resumed run continues the W&B run of its checkpoint."""
    loggers = []
    wandb_id = read_checkpoint_entry(ckpt_path, "wandb_run_id") if ckpt_path else None
    for c in (cfg.get("logger") or {}).values():
        if c is None or "_target_" not in c:
            continue
        target = hydra.utils.get_class(c._target_)
        if wandb_id and issubclass(target, WandbLogger):
            loggers.append(hydra.utils.instantiate(c, id=wandb_id, resume="allow"))
        else:
            loggers.append(hydra.utils.instantiate(c))
    return loggers


@contextmanager
def _distributed_job() -> Iterator[None]:
    """Leave no process group and none of the variables Lightning's DDP launcher sets behind, so that the next job
    of a multirun sweep in this process starts its own ranks."""
    before = {k: os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")}
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def train(cfg: DictConfig) -> dict[str, Any]:
    """Meta-train (or resume, with ``ckpt_path``), then test the best checkpoint; returns the test metrics."""
    with _distributed_job():
        return _train(cfg)


def _train(cfg: DictConfig) -> dict[str, Any]:
    _share_job_with_ddp_ranks(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    callbacks = _instantiate_all(cfg.get("callbacks"))
    if not cfg.trainer.get("enable_progress_bar", True):
        # trainer.enable_progress_bar=false alone should be enough to silence the bar.
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    last = next((c for c in callbacks if isinstance(c, LastCheckpoint)), None)
    ckpt_path = _resolve_ckpt(cfg.get("ckpt_path"), last.path if last else output_dir / "checkpoints" / "last.ckpt")
    dm = build_datamodule(cfg.data)
    loggers = _build_loggers(cfg, ckpt_path)
    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.last_saved = ckpt_path
    trainer: pl.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[checkpoint_io]
    )
    check_config(cfg, dm, trainer.world_size, cfg.trainer.get("use_distributed_sampler", True))
    module = build_module(cfg, dm.image_shape, *dm._stats())
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)

    results: dict[str, Any] = {"run_dir": str(output_dir)}
    checkpoint = next((c for c in callbacks if isinstance(c, ModelCheckpoint)), None)
    best = checkpoint.best_model_path if checkpoint is not None else ""
    if cfg.get("test_after_fit", True):
        # The best checkpoint by val/acc, as in the paper; the final weights when nothing was validated.
        trainer.test(module, datamodule=dm, ckpt_path=best or None, verbose=False)
        results.update(_results(trainer, module, dm, best or "final weights"))
        if trainer.is_global_zero:
            (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    if not trainer.is_global_zero:
        return results
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()  # flush the run files now, not at interpreter exit
    curves = next((c for c in callbacks if isinstance(c, TrainingCurves)), None)
    _summary(output_dir, best, curves.figure_path if curves else None, results)
    return results


def _results(trainer: pl.Trainer, module: MetaLearner, dm: EpisodicDataModule, checkpoint: str) -> dict[str, Any]:
    metrics = trainer.callback_metrics
    sparsity = sparsity_metrics(module.algo)
    return {
        "accuracy": float(metrics["test/acc"]),
        "ci95": float(metrics["test/acc_ci95"]),
        "num_tasks": int(metrics["test/num_tasks"]),
        "algorithm": module.hparams.algorithm,
        "dataset": dm.dataset,
        "n_way": dm.n_way,
        "k_shot": dm.k_shot,
        "inner_steps_test": module.inner_steps_test,
        "checkpoint": checkpoint,
        "sparsity": {k.split("/", 1)[1]: v for k, v in sparsity.items() if k.startswith("sparsity/")},
        "sparsity_per_tensor": {k.split("/", 1)[1]: v for k, v in sparsity.items() if k.startswith("sparsity_param/")},
    }


def _summary(output_dir: Path, best: str, figure: Path | None, results: dict[str, Any]) -> None:
    lines = [f"run folder: {output_dir}"]
    if best:
        lines.append(f"best checkpoint: {best}")
    if figure is not None and figure.exists():
        lines.append(f"figure: {figure}")
    if "accuracy" in results:
        lines.append(
            f"test accuracy: {100 * results['accuracy']:.2f} ± {100 * results['ci95']:.2f}% "
            f"({results['num_tasks']} tasks); results: {output_dir / 'results.json'}"
        )
    if results.get("sparsity"):
        lines.append("update sparsity: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in results["sparsity"].items()))
    print("\n".join(lines))


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate a checkpoint on the fixed test episodes with its own saved configuration.

    ``cfg.data`` (when given) replaces the checkpoint's data config: cross-dataset evaluation.
    """
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.exists():
        raise FileNotFoundError(f"ckpt_path={ckpt} does not exist")
    module = MetaLearner.load_from_checkpoint(ckpt, map_location="cpu")
    saved = OmegaConf.create(module.hparams.config or {})
    if "data" not in saved and cfg.get("data") is None:
        raise ValueError(f"{ckpt} holds no data configuration: pass data=<name> to evaluate it")
    data_cfg = cfg.data if cfg.get("data") is not None else saved.data
    with open_dict(data_cfg):
        data_cfg.num_test_tasks = cfg.num_test_tasks
        data_cfg.seed = cfg.seed if cfg.get("seed") is not None else saved.get("seed", 0)
        if cfg.get("seed") is not None:  # an explicit seed picks other test episodes
            data_cfg.eval_seed = cfg.seed
    if cfg.get("inner_steps_test"):
        module.inner_steps_test = int(cfg.inner_steps_test)
    dm = build_datamodule(data_cfg)
    if tuple(dm.image_shape) != (module.hparams.in_channels, module.hparams.image_size, module.hparams.image_size):
        raise ValueError(
            f"{ckpt} was trained on {module.hparams.in_channels}x{module.hparams.image_size}"
            f"x{module.hparams.image_size} images but data {data_cfg.dataset!r} gives "
            f"{'x'.join(map(str, dm.image_shape))}: set data.image_size (and channels) to match"
        )
    if dm.n_way != module.hparams.n_way:
        raise ValueError(f"{ckpt} has a {module.hparams.n_way}-way head; set data.n_way={module.hparams.n_way}")
    # The checkpoint's own normalisation, so that a model sees inputs on the scale it was trained on.
    dm.mean, dm.std = module.mean.flatten().tolist(), module.std.flatten().tolist()
    trainer = pl.Trainer(
        accelerator=cfg.accelerator,
        devices=1,
        logger=False,
        inference_mode=False,
        enable_checkpointing=False,
        default_root_dir=cfg.paths.output_dir,
    )
    trainer.test(module, datamodule=dm, verbose=False)
    results = _results(trainer, module, dm, str(ckpt))
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    print(
        f"{results['algorithm']} on {results['dataset']} ({dm.n_way}-way {dm.k_shot}-shot, "
        f"{module.inner_steps_test} inner steps): {100 * results['accuracy']:.2f} ± {100 * results['ci95']:.2f}% "
        f"over {results['num_tasks']} test tasks"
    )
    for layer, value in results["sparsity"].items():
        print(f"  update sparsity {layer}: {100 * value:.1f}%")
    print(f"results: {output_dir / 'results.json'}")
    return results
