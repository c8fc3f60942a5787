"""Why DDP runs drift from one-process runs although their meta-gradients agree: Adam and the binary masks.

    python -m benchmarks.ddp_drift                 # Omniglot base (experiment=omniglot/cpu), 100 meta-iterations
    python -m benchmarks.ddp_drift --quick         # the embedded data, tiny sizes: a smoke test (also run by pytest)

Two copies of one model train side by side in one process on the same meta-batches: one steps with the meta-gradient
of the whole meta-batch (one process), the other with the mean of the meta-gradients of its two halves, which is
bit for bit what DDP on 2 ranks computes (tests/test_ddp_gradients.py). After each meta-iteration the script records
how far weights and masks have moved apart and how many mask entries 1[m >= 0] differ; at step 1 it breaks Adam's
update down by gradient size. At the end both are validated on the same fixed episodes, beside the same run with
other seeds (seed-to-seed noise).
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from sparse_maml.run import build_datamodule, build_module

CONF = Path(__file__).resolve().parents[1] / "conf"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100, help="meta-iterations")
    p.add_argument("--val-episodes", type=int, default=200)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="the first is compared with DDP")
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("last_ddp_drift.md"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("overrides", nargs="*", help="Hydra overrides (default: experiment=omniglot/cpu)")
    args = p.parse_args(argv)
    if not args.overrides:
        args.overrides = ["experiment=omniglot/cpu", "data.root=" + str(CONF.parents[1] / "shared/data/omniglot")]
    if args.quick:
        args.steps, args.val_episodes, args.seeds = 3, 4, [0, 1]
        args.overrides = ["data=embedded", "data.meta_batch_size=4", "algo.inner_steps=2", "model.hidden=8"]
    return args


def setup(overrides: list[str], seed: int, val_episodes: int):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        settings = [f"seed={seed}", f"data.num_val_tasks={val_episodes}", "paths.output_dir=."]
        cfg = compose("config", [*overrides, *settings])
    torch.manual_seed(seed)
    dm = build_datamodule(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    module = build_module(cfg, dm.image_shape, *dm.normalization)
    module.train()
    return cfg, dm, module


class Copy:
    """A model and its two optimisers (theta, m), stepped with a meta-gradient given from outside."""

    def __init__(self, module) -> None:
        self.module = module
        self.optimizers = module.configure_optimizers()

    def grads(self, batch, halves: int) -> dict[str, torch.Tensor]:
        """The meta-gradient: of the whole batch (1), or the mean of ``halves`` contiguous shares' (DDP's)."""
        tasks = batch[0].shape[0]
        per = []
        for h in range(halves):
            share = [t[h * tasks // halves : (h + 1) * tasks // halves] for t in batch]
            self.module.zero_grad(set_to_none=True)
            self.module.algo.meta_loss(*share)[0].backward()
            per.append({n: p.grad.clone() for n, p in self.module.named_parameters()})
        return {n: sum(g[n] / halves for g in per) if halves > 1 else per[0][n] for n in per[0]}

    def step(self, grads: dict[str, torch.Tensor]) -> None:
        for n, p in self.module.named_parameters():
            p.grad = grads[n].clone()
        for opt in self.optimizers:
            opt.step()

    def masks(self) -> torch.Tensor:
        return torch.cat([m.detach().flatten() for m in self.module.algo.meta_parameters().values()])

    def params(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.module.named_parameters()}


def validate(module, dm) -> float:
    accs = []
    for batch in dm.val_dataloader():
        accs.append(module.evaluate_episodes(*dm.on_after_batch_transfer(batch, 0)).accuracy)
    return torch.cat(accs).float().mean().item()


def step_one_breakdown(a: dict, b: dict, before: dict, after_a: dict, after_b: dict, lr: float) -> list[str]:
    """Adam's first step is lr * g / (|g| + eps): a rounding difference d in g moves the weight by up to
    lr * d / eps where |g| is near eps (1e-8), and by ~0 where |g| >> d."""
    g_a = torch.cat([a[n].flatten() for n in a])
    g_b = torch.cat([b[n].flatten() for n in a])
    step_diff = torch.cat([((after_a[n] - before[n]) - (after_b[n] - before[n])).flatten() for n in a]).abs()
    rows = []
    for lo, hi in ((0, 1e-9), (1e-9, 1e-8), (1e-8, 1e-7), (1e-7, 1e-6), (1e-6, float("inf"))):
        sel = (g_a.abs() >= lo) & (g_a.abs() < hi)
        n = int(sel.sum())
        gd = (g_a - g_b).abs()[sel].max().item() if n else 0.0
        sd = step_diff[sel].max().item() if n else 0.0
        rows.append(f"| [{lo:.0e}, {hi:.0e}) | {n:,} | {gd:.1e} | {sd:.1e} | {sd / lr:.3f} |")
    return rows


def sensitivity(copy_: Copy, batch, scales=(1e-9, 1e-8, 1e-7, 1e-6)) -> list[str]:
    """The meta-gradient's change when every weight and mask entry is perturbed by ``scale`` times its own size (at
    least 1e-3): linear in the scale for a smooth function; a jump at some scale and not at a larger one is a
    discrete choice of the forward pass (a ReLU or max-pool selection, a mask entry) switching."""
    base, g0 = copy_.params(), copy_.grads(batch, 1)
    noise = {n: torch.randn(p.shape, generator=torch.Generator().manual_seed(0)) for n, p in base.items()}
    rows = []
    for scale in scales:
        with torch.no_grad():
            for n, p in copy_.module.named_parameters():
                p.copy_(base[n] + scale * noise[n] * base[n].abs().clamp_min(1e-3))
        g = copy_.grads(batch, 1)
        rel = max(((g[n] - g0[n]).abs().max() / g0[n].abs().max()).item() for n in g0 if g0[n].abs().max() > 0)
        rows.append(f"| {scale:.0e} | {rel:.1e} |")
    with torch.no_grad():
        for n, p in copy_.module.named_parameters():
            p.copy_(base[n])
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    lines = [f"# DDP drift: {' '.join(args.overrides)}, {args.steps} meta-iterations", ""]
    lines.append(f"load average at start: {os.getloadavg()[0]:.2f}")
    start = time.perf_counter()
    val = {}
    for seed in args.seeds:
        cfg, dm, module = setup(args.overrides, seed, args.val_episodes)
        one = Copy(module)
        ddp = Copy(copy.deepcopy(module)) if seed == args.seeds[0] else None
        if ddp is not None:
            ddp.optimizers = ddp.module.configure_optimizers()
        loader = iter(dm.train_dataloader())
        drift = []
        for step in range(1, args.steps + 1):
            batch = dm.on_after_batch_transfer(next(loader), 0)
            if step == 3 and ddp is not None:
                lines += [
                    "",
                    "Step 3, the one-process meta-gradient against relative perturbations of all weights and masks:",
                    "",
                    "| perturbation | max rel meta-gradient change |",
                    "|---|---|",
                ]
                lines += sensitivity(one, batch)
            before = one.params()
            g_one = one.grads(batch, 1)
            one.step(g_one)
            if ddp is None:
                continue
            g_ddp = ddp.grads(batch, 2)
            ddp.step(g_ddp)
            a, b = one.params(), ddp.params()
            weights = max((a[n] - b[n]).abs().max().item() for n in a)
            mask_a, mask_b = one.masks(), ddp.masks()
            flips = int(((mask_a >= 0) != (mask_b >= 0)).sum())
            grad_rel = max(
                ((g_one[n] - g_ddp[n]).abs().max() / g_one[n].abs().max().clamp_min(1e-30)).item()
                for n in g_one
                if g_one[n].abs().max() > 0
            )
            drift.append((step, weights, flips, grad_rel, mask_a.numel()))
            if step == 1:
                lines += [
                    "",
                    "Step 1, Adam's update against |g| (theta and m; lr 1e-3, eps 1e-8):",
                    "",
                    "| one-process abs(g) in | entries | max abs(g diff) | max step diff | step diff / lr |",
                    "|---|---|---|---|---|",
                ]
                lines += step_one_breakdown(g_one, g_ddp, before, a, b, float(cfg.algo.lr))
        val[seed] = validate(one.module, dm)
        if ddp is not None:
            val["ddp"] = validate(ddp.module, dm)
            lines += [
                "",
                "| meta-iteration | max abs weight/mask diff | mask entries differing (of all) | "
                "max rel meta-gradient diff |",
                "|---|---|---|---|",
            ]
            shown = {1, 2, 3, 5, 10, 20, 50, args.steps}
            lines += [f"| {s} | {w:.1e} | {f:,} of {n:,} | {g:.1e} |" for s, w, f, g, n in drift if s in shown]
    lines += [
        "",
        f"Validation accuracy on the same {args.val_episodes} fixed episodes after {args.steps} meta-iterations:",
        "",
        "| run | val acc |",
        "|---|---|",
    ]
    lines += [f"| one process, seed {s} | {v * 100:.2f}% |" for s, v in val.items() if s != "ddp"]
    lines.append(f"| 2 ranks (DDP's arithmetic), seed {args.seeds[0]} | {val['ddp'] * 100:.2f}% |")
    lines += ["", f"took {time.perf_counter() - start:.0f} s; load average at end: {os.getloadavg()[0]:.2f}"]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
