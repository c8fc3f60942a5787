"""Finding run folders and the keys that vary between them."""

import json

import pytest
import yaml
from omegaconf import OmegaConf

from sparse_maml.optimizers import NAMED as NAMED_OPTIMIZERS
from sparse_maml.reporting.groups import configuration
from sparse_maml.reporting.runs import ADDED, Run, find_runs, varying_keys

from ..app_helpers import ROOT, compose_config
from .conftest import fake_run


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


def _set(path, **keys):
    """Set dotted ``keys`` in a fake run's .hydra/config.yaml (None deletes a key)."""
    config = yaml.safe_load((path / ".hydra" / "config.yaml").read_text())
    for dotted, value in keys.items():
        *groups, name = dotted.split("__")
        node = config
        for g in groups:
            node = node.setdefault(g, {})
        if value is None:
            node.pop(name, None)
        else:
            node[name] = value
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))


ADAM = {"_target_": "torch.optim.Adam", "_partial_": True}


def test_runs_of_an_earlier_schema_compare_equal_to_todays(tmp_path):
    """A run that named its optimiser ("adam") and predates trainer.overfit_batches computed what today's run with
    the Adam spec and overfit_batches 0 computes: no key tells them apart, and they pool as one configuration."""
    fake_run(tmp_path / "then", "fomaml", 25, 0, 0.8, 0.5)
    fake_run(tmp_path / "today", "fomaml", 25, 1, 0.8, 0.5)
    _set(tmp_path / "then", algo__outer_optimizer="adam")
    _set(tmp_path / "today", algo__outer_optimizer=ADAM, trainer__overfit_batches=0.0)
    runs = find_runs([tmp_path])
    assert runs[0].config == {**runs[1].config, "seed": 0, "data.seed": 0, "paths.output_dir": str(tmp_path / "then")}
    assert varying_keys(runs) == []
    assert configuration(runs[0]) == configuration(runs[1])  # what compare groups by


@pytest.mark.parametrize(
    "today, key",
    [
        ({"algo__outer_optimizer": {**ADAM, "_target_": "torch.optim.SGD"}}, "algo.outer_optimizer._target_"),
        ({"algo__outer_optimizer": {**ADAM, "weight_decay": 1e-4}}, "algo.outer_optimizer.weight_decay"),
        ({"algo__outer_optimizer": ADAM, "trainer__overfit_batches": 2}, "trainer.overfit_batches"),
    ],
)
def test_a_real_difference_from_an_earlier_schema_still_shows(tmp_path, today, key):
    fake_run(tmp_path / "then", "fomaml", 25, 0, 0.8, 0.5)
    fake_run(tmp_path / "today", "fomaml", 25, 0, 0.8, 0.5)
    _set(tmp_path / "then", algo__outer_optimizer="adam")
    _set(tmp_path / "today", **today)
    assert key in varying_keys(find_runs([tmp_path]))


def test_added_keys_hold_todays_defaults():
    """ADDED repeats conf's defaults for the runs that predate them: it must agree with conf."""
    for dotted, value in ADDED.items():
        group, key = dotted.split(".", 1)
        assert OmegaConf.select(OmegaConf.load(ROOT / "conf" / group / "_base.yaml"), key) == value, dotted
    assert NAMED_OPTIMIZERS["adam"] == OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "optimizer" / "adam.yaml"))


def test_todays_config_reads_as_the_committed_runs(tmp_path):
    """A run of today's code at a committed run's settings is the same configuration to the reporting: a config key
    added since, with a default that changes nothing, belongs in ``ADDED`` (or among the bookkeeping keys)."""
    committed = Run(ROOT / "results" / "omniglot" / "sweep" / "algo=sparse_maml,seed=0")
    today = tmp_path / "today"
    (today / ".hydra").mkdir(parents=True)
    config = compose_config(["experiment=omniglot/sweep", "algo=sparse_maml", "seed=0"])
    OmegaConf.save(config, today / ".hydra" / "config.yaml")  # as Hydra writes it, unresolved
    (today / "results.json").write_text(json.dumps({"accuracy": 0.9, "algorithm": "sparse_maml"}))
    then, now = configuration(committed), configuration(Run(today))
    differ = {k: (then.get(k, "<absent>"), now.get(k, "<absent>")) for k in then.keys() | now.keys()}
    assert {k: v for k, v in differ.items() if v[0] != v[1]} == {}
