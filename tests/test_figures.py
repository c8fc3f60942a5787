"""The figures command on tiny fake run folders."""

import json

import pytest
import yaml

from sparse_maml.figures import find_runs, main, varying_keys


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


def test_varying_keys_ignore_seeds(sweep):
    runs = find_runs([sweep])
    assert len(runs) == 8
    assert varying_keys(runs) == ["algo.inner_steps"]


def test_figures_command(sweep, tmp_path, capsys):
    out = tmp_path / "figs"
    main([str(sweep), "--out", str(out)])
    assert (out / "vs_algo_inner_steps.png").stat().st_size > 5000
    curves = sorted(out.glob("sparsity_curves_*.png"))
    assert len(curves) == 2  # the two sparse_maml configurations; fomaml has no mask
    table = (out / "summary.md").read_text()
    # steps=25: accuracies 0.75 and 0.85 -> 80.00 ± 7.07; sparsity 85%
    assert "| sparse_maml | 25 | 2 | 80.00 ± 7.07 | 1.00 | 85.0 ± 0.0 |" in table
    assert "| fomaml | 5 | 2 | 60.00 ± 7.07 | 1.00 | - |" in table
    assert "algo.inner_steps" in capsys.readouterr().out
    # Figure 1 left and the final per-layer profile: one figure each, every masked configuration in it
    assert (out / "network_sparsity_curves.png").stat().st_size > 5000
    assert (out / "final_sparsity_by_layer.png").stat().st_size > 5000
    # per-layer table: block1.conv = network + 10 points; head.bias = mean of 90% (seed 0) and 95% (seed 1)
    assert "| configuration | block1.conv | head.bias |" in table
    assert "| sparse_maml, inner_steps=25 | 95.0 | 92.5 |" in table
    assert "| fomaml" not in table.split("per layer")[1]


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results.json"):
        main([str(tmp_path)])


def test_vs_restricts_the_keys(sweep, tmp_path):
    out = tmp_path / "figs"
    main([str(sweep), "--out", str(out), "--vs"])  # no key: one row per algorithm, seeds and steps pooled
    assert not list(out.glob("vs_*.png"))
    assert "| sparse_maml | 4 |" in (out / "summary.md").read_text()
    main([str(sweep / "0"), "--out", str(out)])  # one run: no spread to show
    assert "| sparse_maml | 1 | 55.00 | 1.00 | 65.0 |" in (out / "summary.md").read_text()
    with pytest.raises(SystemExit):
        main([str(sweep), "--out", str(out), "--vs", "algo.inner_lr"])  # does not vary here


def test_one_seed_gets_the_test_ci_as_error_bar(sweep):
    from unittest.mock import MagicMock

    from sparse_maml.figures import _errorbar

    runs = [r for r in find_runs([sweep]) if r.seed == 0 and r.algorithm == "fomaml"]
    groups = {r.config["algo.inner_steps"]: [r] for r in runs}
    ax = MagicMock()
    _errorbar(
        ax, groups, lambda r: 100 * r.results["accuracy"], "fomaml", "C0", single=lambda r: 100 * r.results["ci95"]
    )
    args, kwargs = ax.errorbar.call_args
    assert args[1] == pytest.approx([55.0, 75.0]) and kwargs["yerr"] == pytest.approx([1.0, 1.0])
