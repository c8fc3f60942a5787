"""Meta-iteration and evaluation speed of sparse_maml's engine against the official-style loop (``baseline.py``).

    python -m benchmarks.run                  # the CPU table of benchmarks/RESULTS.md (about 20 minutes, 2 cores)
    python -m benchmarks.run --quick          # tiny sizes, seconds: checks that the script still runs

Both implementations get the same meta-batch and the same model and do the same work (their meta-gradients are
compared before timing); warm-up runs are excluded; the runs alternate between the two so that both see the same
machine load, and the median is reported. Peak memory is that of each implementation's first timed run, each
(algorithm, K) cell in a fresh interpreter: the process's peak RSS on CPU (reset before the run, free heap handed
back first) and ``torch.cuda.max_memory_allocated`` on GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F

from sparse_maml.algorithms import InnerLoopLearner, build_algorithm
from sparse_maml.models import build_backbone

from . import baseline
from .allocator import retain_freed_memory
from .measure import Timing, interleaved

MIB = 2**20
#: meta-iteration variants timed on GPU besides float32: (bf16 autocast, CUDA graphs)
GPU_MODES = {"bf16": (True, False), "CUDA graphs": (False, True), "bf16 + CUDA graphs": (True, True)}
# The paper's protocol: 400 epochs x 100 meta-batches, validating on 500 episodes every 5 epochs as the presets do.
PROTOCOL_ITERATIONS, PROTOCOL_VALIDATIONS = 40_000, 80


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", default=["sparse_maml", "fomaml"])
    p.add_argument("--steps", nargs="+", type=int, default=[5, 25, 100], help="inner steps K")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per cell (after one warm-up)")
    p.add_argument("--cell-budget", type=float, default=240.0, help="seconds per cell before repeats stop early")
    p.add_argument("--image-size", type=int, default=84)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--ways", type=int, default=5)
    p.add_argument("--shots", type=int, default=5)
    p.add_argument("--queries", type=int, default=15)
    p.add_argument("--meta-batch", type=int, default=2)
    p.add_argument("--eval-episodes", type=int, default=500, help="validation episodes to report the time of")
    p.add_argument("--eval-measured", type=int, default=None, help="episodes actually timed (CPU: 4; GPU: all)")
    p.add_argument("--eval-steps", type=int, default=25)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument(
        "--retain-freed-memory",
        action="store_true",
        help="glibc malloc keeps freed memory (benchmarks/allocator.py), for both implementations alike",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("last_run.md"))
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script")
    p.add_argument("--cell", nargs=3, metavar=("KIND", "ALGO", "K"), help=argparse.SUPPRESS)  # one cell, internal
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.image_size, args.hidden = [1, 3], 1, 28, 8
        args.queries, args.eval_episodes, args.eval_measured, args.eval_steps = 3, 4, 2, 3
    if args.eval_measured is None:
        args.eval_measured = args.eval_episodes if args.device.startswith("cuda") else 4
    args.eval_measured = min(args.eval_measured, args.eval_episodes)
    return args


def make_batch(args: argparse.Namespace, tasks: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """xs [T, N*K, C, S, S], ys [T, N*K], xq [T, N*Q, C, S, S], yq [T, N*Q]: smooth class prototypes plus smooth
    noise, standardised, so that the inner loop behaves as on images (white noise makes it diverge)."""
    gen = torch.Generator().manual_seed(seed)
    size, c = (args.image_size, args.image_size), args.channels

    def smooth(n: int, low: int) -> torch.Tensor:
        return F.interpolate(torch.randn(n, c, low, low, generator=gen), size=size, mode="bilinear")

    protos = smooth(tasks * args.ways, 7).view(tasks, args.ways, c, *size)

    def draw(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(args.ways).repeat_interleave(per_class)
        x = protos[:, y] + 0.7 * smooth(tasks * len(y), max(2, args.image_size // 4)).view(tasks, len(y), c, *size)
        return (x - x.mean()) / x.std(), y.repeat(tasks, 1)

    xs, ys = draw(args.shots)
    xq, yq = draw(args.queries)
    return tuple(t.to(device) for t in (xs, ys, xq, yq))


def build(name: str, args: argparse.Namespace, steps: int, device: torch.device) -> InnerLoopLearner:
    torch.manual_seed(0)
    backbone = build_backbone("conv4", args.channels, args.image_size, args.ways, args.hidden)
    baseline.check_backbone(backbone)
    return build_algorithm(name, backbone, inner_lr=0.1, inner_steps=steps).to(device)


def grad_difference(name: str, args: argparse.Namespace, device: torch.device) -> float:
    """Largest relative difference between the meta-gradients of the baseline and of the project (fast path on),
    in float64 with K=2 on one task: float32 meta-gradients of a 25-step loop differ by their rounding alone."""
    algo = build(name, args, 2, device).double()
    algo.fast_forward = True
    batch = tuple(t.double() if t.is_floating_point() else t for t in make_batch(args, 1, device))
    grads = []
    for run in (lambda: baseline.meta_backward(algo, *batch), lambda: algo.meta_backward(*batch)):
        algo.zero_grad(set_to_none=True)
        run()
        grads.append({n: p.grad.detach().clone() for n, p in algo.named_parameters()})
    diffs = []
    for n, want in grads[0].items():
        if n.endswith(("conv.bias", "conv__bias")):  # zero in theory (batch norm follows): rounding noise only
            continue
        diffs.append(((grads[1][n] - want).norm() / want.norm().clamp_min(1e-12)).item())
    return max(diffs)


def bench_meta(name: str, steps: int, args: argparse.Namespace, device: torch.device) -> dict:
    algo = build(name, args, steps, device)
    batch = make_batch(args, args.meta_batch, device)

    def base() -> None:
        algo.zero_grad(set_to_none=True)
        baseline.meta_backward(algo, *batch)

    def proj(bf16: bool = False, graphs: bool = False) -> Callable[[], None]:
        def step() -> None:
            algo.cuda_graphs = graphs
            algo.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                algo.meta_backward(*batch)

        return step

    # The project runs first: its first run, whose peak memory is kept, follows only the warm-ups.
    fns = {"project": proj(), "baseline": base}
    if device.type == "cuda":  # the GPU modes (a CUDA graph per mode is captured in the warm-up)
        fns.update({mode: proj(*flags) for mode, flags in GPU_MODES.items()})
    # Warm-up: on CPU one inner step warms every kernel and allocation (same shapes); on GPU the full loop, so
    # that the CUDA graphs are captured for K steps before the timing.
    algo.inner_steps = steps if device.type == "cuda" else 1
    for warm_up in fns.values():
        warm_up()
    algo.inner_steps = steps
    t = interleaved(fns, device, args.repeats, args.cell_budget)
    return {"algo": name, "steps": steps, **t}


def bench_eval(args: argparse.Namespace, device: torch.device) -> dict:
    algo = build("sparse_maml", args, args.eval_steps, device)
    xs, ys, xq, yq = make_batch(args, args.eval_measured, device, seed=1)
    fns = {
        "baseline loop": lambda: baseline.evaluate(algo, xs, ys, xq, yq),
        "project loop": lambda: algo.evaluate(xs, ys, xq, yq, batched=False).accuracy,
        "project batched": lambda: algo.evaluate(xs, ys, xq, yq, batched=True).accuracy,
    }
    algo.inner_steps = 1
    for fn in fns.values():  # warm-up
        fn()
    algo.inner_steps = args.eval_steps
    accs: dict[str, torch.Tensor] = {}
    timed = {k: (lambda k=k, fn=fn: accs.__setitem__(k, fn())) for k, fn in fns.items()}
    timings = interleaved(timed, device, 1 if device.type == "cpu" else args.repeats, float("inf"))
    ref = accs["baseline loop"]
    agree = max((a - ref).abs().max().item() for a in accs.values())
    return {"timings": timings, "agree": agree}


def _mib(t: Timing) -> str:
    return f"{t.peak_bytes / MIB:,.0f}"


def meta_table(rows: list[dict], tasks: int) -> str:
    lines = [
        "| algorithm | K | baseline s/it | project s/it | speed-up | tasks/s baseline | tasks/s project "
        "| peak MiB baseline | peak MiB project | runs b/p |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, p = r["baseline"], r["project"]
        lines.append(
            f"| {r['algo']} | {r['steps']} | {b.median:.2f} | {p.median:.2f} | {b.median / p.median:.2f}x "
            f"| {tasks / b.median:.3f} | {tasks / p.median:.3f} | {_mib(b)} | {_mib(p)} "
            f"| {len(b.seconds)}/{len(p.seconds)} |"
        )
    return "\n".join(lines)


def gpu_modes_table(rows: list[dict], tasks: int) -> str:
    """Seconds per meta-iteration and peak ``torch.cuda.max_memory_allocated`` of the project in each GPU mode."""
    modes = ["project", *GPU_MODES]
    lines = [
        "| algorithm | K | " + " | ".join(f"{m} s/it (peak MiB)" for m in modes) + " |",
        "|---|---|" + "---|" * len(modes),
    ]
    for r in rows:
        cells = [f"{r[m].median:.4f} ({_mib(r[m])})" for m in modes]
        lines.append(f"| {r['algo']} | {r['steps']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_lines(rows: list[dict]) -> list[str]:
    out = []
    for name in dict.fromkeys(r["algo"] for r in rows):
        cells = sorted((r for r in rows if r["algo"] == name), key=lambda r: r["steps"])
        if len(cells) < 2:
            continue
        lo, hi = cells[0], cells[-1]
        ratio = {k: hi[k].peak_bytes / lo[k].peak_bytes for k in ("baseline", "project")}
        out.append(
            f"- {name}: peak(K={hi['steps']}) / peak(K={lo['steps']}) = {ratio['project']:.2f} (project), "
            f"{ratio['baseline']:.2f} (baseline)"
        )
    return out


def eval_table(res: dict, args: argparse.Namespace) -> str:
    scale = args.eval_episodes / args.eval_measured
    note = "" if scale == 1 else f" (timed on {args.eval_measured}, scaled)"
    lines = [
        f"| evaluation, {args.eval_steps} steps | s per {args.eval_episodes} episodes{note} | vs baseline loop |",
        "|---|---|---|",
    ]
    base = res["timings"]["baseline loop"].median
    for k, t in res["timings"].items():
        lines.append(f"| {k} | {t.median * scale:,.1f} | {base / t.median:.2f}x |")
    return "\n".join(lines)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def header(args: argparse.Namespace, device: torch.device, loads: tuple[float, float]) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return (
        f"Device: {device.type} ({name}); torch {torch.__version__}; 1-minute load average {loads[0]:.1f} at the "
        f"start, {loads[1]:.1f} at the end.\n"
        f"Conv4 (hidden {args.hidden}) on {args.image_size}x{args.image_size}x3, {args.ways}-way {args.shots}-shot, "
        f"{args.queries} queries, meta-batch {args.meta_batch}, inner lr 0.1; float32"
        f"{'; malloc retains freed memory' if args.retain_freed_memory else ''}. Median of the timed runs "
        f"after a warm-up; runs b/p = timed runs of baseline/project."
    )


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _encode(result: dict) -> dict:
    return {
        k: (asdict(v) if isinstance(v, Timing) else _encode(v) if isinstance(v, dict) else v) for k, v in result.items()
    }


def _decode(result: dict) -> dict:
    out = {}
    for k, v in result.items():
        if isinstance(v, dict):
            v = Timing(**v) if set(v) == {"seconds", "peak_bytes", "cpu_seconds"} else _decode(v)
        out[k] = v
    return out


def in_fresh_process(argv: list[str], kind: str, name: str, steps: int) -> dict:
    """Run one cell in a new interpreter: every cell starts from the same allocator state, so that peak RSS is
    the cell's own (a long-lived process keeps heap it cannot hand back); both implementations of a cell still
    share one process."""
    cmd = [sys.executable, "-m", "benchmarks.run", *argv, "--cell", kind, name, str(steps)]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1]).stdout
    line = next(line for line in reversed(out.splitlines()) if line.startswith("CELL "))
    return _decode(json.loads(line[5:]))


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.retain_freed_memory and not retain_freed_memory():
        raise SystemExit("--retain-freed-memory needs glibc")
    device = torch.device(args.device)
    if args.cell:
        kind, name, steps = args.cell
        result = bench_meta(name, int(steps), args, device) if kind == "meta" else bench_eval(args, device)
        print("CELL " + json.dumps(_encode(result)), flush=True)
        return ""
    load_start = _load()
    rows, diffs = [], {}
    for name in args.algos:
        diffs[name] = grad_difference(name, args, device)
        for steps in args.steps:
            rows.append(in_fresh_process(argv, "meta", name, steps))
            print(meta_table(rows[-1:], args.meta_batch).splitlines()[-1], flush=True)
    ev = in_fresh_process(argv, "eval", "sparse_maml", args.eval_steps)
    k25 = [r for r in rows if r["steps"] == args.eval_steps and r["algo"] == "sparse_maml"]
    same = ", ".join(f"{n} {d:.1e}" for n, d in diffs.items())
    parts = [header(args, device, (load_start, _load())), "", meta_table(rows, args.meta_batch), ""]
    parts += [*memory_lines(rows), ""]
    parts += [f"Same work: float64 meta-gradients of project and baseline (K=2) differ by at most {same}.", ""]
    parts += [eval_table(ev, args), "", f"Accuracies of the three evaluations agree within {ev['agree']:.3f}."]
    if k25:
        best_eval = min(t.median for t in ev["timings"].values()) * args.eval_episodes / args.eval_measured
        for mode in ["project", *(m for m in GPU_MODES if m in k25[0])]:
            hours = (PROTOCOL_ITERATIONS * k25[0][mode].median + PROTOCOL_VALIDATIONS * best_eval) / 3600
            parts.append(
                f"Projected paper protocol ({PROTOCOL_ITERATIONS:,} meta-iterations at K={args.eval_steps}, "
                f"{PROTOCOL_VALIDATIONS} validations of {args.eval_episodes} episodes) on this device, {mode}: "
                f"{hours:,.1f} h."
            )
    if device.type == "cuda":
        parts += ["", gpu_modes_table(rows, args.meta_batch)]
    text = "\n".join(parts) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
