"""The jobs of Hydra experiment presets and what they cost on one CPU thread (the run plan of docs/RESULTS.md).

    python -m benchmarks.plan jobs omniglot/h2h omniglot/sweep seed=1   # one line per job: folder, then overrides
    python -m benchmarks.plan jobs --sweep-dir 'results/${task_name}' omniglot/h2h   # the run plan's folders
    OMP_NUM_THREADS=1 python -m benchmarks.plan cost omniglot/h2h ... --base-s-per-it 0.75

A preset's jobs are the product of its ``hydra.sweeper.params``, each in ``<hydra.sweep.dir>/<override_dirname>``
as ``python train.py -m experiment=NAME`` would run them. ``cost`` builds each distinct configuration (the seed
aside) as train.py does, times meta-iterations and evaluation episodes of it and of the base configuration
(``omniglot/cpu``, sparse-MAML, K=25) alternately in this process, and projects each job's hours as
iterations x s/it + evaluated episodes x s/episode, in units of the base meta-iteration scaled to
``--base-s-per-it`` (the base's s/it on a quiet machine, e.g. from benchmarks/RESULTS.md), so that the
projection does not depend on this machine's load.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from sparse_maml.run import build_datamodule, build_module

CONF = Path(__file__).resolve().parents[1] / "conf"
#: What the time of a meta-iteration or an evaluation episode depends on (not the learning rates or the seed).
COST_KEYS = (
    "algo.name", "algo.inner_steps", "algo.inner_steps_test", "algo.first_order", "model",
    "data.n_way", "data.k_shot", "data.k_query", "data.meta_batch_size", "data.image_size",
)  # fmt: skip


def jobs(preset: str, extra: list[str] = (), sweep_dir: str | None = None) -> list[tuple[str, list[str]]]:
    """(run folder, overrides) of every job of ``experiment=preset``'s sweep; ``extra`` overrides (``key=value``,
    ``key=a,b`` to sweep) replace or add sweep values, e.g. ``seed=1`` for a second seed; ``sweep_dir`` replaces
    ``hydra.sweep.dir`` (the run plan's ``results/${task_name}``).

    Every value is parsed and written back as Hydra's basic sweeper writes a job's overrides (``false`` becomes
    ``False``, ``1e-1`` becomes ``0.1``), so that the folders are those Hydra makes however an entry spells them."""
    hydra = [f"hydra.sweep.dir={sweep_dir}"] if sweep_dir else []
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"experiment={preset}", *hydra], return_hydra_config=True)
    lines = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.params or {}).items()] + list(extra)
    choices: dict[str, list[str]] = {}  # a later override of a key replaces its values in the key's place
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element()
        if override.is_sweep_override():
            values = list(override.sweep_string_iterator())
        else:
            values = [override.get_value_element_as_str()]
        choices[key] = [f"{key}={v}" for v in values]
    root = OmegaConf.to_container(cfg.hydra.sweep, resolve=True)["dir"]
    return [
        (f"{root}/{','.join(sorted(overrides))}", [f"experiment={preset}", *overrides])
        for overrides in itertools.product(*choices.values())
    ]


def _config(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[*overrides, "paths.output_dir=/tmp/unused"])
    OmegaConf.resolve(cfg)
    return cfg


def _timers(cfg: DictConfig):
    """(one meta-iteration, one evaluation batch of ``eval_batch_size`` episodes) of a composed config."""
    dm = build_datamodule(cfg.data)
    module = build_module(cfg, dm.image_shape, *dm.normalization)
    train = [dm.normalize(b) if b.dtype == torch.uint8 else b for b in next(iter(dm.train_dataloader()))]
    evals = [dm.normalize(b) if b.dtype == torch.uint8 else b for b in next(iter(dm.val_dataloader()))]

    def step() -> None:
        module.algo.meta_loss(*train)[0].backward()
        module.zero_grad(set_to_none=True)

    def evaluate() -> None:
        module.validation_step(evals, 0)
        module.val_accs.reset()

    return step, evaluate, len(evals[0])


def _seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cost(entries: list[tuple[str, list[str]]], base_s_per_it: float, repeats: int) -> str:
    """A markdown table of every job's projected hours, per preset and in total."""
    base_step, base_eval, base_n = _timers(_config(["experiment=omniglot/cpu", "algo=sparse_maml"]))
    base_it = _seconds(base_step, repeats)
    episode_per_it = (_seconds(base_eval, 1) / base_n) / base_it  # base episode / base it
    rows, total, measured = [], 0.0, {}
    for preset, extra in entries:
        hours = 0.0
        for folder, overrides in jobs(preset, extra):
            cfg = _config(overrides)
            key = json.dumps(
                [OmegaConf.to_object(OmegaConf.create({"v": OmegaConf.select(cfg, k)})) for k in COST_KEYS]
            )
            if key not in measured:
                step, evaluate, n = _timers(cfg)
                # each configuration timed right after the base: ratios, robust to the machine's load
                measured[key] = (
                    _seconds(step, repeats) / _seconds(base_step, repeats),
                    (_seconds(evaluate, 1) / n) / (_seconds(base_eval, 1) / base_n),
                )
            it, ep = measured[key]
            iters = cfg.trainer.max_epochs * cfg.data.train_batches_per_epoch
            validations = cfg.trainer.max_epochs // cfg.trainer.check_val_every_n_epoch
            episodes = validations * cfg.data.num_val_tasks + cfg.data.num_test_tasks
            h = base_s_per_it * (iters * it + episodes * ep * episode_per_it) / 3600
            hours += h
            rows.append(f"| {preset} | {Path(folder).name} | {it:.2f} | {ep:.2f} | {iters} | {episodes} | {h:.2f} |")
        total += hours
        rows.append(f"| **{' '.join([preset, *extra])}** | {len(jobs(preset, extra))} jobs | | | | | **{hours:.2f}** |")
    head = (
        "| preset | job | s/it ÷ base | s/episode ÷ base | meta-iterations | evaluated episodes | hours |\n"
        "|---|---|---|---|---|---|---|"
    )
    return (
        f"{head}\n" + "\n".join(rows) + f"\n\ntotal {total:.2f} lane-hours at {base_s_per_it} s per base "
        f"meta-iteration; measured here: {base_it:.3f} s per base meta-iteration (forward and backward), a base "
        f"evaluation episode {episode_per_it:.3f} base meta-iterations"
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["jobs", "cost"])
    p.add_argument("presets", nargs="+", help="experiment presets, each followed by key=value overrides for its jobs")
    p.add_argument("--sweep-dir", help="jobs: the sweeps' folder instead of the presets' (hydra.sweep.dir)")
    p.add_argument("--base-s-per-it", type=float, default=0.75, help="s per base meta-iteration on a quiet thread")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    entries: list[tuple[str, list[str]]] = []  # (preset, its extra overrides)
    for token in args.presets:
        if "=" not in token:
            entries.append((token, []))
        elif entries:
            entries[-1][1].append(token)
        else:
            p.error(f"{token}: an override follows the preset it applies to")
    if args.mode == "jobs":
        for preset, extra in entries:
            for folder, overrides in jobs(preset, extra, args.sweep_dir):
                print(folder, *overrides)
        return
    torch.set_num_threads(1)
    print(cost(entries, args.base_s_per_it, args.repeats))


if __name__ == "__main__":
    main()
