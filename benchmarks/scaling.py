"""Every core: DDP ranks against time for one run, and the parallel launcher's jobs per second for a sweep.

    python -m benchmarks.scaling                   # Omniglot base: 1 and 2 ranks, jobs at 1 and 2 at a time
    python -m benchmarks.scaling --ranks 1 2 4     # more ranks, on a machine with the cores for them
    python -m benchmarks.scaling --quick           # the embedded data, tiny sizes: a smoke test (also run by pytest)

Ranks: each configuration is a fresh gloo process group on this machine, one thread a rank, timed after start-up (data
decoded, model built, one warm-up meta-iteration). A meta-iteration is what a rank does under
``trainer=ddp trainer.accelerator=cpu``: the meta-gradient of its share of the meta-batch, the all-reduce that
averages it (DDP's: one bucket) and both Adam steps; the meta-batches are drawn before timing. Validation is each
rank's contiguous share of the fixed episodes, batched as the datamodule batches them, and the gather of their
accuracies. The all-reduce is also timed alone (the meta-gradient's size, and 4 bytes for its latency), from which
the table projects 4, 8 and 16 ranks. Configurations alternate (1, 2, 1, 2, ...) so that both see the same load.

Launcher: the same sweep of small training jobs through ``hydra/launcher=parallel`` with ``n_jobs`` 1 and 2 (each
job a whole train.py run: start-up, training, validation, test), as jobs per second.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir

# Imported before any rank's process group exists: Lightning imports torch.distributed.fsdp, whose
# ShardedGradScaler binds dist.group.WORLD as a default argument. A group bound so outlives destroy_process_group,
# and its worker threads then free the last collectives' tensors while the interpreter exits: the rank aborted
# ("terminate called without an active exception") once in 10-25 runs.
from sparse_maml.run import build_datamodule, build_module

ROOT = Path(__file__).resolve().parents[1]
OMNIGLOT = ["experiment=omniglot/cpu", f"data.root={ROOT.parent / 'shared/data/omniglot'}"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=10, help="timed meta-iterations per configuration")
    p.add_argument("--val-episodes", type=int, default=500)
    p.add_argument("--repeats", type=int, default=2, help="rounds over the rank counts")
    p.add_argument("--jobs", type=int, nargs="*", default=[1, 2], help="n_jobs of the launcher (none: skip)")
    p.add_argument("--sweep-size", type=int, default=4, help="jobs in the launcher's sweep")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("last_scaling.md"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("overrides", nargs="*", help="Hydra overrides of the run (default: experiment=omniglot/cpu)")
    args = p.parse_args(argv)
    if not args.overrides:
        args.overrides = OMNIGLOT
    if args.quick:
        args.steps, args.val_episodes, args.repeats, args.sweep_size = 2, 8, 1, 2
        args.overrides = ["data=embedded", "data.meta_batch_size=4", "algo.inner_steps=2", "model.hidden=8"]
    return args


def _setup(overrides: list[str], val_episodes: int):
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", [*overrides, f"data.num_val_tasks={val_episodes}", "paths.output_dir=."])
    torch.manual_seed(cfg.seed)
    dm = build_datamodule(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    module = build_module(cfg, dm.image_shape, *dm.normalization)
    return cfg, dm, module


def _timed(fn) -> tuple[float, float]:
    """(wall s, this rank's CPU s) of ``fn`` between barriers: CPU time shows how the work divides whatever the
    load; wall time what a user waits, the slowest rank's."""
    dist.barrier()
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    cpu = time.process_time() - cpu
    dist.barrier()
    return time.perf_counter() - start, cpu


def _rank_main(rank: int, world: int, store: str, args: argparse.Namespace, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    cfg, dm, module = _setup(args.overrides, args.val_episodes)
    tasks = int(cfg.data.meta_batch_size)
    share = slice(rank * tasks // world, (rank + 1) * tasks // world)
    loader = iter(dm.train_dataloader())
    batches = [[t[share] for t in dm.on_after_batch_transfer(next(loader), 0)] for _ in range(args.steps + 1)]
    optimizers = module.configure_optimizers()
    params = [p for p in module.parameters()]
    module.train()

    def meta_iteration(batch) -> None:
        module.zero_grad(set_to_none=True)
        module.algo.meta_loss(*batch)[0].backward()
        if world > 1:  # DDP's all-reduce: one bucket, averaged
            flat = torch.cat([p.grad.flatten() for p in params]).div_(world)
            dist.all_reduce(flat)
            torch.nn.utils.vector_to_parameters(flat, [p.grad for p in params])
        for opt in optimizers:
            opt.step()

    meta_iteration(batches[0])  # warm-up
    train_s, train_cpu = (t / args.steps for t in _timed(lambda: [meta_iteration(b) for b in batches[1:]]))

    dm._rank = lambda: (rank, world)  # the share a rank's trainer would get

    def validation() -> None:
        accs = [module.evaluate_episodes(*dm.on_after_batch_transfer(b, 0)).accuracy for b in dm.val_dataloader()]
        gathered = [None] * world
        dist.all_gather_object(gathered, torch.cat(accs).tolist())

    val_s, val_cpu = _timed(validation)
    grad = torch.zeros(sum(p.numel() for p in params))
    reps = 50
    allreduce_s = _timed(lambda: [dist.all_reduce(grad) for _ in range(reps)])[0] / reps
    tiny = torch.zeros(1)
    latency_s = _timed(lambda: [dist.all_reduce(tiny) for _ in range(reps)])[0] / reps
    if rank == 0:
        record = {
            "ranks": world,
            "train_s": train_s,
            "val_s": val_s,
            "train_cpu": train_cpu,
            "val_cpu": val_cpu,
            "allreduce_s": allreduce_s,
            "latency_s": latency_s,
            "grad_bytes": grad.numel() * 4,
            "load": os.getloadavg()[0],
        }
        Path(out).write_text(json.dumps(record))
    dist.barrier()  # no rank tears the group down while another still uses it
    dist.destroy_process_group()
    if left := _gloo_threads():
        raise RuntimeError(f"rank {rank}: the process group outlived destroy_process_group ({', '.join(left)})")


def _gloo_threads() -> list[str]:
    """Names of this process's gloo threads (Linux; elsewhere none are seen)."""
    tasks = Path("/proc/self/task")
    names = [(t / "comm").read_text().strip() for t in tasks.iterdir()] if tasks.is_dir() else []
    return sorted(n for n in names if "gloo" in n)


def time_ranks(world: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "record.json")
        mp.spawn(_rank_main, args=(world, str(Path(tmp) / "store"), args, out), nprocs=world, join=True)
        return json.loads(Path(out).read_text())


def time_launcher(n_jobs: int, args: argparse.Namespace) -> float:
    """Seconds for the sweep of ``args.sweep_size`` training jobs (seeds 0..n-1) at ``n_jobs`` at a time."""
    folder = Path(tempfile.mkdtemp(prefix="scaling-sweep-"))
    size = 2 if args.quick else 10  # meta-iterations, validation and test episodes of each job
    budget = [
        "trainer.max_epochs=1",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "callbacks=cpu_threads",
        f"data.train_batches_per_epoch={size}",
        f"data.num_val_tasks={size}",
        f"data.num_test_tasks={size}",
    ]
    command = [
        sys.executable,
        "train.py",
        "-m",
        "hydra/launcher=parallel",
        f"hydra.launcher.n_jobs={n_jobs}",
        *args.overrides,
        *budget,
        "seed=" + ",".join(str(s) for s in range(args.sweep_size)),
        f"hydra.sweep.dir={folder}",
        "hydra.sweep.subdir=${hydra.job.num}",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seconds = time.perf_counter() - start
    shutil.rmtree(folder, ignore_errors=True)
    if done.returncode != 0:
        raise RuntimeError(f"the sweep failed:\n{done.stderr[-3000:]}")
    return seconds


def project(records: dict[int, list[dict]], tasks: int, episodes: int) -> list[str]:
    """Training at R ranks: the one-rank meta-iteration's compute split over min(R, meta-batch) ranks, plus a ring
    all-reduce: 2(R-1) messages of latency and 2(R-1)/R of the gradient through each link, both taken from the
    2-rank all-reduce (a ring of 2 is 2 messages of half the gradient each); validation: the slowest rank's
    ceil(episodes / R) episodes, plus a gather. Free cores assumed: no other load, no memory-bandwidth limit."""
    one = {k: statistics.median(r[k] for r in records[1]) for k in ("train_s", "val_s")}
    two = records.get(2) or records[max(records)]
    message = statistics.median(r["latency_s"] for r in two) / 2
    grad_bytes = two[0]["grad_bytes"]
    per_byte = max(statistics.median(r["allreduce_s"] for r in two) - 2 * message, 0.0) / grad_bytes
    rows = []
    for cores in (4, 8, 16):
        ranks = min(cores, tasks)
        ring = 2 * (ranks - 1) * (message + grad_bytes / ranks * per_byte)
        train = one["train_s"] / ranks + ring
        val = one["val_s"] * math.ceil(episodes / cores) / episodes + 2 * (cores - 1) * message
        rows.append(
            f"| {cores} | {ranks} | {train:.3f} | {one['train_s'] / train:.2f}x | {ring * 1e3:.2f} | "
            f"{val:.1f} | {one['val_s'] / val:.2f}x |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load_start = os.getloadavg()
    records: dict[int, list[dict]] = {r: [] for r in args.ranks}
    for _ in range(args.repeats):
        for world in args.ranks:
            records[world].append(time_ranks(world, args))
    launcher = {}
    for _ in range(args.repeats if args.jobs else 0):
        for n_jobs in args.jobs:
            launcher.setdefault(n_jobs, []).append(time_launcher(n_jobs, args))
    load_end = os.getloadavg()

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        tasks = int(compose("config", [*args.overrides, "paths.output_dir=."]).data.meta_batch_size)
    base = {k: statistics.median(r[k] for r in records[args.ranks[0]]) for k in ("train_s", "val_s")}
    lines = [
        f"Machine: {os.cpu_count()} cores ({_cpu_name()}), torch {torch.__version__}, one thread a rank; "
        f"load average (1, 5, 15 min) {', '.join(f'{x:.2f}' for x in load_start)} at the start, "
        f"{', '.join(f'{x:.2f}' for x in load_end)} at the end. Run: {' '.join(args.overrides)}, meta-batch {tasks}, "
        f"{args.val_episodes} validation episodes; medians of {args.repeats} alternated rounds.",
        "",
        "| ranks | meta-iteration s | speed-up | CPU s a rank | speed-up, CPU | validation s | speed-up | "
        "CPU s a rank | speed-up, CPU | all-reduce ms (gradient) | all-reduce ms (4 B) | gradient KiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cpu = {k: statistics.median(r[k] for r in records[args.ranks[0]]) for k in ("train_cpu", "val_cpu")}
    for world, recs in records.items():
        t, v, tc, vc = (statistics.median(r[k] for r in recs) for k in ("train_s", "val_s", "train_cpu", "val_cpu"))
        ar, lat = (statistics.median(r[k] for r in recs) * 1e3 for k in ("allreduce_s", "latency_s"))
        lines.append(
            f"| {world} | {t:.3f} | {base['train_s'] / t:.2f}x | {tc:.3f} | {cpu['train_cpu'] / tc:.2f}x | "
            f"{v:.1f} | {base['val_s'] / v:.2f}x | {vc:.1f} | {cpu['val_cpu'] / vc:.2f}x | "
            f"{ar:.2f} | {lat:.3f} | {recs[0]['grad_bytes'] / 1024:.0f} |"
        )
    if 1 in records and len(records) > 1:
        lines += [
            "",
            "Projected (from the rows above: compute / ranks + ring all-reduce; training ranks = "
            "min(cores, meta-batch), validation on every core):",
            "",
            "| cores | training ranks | meta-iteration s | speed-up | all-reduce ms | validation s | speed-up |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += project(records, tasks, args.val_episodes)
    if launcher:
        lines += [
            "",
            f"Launcher: a sweep of {args.sweep_size} training jobs, `hydra/launcher=parallel`:",
            "",
            "| n_jobs | sweep s | jobs/s | speed-up |",
            "|---|---|---|---|",
        ]
        first = statistics.median(launcher[args.jobs[0]])
        for n_jobs, secs in launcher.items():
            s = statistics.median(secs)
            lines.append(f"| {n_jobs} | {s:.1f} | {args.sweep_size / s:.3f} | {first / s:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
