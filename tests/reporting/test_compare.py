"""The compare command on small fake run folders with known answers."""

import json
import math
import statistics

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf
from scipy import stats

from sparse_maml.episodes import write_episodes
from sparse_maml.reporting import episode_classes
from sparse_maml.reporting.compare import main
from sparse_maml.reporting.contrasts import compare_pair
from sparse_maml.reporting.groups import group_runs, read_class_map
from sparse_maml.reporting.runs import find_runs
from sparse_maml.reporting.stats import hierarchical_bootstrap

N = 10
BASE = [0.5 + 0.03 * i for i in range(N)]  # episode i's accuracy in the reference group
NOISE = [0.02 if i % 2 else -0.02 for i in range(N)]


def fake_run(path, algo, seed, accs, eval_seed=0, lr=0.1, classes=None):
    """A run folder as train.py writes it: .hydra/config.yaml, results.json and episodes.json (with each episode's
    ``classes`` when given)."""
    (path / ".hydra").mkdir(parents=True)
    config = {
        "seed": seed,
        "task_name": str(path.name),
        "algo": {"name": algo, "inner_lr": lr},
        "data": {"seed": seed, "eval_seed": eval_seed, "n_way": 5},
        "paths": {"output_dir": str(path)},
    }
    (path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    results = {"accuracy": statistics.fmean(accs), "ci95": 0.01, "num_tasks": len(accs), "algorithm": algo}
    (path / "results.json").write_text(json.dumps(results))
    identity = {"dataset": "fake", "split": "test", "eval_seed": eval_seed, "num_tasks": len(accs)}
    write_episodes(path, accs, identity, [f"{eval_seed}-{i}" for i in range(len(accs))], classes)
    return path


def test_known_paired_difference_is_recovered(tmp_path):
    # A is 5 points above B on every episode up to alternating ±2 points of noise, and seeds 0/1 of A are 10 points
    # above/below their mean: averaged over the shared seeds, the difference is 0.05 + NOISE[i].
    for seed, shift in ((0, 0.1), (1, -0.1)):
        fake_run(tmp_path / "m" / f"a{seed}", "sparse_maml", seed, [b + 0.05 + e + shift for b, e in zip(BASE, NOISE)])
        fake_run(tmp_path / "m" / f"b{seed}", "fomaml", seed, BASE)
    groups = group_runs(find_runs([tmp_path / "m"]))
    assert [g.label for g in groups] == ["fomaml", "sparse_maml"]
    pair = compare_pair(groups[1], groups[0])
    sd = statistics.stdev(NOISE)
    assert pair.seeds == [0, 1]
    assert pair.episode.n == N
    assert pair.episode.mean == pytest.approx(0.05)
    assert pair.episode.ci95 == pytest.approx(2.262157 * sd / math.sqrt(N), rel=1e-5)
    assert pair.episode.p == pytest.approx(stats.ttest_1samp([0.05 + e for e in NOISE], 0).pvalue, rel=1e-9)
    assert pair.per_seed == pytest.approx([0.15, -0.05])
    assert pair.seed_level.n == 2 and pair.seed_level.mean == pytest.approx(0.05)
    assert pair.note == "characters unknown: bootstrap over seeds and episodes"


def test_groups_on_different_episodes_are_flagged(tmp_path):
    fake_run(tmp_path / "a", "sparse_maml", 0, [0.9] * N)
    fake_run(tmp_path / "b", "fomaml", 0, [0.8] * N, eval_seed=1)
    fake_run(tmp_path / "c", "anil", 0, [0.7] * 6)  # the first 6 of the same episodes as a
    a, b, c = (next(g for g in group_runs(find_runs([tmp_path])) if g.label.startswith(n)) for n in "sfa")
    flagged = compare_pair(a, b)
    assert "DIFFERENT EPISODES" in flagged.note
    assert not flagged.paired and flagged.episode.n == 0
    assert flagged.mean == pytest.approx(0.1)  # the unpaired difference of the means only
    assert math.isnan(flagged.episode.ci95) and math.isnan(flagged.episode.p)
    partial = compare_pair(a, c)
    assert partial.paired and partial.episode.n == 6 and partial.note.startswith(f"6 of {N} episodes shared")


def test_seeds_pool_and_other_keys_split(tmp_path):
    # Seeds 0-2 of one configuration in two multirun folders form one group; another inner lr is another group.
    for seed in range(3):
        root = tmp_path / ("first" if seed < 2 else "second")
        fake_run(root / f"s{seed}", "sparse_maml", seed, [b + 0.01 * seed for b in BASE])
    fake_run(tmp_path / "second" / "lr", "sparse_maml", 0, BASE, lr=0.3)
    fake_run(tmp_path / "second" / "other", "sparse_maml", 5, BASE, lr=0.3)
    groups = group_runs(find_runs([tmp_path / "first", tmp_path / "second"]))
    assert [(g.label, sorted(g.runs)) for g in groups] == [
        ("sparse_maml, inner_lr=0.1", [0, 1, 2]),
        ("sparse_maml, inner_lr=0.3", [0, 5]),
    ]
    text = main([str(tmp_path / "first"), str(tmp_path / "second"), "--out", str(tmp_path / "out")])
    rows = {c[0]: c[1:] for c in cells(text)}
    pooled = [b + 0.01 for b in BASE]  # each episode averaged over seeds 0-2
    ci = 2.262157 * statistics.stdev(pooled) / math.sqrt(N)
    assert rows["sparse_maml, inner_lr=0.1"] == [
        "0,1,2",
        str(N),
        f"{100 * statistics.fmean(pooled):.2f}",
        f"{100 * ci:.2f}",
        "1.00",
    ]
    # The pair is taken over the one shared seed, 0, where both groups scored BASE.
    pair = rows["sparse_maml, inner_lr=0.1 − sparse_maml, inner_lr=0.3"]
    assert pair[:4] == ["0", str(N), "+0.00", "-"]  # one shared seed: no seed-level interval
    assert pair[7] == "inconclusive (1 seed)" and pair[8] == "0.00"  # verdict, then the CI over episodes
    assert (tmp_path / "out" / "comparison.md").read_text().strip() == text
    assert (tmp_path / "out" / "differences.png").stat().st_size > 0


def test_labels_leave_out_an_option_only_one_algorithm_has(tmp_path):
    for name, algo, mask_lr in (("s", "sparse_maml", 1e-3), ("m", "fomaml", None), ("s2", "sparse_maml", 7.5e-3)):
        run = fake_run(tmp_path / name, algo, 0, BASE)
        if mask_lr is not None:  # as train.py writes it: mask_lr exists for the masked algorithms only
            config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text())
            config["algo"]["mask_lr"] = mask_lr
            (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    assert [g.label for g in group_runs(find_runs([tmp_path / "s", tmp_path / "m"]))] == ["fomaml", "sparse_maml"]
    labels = [g.label for g in group_runs(find_runs([tmp_path]))]
    assert labels == ["fomaml", "sparse_maml, mask_lr=0.001", "sparse_maml, mask_lr=0.0075"]


def test_groups_without_shared_seeds_use_all_their_seeds(tmp_path):
    for seed in (0, 1):
        fake_run(tmp_path / f"a{seed}", "sparse_maml", seed, [b + 0.02 * seed for b in BASE])
    fake_run(tmp_path / "b", "fomaml", 7, BASE)
    a, b = sorted(group_runs(find_runs([tmp_path])), key=lambda g: g.label != "sparse_maml")
    pair = compare_pair(a, b)
    assert pair.seeds == [] and pair.per_seed == []
    assert pair.mean == pytest.approx(0.01) and pair.episode.ci95 == pytest.approx(0.0, abs=1e-12)
    assert pair.note.startswith("no shared seed: each group averaged over all its seeds")
    assert pair.seed_level.n == 0
    text = main([str(tmp_path), "--against", "fomaml", "--out", str(tmp_path / "out")])
    assert [c[0] for c in cells(text)] == ["fomaml", "sparse_maml", "sparse_maml − fomaml"]
    text = main([str(tmp_path), "--of", "fomaml", "--out", str(tmp_path / "out")])
    assert [c[0] for c in cells(text)] == ["fomaml", "sparse_maml", "fomaml − sparse_maml"]


def test_same_keeps_matched_pairs_and_recovers_the_change_of_the_gap(tmp_path):
    # sparse-MAML - MAML is 5 points (up to NOISE) at lr 0.1 and 15 points at lr 0.3: the gap grows by 10 points.
    for lr, gap in ((0.1, [0.05 + e for e in NOISE]), (0.3, [0.15] * N)):
        fake_run(tmp_path / f"s{lr}", "sparse_maml", 0, [b + g for b, g in zip(BASE, gap)], lr=lr)
        fake_run(tmp_path / f"m{lr}", "fomaml", 0, BASE, lr=lr)
    text = main([str(tmp_path), "--of", "sparse_maml", "--same", "inner_lr", "--out", str(tmp_path / "out")])
    rows = {c[0]: c[1:] for c in cells(text)}
    assert "sparse_maml, inner_lr=0.1 − fomaml, inner_lr=0.3" not in rows
    assert rows["sparse_maml, inner_lr=0.1 − fomaml, inner_lr=0.1"][2] == "+5.00"
    assert rows["sparse_maml, inner_lr=0.3 − fomaml, inner_lr=0.3"][2] == "+15.00"
    change = rows["sparse_maml − fomaml"]
    ci = 2.262157 * statistics.stdev(NOISE) / math.sqrt(N)
    assert change[:4] == ["inner_lr=0.3 minus inner_lr=0.1", "0", str(N), "+10.00"]
    assert change[9] == f"{100 * ci:.2f}"  # the CI over episodes
    with pytest.raises(SystemExit):
        main([str(tmp_path), "--same", "no_such_key", "--out", str(tmp_path / "out")])


def cells(markdown):
    """The cells of every table row but the header and rule lines."""
    rows = [line.strip("|").split(" | ") for line in markdown.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in r] for r in rows if r[0].strip() not in ("group", "A − B")]


def test_bad_input(tmp_path):
    fake_run(tmp_path / "x" / "a", "fomaml", 0, BASE)
    fake_run(tmp_path / "y" / "a", "fomaml", 0, BASE)
    with pytest.raises(ValueError, match="same configuration with the same seed 0: pass only one"):
        group_runs(find_runs([tmp_path]))
    (tmp_path / "x" / "a" / "episodes.json").unlink()
    with pytest.raises(FileNotFoundError, match="episodes.json does not exist"):
        group_runs(find_runs([tmp_path / "x"]))
    with pytest.raises(SystemExit):
        main([str(tmp_path / "y"), "--against", "nothing", "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        main([str(tmp_path / "y"), "--against", "fomaml", "--of", "fomaml", "--out", str(tmp_path / "out")])
    other = fake_run(tmp_path / "y" / "b", "fomaml", 1, BASE)
    write_episodes(other, BASE, {"num_tasks": N}, [f"elsewhere-{i}" for i in range(N)])  # e.g. the data changed
    with pytest.raises(ValueError, match="the seeds of fomaml were tested on no common episode"):
        group_runs(find_runs([tmp_path / "y"]))


def test_on_the_folders_train_and_evaluate_write(tmp_path):
    """train.py's run folder and evaluate.py's folders of its checkpoint: per-episode results that agree with
    results.json, grouped by the configuration evaluated, paired where the episodes are the same."""
    from sparse_maml.episodes import read_episodes
    from sparse_maml.run import evaluate, train

    from ..app_helpers import TINY, compose_config

    run = tmp_path / "run"
    cfg = compose_config([*TINY, "algo=fomaml", "logger=none"], output_dir=run)
    results = train(cfg)
    (run / ".hydra").mkdir()
    OmegaConf.save(cfg, run / ".hydra" / "config.yaml")  # as train.py's Hydra writes it, unresolved
    episodes = read_episodes(run)
    assert episodes.identity["num_tasks"] == 6 == len(episodes.accuracy)
    assert statistics.fmean(episodes.accuracy) == pytest.approx(results["accuracy"])
    assert len(episodes.classes) == 6 and all(len(set(cs)) == cfg.data.n_way for cs in episodes.classes)
    # A run written before classes were recorded: they are redrawn from its config, every key checked.
    old = tmp_path / "old"
    (old / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, old / ".hydra" / "config.yaml")
    (old / "results.json").write_text((run / "results.json").read_text())
    write_episodes(old, episodes.accuracy, episodes.identity, episodes.key)
    episode_classes.main([str(old), "--out", str(tmp_path / "map.json")])
    assert read_class_map(tmp_path / "map.json") == dict(zip(episodes.key, episodes.classes))
    write_episodes(old, episodes.accuracy, {**episodes.identity, "eval_seed": 1}, episodes.key)
    with pytest.raises(ValueError, match=r"not the recorded ones \(identity differs in \['eval_seed'\]"):
        episode_classes.recover(old)
    best = next((run / "checkpoints").glob("epoch*.ckpt"))
    for name, extra in (("same", []), ("k1", ["inner_steps_test=1"]), ("other", ["seed=5"])):
        overrides = [f"ckpt_path={best}", "num_test_tasks=6", *extra]
        evaluate(compose_config(overrides, output_dir=tmp_path / "eval" / name, name="eval"))
    assert read_episodes(tmp_path / "eval" / "same") == episodes  # the training run's test, episode by episode
    with pytest.raises(ValueError, match="same configuration with the same seed 0"):
        group_runs(find_runs([run, tmp_path / "eval" / "same"]))
    text = main([str(run), str(tmp_path / "eval" / "k1"), str(tmp_path / "eval" / "other"), "--out", str(tmp_path)])
    rows = {c[0]: c for c in cells(text)}
    k1, k2, other = "fomaml, inner_steps_test=1, eval_seed=0", "fomaml, eval_seed=0", "fomaml, eval_seed=5"
    assert {k1, k2, other} <= set(rows)
    assert rows[f"{k1} − {k2}"][2] == "6" and rows[f"{k1} − {k2}"][-1] == ""  # paired over the 6 episodes
    assert "DIFFERENT EPISODES" in rows[f"{k2} − {other}"][-1]


def character_structured_runs(root, classes_in_file=True):
    """Three seeds of A and B on 80 episodes of 3 of 12 characters: A − B is a seed effect (+3, +3.2, +2.9 points),
    plus the mean of the episode's characters' effects, plus episode noise. Returns (A − B [seeds, episodes],
    classes [episodes][3])."""
    rng = np.random.default_rng(0)
    classes = [sorted(rng.choice(12, 3, replace=False).tolist()) for _ in range(80)]
    character = rng.normal(0, 0.05, 12)
    base = rng.uniform(0.6, 0.8, 80)
    diffs = []
    for seed, effect in ((0, 0.03), (1, 0.032), (2, 0.029)):
        d = effect + np.array([character[c].mean() for c in classes]) + rng.normal(0, 0.01, 80)
        listed = classes if classes_in_file else None
        fake_run(root / f"a{seed}", "sparse_maml", seed, list(base + d), classes=listed)
        fake_run(root / f"b{seed}", "fomaml", seed, list(base), classes=listed)
        diffs.append(d)
    return np.array(diffs), classes


def test_printed_statistics_are_scipys_and_the_bootstrap_sees_the_characters(tmp_path):
    d, classes = character_structured_runs(tmp_path / "m")
    text = main([str(tmp_path / "m"), "--of", "sparse_maml", "--out", str(tmp_path / "out")])
    assert "The verdict uses the paired t-test over seeds" in text
    row = {c[0]: c[1:] for c in cells(text)}["sparse_maml − fomaml"]
    a_seed = [np.mean(x) for x in d + 0.5]  # the per-seed means: A = B + d, and B's level cancels in the test
    b_seed = [0.5] * 3
    by_seeds = stats.ttest_rel(a_seed, b_seed)
    half = (by_seeds.confidence_interval().high - by_seeds.confidence_interval().low) / 2
    by_episodes = stats.ttest_rel(d.mean(axis=0) + 0.5, np.full(80, 0.5))
    ep_half = (by_episodes.confidence_interval().high - by_episodes.confidence_interval().low) / 2
    low, high = hierarchical_bootstrap(d, classes)
    assert row == [
        "0,1,2",
        "80",
        f"{100 * d.mean():+.2f}",
        f"{100 * half:.2f}",
        f"{by_seeds.pvalue:.3g}",
        f"{100 * low:+.2f} to {100 * high:+.2f}",
        ", ".join(f"{100 * x:+.2f}" for x in d.mean(axis=1)),
        "A > B" if by_seeds.pvalue < 0.05 else "no difference shown",
        f"{100 * ep_half:.2f}",
        f"{by_episodes.pvalue:.3g}",
        "",
    ]
    # The characters widen the interval beyond what seeds and independent episodes give.
    assert high - low > 1.5 * np.subtract(*hierarchical_bootstrap(d, None)[::-1])
    # Classes from a map file (runs written before episodes.json recorded them) give the same table.
    character_structured_runs(tmp_path / "old", classes_in_file=False)
    keys = [f"0-{i}" for i in range(80)]
    (tmp_path / "map.json").write_text(json.dumps({"classes": dict(zip(keys, classes))}))
    old = main([str(tmp_path / "old"), "--of", "sparse_maml", "--classes", str(tmp_path / "map.json"),
                "--out", str(tmp_path / "out")])  # fmt: skip
    assert old == text
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "old"), "--classes", str(tmp_path / "bad.json"), "--out", str(tmp_path / "out")])
