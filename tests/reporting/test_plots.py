"""The figures' drawing details."""

from unittest.mock import MagicMock

import pytest

from sparse_maml.reporting.plots import _errorbar, plot_training_curves
from sparse_maml.reporting.runs import find_runs


def test_one_seed_gets_the_test_ci_as_error_bar(sweep):
    runs = [r for r in find_runs([sweep]) if r.seed == 0 and r.algorithm == "fomaml"]
    groups = {r.config["algo.inner_steps"]: [r] for r in runs}
    ax = MagicMock()
    _errorbar(
        ax, groups, lambda r: 100 * r.results["accuracy"], "fomaml", "C0", single=lambda r: 100 * r.results["ci95"]
    )
    args, kwargs = ax.errorbar.call_args
    assert args[1] == pytest.approx([55.0, 75.0]) and kwargs["yerr"] == pytest.approx([1.0, 1.0])


def test_training_curves_figure(tmp_path):
    history = {
        "sparsity": [{"step": s, "network": 0.5, "layers": {"head": 0.5 - s / 100}} for s in (0, 10)],
        "val": [{"step": 10, "acc": 0.4, "ci95": 0.05}],
    }
    path = plot_training_curves(history, tmp_path / "figures" / "curves.png", title="sparse_maml")
    assert path.stat().st_size > 10_000
    assert plot_training_curves({}, tmp_path / "empty.png").exists()  # no mask, no validation yet


def test_adaptation_drawn_per_layer(tmp_path, sweep, monkeypatch):
    from sparse_maml.reporting import plots

    history = {"adaptation": [{"step": s, "layers": {"body.block1.conv": 0.0, "head": 0.1 * s}} for s in (10, 20)]}
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, dpi=100: figures.append(fig) or path)
    plot_training_curves(history, tmp_path / "curves.png")
    lines = {line.get_label(): list(line.get_ydata()) for line in figures[0].axes[2].get_lines()}
    assert lines == {"body.block1.conv": [0.0, 0.0], "head": pytest.approx([1.0, 2.0])}
    monkeypatch.undo()
    runs = find_runs([sweep])
    assert plots.plot_adaptation_by_layer(runs, [], tmp_path) is None  # no run has adaptation logged
    for run in runs:
        run.history["adaptation"] = history["adaptation"]
    path = plots.plot_adaptation_by_layer(runs, ["algo.inner_steps"], tmp_path)
    assert path == tmp_path / "adaptation_by_layer.png" and path.stat().st_size > 10_000


def test_validation_curves_per_configuration_mean_over_seeds(tmp_path, sweep, monkeypatch):
    from sparse_maml.reporting import plots

    runs = find_runs([sweep])
    assert plots.plot_validation_curves(runs, ["algo.inner_steps"], tmp_path) is None  # no validation logged
    for run in runs:  # seed 1 one point above seed 0; the sparse runs peak at step 20, the others keep rising
        peak = run.algorithm == "sparse_maml"
        accs = (0.5, 0.7, 0.6) if peak else (0.5, 0.6, 0.7)
        run.history["val"] = [{"step": 10 * (i + 1), "acc": a + run.seed / 100} for i, a in enumerate(accs)]
    run = next(r for r in runs if r.algorithm == "fomaml")
    run.history["val"] = run.history["val"][:2]  # a run stopped early: its group is cut to its length
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, dpi=100: figures.append(fig) or path)
    path = plots.plot_validation_curves(runs, ["algo.inner_steps"], tmp_path)
    assert path == tmp_path / "validation_curves.png"
    lines = {line.get_label(): list(line.get_ydata()) for line in figures[0].axes[0].get_lines()}
    short = f"fomaml, inner_steps={run.config['algo.inner_steps']} (n=2)"
    full = "fomaml, inner_steps=" + str(30 - run.config["algo.inner_steps"]) + " (n=2)"
    assert lines[short] == pytest.approx([50.5, 60.5]) and lines[full] == pytest.approx([50.5, 60.5, 70.5])
    assert lines["sparse_maml, inner_steps=5 (n=2)"] == pytest.approx([50.5, 70.5, 60.5])
    assert len(lines) == 4
