"""docs/run_plan.sh and benchmarks/plan.py: the plan's jobs are the committed runs' folders, and the plan is one
parallel ``train.py -m`` sweep per entry that skips finished jobs and resumes the others."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from benchmarks.plan import jobs

from ..app_helpers import ROOT, compose_config


def plan(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        ["bash", "docs/run_plan.sh", *args],
        cwd=cwd,
        env={**os.environ, "PYTHON": sys.executable, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_jobs_follow_the_presets_sweeps():
    h2h = jobs("omniglot/h2h_mask_lr")
    assert [folder for folder, _ in h2h] == [
        f"multirun/omniglot/h2h_mask_lr/algo.mask_lr=0.0075,algo=sparse_maml,seed={s}" for s in range(3)
    ]
    assert h2h[0][1] == ["experiment=omniglot/h2h_mask_lr", "algo=sparse_maml", "seed=0", "algo.mask_lr=0.0075"]
    second = jobs("omniglot/sweep", ["seed=1"], sweep_dir="results/${task_name}")  # seed=1 replaces a sweep value
    assert [folder for folder, _ in second] == [
        "results/omniglot/sweep/algo=sparse_maml,seed=1",
        "results/omniglot/sweep/algo=fomaml,seed=1",
    ]


def test_jobs_name_folders_as_hydra_writes_the_values():
    # Hydra's sweeper parses each value and writes it back (false -> False, 1e-1 -> 0.1) before it names a folder; a
    # folder named from the value as typed would show a finished run as "to do" and let the plan train it again.
    typed = ["algo=meta_sgd", "algo.first_order=false", "algo.inner_lr=1e-1", "seed=1,2"]
    assert [folder for folder, _ in jobs("omniglot/h2h_tuned", typed, sweep_dir="r/${task_name}")] == [
        f"r/omniglot/h2h_tuned/algo.first_order=False,algo.inner_lr=0.1,algo=meta_sgd,seed={s}" for s in (1, 2)
    ]


@pytest.mark.parametrize("entry", plan("entries").splitlines())
def test_every_entry_composes_from_the_command_line_alone(entry):
    # Hydra's multirun composes the command line before it applies the sweep's params: an override of a key that
    # only the sweep's algo has fails there (a whole sweep lost at its start) unless the entry names the algo too.
    # The entry's own sweeps (key=a,b) are left to the sweeper there too.
    preset, *overrides = entry.split()
    fixed = [o.input_line for o in OverridesParser.create().parse_overrides(overrides) if not o.is_sweep_override()]
    compose_config([f"experiment={preset}", *fixed])


def test_status_finds_every_committed_run_done():
    committed = subprocess.run(
        ["git", "ls-files", "results/omniglot/*/*/results.json"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    status = [line.split(" | ") for line in plan("status").splitlines()]
    assert len(committed) >= 45
    assert {folder for state, folder in status if state == "done"} == {str(Path(p).parent) for p in committed}
    assert len({folder for _, folder in status}) == len(status)  # no two entries share a job


def test_run_is_one_parallel_sweep_per_entry(tmp_path):
    # The script with a python that runs everything but train.py, which it replaces by a stub recording its arguments.
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "run_plan.sh", tmp_path / "docs")
    stub = tmp_path / "python"
    stub.write_text(
        f'#!/usr/bin/env bash\n[[ $1 == train.py ]] || exec {sys.executable} "$@"\necho "$@" >> calls.log\n'
    )
    stub.chmod(0o755)
    plan("run", "omniglot/h2h", "omniglot/sweep", env={"PYTHON": str(stub), "JOBS": "3"}, cwd=tmp_path)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert [c.split(" experiment=")[1].split(" hydra.sweep")[0] for c in calls] == [
        "omniglot/h2h",
        "omniglot/sweep",
        "omniglot/sweep seed=1",
        "omniglot/sweep seed=2",
    ]
    for call in calls:
        assert call.startswith("train.py -m hydra/launcher=parallel hydra.launcher.n_jobs=3 ")
        assert call.endswith(" hydra.sweep.dir=results/${task_name} ckpt_path=auto skip_finished=true")
    rows = (tmp_path / "results" / "omniglot" / "plan_runs.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in rows] == [
        "results/omniglot/h2h",
        "results/omniglot/sweep",
        "results/omniglot/sweep seed=1",
        "results/omniglot/sweep seed=2",
    ]


@pytest.mark.slow
def test_run_skips_the_committed_runs_and_leaves_them_as_they_are(tmp_path):
    """The plan's own command, on a copy of the committed runs of one preset: every job is found finished."""
    evidence = ROOT / "results" / "omniglot" / "h2h_mask_lr"
    shutil.copytree(evidence, tmp_path / "omniglot" / "h2h_mask_lr")

    def digests() -> dict[str, str]:
        folder = tmp_path / "omniglot" / "h2h_mask_lr"
        files = [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".log"]  # Hydra's logs are appended to
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    before = digests()
    out = plan("run", "omniglot/h2h_mask_lr", env={"RESULTS": str(tmp_path), "JOBS": "2"})
    assert out.count("finished already, not trained again") == 3
    after = digests()
    assert after.pop("multirun.yaml") and after == before
