"""hydra/launcher=parallel runs a sweep's jobs side by side with the results of the default launcher, and
skip_finished / ckpt_path=auto make such a sweep restartable: finished jobs are returned as they are, started ones
resume."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .app_helpers import ROOT, TINY

JOBS = ("0", "1")


def sweep(folder: Path, *overrides: str) -> str:
    """``python train.py -m`` over two seeds into ``folder``; its standard output."""
    done = subprocess.run(
        [sys.executable, "train.py", "-m", *TINY, "logger=none", "seed=0,1", f"hydra.sweep.dir={folder}", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def results(folder: Path) -> dict[str, dict]:
    """Each job's results.json without the paths (which name the job's folder) and its test episodes."""
    out = {}
    for job in JOBS:
        r = json.loads((folder / job / "results.json").read_text())
        r.pop("run_dir"), r.pop("checkpoint")
        out[job] = {**r, "episodes": json.loads((folder / job / "episodes.json").read_text())}
    return out


def files(folder: Path) -> dict[str, bytes]:
    """Every file a job wrote, but Hydra's logs (appended to by each command)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.suffix != ".log"}


@pytest.fixture(scope="module")
def parallel(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("parallel")
    out = sweep(folder, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2")
    assert out.count("test accuracy") == 2
    return folder


@pytest.mark.slow
def test_parallel_launcher_gives_the_sequential_results(parallel, tmp_path):
    sweep(tmp_path, "hydra/launcher=basic")
    want = results(tmp_path)
    assert want["0"]["accuracy"] != want["1"]["accuracy"] or want["0"]["episodes"] != want["1"]["episodes"]
    assert results(parallel) == want
    config = (parallel / "1" / ".hydra" / "config.yaml").read_text()
    assert "seed: 1" in config and (parallel / "multirun.yaml").exists()


@pytest.mark.slow
def test_rerun_with_skip_finished_trains_nothing_and_returns_the_results(parallel, tmp_path):
    folder = tmp_path / "sweep"
    shutil.copytree(parallel, folder)
    for job in JOBS:  # training would write them again
        shutil.rmtree(folder / job / "checkpoints")
    before = files(folder)
    out = sweep(folder, "hydra/launcher=parallel", "skip_finished=true", "ckpt_path=auto")
    for job in JOBS:
        accuracy = json.loads((folder / job / "results.json").read_text())["accuracy"]
        assert f"finished already, not trained again: {folder / job} (test accuracy {accuracy:.4%})" in out
        assert not (folder / job / "checkpoints").exists()
    after = files(folder)
    after.pop("multirun.yaml"), before.pop("multirun.yaml")  # the sweep's own record of its last command
    assert after == before  # not even .hydra/ is rewritten: the folder holds the configuration it was trained with


@pytest.mark.slow
def test_rerun_resumes_a_started_job_and_skips_the_finished_one(parallel, tmp_path):
    folder = tmp_path / "sweep"
    shutil.copytree(parallel, folder)
    (folder / "1" / "results.json").unlink()  # job 1 stopped after training, before its results: started, not finished
    (folder / "1" / "episodes.json").unlink()
    out = sweep(folder, "hydra/launcher=parallel", "skip_finished=true", "ckpt_path=auto")
    assert f"finished already, not trained again: {folder / '0'}" in out
    assert f"finished already, not trained again: {folder / '1'}" not in out
    assert results(folder) == results(parallel)  # job 1 resumed from its last.ckpt and tested the same checkpoint
    log = (folder / "1" / "train.log").read_text() if (folder / "1" / "train.log").exists() else ""
    assert "resuming from" in out + log
