"""docs/run_plan.sh and benchmarks/plan.py: the plan's jobs, and lanes that skip finished jobs and resume the others."""

import os
import subprocess
import sys

from benchmarks.plan import jobs

from ..app_helpers import ROOT


def test_jobs_follow_the_presets_sweeps():
    h2h = jobs("omniglot/h2h_mask_lr")
    assert [folder for folder, _ in h2h] == [
        f"multirun/omniglot/h2h_mask_lr/algo.mask_lr=0.0075,algo=sparse_maml,seed={s}" for s in range(3)
    ]
    assert h2h[0][1] == ["experiment=omniglot/h2h_mask_lr", "algo=sparse_maml", "seed=0", "algo.mask_lr=0.0075"]
    second = jobs("omniglot/sweep", ["seed=1"])  # an extra override replaces a sweep value
    assert [folder for folder, _ in second] == [
        "multirun/omniglot/sweep/algo=sparse_maml,seed=1",
        "multirun/omniglot/sweep/algo=fomaml,seed=1",
    ]


def test_lanes_skip_finished_jobs_and_resume_the_others(tmp_path):
    # The script in a copy of the repository's layout, with a python that runs everything but train.py, which it
    # replaces by a stub recording its arguments and writing what a finished run holds.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "run_plan.sh").write_text((ROOT / "docs" / "run_plan.sh").read_text())
    for name in ("benchmarks", "conf", "sparse_maml"):
        (tmp_path / name).symlink_to(ROOT / name)
    stub = tmp_path / "python"
    stub.write_text(
        "#!/usr/bin/env bash\n"
        f'[[ $1 == train.py ]] || exec {sys.executable} "$@"\n'
        'echo "$@" >> calls.log\n'
        'for a in "$@"; do [[ $a == hydra.run.dir=* ]] && d=${a#hydra.run.dir=} && d=${d//\\"/}; done\n'
        'touch "$d/results.json" "$d/episodes.json"\n'
    )
    stub.chmod(0o755)

    def lane(n):
        env = {**os.environ, "PYTHON": str(stub)}
        done = subprocess.run(
            ["bash", "docs/run_plan.sh", "lane", n], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    status = subprocess.run(
        ["bash", "docs/run_plan.sh", "status"],
        cwd=tmp_path,
        env={**os.environ, "PYTHON": str(stub)},
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    lane1 = [line.split(" | ")[2] for line in status if line.startswith("lane 1 | to do")]
    assert len(lane1) == len(set(lane1)) > 10
    assert not set(lane1) & {line.split(" | ")[2] for line in status if line.startswith("lane 2")}
    finished, started = tmp_path / lane1[0], tmp_path / lane1[1]
    finished.mkdir(parents=True)
    (finished / "results.json").touch()
    (finished / "episodes.json").touch()
    (started / "checkpoints").mkdir(parents=True)
    (started / "checkpoints" / "last.ckpt").touch()

    out = lane("1")
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert f"done already: {lane1[0]}" in out
    assert len(calls) == len(lane1) - 1
    assert all("ckpt_path=auto" in c and f'hydra.run.dir="{folder}"' in c for c, folder in zip(calls, lane1[1:]))
    assert len((tmp_path / "multirun" / "plan_runs.tsv").read_text().splitlines()) == len(lane1) - 1
    lane("1")  # everything is done now: nothing runs again
    assert len((tmp_path / "calls.log").read_text().splitlines()) == len(lane1) - 1
