"""The benchmark script runs end to end in its quick mode, so that it cannot rot."""

import pytest
import torch

from benchmarks import baseline
from benchmarks.run import build, main, make_batch, parse_args


def test_quick_benchmark_writes_its_table(tmp_path):
    out = tmp_path / "table.md"
    text = main(
        ["--quick", "--algos", "sparse_maml", "fomaml", "--threads", str(torch.get_num_threads()), "--out", str(out)]
    )
    assert out.read_text() == text
    rows = [line for line in text.splitlines() if line.startswith(("| sparse_maml |", "| fomaml |"))]
    assert len(rows) == 4  # two algorithms x K in {1, 3}
    assert "peak(K=3) / peak(K=1)" in text and "| project batched |" in text
    same_work = next(line for line in text.splitlines() if line.startswith("Same work"))
    assert all(float(v.rstrip(".,")) < 1e-10 for v in same_work.split()[-3::2])


def test_baseline_evaluation_matches_the_project():
    args = parse_args(["--quick"])
    algo = build("sparse_maml", args, 2, torch.device("cpu")).double()
    xs, ys, xq, yq = (t.double() if t.is_floating_point() else t for t in make_batch(args, 3, torch.device("cpu")))
    torch.testing.assert_close(baseline.evaluate(algo, xs, ys, xq, yq), algo.evaluate(xs, ys, xq, yq).accuracy)


def test_step_variants_script_runs(capsys):
    from benchmarks import steps

    steps.main(["--quick"])
    out = capsys.readouterr().out
    assert "| + whole block as one op (project) |" in out and "convolutions" in out


def test_versus_an_earlier_commit_runs(tmp_path):
    """The Omniglot-scale comparison with the package at another commit (here HEAD itself) in its quick mode."""
    import subprocess

    from benchmarks import versus
    from benchmarks.reference import REPO

    if subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    text = versus.main(["--quick", "--against", "HEAD", "--out", str(tmp_path / "v.md")])
    assert "| this, tasks together |" in text and "Profile of one meta-iteration, this" in text
    differ = float(text.split("differ by at most ")[1].split(".\n")[0])
    assert differ < 1e-10  # the same meta-gradients


def test_chunk_size_script_runs():
    from benchmarks import chunks

    assert "| 5 x 16x16 x 1 |" in chunks.main(["--quick"])
