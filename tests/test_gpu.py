"""On a CUDA device: the fast paths equal the reference path, tasks run together equal tasks one at a time, bf16 is
as accurate as plain autocast, CUDA-graph replays equal the eager loop, and two runs are bit-identical. Skipped
without CUDA (``pytest -m gpu`` runs only these)."""

import pytest
import torch

from .algorithms.helpers import grads_of, make_algo, make_tasks
from .algorithms.test_precision import smooth_tasks

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


def on_cuda(batch):
    return tuple(t.to(CUDA) for t in batch)


def meta_grads(algo, batch, **settings):
    for k, v in settings.items():
        setattr(algo, k, v)
    algo.zero_grad()
    loss, _ = algo.meta_backward(*batch)
    theta, m = grads_of(algo)
    return {**theta, **{f"m:{n}": g for n, g in m.items()}}, loss


def assert_grads_close(got, want, rtol):
    for n, w in want.items():
        if n.endswith("conv.bias"):  # zero up to rounding before batch norm
            continue
        assert (got[n] - w).norm() <= rtol * w.norm() + 1e-12, n


@pytest.mark.parametrize("name", ["sparse_maml", "fomaml", "anil"])
def test_fast_and_batched_paths_equal_the_reference_on_cuda(name):
    algo = make_algo(name, steps=3, hidden=8, first_order=True).to(CUDA)
    batch = on_cuda(make_tasks(tasks=3))
    want, want_loss = meta_grads(algo, batch, fast_forward=False, batch_tasks=False)
    for batched in (False, True):
        got, loss = meta_grads(algo, batch, fast_forward=True, batch_tasks=batched)
        assert_grads_close(got, want, 1e-9)
        torch.testing.assert_close(loss, want_loss)
    algo.fast_forward = True
    tasks = on_cuda(make_tasks(tasks=5, queries=4))
    ev = [algo.evaluate(*tasks, batched=b) for b in (False, True)]
    torch.testing.assert_close(ev[1].accuracy, ev[0].accuracy)
    for n, sq in ev[0].change_sq.items():
        torch.testing.assert_close(ev[1].change_sq[n], sq, rtol=1e-9, atol=1e-20)


def test_bf16_as_accurate_as_plain_autocast_on_cuda():
    from sparse_maml.algorithms import build_algorithm
    from sparse_maml.models import build_backbone

    batch = on_cuda(smooth_tasks())

    def grads(fast, bf16):
        torch.manual_seed(0)
        algo = build_algorithm("sparse_maml", build_backbone("conv4", 1, 28, 5, 16), inner_steps=2).to(CUDA)
        algo.fast_forward = fast
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            algo.meta_backward(*batch)
        assert all(p.grad.dtype == torch.float32 for p in algo.parameters())
        return torch.cat([p.grad.flatten() for n, p in algo.named_parameters() if not n.endswith("conv.bias")])

    want = grads(fast=False, bf16=False)
    plain, got = grads(fast=False, bf16=True), grads(fast=True, bf16=True)
    assert (got - want).norm() <= 1.25 * (plain - want).norm() + 1e-3 * want.norm()


@pytest.mark.parametrize("bf16", [False, True])
def test_cuda_graph_replays_equal_the_eager_loop(bf16):
    algo = make_algo("sparse_maml", steps=3, hidden=16, dtype=torch.float32).to(CUDA)
    algo.fast_forward, algo.batch_tasks = True, True
    for _ in range(3):  # capture, then replays with new weights, masks and tasks
        batch = on_cuda(make_tasks(tasks=4, dtype=torch.float32))
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            want, _ = meta_grads(algo, batch, cuda_graphs=False)
            got, _ = meta_grads(algo, batch, cuda_graphs=True)
            algo.cuda_graphs = False
            eager = algo.evaluate(*batch, steps=2)
            algo.cuda_graphs = True
            replayed = algo.evaluate(*batch, steps=2)
        assert_grads_close(got, want, 1e-5)
        torch.testing.assert_close(replayed.accuracy, eager.accuracy)
        with torch.no_grad():
            for p in algo.parameters():
                p.add_(0.01 * torch.randn_like(p))


@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_two_runs_are_bit_identical_on_cuda(cuda_graphs):
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False

    def run():
        torch.manual_seed(0)
        algo = make_algo("sparse_maml", steps=3, hidden=16, dtype=torch.float32).to(CUDA)
        algo.fast_forward, algo.batch_tasks, algo.cuda_graphs = True, True, cuda_graphs
        opt = torch.optim.Adam(algo.parameters(), lr=1e-3)
        for _ in range(3):
            opt.zero_grad()
            algo.meta_backward(*on_cuda(make_tasks(tasks=4, dtype=torch.float32)))
            opt.step()
        return [p.detach().clone() for p in algo.parameters()]

    for a, b in zip(run(), run(), strict=True):
        assert torch.equal(a, b)


def test_benchmark_runs_on_cuda(tmp_path):
    from benchmarks.run import main

    text = main(["--quick", "--device", "cuda", "--algos", "sparse_maml", "--out", str(tmp_path / "t.md")])
    assert "Projected" in text and "peak" in text
