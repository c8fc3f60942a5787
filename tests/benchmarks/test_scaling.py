"""benchmarks/scaling.py and benchmarks/ddp_drift.py run end to end in their quick modes and print their tables."""

import pytest

from benchmarks import ddp_drift, scaling


@pytest.mark.slow
def test_scaling_quick(tmp_path):
    out = tmp_path / "scaling.md"
    scaling.main(["--quick", "--jobs", "--out", str(out)])  # ranks only: the launcher's sweep is minutes
    text = out.read_text()
    assert "| 1 | " in text and "| 2 | " in text and "Projected" in text


def test_ddp_drift_quick(tmp_path):
    out = tmp_path / "drift.md"
    ddp_drift.main(["--quick", "--out", str(out)])
    text = out.read_text()
    assert "| 3 | " in text and "2 ranks (DDP's arithmetic)" in text and "perturbation" in text
