"""Finding run folders and the keys that vary between them."""

import pytest

from sparse_maml.reporting.runs import find_runs, varying_keys


def test_varying_keys_ignore_seeds(sweep):
    runs = find_runs([sweep])
    assert len(runs) == 8
    assert varying_keys(runs) == ["algo.inner_steps"]


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results.json"):
        find_runs([tmp_path])
