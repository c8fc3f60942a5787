"""Every fast path gives the reference path's results (float64): the lean Conv4 forward with the fused batch
norm/ReLU/pool, tasks run together with grouped convolutions, and batched evaluation."""

import pytest
import torch

from sparse_maml.algorithms import build_algorithm
from sparse_maml.models import Conv4

from .helpers import grads_of, make_algo, make_tasks, rel_err
from .test_first_order import FIRST_ORDER, unrolled_first_order_grads


def prepared(name, **kwargs):
    algo = make_algo(name, **kwargs)
    with torch.no_grad():
        algo.backbone.body.block2.norm.weight[:2] = -0.5  # the fused op pools minima where the scale is negative
        if name == "meta_sgd":
            for m in algo.meta_parameters().values():
                m.uniform_(0.5, 1.5)
    return algo


def meta_grads(algo, batch, fast, batched=False):
    algo.fast_forward, algo.batch_tasks = fast, batched
    algo.zero_grad()
    loss, acc = algo.meta_backward(*batch)
    return (*grads_of(algo), loss, acc)


def assert_same(got, want, tol=1e-9):
    assert set(got) == set(want)
    for n in want:
        # Absolute floor: conv biases before batch norm have zero gradient, only rounding noise to compare.
        assert (got[n] - want[n]).norm() <= tol * want[n].norm() + 1e-13, n


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("name", FIRST_ORDER)
def test_first_order_fast_paths_match_reference(name, batched):
    algo = prepared(name, steps=3, first_order=True)
    batch = make_tasks(tasks=3)
    want_theta, want_m, want_loss, want_acc = meta_grads(algo, batch, fast=False)
    theta, m, loss, acc = meta_grads(algo, batch, fast=True, batched=batched)
    assert_same(theta, want_theta)
    assert_same(m, want_m)
    assert rel_err(loss, want_loss) < 1e-12 and acc == want_acc


@pytest.mark.parametrize("name", ["sparse_maml", "fomaml"])
def test_fast_path_satisfies_the_first_order_equation(name):
    algo = prepared(name, steps=4, first_order=True)
    batch = make_tasks(tasks=2)
    want_theta, want_m = unrolled_first_order_grads(algo, *batch)
    theta, m, _, _ = meta_grads(algo, batch, fast=True, batched=True)
    for n in want_theta:
        assert rel_err(theta[n], want_theta[n]) < 1e-5, n
    for n in want_m:
        assert rel_err(m[n], want_m[n]) < 1e-5, n


@pytest.mark.parametrize("name", ["maml", "sparse_maml", "anil", "boil"])
def test_second_order_fast_path_matches_reference(name):
    algo = prepared(name, steps=2, first_order=None if name == "maml" else False)
    batch = make_tasks(tasks=2)
    want_theta, want_m, _, _ = meta_grads(algo, batch, fast=False)
    theta, m, _, _ = meta_grads(algo, batch, fast=True, batched=True)  # batching is first order only
    assert_same(theta, want_theta)
    assert_same(m, want_m)


@pytest.mark.parametrize("name", ["sparse_maml", "anil", "boil"])
def test_adapt_and_predict_fast_path(name):
    algo = prepared(name, steps=3)
    xs, ys, xq, _ = make_tasks(tasks=1)
    outs = []
    for fast in (False, True):
        algo.fast_forward = fast
        fast_weights = algo.adapt(xs[0], ys[0])
        outs.append((fast_weights, algo.predict(fast_weights, xq[0])))
    assert_same(outs[1][0], outs[0][0])
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["sparse_maml", "anil"])
@pytest.mark.parametrize("batched, chunk", [(False, None), (True, None), (True, 2)])
def test_evaluate_equals_adapt_predict_per_task(name, batched, chunk):
    algo = prepared(name, steps=3, hidden=8)
    xs, ys, xq, yq = make_tasks(tasks=5, queries=4)
    algo.fast_forward = False
    theta = {n: p.detach() for n, p in algo.backbone.named_parameters()}
    want_acc, want_change = [], {n: [] for n in theta}
    for t in range(5):
        phi = algo.adapt(xs[t], ys[t])
        want_acc.append((algo.predict(phi, xq[t]).argmax(-1) == yq[t]).float().mean())
        for n in theta:
            want_change[n].append((phi[n] - theta[n]).square().sum())
    algo.fast_forward = True
    got = algo.evaluate(xs, ys, xq, yq, batched=batched, chunk=chunk)
    assert got.accuracy.shape == (5,)
    torch.testing.assert_close(got.accuracy, torch.stack(want_acc))
    assert set(got.change_sq) == set(theta)
    for n in theta:
        want = torch.stack(want_change[n])
        torch.testing.assert_close(got.change_sq[n], want, rtol=1e-9, atol=1e-20)
        if n not in algo.adapted:
            assert not got.change_sq[n].any(), n
        elif not n.endswith("conv.bias"):  # before batch norm: a zero gradient, up to rounding
            assert (want > 0).all(), n
    first = algo.adapted[0]
    want_rel = torch.stack(want_change[first]).sqrt() / theta[first].norm()
    torch.testing.assert_close(got.relative_change(theta)[first], want_rel)
    assert algo.evaluate(xs, ys, xq, yq, steps=1).accuracy.shape == (5,)


def test_batched_evaluation_in_chunks_equals_one_chunk():
    """The query pass runs in chunks of its own (memory budget): the same results as all tasks at once."""
    algo = prepared("sparse_maml", steps=2, hidden=8)
    algo.fast_forward = True
    xs, ys, xq, yq = make_tasks(tasks=4, queries=4)
    want = algo.evaluate(xs, ys, xq, yq, batched=True, chunk=4)
    for chunk in (1, 3):
        got = algo.evaluate(xs, ys, xq, yq, batched=True, chunk=chunk)
        torch.testing.assert_close(got.accuracy, want.accuracy)
        for n in want.change_sq:
            torch.testing.assert_close(got.change_sq[n], want.change_sq[n], rtol=1e-9, atol=1e-20)


def test_batched_needs_the_lean_conv4():
    class MyConv4(Conv4):
        pass

    algo = build_algorithm("fomaml", MyConv4(in_channels=1, image_size=16, n_way=3, hidden=4), inner_steps=1)
    xs, ys, xq, yq = (t.float() if t.is_floating_point() else t for t in make_tasks(tasks=2))
    assert algo.evaluate(xs, ys, xq, yq).accuracy.shape == (2,)  # automatic choice: one task at a time
    with pytest.raises(ValueError, match="Conv4 backbone"):
        algo.evaluate(xs, ys, xq, yq, batched=True)
