"""Hydra multirun sweeps, alone and with DDP, and the SLURM launcher config."""

import json
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir

from .app_helpers import CONF, ROOT, TINY


def multirun(tmp_path, *overrides):
    done = subprocess.run(
        [sys.executable, "train.py", "-m", *TINY, "logger=none", *overrides, f"hydra.sweep.dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {p.name: json.loads((p / "results.json").read_text()) for p in tmp_path.iterdir() if p.is_dir()}


def test_multirun_sweep_runs_each_job_in_its_folder(tmp_path):
    jobs = multirun(tmp_path, "algo=sparse_maml,fomaml")
    assert sorted(jobs) == ["0", "1"]
    assert [jobs[j]["algorithm"] for j in ("0", "1")] == ["sparse_maml", "fomaml"]
    assert all((tmp_path / j / "checkpoints" / "last.ckpt").exists() for j in jobs)


@pytest.mark.slow
def test_multirun_with_ddp_runs_each_job_once(tmp_path):
    """Lightning starts the second rank with the parent's command line, the whole sweep: it must run one job."""
    jobs = multirun(tmp_path, "trainer=ddp", "trainer.accelerator=cpu", "data.meta_batch_size=2", "seed=0,1")
    assert sorted(jobs) == ["0", "1"]
    assert all(r["num_tasks"] == 6 for r in jobs.values())
    assert (tmp_path / "0" / "train_ddp_process_1.log").exists()  # the second rank ran in its job's folder
    assert sorted(p.name for p in (tmp_path / "0" / "checkpoints").iterdir()) == ["epoch000.ckpt", "last.ckpt"]


def test_slurm_launcher_config():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "paths.output_dir=/tmp/unused"],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (1, 4, 4)
