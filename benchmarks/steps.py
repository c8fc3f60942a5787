"""Where the speed-up comes from: one inner step (forward and backward of Conv4 on the support set) under each
change in turn, alternated run by run, and a profile of the project's step.

    python -m benchmarks.steps --threads 1            # table of CPU ms per step, then the profile

CPU time (``time.process_time``: user + system, page faults included) is reported rather than wall-clock time, so
that other jobs on a shared machine do not enter the figures.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.profiler import profile

from sparse_maml.models import build_backbone
from sparse_maml.models.fused.functional import Conv4Functional
from sparse_maml.models.fused.kernels import batch_norm_relu_pool

from . import baseline
from .run import make_batch, parse_args


def variants(args: argparse.Namespace) -> dict[str, Callable[[], object]]:
    xs, ys, _, _ = make_batch(args, 1, torch.device("cpu"))
    x, y = xs[0], ys[0]
    x_cl = x.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    net = build_backbone("conv4", args.channels, args.image_size, args.ways, args.hidden)
    fn = Conv4Functional(net)
    params = {n: p.detach().clone().requires_grad_() for n, p in net.named_parameters()}
    leaves = list(params.values())

    def step(logits: torch.Tensor) -> None:
        torch.autograd.grad(F.cross_entropy(logits, y), leaves)

    def fused_bn() -> torch.Tensor:  # the convolution apart, batch norm/ReLU/pool fused
        h = x_cl
        for w, b, gamma, beta, eps in fn.blocks:
            h = batch_norm_relu_pool(F.conv2d(h, params[w], params[b], padding=1), params[gamma], params[beta], eps)
        return fn.head(params, h.flatten(1))

    return {
        "baseline (NCHW, op by op)": lambda: step(baseline.conv4_forward(params, x)),
        "channels-last, op by op": lambda: step(baseline.conv4_forward(params, x_cl)),
        "+ batch norm/ReLU/pool as one op": lambda: step(fused_bn()),
        "+ whole block as one op (project)": lambda: step(fn(params, x_cl, fused=True)),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--image-size", type=int, default=84)
    p.add_argument("--quick", action="store_true")
    own, rest = p.parse_known_args(argv)
    args = parse_args([*rest, "--image-size", str(own.image_size), *(["--quick"] if own.quick else [])])
    if own.threads:
        torch.set_num_threads(own.threads)
    fns = variants(args)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(1 if own.quick else own.repeats):
        for name, fn in fns.items():
            start = time.process_time()
            fn()
            times[name].append(time.process_time() - start)
    print(f"Conv4 step on {args.ways * args.shots} images {args.image_size}x{args.image_size}, "
          f"{torch.get_num_threads()} threads: CPU ms per step (median, min)\n")  # fmt: skip
    print("| variant | median | min |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {1000 * statistics.median(ts):.0f} | {1000 * min(ts):.0f} |")
    project = list(fns.values())[-1]
    with profile() as prof:
        for _ in range(3):
            project()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if "convolution" in e.key)
    print(f"\nProject step profile: convolutions {100 * conv / total:.0f}% of CPU time\n")
    print(events.table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
