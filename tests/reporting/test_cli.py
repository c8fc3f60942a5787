"""The figures command on tiny fake run folders."""

import subprocess
import sys

import pytest

from sparse_maml.reporting.cli import main

from ..app_helpers import ROOT


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
    # per-layer table: block1.conv = network + 10 points; head.bias = 90% (seed 0) and 95% (seed 1): 92.5 ± 3.5
    assert "| configuration | block1.conv | head.bias |" in table
    assert "| sparse_maml, inner_steps=25 | 95.0 ± 0.0 | 92.5 ± 3.5 |" in table
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
    assert "| sparse_maml | 1 | 55.00 | 1.00 | 65.0 | - | 50.0 |" in (out / "summary.md").read_text()
    with pytest.raises(SystemExit):
        main([str(sweep), "--out", str(out), "--vs", "algo.inner_lr"])  # does not vary here


def test_python_m_sparse_maml_figures_still_runs(sweep, tmp_path):
    out = tmp_path / "figs"
    done = subprocess.run(
        [sys.executable, "-m", "sparse_maml.figures", str(sweep), "--out", str(out), "--vs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8 runs" in done.stdout and (out / "summary.md").exists()
