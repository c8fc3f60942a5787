"""Everything DDP needs beyond Lightning's own strategy, in one place.

- A rank that Lightning starts re-runs the script with the parent's command line, which in a Hydra multirun is the
  whole sweep: ``share_job`` records the running job's overrides and ``job_argv`` gives them to the rank instead.
- ``distributed_job`` leaves no process group and none of these variables behind, so that the next job of a sweep
  in the same process starts its own ranks.
- ``prepare_data`` fetches the data once per machine, before anything reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytorch_lightning as pl
import torch
from filelock import FileLock
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

#: The Hydra overrides of the job a DDP rank-0 process is running, for the ranks Lightning starts.
JOB_ENV = "SPARSE_MAML_DDP_JOB"
# The data this process prepared (see prepare_data), inherited by the ranks Lightning starts from it.
_PREPARED_ENV = "SPARSE_MAML_DATA_PREPARED"
_JOB_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", JOB_ENV, _PREPARED_ENV)


def job_argv(argv: list[str]) -> list[str]:
    """The command line this process should run: ``argv`` itself, or in a rank that Lightning started from a
    process that called ``share_job``, that process's own job (not its sweep)."""
    rank = os.environ.get("LOCAL_RANK", "0")
    if rank == "0" or JOB_ENV not in os.environ:
        return argv
    return [argv[0], *json.loads(os.environ[JOB_ENV]), f"hydra.job.name=train_ddp_process_{rank}"]


def share_job(cfg: DictConfig) -> None:
    """Record this Hydra job's overrides and run folder for the ranks Lightning will start (see ``job_argv``)."""
    if "LOCAL_RANK" in os.environ or not HydraConfig.initialized():
        return
    overrides = list(HydraConfig.get().overrides.task)
    job = [*overrides, f'hydra.run.dir="{cfg.paths.output_dir}"', "hydra.output_subdir=null"]
    os.environ[JOB_ENV] = json.dumps(job)


@contextmanager
def _restored(keys: tuple[str, ...]) -> Iterator[None]:
    """Put the environment variables ``keys`` back as they were on exit."""
    before = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def distributed_job(cfg: DictConfig) -> Iterator[None]:
    """Run one training job: shared with the ranks it starts, and leaving no process group or launcher variables
    behind for the next job of a multirun sweep in this process."""
    with _restored(_JOB_VARIABLES):
        share_job(cfg)
        try:
            yield
        finally:
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()


@contextmanager
def evaluation_job() -> Iterator[None]:
    """Run one evaluation: the mark of the data it prepared is not left behind, so that a later job in the same
    process prepares (downloads) its own."""
    with _restored((_PREPARED_ENV,)):
        yield


def prepare_data(datamodule: pl.LightningDataModule) -> None:
    """Fetch the data before anything reads it, once per machine.

    The processes of one machine take turns on a lock file: the first fetches, the others find the files there
    (``prepare_data`` skips what exists). This covers ranks that a cluster launcher starts together (SLURM,
    torchrun); the ranks Lightning starts itself begin in ``fit``, after this process prepared the data, and
    inherit the mark that says so.
    """
    key = json.dumps([getattr(datamodule, "dataset", type(datamodule).__name__), str(getattr(datamodule, "root", ""))])
    if os.environ.get(_PREPARED_ENV) == key:
        return
    lock = Path(tempfile.gettempdir()) / f"sparse_maml-prepare-{hashlib.sha1(key.encode()).hexdigest()[:16]}.lock"
    with FileLock(str(lock)):
        datamodule.prepare_data()
    os.environ[_PREPARED_ENV] = key
