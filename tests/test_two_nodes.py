"""Two "nodes" of one process each on 127.0.0.1, started as a cluster starts them (MASTER_ADDR, MASTER_PORT,
NODE_RANK, WORLD_SIZE and LOCAL_RANK set; Lightning's ``num_nodes=2``): the run trains what one process trains,
node 0 alone writes the checkpoints, results and logs and holds the run lock, and a stopped run resumes."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from sparse_maml.run import train

from .app_helpers import ROOT, TINY, compose_config

OVERRIDES = [*TINY, "logger=csv", "data.meta_batch_size=4", "trainer.max_epochs=2"]  # 2 tasks per node
NODES = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_nodes=2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_nodes(folder, *extra):
    port = _free_port()
    nodes = []
    for node in (0, 1):
        env = {
            **os.environ,
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "NODE_RANK": str(node),
            "WORLD_SIZE": "2",
            "LOCAL_RANK": "0",
            "OMP_NUM_THREADS": "1",
        }
        command = [sys.executable, "train.py", *OVERRIDES, *NODES, *extra, f"hydra.run.dir={folder}"]
        nodes.append(
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = [node.communicate(timeout=600) for node in nodes]
    for node, (_, err) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]


def _weights(path):
    ckpt = torch.load(path, weights_only=True)
    return ckpt, {k: v for k, v in ckpt["state_dict"].items() if k.startswith("algo.")}


@pytest.mark.slow
def test_two_nodes_train_what_one_process_trains_and_resume(tmp_path):
    one = train(compose_config(OVERRIDES, output_dir=tmp_path / "one"))

    folder = tmp_path / "nodes"
    run_two_nodes(folder, "trainer.max_epochs=1", "test_after_fit=false")  # stopped after the first epoch
    stopped, _ = _weights(folder / "checkpoints" / "last.ckpt")
    assert stopped["global_step"] == 3
    outputs = run_two_nodes(folder, "ckpt_path=auto")  # the same command with ckpt_path=auto: to the end

    a, weights_one = _weights(tmp_path / "one" / "checkpoints" / "last.ckpt")
    b, weights_nodes = _weights(folder / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 6
    assert a["EpisodicDataModule"]["train_position"] == b["EpisodicDataModule"]["train_position"] == 24
    # The tolerance of tests/test_ddp.py: rounding of the two-way average, grown over 6 Adam steps.
    worst = max(
        (weights_one[k] - weights_nodes[k]).abs().max().item()
        for k in weights_one
        if not k.replace("__", ".").endswith("conv.bias")
    )
    assert worst < 1e-5, worst

    # Written once, by node 0: one set of checkpoints, one log, one results file, one summary printed.
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == sorted(
        p.name for p in (tmp_path / "one" / "checkpoints").iterdir()
    )
    assert not list(folder.rglob("*.tmp*"))
    assert sorted(p.name for p in (folder / "csv").iterdir()) == ["version_0", "version_1"]  # one per command
    results = (folder / "results.json").read_text()
    assert '"num_tasks": 6' in results
    assert sum("results.json" in out for out in outputs) == 1
    assert not (folder / ".lock.owner").exists()  # node 0 released its lock; node 1 never took it
    assert json.loads(results)["accuracy"] == pytest.approx(one["accuracy"], abs=1e-6)
