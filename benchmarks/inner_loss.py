"""Support loss per inner step on Omniglot: has the inner loop converged by step 5? (chooses the K-sweep regime)

    OMP_NUM_THREADS=1 python -m benchmarks.inner_loss                # the table in docs/RESULTS.md (a few minutes)
    python -m benchmarks.inner_loss --ways 5 --lrs 0.1 --episodes 2 --train-iters 2 --steps 3   # seconds

For each (n-way, inner lr) it builds Conv4 on the Omniglot minimal splits at 28x28 (1-shot, as ``omniglot/cpu``),
then adapts to fixed validation episodes one inner step at a time with the algorithm's own ``adapt`` and records
the mean support loss after each step: once at initialisation (seed 0) and once after ``--train-iters``
meta-iterations of that algorithm at that inner lr (K = ``--train-k``, Adam 1e-3 for theta and m). For masked
algorithms it also gives the cosine between the mask's meta-gradients at K=5 and K=25 on those episodes.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
import torch.nn.functional as F

from sparse_maml.algorithms import InnerLoopLearner, build_algorithm
from sparse_maml.data import EpisodicDataModule
from sparse_maml.models import build_backbone


def support_losses(algo: InnerLoopLearner, batch: tuple[torch.Tensor, ...], steps: int) -> list[float]:
    """Mean support loss over the batch's tasks after 0, 1, ..., ``steps`` inner steps (phi_k from phi_{k-1} by
    one step of ``algo.adapt``, so masks, adapted subsets and the inner lr are the algorithm's own)."""
    xs, ys = batch[0], batch[1]
    theta = {n: p.detach().clone() for n, p in algo.backbone.named_parameters()}
    params = dict(algo.backbone.named_parameters())
    per_task = []
    try:
        for t in range(len(xs)):
            with torch.no_grad():
                for n, p in params.items():
                    p.copy_(theta[n])
            losses = []
            for k in range(steps + 1):
                phi = algo.adapt(xs[t], ys[t], steps=1) if k else {n: p.detach() for n, p in params.items()}
                with torch.no_grad():
                    losses.append(float(F.cross_entropy(algo.predict(phi, xs[t]), ys[t])))
                    for n, p in params.items():
                        p.copy_(phi[n])
            per_task.append(losses)
    finally:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(theta[n])
    return [statistics.fmean(c) for c in zip(*per_task)]


def mask_grad_cosine(algo: InnerLoopLearner, batch: tuple[torch.Tensor, ...], k_short: int, k_long: int) -> float:
    """Cosine between the first-order meta-gradients of the mask m at K = ``k_short`` and K = ``k_long`` on one
    meta-batch (NaN without a mask): near 1, the number of inner steps barely changes what the mask learns."""
    masks = list(algo.meta_parameters().values())
    if not masks:
        return float("nan")
    grads, steps = [], algo.inner_steps
    for k in (k_short, k_long):
        algo.inner_steps = k
        for m in masks:
            m.grad = None
        algo.meta_loss(*batch)[0].backward()
        grads.append(torch.cat([m.grad.flatten() for m in masks]))
    algo.inner_steps = steps
    for p in [*algo.backbone.parameters(), *masks]:
        p.grad = None
    return float(F.cosine_similarity(grads[0], grads[1], dim=0))


def meta_train(algo: InnerLoopLearner, dm: EpisodicDataModule, iters: int, k: int) -> None:
    """``iters`` meta-iterations (Adam 1e-3 for theta and m) at K = ``k`` inner steps."""
    algo.inner_steps = k
    opt = torch.optim.Adam([*algo.backbone.parameters(), *algo.meta_parameters().values()], lr=1e-3)
    stream = iter(dm.train_dataloader())
    for _ in range(iters):
        xs, ys, xq, yq = next(stream)
        opt.zero_grad()
        algo.meta_loss(dm.normalize(xs), ys, dm.normalize(xq), yq)[0].backward()
        opt.step()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algos", nargs="+", default=["sparse_maml", "fomaml"])
    p.add_argument("--ways", nargs="+", type=int, default=[5, 20])
    p.add_argument("--shots", nargs="+", type=int, default=[1])
    p.add_argument("--lrs", nargs="+", type=float, default=[0.1, 0.03, 0.01])
    p.add_argument("--steps", type=int, default=25, help="inner steps to follow")
    p.add_argument("--episodes", type=int, default=20, help="validation episodes averaged over")
    p.add_argument("--train-iters", type=int, default=100, help="meta-iterations before the second measurement")
    p.add_argument("--train-k", type=int, default=5, help="inner steps during those meta-iterations")
    p.add_argument("--root", default="../shared/data/omniglot")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    shown = [k for k in (0, 1, 2, 3, 5, 10, 15, 25, 50) if k <= args.steps]
    print(
        f"Mean support loss over {args.episodes} validation episodes after k inner steps; 'trained': after "
        f"{args.train_iters} meta-iterations at K={args.train_k}. Omniglot minimal, 28x28, Conv4-64.\n"
    )
    print(
        "| algorithm | n-way | k-shot | inner lr | theta | "
        + " | ".join(f"k={k}" for k in shown)
        + " | L(5)/L(0) | L(25)/L(5) | cos(dm K=5, K=25) |"
    )
    print("|" + "---|" * (len(shown) + 8))
    for ways, shots in itertools.product(args.ways, args.shots):
        dm = EpisodicDataModule(
            "omniglot", args.root, splits="minimal", image_size=28, n_way=ways, k_shot=shots, k_query=15,
            meta_batch_size=4, num_val_tasks=args.episodes, eval_batch_size=args.episodes, seed=0, eval_seed=0,
        )  # fmt: skip
        xs, ys, xq, yq = next(iter(dm.val_dataloader()))
        batch = (dm.normalize(xs), ys, dm.normalize(xq), yq)
        for algo_name in args.algos:
            for lr in args.lrs:
                torch.manual_seed(0)
                net = build_backbone("conv4", in_channels=1, image_size=28, n_way=ways, hidden=64)
                algo = build_algorithm(algo_name, net, inner_lr=lr, inner_steps=args.steps)
                start = time.perf_counter()
                rows = [("init", support_losses(algo, batch, args.steps))]
                cosines = {"init": mask_grad_cosine(algo, batch, 5, 25)}
                if args.train_iters:
                    meta_train(algo, dm, args.train_iters, args.train_k)
                    rows.append(("trained", support_losses(algo, batch, args.steps)))
                    cosines["trained"] = mask_grad_cosine(algo, batch, 5, 25)
                for what, losses in rows:
                    cells = [f"{losses[k]:.3f}" for k in shown]
                    cells.append(f"{losses[5] / losses[0]:.2f}" if args.steps >= 5 else "-")
                    cells.append(f"{losses[25] / losses[5]:.2f}" if args.steps >= 25 else "-")
                    cells.append(f"{cosines[what]:.3f}")
                    print(f"| {algo_name} | {ways} | {shots} | {lr} | {what} | " + " | ".join(cells) + " |")
                print(f"<!-- {time.perf_counter() - start:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()
