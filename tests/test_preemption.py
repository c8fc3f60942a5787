"""Preemption loses nothing: SIGTERM, or SLURM's SIGUSR1, mid-epoch saves last.ckpt at that meta-iteration and
stops; the job run again with ckpt_path=auto ends bit-identical to an uninterrupted run."""

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch

from sparse_maml.callbacks import LastCheckpoint
from sparse_maml.preemption import Preempted, StopSignals
from sparse_maml.run import train

from .app_helpers import ROOT, TINY, compose_config
from .test_resume import assert_same_state, epoch_metrics, read_rows

# 2 epochs of 30 meta-batches; last.ckpt every 3, so that the test knows training has started.
OVERRIDES = [
    *TINY,
    "logger=csv",
    "trainer.max_epochs=2",
    "data.train_batches_per_epoch=30",
    "callbacks.last_checkpoint.every_n_train_steps=3",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    return folder, train(compose_config(OVERRIDES, output_dir=folder))


def slurm(tmp_path):
    """The environment of a one-task SLURM job, with ``scontrol`` stubbed to record its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "scontrol"
    stub.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.calls"}\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }


@pytest.mark.parametrize("signum", [signal.SIGTERM, pytest.param(signal.SIGUSR1, marks=pytest.mark.slow)])
def test_a_stop_signal_mid_epoch_saves_and_the_rerun_continues_exactly(tmp_path, reference, signum):
    ref_dir, expected = reference
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    if signum == signal.SIGUSR1:
        env |= slurm(tmp_path)
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    command = [sys.executable, "train.py", *OVERRIDES, f"hydra.run.dir={run}", "ckpt_path=auto"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    proc.send_signal(signum)
    stderr = proc.communicate(timeout=300)[1]
    assert proc.returncode == 128 + signum, stderr[-3000:]
    said = re.search(rf"stopped by {signal.Signals(signum).name} at meta-iteration (\d+): (\S+) holds the run", stderr)
    assert said and said.group(2) == str(last) and "Traceback" not in stderr, stderr[-3000:]
    stopped = torch.load(last, weights_only=True)
    progress = stopped["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert stopped["global_step"] == int(said.group(1)) and stopped["epoch"] == 0 and 0 < progress["completed"] < 30
    assert not (run / "results.json").exists()
    if signum == signal.SIGUSR1:  # handed on to Lightning's SLURM auto-requeue: the job was requeued
        assert (tmp_path / "scontrol.calls").read_text().split() == ["requeue", "4242"]
        hpc = torch.load(next(run.glob("hpc_ckpt_*.ckpt")), weights_only=True)
        assert hpc["global_step"] == stopped["global_step"]  # its checkpoint is ours, at the same meta-iteration

    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_same_state(torch.load(ref_dir / "checkpoints" / "last.ckpt", weights_only=True), torch.load(last))
    got = json.loads((run / "results.json").read_text())
    keys = ("accuracy", "ci95", "num_tasks", "sparsity")
    assert {k: got[k] for k in keys} == {k: expected[k] for k in keys}
    ref_rows, rows = read_rows(ref_dir), read_rows(run)
    for key in ("train/loss_epoch", "train/acc_epoch", "val/acc", "val/acc_best"):
        assert epoch_metrics(rows, key) == epoch_metrics(ref_rows, key), key


def test_a_signal_in_the_last_batch_finishes_the_epoch_first(tmp_path, monkeypatch):
    """At the last meta-batch of an epoch the stop waits for the epoch-end checkpoint (after validation)."""
    overrides = [*TINY, "logger=none", "trainer.max_epochs=3", "data.train_batches_per_epoch=4"]

    def signal_in_batch(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 0 and batch_idx == 3:  # the first epoch's last batch
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(LastCheckpoint, "on_train_batch_start", signal_in_batch, raising=False)
    with pytest.raises(Preempted) as stop:
        train(compose_config(overrides, output_dir=tmp_path))
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert stop.value.step == saved["global_step"] == 4 and saved["epoch"] == 0
    assert saved["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] == 1  # the whole epoch, validated
    assert not isinstance(getattr(signal.getsignal(signal.SIGTERM), "__self__", None), StopSignals)  # given back


def test_stop_signals_outside_training_are_left_alone():
    signals = StopSignals(["SIGUSR1"])
    before = signal.getsignal(signal.SIGUSR1)
    signals.install()
    assert signal.getsignal(signal.SIGUSR1) == signals._record
    signals.restore()
    assert signal.getsignal(signal.SIGUSR1) == before
    with pytest.raises(ValueError, match="unknown signal names"):
        StopSignals(["SIGNOPE"])


def test_ckpt_path_auto_takes_the_newest_of_last_and_lightnings_hpc_checkpoints(tmp_path):
    from sparse_maml.run import resolve_ckpt

    last = tmp_path / "checkpoints" / "last.ckpt"
    assert resolve_ckpt("auto", last, tmp_path) is None  # nothing yet: a fresh start
    last.parent.mkdir()
    for path, step in ((last, 40), (tmp_path / "hpc_ckpt_1.ckpt", 40)):
        torch.save({"global_step": step, "state_dict": {}}, path)
    assert resolve_ckpt("auto", last, tmp_path) == str(last)  # a tie: ours
    torch.save({"global_step": 41, "state_dict": {}}, tmp_path / "hpc_ckpt_2.ckpt")
    assert resolve_ckpt("auto", last, tmp_path) == str(tmp_path / "hpc_ckpt_2.ckpt")
