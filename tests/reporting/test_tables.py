"""Markdown tables of finished runs."""

from sparse_maml.reporting.runs import find_runs
from sparse_maml.reporting.tables import adaptation_table, summary_table


def test_adaptation_table_last_validation_mean_and_std_over_seeds(sweep):
    runs = find_runs([sweep])
    assert adaptation_table(runs, ["algo.inner_steps"]) == ""  # nothing logged
    for run in runs:  # an earlier validation, then the last: head 10% + 10 points per seed, body not adapted
        last = {"body.block1.conv": 0.0, "head": 0.1 + 0.1 * run.seed}
        run.history["adaptation"] = [
            {"step": 10, "layers": {"body.block1.conv": 0.5, "head": 0.5}},
            {"step": 20, "layers": last},
        ]
    table = adaptation_table(runs, ["algo.inner_steps"]).splitlines()
    assert table[0] == "| configuration | seeds | block1.conv | head |"
    assert "| sparse_maml, inner_steps=25 | 2 | 0.00 ± 0.00 | 15.00 ± 7.07 |" in table
    assert len(table) == 2 + 4  # two algorithms x two K
    # by algorithm, then K in numeric order (5 before 25, which text order would reverse)
    assert [row.split(" | ")[0] for row in table[2:]] == [
        "| fomaml, inner_steps=5",
        "| fomaml, inner_steps=25",
        "| sparse_maml, inner_steps=5",
        "| sparse_maml, inner_steps=25",
    ]


def test_summary_names_the_tested_step_and_the_sparsity_at_the_end(sweep):
    runs = [r for r in find_runs([sweep]) if r.algorithm == "sparse_maml" and r.config["algo.inner_steps"] == 5]
    for run, best in zip(runs, (200, 400)):  # validation peaks at `best`, then falls: that checkpoint is tested
        run.history["val"] = [{"step": s, "acc": 0.5 - abs(s - best) / 1000} for s in (200, 400, 600)]
        run.history["sparsity"][-1]["network"] = 0.6 + run.seed / 10
    row = next(line for line in summary_table(runs, ["algo.inner_steps"]).splitlines() if "sparse_maml" in line)
    assert row.endswith("| 200/400 | 65.0 ± 7.1 |")
