"""Tasks together (grouped convolutions) against one task at a time, by task size: the measurement behind the CPU
chunk budget of ``sparse_maml/algorithms/engine/batched.py``.

    python -m benchmarks.chunks --threads 1

One forward and backward of Conv4-64 for 4 tasks of B images each, both ways, alternated run by run; CPU time,
median. The first-block activation of one task (B x 64 x S x S floats) is the size the budget compares.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from sparse_maml.algorithms.engine.batched import CPU_TASK_BYTES
from sparse_maml.models import build_backbone
from sparse_maml.models.fused.functional import Conv4Functional

SIZES = [(5, 28, 1), (10, 28, 1), (25, 28, 1), (75, 28, 1), (5, 56, 3), (5, 84, 3), (25, 84, 3)]  # (B, S, C)


def step_pair(images: int, size: int, channels: int, tasks: int = 4, hidden: int = 64):
    torch.manual_seed(0)
    net = build_backbone("conv4", channels, size, 5, hidden)
    fn = Conv4Functional(net)
    x, y = torch.randn(tasks, images, channels, size, size), torch.randint(0, 5, (tasks, images))
    together = {n: p.detach().expand(tasks, *p.shape).clone().requires_grad_() for n, p in net.named_parameters()}
    apart = [{n: p.detach().clone().requires_grad_() for n, p in net.named_parameters()} for _ in range(tasks)]

    def grouped() -> None:
        logits = fn.forward_tasks(together, x, fused=True)
        torch.autograd.grad(F.cross_entropy(logits.flatten(0, 1), y.flatten()), list(together.values()))

    def one_by_one() -> None:
        for t in range(tasks):
            loss = F.cross_entropy(fn(apart[t], x[t], fused=True), y[t])
            torch.autograd.grad(loss, list(apart[t].values()))

    return grouped, one_by_one


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--quick", action="store_true", help="two small sizes, one run: a smoke test")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [(5, 16, 1), (10, 16, 1)] if args.quick else SIZES
    lines = [
        f"Tasks run together up to {CPU_TASK_BYTES / 2**20:.1f} MiB each. CPU ms per step of 4 tasks, median of "
        f"{args.repeats} runs.",
        "",
        "| images x size x channels | one task's activation MiB | together | one at a time | together is faster by |",
        "|---|---|---|---|---|",
    ]
    for images, size, channels in sizes:
        fns = step_pair(images, size, channels)
        times: list[list[float]] = [[], []]
        for fn in fns:
            fn()
        for _ in range(1 if args.quick else args.repeats):
            for ts, fn in zip(times, fns):
                start = time.process_time()
                fn()
                ts.append(time.process_time() - start)
        g, o = (statistics.median(ts) for ts in times)
        mib = images * 64 * size * size * 4 / 2**20
        lines.append(
            f"| {images} x {size}x{size} x {channels} | {mib:.1f} | {1000 * g:.1f} | {1000 * o:.1f} | {o / g:.2f}x |"
        )
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
