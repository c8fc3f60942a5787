"""Provenance (split digests in checkpoints and results) and cross-domain tests, on small generated data."""

import csv
import json
import logging
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from sparse_maml.checkpoint_io import read_checkpoint_entry
from sparse_maml.data import load_split
from sparse_maml.run import evaluate, train

from .app_helpers import ROOT, TINY, compose_config
from .data.helpers import write_cifar100, write_cub, write_folder


@pytest.fixture(autouse=True)
def _keep_the_prepared_mark_to_this_test(monkeypatch):
    """evaluate() marks the data it prepared in the process environment (sparse_maml/ddp.py): undone afterwards."""
    monkeypatch.setenv("SPARSE_MAML_DATA_PREPARED", "")


def test_split_digests_in_checkpoint_and_results_and_a_changed_test_split_warns(tmp_path):
    root = tmp_path / "images"
    for split, (classes, per_class) in {"train": (7, 5), "val": (6, 5), "test": (6, 6)}.items():
        write_folder(root, split, {f"{split}{c}": per_class for c in range(classes)})
    run = tmp_path / "run"
    data = ["data=folder", f"data.root={root}", "data.image_size=16", "logger=none"]
    results = train(compose_config([*TINY, *data], output_dir=run))
    digests = results["split_sha256"]
    assert set(digests) == {"train", "val", "test"} and len(set(digests.values())) == 3
    assert digests["test"] == load_split("folder", root, "test", image_size=16).digest
    assert json.loads((run / "results.json").read_text())["split_sha256"] == digests
    ckpt = next((run / "checkpoints").glob("epoch*.ckpt"))
    assert read_checkpoint_entry(ckpt, "EpisodicDataModule")["split_digests"] == digests

    cfg = compose_config([f"ckpt_path={ckpt}", "num_test_tasks=4"], output_dir=tmp_path / "e1", name="eval")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert evaluate(cfg)["split_sha256"] == {"test": digests["test"]}
    assert not [w for w in caught if "is not the one" in str(w.message)]  # unchanged data: no warning
    one = next((root / "test" / "test3").glob("*.png"))
    pixels = np.asarray(Image.open(one)).copy()
    pixels[5, 5] = 255 - pixels[5, 5]
    Image.fromarray(pixels).save(one)
    cfg = compose_config([f"ckpt_path={ckpt}", "num_test_tasks=4"], output_dir=tmp_path / "e2", name="eval")
    with pytest.warns(UserWarning, match=r"the test split of 'folder' read now .* is not the one .* was tested on"):
        changed = evaluate(cfg)
    assert changed["split_sha256"]["test"] != digests["test"]


@pytest.mark.slow
def test_train_tests_the_best_checkpoint_across_domains(tmp_path):
    """An Omniglot-shaped model (1x28x28, the embedded data) tested on CUB and CIFAR-FS read at its input shape,
    through train.py, then evaluate.py on CUB alone."""
    data_dir = tmp_path / "datasets"
    write_cub(data_dir / "cub", per_class=4)
    write_cifar100(data_dir / "cifar_fs", per_class=(3, 1))
    run = tmp_path / "run"
    args = [*TINY, "algo=fomaml", "logger=csv", f"paths.data_dir={data_dir}", "cross_domain=[cub,cifar_fs]"]
    done = subprocess.run(
        [sys.executable, "train.py", *args, f"hydra.run.dir={run}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cross-domain cub: " in done.stdout and "cross-domain cifar_fs: " in done.stdout
    results = json.loads((run / "results.json").read_text())
    assert results["dataset"] == "embedded" and set(results["cross_domain"]) == {"cub", "cifar_fs"}
    for name, r in results["cross_domain"].items():
        assert r["dataset"] == name and r["num_tasks"] == 6 and 0 <= r["accuracy"] <= 1 and r["n_way"] == 5
        assert list(r["split_sha256"]) == ["test"]
    cub = load_split("cub", data_dir / "cub", "test", image_size=28, channels=1)
    assert cub.from_cache and results["cross_domain"]["cub"]["split_sha256"]["test"] == cub.digest
    with open(next(run.glob("csv/version_*/metrics.csv"))) as f:
        assert sum(1 for row in csv.DictReader(f) if row.get("test/acc")) == 1  # the loggers hold the run's test only

    ckpt = next((run / "checkpoints").glob("epoch*.ckpt"))
    overrides = [f"ckpt_path={ckpt}", "data=cub", f"data.root={data_dir / 'cub'}", "data.k_query=3", "num_test_tasks=6"]
    cfg = compose_config(overrides, output_dir=tmp_path / "eval", name="eval")
    evaluated = evaluate(cfg)
    assert evaluated["dataset"] == "cub" and evaluated["num_tasks"] == 6
    assert evaluated["accuracy"] == pytest.approx(results["cross_domain"]["cub"]["accuracy"])  # the same episodes


def test_evaluate_states_the_resizing(tmp_path, caplog):
    run = tmp_path / "run"
    train(compose_config([*TINY, "algo=fomaml", "logger=none"], output_dir=run))
    write_cifar100(tmp_path / "cifar", per_class=(3, 1))
    ckpt = next((run / "checkpoints").glob("epoch*.ckpt"))
    overrides = [f"ckpt_path={ckpt}", "data=fc100", f"data.root={tmp_path / 'cifar'}", "data.k_query=3"]
    with caplog.at_level(logging.INFO, logger="sparse_maml"):
        results = evaluate(compose_config([*overrides, "num_test_tasks=4"], output_dir=tmp_path / "eval", name="eval"))
    assert results["dataset"] == "fc100" and results["num_tasks"] == 4
    assert "fc100 images read at the checkpoint's input shape 1x28x28" in caplog.text
