"""The committed runs in results/ are the evidence behind docs/RESULTS.md: its compare and figures commands, run on
them, give the committed tables (docs/figures/*/comparison.md and summary.md) byte for byte."""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import shlex
import subprocess

import pytest

from sparse_maml.reporting import cli, compare

from .app_helpers import ROOT

TABLES = {"sparse_maml.compare": (compare.main, "comparison.md"), "sparse_maml.figures": (cli.main, "summary.md")}
COMMANDS = [
    line
    for line in (ROOT / "docs" / "RESULTS.md").read_text().splitlines()
    if line.startswith(tuple(f"python -m {module} " for module in TABLES))
]


def test_results_md_commands_read_the_evidence_folder():
    assert len(COMMANDS) >= 10
    for command in COMMANDS:
        runs = list(itertools.takewhile(lambda a: not a.startswith("--"), shlex.split(command)[3:]))
        assert runs and all(a.startswith("results/omniglot/") for a in runs), command


def test_no_tracked_file_is_ignored():
    """Evidence lives where git tracks it: nothing tracked sits under an ignored folder (multirun/, outputs/)."""
    tracked_but_ignored = subprocess.run(
        ["git", "ls-files", "-ci", "--exclude-standard"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked_but_ignored == ""


@pytest.mark.parametrize("command", COMMANDS)
def test_evidence_regenerates_the_committed_table(command, tmp_path):
    module, *argv = shlex.split(command)[2:]
    main, table = TABLES[module]
    out = argv.index("--out") + 1
    committed = ROOT / argv[out] / table
    argv[out] = str(tmp_path)
    # run folders from the repository root, with the shell's globs expanded (results/omniglot/sweep/algo=*seed=0)
    argv = [
        x
        for a in argv
        for x in (sorted(str(ROOT / p) for p in glob.glob(a, root_dir=ROOT)) if a.startswith("results/") else [a])
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        main(argv)
    assert (tmp_path / table).read_bytes() == committed.read_bytes()
