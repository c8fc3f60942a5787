"""The tuning table: each algorithm's choice is its highest validation accuracy, never its test accuracy."""

import json

import pytest
import yaml

from sparse_maml.reporting.tuning import main

from .conftest import fake_run


def with_validation(path, val, test):
    history = json.loads((path / "history.json").read_text())
    history["val"] = [{"step": 200 * (i + 1), "epoch": i, "acc": a, "ci95": 0.01} for i, a in enumerate(val)]
    (path / "history.json").write_text(json.dumps(history))
    results = json.loads((path / "results.json").read_text())
    (path / "results.json").write_text(json.dumps(results | {"accuracy": test}))


def test_the_choice_is_on_validation_and_the_table_shows_every_setting(tmp_path):
    grid = {  # (algorithm, inner steps) -> validation curve, test accuracy
        ("anil", 5): ([0.60, 0.71, 0.70], 0.95),  # best test, not the best validation
        ("anil", 25): ([0.65, 0.74, 0.74], 0.80),  # best validation, reached first at step 400
        ("fomaml", 5): ([0.70, 0.72], 0.85),
        ("fomaml", 25): ([0.69, 0.70], 0.90),
    }
    for i, ((algo, steps), (val, test)) in enumerate(grid.items()):
        fake_run(tmp_path / "grid" / str(i), algo, steps, 0, test, 0.5)
        with_validation(tmp_path / "grid" / str(i), val, test)
    text = main([str(tmp_path / "grid"), "--out", str(tmp_path / "out")])
    rows = [line.split(" | ") for line in text.splitlines()[2:]]
    assert [(r[0].strip("| "), r[1]) for r in rows] == [
        ("anil", "inner_steps=5"),
        ("anil", "inner_steps=25"),
        ("fomaml", "inner_steps=5"),
        ("fomaml", "inner_steps=25"),
    ]
    chosen = [(r[0].strip("| "), r[1], r[3]) for r in rows if "**chosen**" in r[2]]
    assert chosen == [("anil", "inner_steps=25", "400"), ("fomaml", "inner_steps=5", "400")]
    assert (tmp_path / "out" / "choices.md").read_text() == text + "\n"


def test_an_option_another_algorithm_leaves_unset_is_not_part_of_its_setting(tmp_path):
    for i, (algo, first_order) in enumerate([("sparse_maml", None), ("meta_sgd", False), ("meta_sgd", True)]):
        path = tmp_path / "grid" / str(i)
        fake_run(path, algo, 1, 0, 0.9, 0.5)
        with_validation(path, [0.7 + i / 100], 0.9)
        config = yaml.safe_load((path / ".hydra" / "config.yaml").read_text())
        config["algo"]["first_order"] = first_order
        (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [line.split(" | ")[1] for line in main([str(tmp_path / "grid")]).splitlines()[2:]]
    assert rows == ["first_order=False", "first_order=True", "default"]


def test_a_run_without_validation_is_named(tmp_path):
    fake_run(tmp_path / "grid" / "0", "anil", 5, 0, 0.9, 0.5)
    with pytest.raises(ValueError, match=r"grid/0: history.json holds no validation accuracy"):
        main([str(tmp_path / "grid")])
