"""train.py and evaluate.py end to end on the embedded dataset with tiny budgets."""

import csv
import json
import subprocess
import sys
import time

import pytest
import torch

from sparse_maml import load_learner
from sparse_maml.algorithms import ALGORITHMS
from sparse_maml.run import evaluate, train

from .app_helpers import ROOT, TINY, compose_config, wandb_payload


def run_train(tmp_path, *overrides):
    cfg = compose_config([*TINY, *overrides], output_dir=tmp_path)
    return train(cfg)


def read_metrics(run_dir):
    with open(next(run_dir.glob("csv/version_*/metrics.csv"))) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("algo", ALGORITHMS)
def test_train_then_evaluate(tmp_path, algo):
    run = tmp_path / "run"
    results = run_train(run, f"algo={algo}", "logger=csv")
    assert (run / "checkpoints" / "last.ckpt").exists()
    best = list((run / "checkpoints").glob("epoch*.ckpt"))
    assert len(best) == 1
    assert (run / "figures" / "training_curves.png").stat().st_size > 10_000
    rows = read_metrics(run)
    columns = set().union(*(r.keys() for r in rows))
    assert any(r.get("val/acc") for r in rows) and "train/loss_step" in columns
    masked = algo in ("sparse_maml", "sparse_relu_maml")
    assert ("sparsity/network" in columns) == masked
    if masked:
        assert {"sparsity/body.block1.conv", "sparsity/head", "sparsity_param/head.weight"} <= columns
    assert results["num_tasks"] == 6 and 0 <= results["accuracy"] <= 1
    history = json.loads((run / "history.json").read_text())
    assert len(history["val"]) == 1 and (len(history["sparsity"]) > 1) == masked

    cfg = compose_config([f"ckpt_path={best[0]}", "num_test_tasks=5"], output_dir=tmp_path / "eval", name="eval")
    evaluated = evaluate(cfg)
    written = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert written["num_tasks"] == 5 == evaluated["num_tasks"]
    assert {"accuracy", "ci95", "num_tasks", "algorithm", "dataset", "sparsity"} <= set(written)
    assert written["algorithm"] == algo and written["dataset"] == "embedded"
    assert bool(written["sparsity"]) == masked


def test_wandb_offline_run_files_hold_sparsity(tmp_path):
    run_train(tmp_path, "algo=sparse_maml", "logger=wandb")
    files = list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1
    keys = (
        b"sparsity/network",
        b"sparsity/body.block1.conv",
        b"sparsity_param/head.weight",
        b"val/acc",
        b"train/loss_step",
        b"mask_hist/head",
    )
    deadline = time.time() + 60
    while time.time() < deadline:  # W&B's service process writes the file asynchronously
        content = wandb_payload(files[0])
        if all(k in content for k in keys):
            break
        time.sleep(1)
    assert [k for k in keys if k not in content] == []


def test_csv_logger_does_not_touch_wandb(tmp_path):
    run_train(tmp_path, "algo=sparse_maml", "logger=csv")
    assert not (tmp_path / "wandb").exists()


def test_load_learner_matches_evaluate(tmp_path):
    run = tmp_path / "run"
    results = run_train(run, "algo=sparse_maml", "logger=none", "data.num_test_tasks=9")
    learner = load_learner(results["checkpoint"])
    cfg = compose_config([*TINY, "algo=sparse_maml", "data.num_test_tasks=9"], output_dir=run)
    import hydra

    dm = hydra.utils.instantiate(cfg.data)
    dm.setup("test")
    accs = []
    for xs, ys, xq, yq in dm.test_dataloader():  # raw uint8 episodes: the learner normalises them
        assert xs.dtype == torch.uint8
        for t in range(xs.shape[0]):
            fast = learner.adapt(xs[t], ys[t])
            accs.append((learner.predict(fast, xq[t]).argmax(-1) == yq[t]).float().mean().item())
    assert len(accs) == 9
    assert sum(accs) / len(accs) == pytest.approx(results["accuracy"], abs=1e-6)


def test_command_line_quickstart(tmp_path):
    """The scripts as a user runs them."""
    run, out = tmp_path / "run", tmp_path / "eval"
    args = [a for a in TINY if "progress" not in a]
    done = subprocess.run(
        [sys.executable, "train.py", "algo=sparse_maml", "logger=csv", f"hydra.run.dir={run}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"run folder: {run}" in done.stdout and "test accuracy:" in done.stdout
    ckpt = run / "checkpoints" / "last.ckpt"
    done = subprocess.run(
        [sys.executable, "evaluate.py", f"ckpt_path={ckpt}", "num_test_tasks=7", f"hydra.run.dir={out}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "over 7 test tasks" in done.stdout and "update sparsity" in done.stdout
    assert json.loads((out / "results.json").read_text())["num_tasks"] == 7
    done = subprocess.run(
        [sys.executable, "train.py", "algo=sparse_mamll", f"hydra.run.dir={run}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0 and "sparse_mamll" in done.stderr and "Available options" in done.stderr


def test_evaluate_reuses_the_training_runs_test_episodes(tmp_path):
    results = run_train(tmp_path / "run", "algo=fomaml", "logger=csv")
    best = next((tmp_path / "run" / "checkpoints").glob("epoch*.ckpt"))
    same = compose_config([f"ckpt_path={best}", "num_test_tasks=6"], output_dir=tmp_path / "a", name="eval")
    assert evaluate(same)["accuracy"] == pytest.approx(results["accuracy"])  # data.eval_seed from the checkpoint
    other = compose_config([f"ckpt_path={best}", "num_test_tasks=6", "seed=5"], output_dir=tmp_path / "b", name="eval")
    assert evaluate(other)["accuracy"] != pytest.approx(results["accuracy"])  # an explicit seed: other episodes


def test_everyday_trainer_flags_need_no_plus(tmp_path):
    """fast_dev_run and the limit_* flags are declared in conf/trainer: a plain override, as Lightning documents."""
    results = run_train(tmp_path, "logger=none", "trainer.fast_dev_run=true", "trainer.limit_test_batches=1")
    assert results["num_tasks"] == 3  # one test meta-batch of data.eval_batch_size=3 episodes
    assert not (tmp_path / "checkpoints").exists()  # a dry run writes no checkpoints
