"""Validation of one fixed checkpoint on 2 CPU ranks gives exactly the accuracies of one process, episode by
episode: each rank adapts to its contiguous share of the same fixed episodes and the shares are gathered in order."""

import json
import subprocess
import sys

from sparse_maml.run import train

from .app_helpers import ROOT, TINY, compose_config

# 10 episodes in batches of 3: one process runs 3+3+3+1, each rank 3+2 (batches grouped differently)
OVERRIDES = [*TINY, "logger=none", "test_after_fit=false", "data.num_val_tasks=10", "data.eval_batch_size=3"]


def validate(checkpoint, out, ranks):
    command = [sys.executable, "-m", "tests.validate_ranks", str(checkpoint), str(out), str(ranks), *OVERRIDES]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_validation_of_a_checkpoint_on_two_ranks_equals_one_process(tmp_path):
    train(compose_config(OVERRIDES, output_dir=tmp_path / "run"))
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    one = validate(checkpoint, tmp_path / "one.json", 1)
    two = validate(checkpoint, tmp_path / "two.json", 2)
    assert len(one["episodes"]) == 10
    assert two["episodes"] == one["episodes"]  # exactly, episode by episode
    assert two["acc"] == one["acc"]
    assert len(set(one["episodes"])) > 1  # the episodes are told apart (not all at chance)
