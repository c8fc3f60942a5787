"""The comparison tables in docs/figures regenerate byte for byte from the committed runs with the commands that
docs/RESULTS.md gives for them."""

import glob
import re
import shlex

import pytest

from sparse_maml.reporting.compare import main

from ..app_helpers import ROOT

RESULTS = ROOT / "docs" / "RESULTS.md"
COMMANDS = re.findall(r"^python -m sparse_maml\.compare (.+)$", RESULTS.read_text(), flags=re.M)


def test_results_gives_a_command_for_every_committed_comparison():
    outs = {shlex.split(c)[shlex.split(c).index("--out") + 1] for c in COMMANDS}
    committed = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "docs" / "figures").glob("*/comparison.md")}
    assert committed <= outs


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.rsplit("/", 1)[-1])
def test_comparison_regenerates(command, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    args = []
    for word in shlex.split(command):  # the shell would expand the globs
        args += sorted(glob.glob(word)) if any(ch in word for ch in "*?[") else [word]
    out = args[args.index("--out") + 1]
    args[args.index("--out") + 1] = str(tmp_path)
    main(args)
    assert (tmp_path / "comparison.md").read_text() == (ROOT / out / "comparison.md").read_text()
