"""One run folder, one writer: a second train.py on a folder in use stops at once and writes nothing; a lock left
by a killed run is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from sparse_maml.run import train
from sparse_maml.run_lock import OWNER, RunLockedError, hold

from .app_helpers import ROOT, TINY, compose_config, run_script

# Long enough (36 meta-iterations) for a second process to start while the first trains.
OVERRIDES = [*TINY, "logger=csv", "trainer.max_epochs=2", "data.train_batches_per_epoch=18"]


def start(run, *extra):
    return subprocess.Popen(
        [sys.executable, "train.py", *OVERRIDES, f"hydra.run.dir={run}", *extra],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"},
    )


def run_train(run, *extra, timeout=600):
    """train.py on ``run`` to the end, as a user would (no HYDRA_FULL_ERROR)."""
    return run_script("train.py", *OVERRIDES, f"hydra.run.dir={run}", *extra, timeout=timeout)


def wait_for(path, proc, seconds=300):
    deadline = time.time() + seconds
    while not path.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert path.exists(), proc.stderr.read()[-3000:] if proc.poll() is not None else f"no {path}"


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_hold_is_reentrant_and_refuses_another_process(tmp_path):
    with hold(tmp_path), hold(tmp_path):  # train() inside the Hydra callback's hold
        owner = json.loads((tmp_path / OWNER).read_text())
        assert owner["pid"] == os.getpid()
        other = subprocess.run(
            [sys.executable, "-c", f"from sparse_maml.run_lock import hold\nwith hold({str(tmp_path)!r}): pass"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.returncode != 0 and "RunLockedError" in other.stderr
        assert f"run folder {tmp_path} is in use by" in other.stderr and f"PID {os.getpid()}" in other.stderr
    assert not (tmp_path / OWNER).exists()
    with hold(tmp_path):  # released: free again
        pass


def test_later_ranks_do_not_take_the_lock(tmp_path, monkeypatch):
    with hold(tmp_path):
        monkeypatch.setenv("LOCAL_RANK", "1")
        with hold(tmp_path):  # a rank of the same job, in another process, would pass here too
            pass


LAUNCHERS = {  # what each launcher sets in a job's first process on node 0 and in the first process of node 1
    "lightning": ({"NODE_RANK": "0", "LOCAL_RANK": "0"}, {"NODE_RANK": "1", "LOCAL_RANK": "0"}),
    "torchrun": (
        {"GROUP_RANK": "0", "RANK": "0", "LOCAL_RANK": "0"},
        {"GROUP_RANK": "1", "RANK": "2", "LOCAL_RANK": "0"},
    ),
    "slurm": (
        {"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"},
        {"SLURM_PROCID": "2", "SLURM_LOCALID": "0", "SLURM_NODEID": "1"},
    ),
}


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_only_the_first_process_of_node_zero_takes_the_lock(monkeypatch, launcher):
    from sparse_maml.run_lock import _RANK_VARIABLES, is_first_process

    for key in _RANK_VARIABLES:
        monkeypatch.delenv(key, raising=False)
    node0, node1 = LAUNCHERS[launcher]
    for key, value in node0.items():
        monkeypatch.setenv(key, value)
    assert is_first_process()
    for key, value in node1.items():
        monkeypatch.setenv(key, value)
    assert not is_first_process()  # local rank 0, but on the second node


def test_a_second_train_py_on_the_folder_stops_and_writes_nothing(tmp_path):
    alone = train(compose_config(OVERRIDES, output_dir=tmp_path / "alone"))
    run = tmp_path / "run"
    first = start(run)
    try:
        wait_for(run / OWNER, first)
        first.send_signal(signal.SIGSTOP)  # paused while holding the lock, so that it is surely still in use
        before = snapshot(run)
        second = run_train(run, "seed=1", timeout=300)
        assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr[-3000:]
        assert f"Error: run folder {run} is in use by" in second.stderr
        assert f"PID {first.pid}" in second.stderr
        after = snapshot(run)
        # The first run goes on writing its own files meanwhile; the second changed none that existed before.
        assert {k: after[k] for k in before if k in after and k.parts[0] == ".hydra"} == {
            k: v for k, v in before.items() if k.parts[0] == ".hydra"
        }
    finally:
        first.send_signal(signal.SIGCONT)
        assert first.wait(timeout=600) == 0, first.stderr.read()[-3000:]
    got = json.loads((run / "results.json").read_text())
    keys = ("accuracy", "ci95", "sparsity")
    assert {k: got[k] for k in keys} == {k: alone[k] for k in keys}


@pytest.mark.slow
def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    run = tmp_path / "run"
    first = start(run, "callbacks.last_checkpoint.every_n_train_steps=2")
    wait_for(run / "checkpoints" / "last.ckpt", first)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    assert (run / OWNER).exists()  # the dead run's record is still there
    resumed = run_train(run, "ckpt_path=auto")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    said = resumed.stdout + resumed.stderr  # Hydra's console log handler writes to stdout
    assert f"taking over the lock of {socket.gethostname()}, PID {first.pid}" in said
    assert (run / "results.json").exists() and not (run / OWNER).exists()


def test_train_refuses_a_folder_in_use(tmp_path):
    with hold(tmp_path / "run"):
        pass
    code = f"from sparse_maml.run_lock import hold\nimport time\nwith hold({str(tmp_path / 'run')!r}):\n"
    blocker = subprocess.Popen(
        [sys.executable, "-c", code + "    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert blocker.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=f"PID {blocker.pid}"):
            train(compose_config([*TINY, "logger=none"], output_dir=tmp_path / "run"))
    finally:
        blocker.kill()
        blocker.wait()
