"""The CUDA-graph inner loop's staging (inputs copied in, outputs cloned out, one capture per shape) replays the
eager loop; the capture itself runs on GPU only (tests/test_gpu.py), here a stand-in reruns the function."""

import torch

from sparse_maml.algorithms.engine import batched, graphs

from .helpers import make_algo, make_tasks


def rerun_capture(fn):
    """A stand-in for ``graphs.cuda_capture``: the 'replay' reruns fn and writes into the first run's outputs."""
    outputs = fn()

    def replay():
        for out, new in zip(outputs, fn()):
            out.detach().copy_(new)

    return replay, outputs


def test_replays_equal_the_eager_loop_on_new_inputs():
    algo = make_algo("sparse_maml", steps=3, hidden=4)
    algo.fast_forward = True
    captures = []

    def capture(fn):
        captures.append(fn)
        return rerun_capture(fn)

    def eager(theta, scales, xs, ys):
        return batched._adapt_tasks(algo, theta, scales, xs, ys, 3, True)

    for seed in range(3):  # new weights, masks and tasks each time: the graph must read the new values
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in [*algo.parameters()]:
                p.add_(0.1 * torch.randn_like(p))
        xs, ys, _, _ = make_tasks(tasks=2)
        theta = {n: p.detach() for n, p in algo.backbone.named_parameters()}
        scales = algo._scales(detach=True)
        want_phi, want_sum = eager(theta, scales, xs, ys)
        phi, grad_sum = graphs.graphed_adapt(algo, eager, theta, scales, xs, ys, key=("test",), capture=capture)
        assert set(phi) == set(want_phi) and all(p.requires_grad and p.is_leaf for p in phi.values())
        for n in want_phi:
            torch.testing.assert_close(phi[n], want_phi[n], rtol=0, atol=0)
        for got, want in zip(grad_sum, want_sum, strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert len(captures) == 1  # one capture per shape, replayed after
    xs, ys, _, _ = make_tasks(tasks=3)
    graphs.graphed_adapt(algo, eager, theta, scales, xs, ys, key=("test",), capture=capture)
    assert len(captures) == 2  # another number of tasks: another graph


def test_cuda_graphs_are_ignored_on_cpu():
    algo = make_algo("sparse_maml", steps=2, hidden=4)
    algo.fast_forward, algo.batch_tasks = True, True
    batch = make_tasks(tasks=2)
    want = algo.evaluate(*batch)
    algo.cuda_graphs = True
    got = algo.evaluate(*batch)
    torch.testing.assert_close(got.accuracy, want.accuracy)
    assert algo not in graphs._CACHE
