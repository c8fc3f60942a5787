"""Tiny fake run folders, as train.py writes them."""

import json

import pytest
import yaml


def fake_run(path, algo, steps, seed, acc, sparsity):
    (path / ".hydra").mkdir(parents=True)
    config = {
        "seed": seed,
        "algo": {"name": algo, "inner_steps": steps, "inner_lr": 0.1},
        "data": {"seed": seed, "k_shot": 1},
        "paths": {"output_dir": str(path)},
    }
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    masked = algo == "sparse_maml"
    results = {
        "accuracy": acc,
        "ci95": 0.01,
        "num_tasks": 300,
        "algorithm": algo,
        "dataset": "embedded",
        "sparsity": {"network": sparsity, "body.block1.conv": sparsity + 0.1} if masked else {},
        "sparsity_per_tensor": {"body.block1.conv.weight": sparsity + 0.1, "head.bias": 0.9 + seed / 20}
        if masked
        else {},
    }
    (path / "results.json").write_text(json.dumps(results))
    history = {
        "sparsity": [
            {"step": s, "network": 0.5, "layers": {"body.block1.conv": 0.5, "head": 0.5 - s / 100}}
            for s in range(0, 30, 10)
        ]
        if masked
        else [],
        "val": [],
    }
    (path / "history.json").write_text(json.dumps(history))


@pytest.fixture
def sweep(tmp_path):
    i = 0
    for algo in ("sparse_maml", "fomaml"):
        for steps in (5, 25):
            for seed, acc in ((0, 0.5), (1, 0.6)):
                fake_run(tmp_path / "multirun" / str(i), algo, steps, seed, acc + steps / 100, 0.6 + steps / 100)
                i += 1
    return tmp_path / "multirun"
