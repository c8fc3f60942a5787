"""Resume: a run stopped anywhere (even by SIGKILL) and resumed ends exactly like an uninterrupted one."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from sparse_maml.checkpoint_io import AtomicCheckpointIO, read_checkpoint_entry
from sparse_maml.run import train

from .app_helpers import ROOT, TINY, compose_config

# 3 epochs of 4 meta-batches, validation after epochs 2 and 3 only, last.ckpt after every step.
SHORT = [
    *TINY,
    "logger=csv",
    "trainer.max_epochs=3",
    "trainer.check_val_every_n_epoch=2",
    "data.train_batches_per_epoch=4",
    "callbacks.last_checkpoint.every_n_train_steps=1",
]


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_state(a, b):
    """Weights, masks, both optimisers, counters, stream position and RNG states of two checkpoints are equal."""
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert len(a["optimizer_states"]) == len(b["optimizer_states"]) == 2  # theta and the mask
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"]):
        assert oa["state"].keys() == ob["state"].keys()
        for p in oa["state"]:
            for name, value in oa["state"][p].items():
                assert torch.equal(value, ob["state"][p][name]), (p, name)
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    assert a["EpisodicDataModule"] == b["EpisodicDataModule"]
    assert a["best_val_acc"] == b["best_val_acc"]
    assert torch.equal(a["rng_states"]["torch"], b["rng_states"]["torch"])


def test_resume_from_every_kind_of_checkpoint(tmp_path, monkeypatch):
    """Mid-epoch, at an epoch end without validation and at one with validation: the final weights, masks,
    optimiser states, best-so-far accuracy, validation history and test metrics are those of the full run."""
    kept = []
    save = AtomicCheckpointIO.save_checkpoint

    def keep_copies(self, checkpoint, path, storage_options=None):
        save(self, checkpoint, path, storage_options)
        if str(path).endswith("last.ckpt"):
            kept.append(tmp_path / f"step{checkpoint['global_step']}.ckpt")
            shutil.copy(path, kept[-1])

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", keep_copies)
    full_dir = tmp_path / "full"
    full = train(compose_config(SHORT, output_dir=full_dir))
    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", save)
    assert [p.name for p in kept] == [f"step{s}.ckpt" for s in range(1, 13)]
    final = load(full_dir / "checkpoints" / "last.ckpt")
    history = json.loads((full_dir / "history.json").read_text())

    # step 2: inside epoch 0; step 4: end of epoch 0 (no validation); step 8: end of epoch 1, after validation.
    # Resumed in the same folder: the best checkpoint's bookkeeping is restored only where its folder is the same.
    for step in (2, 4, 8):
        shutil.copy(tmp_path / f"step{step}.ckpt", full_dir / "checkpoints" / "last.ckpt")
        resumed = train(compose_config([*SHORT, "ckpt_path=last"], output_dir=full_dir))
        assert_same_state(final, load(full_dir / "checkpoints" / "last.ckpt"))
        assert json.loads((full_dir / "history.json").read_text())["val"] == history["val"], step
        assert {k: resumed[k] for k in ("accuracy", "ci95", "num_tasks", "checkpoint")} == {
            k: full[k] for k in ("accuracy", "ci95", "num_tasks", "checkpoint")
        }


def read_rows(run_dir):
    rows = []
    for path in sorted(run_dir.glob("csv/version_*/metrics.csv")):
        with open(path) as f:
            rows += list(csv.DictReader(f))
    return rows


def epoch_metrics(rows, key):
    return {int(r["epoch"]): float(r[key]) for r in rows if r.get(key)}


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path):
    """A real `python train.py` killed with SIGKILL inside an epoch, resumed with ckpt_path=last."""
    overrides = [
        *TINY,
        "logger=csv",
        "trainer.max_epochs=2",
        "data.train_batches_per_epoch=12",
        "callbacks.last_checkpoint.every_n_train_steps=3",
    ]
    reference = tmp_path / "reference"
    expected = train(compose_config(overrides, output_dir=reference))

    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    command = [sys.executable, "train.py", *overrides, f"hydra.run.dir={run}"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-3000:]
    stopped = load(last)
    progress = stopped["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert stopped["epoch"] == 0 and 0 < progress["processed"] < 12, progress  # killed inside the first epoch
    assert not (run / "results.json").exists()

    started = time.perf_counter()
    done = subprocess.run(
        [*command, "ckpt_path=last"], cwd=ROOT, capture_output=True, text=True, timeout=600, env=os.environ.copy()
    )
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"resumed run took {time.perf_counter() - started:.1f}s from step {stopped['global_step']}")

    assert_same_state(load(reference / "checkpoints" / "last.ckpt"), load(last))
    got = json.loads((run / "results.json").read_text())
    assert {k: got[k] for k in ("accuracy", "ci95", "num_tasks", "sparsity")} == {
        k: expected[k] for k in ("accuracy", "ci95", "num_tasks", "sparsity")
    }
    assert (
        json.loads((run / "history.json").read_text())["val"]
        == json.loads((reference / "history.json").read_text())["val"]
    )
    ref_rows, rows = read_rows(reference), read_rows(run)
    for key in ("train/loss_epoch", "train/acc_epoch", "val/acc", "val/acc_best"):
        assert epoch_metrics(rows, key) == epoch_metrics(ref_rows, key), key


def test_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    real_save = torch.save
    calls = []

    def crash_on_second_save(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            real_save({"partial": torch.zeros(1000)}, f)  # some bytes reach the file, then the write fails
            raise OSError("injected failure while writing a checkpoint")
        return real_save(obj, f, *args, **kwargs)

    overrides = [*TINY, "logger=none", "callbacks.last_checkpoint.every_n_train_steps=1"]
    monkeypatch.setattr(torch, "save", crash_on_second_save)
    with pytest.raises(OSError, match="injected failure"):
        train(compose_config(overrides, output_dir=tmp_path))
    monkeypatch.setattr(torch, "save", real_save)

    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]  # no temporary file left behind
    assert load(folder / "last.ckpt")["global_step"] == 1  # the previous checkpoint, whole
    resumed = train(compose_config([*overrides, "ckpt_path=last"], output_dir=tmp_path))
    assert load(folder / "last.ckpt")["global_step"] == 3 and resumed["num_tasks"] == 6


def test_wandb_run_resumes_with_the_same_id(tmp_path):
    """Also ckpt_path=auto: a fresh start in an empty folder, a resume where last.ckpt exists."""
    first = [*TINY, "logger=wandb", "ckpt_path=auto"]
    train(compose_config(first, output_dir=tmp_path))
    run_id = read_checkpoint_entry(tmp_path / "checkpoints" / "last.ckpt", "wandb_run_id")
    assert run_id
    train(compose_config([*first, "trainer.max_epochs=2"], output_dir=tmp_path))
    assert load(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 6
    runs = sorted(p.name for p in (tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(name.endswith(f"-{run_id}") for name in runs), runs
    assert read_checkpoint_entry(tmp_path / "checkpoints" / "last.ckpt", "wandb_run_id") == run_id


def test_ckpt_path_last_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="ckpt_path=last but .*last.ckpt does not exist"):
        train(compose_config([*TINY, "logger=none", "ckpt_path=last"], output_dir=tmp_path))
