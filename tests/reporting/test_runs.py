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


def test_varying_keys_leave_out_an_option_only_one_algorithm_has(sweep):
    runs = find_runs([sweep])
    for r in runs:  # as train.py writes it: mask_lr exists for the masked algorithm only
        if r.algorithm == "sparse_maml":
            r.config["algo.mask_lr"] = 1e-3
    assert varying_keys(runs) == ["algo.inner_steps"]
    runs[0].config["algo.mask_lr"] = 7.5e-3  # now it varies between sparse-MAML runs: it tells them apart
    assert runs[0].algorithm == "sparse_maml" and varying_keys(runs) == ["algo.inner_steps", "algo.mask_lr"]
