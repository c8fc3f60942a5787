"""This code against the package at an earlier commit, in one process on the same inputs: the Omniglot-scale
meta-iteration and validation (the scale of the CPU studies, the tests and the quickstart), and where the time goes.

    python -m benchmarks.versus --threads 1          # against ccaf18f: the Omniglot table of benchmarks/RESULTS.md
    python -m benchmarks.versus --quick              # tiny sizes, seconds: a smoke test (also run by pytest)
    python -m benchmarks.versus --device cuda        # adds bf16 autocast, CUDA graphs, projection and peak memory

Both versions get the same weights, masks and batches (the earlier one is imported from ``git archive``, see
``reference.py``), and their float64 meta-gradients are compared before timing. Runs alternate between the versions
after a warm-up; medians of wall-clock and of process CPU time are reported (CPU time is less affected by other
jobs on a shared machine). Validation is each version's LightningModule validation step over the same episodes,
batched as the datamodule batches them (``--eval-batch``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from torch.profiler import profile
from torch.utils._python_dispatch import TorchDispatchMode

import sparse_maml
import sparse_maml.module  # noqa: F401  (build() reaches it as sparse_maml.module)

from . import run
from .allocator import retain_freed_memory
from .measure import interleaved
from .reference import import_at

MIB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--against", default="ccaf18f", help="the earlier commit")
    p.add_argument("--algo", default="sparse_maml")
    p.add_argument("--steps", type=int, default=25, help="inner steps K, training and validation")
    p.add_argument("--repeats", type=int, default=7, help="timed runs of each (after one warm-up)")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--ways", type=int, default=5)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--queries", type=int, default=15)
    p.add_argument("--meta-batch", type=int, default=4)
    p.add_argument("--val-episodes", type=int, default=100)
    p.add_argument("--eval-batch", type=int, default=10, help="episodes per validation batch (data.eval_batch_size)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--profile-rows", type=int, default=10)
    p.add_argument(
        "--retain-freed-memory",
        action="store_true",
        help="glibc malloc keeps freed memory (benchmarks/allocator.py), for both versions alike",
    )
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("last_versus.md"))
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the script")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.hidden, args.queries = 2, 1, 8, 3
        args.image_size, args.val_episodes, args.eval_batch, args.profile_rows = 16, 4, 2, 3
    return args


def build(pkg: ModuleType, args: argparse.Namespace, device: torch.device, like: torch.nn.Module | None = None):
    """The MetaLearner of ``pkg`` (either version), with the weights and masks of ``like`` when given."""
    torch.manual_seed(0)
    module = pkg.module.MetaLearner(
        algorithm=args.algo,
        backbone_kwargs={"hidden": args.hidden},
        n_way=args.ways,
        in_channels=args.channels,
        image_size=args.image_size,
        inner_steps=args.steps,
    )
    if like is not None:
        module.algo.load_state_dict(like.algo.state_dict())
    return module.to(device)


def meta_step(algo: torch.nn.Module, batch: tuple[torch.Tensor, ...], **settings):
    def step() -> None:
        for k, v in settings.items():
            setattr(algo, k, v)
        algo.zero_grad(set_to_none=True)
        with torch.autocast(batch[0].device.type, dtype=torch.bfloat16, enabled=settings.get("bf16", False)):
            algo.meta_backward(*batch)

    return step


def same_work(ref: ModuleType, args: argparse.Namespace, device: torch.device) -> float:
    """Largest relative difference between the two versions' meta-gradients in float64 (K=2, fast paths on)."""
    small = argparse.Namespace(**{**vars(args), "steps": 2})
    this = build(sparse_maml, small, device).double()
    other = build(ref, small, device, like=this).double()
    batch = tuple(t.double() if t.is_floating_point() else t for t in run.make_batch(args, args.meta_batch, device))
    grads = []
    for module in (other, this):
        meta_step(module.algo, batch, fast_forward=True)()
        grads.append({n: p.grad for n, p in module.algo.named_parameters()})
    return max(
        ((grads[1][n] - g).norm() / g.norm().clamp_min(1e-12)).item()
        for n, g in grads[0].items()
        if not n.endswith(("conv.bias", "conv__bias"))  # zero before batch norm: rounding noise only
    )


def validation(module: torch.nn.Module, batches: list[tuple[torch.Tensor, ...]], accs: dict, key: str):
    def validate() -> None:
        for i, batch in enumerate(batches):
            module.validation_step(batch, i)
        accs[key] = module.val_accs.compute()
        module.val_accs.reset()

    return validate


class _Convolutions(TorchDispatchMode):
    """Records every convolution (forward and backward) with copies of its inputs, to be replayed alone."""

    OPS = (torch.ops.aten.convolution.default, torch.ops.aten.convolution_backward.default)

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.OPS:
            self.calls.append((func, [a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args], kwargs))
        return func(*args, **kwargs)


def convolutions_alone(fn) -> Callable[[], None]:
    """A function that runs only the convolutions one call of ``fn`` runs, on the same shapes and values."""
    with _Convolutions() as rec:
        fn()

    def replay() -> None:
        for func, args, kwargs in rec.calls:
            func(*args, **kwargs)

    return replay


def profile_table(fn, rows: int) -> tuple[str, int, float]:
    """(markdown table of the ops with most self CPU time, number of ops, total self CPU ms) for one call of fn."""
    with profile() as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total_ms = sum(e.self_cpu_time_total for e in events) / 1000
    lines = ["| op | calls | self CPU ms | share |", "|---|---|---|---|"]
    for e in events[:rows]:
        ms = e.self_cpu_time_total / 1000
        lines.append(f"| `{e.key}` | {e.count:,} | {ms:,.1f} | {100 * ms / total_ms:.0f}% |")
    return "\n".join(lines), sum(e.count for e in events), total_ms


def main(argv: list[str] | None = None) -> str:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.retain_freed_memory and not retain_freed_memory():
        raise SystemExit("--retain-freed-memory needs glibc")
    device = torch.device(args.device)
    ref = import_at(args.against)
    name = ref.__name__.removeprefix("sparse_maml_")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    diff = same_work(ref, args, device)

    this = build(sparse_maml, args, device)
    other = build(ref, args, device, like=this)
    batch = run.make_batch(args, args.meta_batch, device)
    metas = {
        name: meta_step(other.algo, batch),
        "this": meta_step(this.algo, batch, batch_tasks=None),
        "this, one task at a time": meta_step(this.algo, batch, batch_tasks=False),
        "this, tasks together": meta_step(this.algo, batch, batch_tasks=True),
    }
    if device.type == "cuda":
        metas["this, bf16"] = meta_step(this.algo, batch, batch_tasks=None, bf16=True)
        metas["this, CUDA graphs"] = meta_step(this.algo, batch, batch_tasks=None, cuda_graphs=True)
        metas["this, bf16 + CUDA graphs"] = meta_step(this.algo, batch, batch_tasks=None, cuda_graphs=True, bf16=True)
    for fn in metas.values():  # warm-up (and CUDA graph capture)
        fn()
    this.algo.cuda_graphs = False
    meta = interleaved(metas, device, args.repeats, float("inf"))

    episodes = [
        run.make_batch(argparse.Namespace(**{**vars(args), "meta_batch": args.eval_batch}), args.eval_batch, device, i)
        for i in range(1, args.val_episodes // args.eval_batch + 1)
    ]
    accs: dict[str, torch.Tensor] = {}
    vals = {name: validation(other, episodes, accs, name), "this": validation(this, episodes, accs, "this")}
    for fn in vals.values():
        fn()
    val = interleaved(vals, device, max(1, args.repeats // 2), float("inf"))
    agree = (accs["this"] - accs[name]).abs().max().item()

    # What bounds a meta-iteration: its convolutions replayed alone against the whole of it.
    split = {k: {"whole": metas[k], "convolutions": convolutions_alone(metas[k])} for k in (name, "this")}
    for fns in split.values():
        for fn in fns.values():
            fn()
    split = {k: interleaved(fns, device, args.repeats, float("inf")) for k, fns in split.items()}
    profiles = {k: profile_table(metas[k], args.profile_rows) for k in (name, "this")}
    text = report(args, device, name, load, diff, meta, val, agree, split, profiles)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return text


def report(args, device, name, load, diff, meta, val, agree, split, profiles) -> str:
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{run.cpu_name()}, {os.cpu_count()} cores"
    end_load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    parts = [
        f"Device: {device.type} ({dev}, {torch.get_num_threads()} torch threads); torch {torch.__version__}; "
        f"1-minute load average {load:.1f} at the start, {end_load:.1f} at the end.",
        f"Conv4 (hidden {args.hidden}) on {args.image_size}x{args.image_size}x{args.channels}, {args.ways}-way "
        f"{args.shots}-shot, {args.queries} queries, meta-batch {args.meta_batch}, K={args.steps}, {args.algo}; "
        f"float32 unless a row says otherwise{'; malloc retains freed memory' if args.retain_freed_memory else ''}. "
        f"Against {name}: float64 meta-gradients differ by at most {diff:.1e}.",
        "",
        "| meta-iteration | wall s (median) | CPU s (median) | speed-up, wall | speed-up, CPU | runs |"
        + (" peak MiB |" if device.type == "cuda" else ""),
        "|---|---|---|---|---|---|" + ("---|" if device.type == "cuda" else ""),
    ]
    base = meta[name]
    for k, t in meta.items():
        row = (
            f"| {k} | {t.median:.3f} | {t.cpu_median:.3f} | {base.median / t.median:.2f}x "
            f"| {base.cpu_median / t.cpu_median:.2f}x | {len(t.seconds)} |"
        )
        parts.append(row + (f" {t.peak_bytes / MIB:,.0f} |" if device.type == "cuda" else ""))
    parts += [
        "",
        f"| validation, {args.val_episodes} episodes in batches of {args.eval_batch} | wall s | CPU s "
        "| speed-up, wall | speed-up, CPU |",
        "|---|---|---|---|---|",
    ]
    for k, t in val.items():
        parts.append(
            f"| {k} | {t.median:.2f} | {t.cpu_median:.2f} | {val[name].median / t.median:.2f}x "
            f"| {val[name].cpu_median / t.cpu_median:.2f}x |"
        )
    parts += ["", f"Validation accuracies of the two versions agree within {agree:.3f} per episode."]
    if device.type == "cuda":
        per_val = val["this"].median * 500 / args.val_episodes
        for k in meta:
            hours = (run.PROTOCOL_ITERATIONS * meta[k].median + run.PROTOCOL_VALIDATIONS * per_val) / 3600
            protocol = f"{run.PROTOCOL_ITERATIONS:,} meta-iterations, {run.PROTOCOL_VALIDATIONS} validations of 500"
            parts.append(f"- projected protocol ({protocol} episodes), {k}: {hours:,.2f} h")
    parts += [
        "",
        "| one meta-iteration | whole, CPU s | its convolutions alone, CPU s | the rest, CPU s |",
        "|---|---|---|---|",
    ]
    for k, t in split.items():
        whole, conv = t["whole"].cpu_median, t["convolutions"].cpu_median
        parts.append(f"| {k} | {whole:.3f} | {conv:.3f} | {whole - conv:.3f} |")
    for k, (table, ops, ms) in profiles.items():
        title = f"Profile of one meta-iteration, {k}: {ops:,} ops, {ms:,.0f} ms self CPU time (profiled)"
        parts += ["", title, "", table]
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    main()
