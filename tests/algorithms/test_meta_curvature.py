"""Meta-Curvature against a dense reference: each layer's step is the Kronecker product of its learned factors
applied to the flattened gradient (Park and Oliva, 2019), in one inner step, in first-order meta-gradients
(autograd through the unrolled loop) and in second-order ones (finite differences)."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from .helpers import make_algo, make_tasks, rel_err

EPS = 1e-6


def curved(name, **kwargs):
    """A tiny float64 Meta-Curvature learner whose factors are away from the identity."""
    algo = make_algo("meta_curvature", hidden=2, **kwargs)
    with torch.no_grad():
        for m in algo.meta_parameters().values():
            m.add_(0.3 * torch.randn_like(m))
    return algo


def dense_step(name, g, meta):
    """M(g) as one matrix on vec(g): M_out (x) M_in (x) M_f for a weight (row-major vec), m * g for a vector."""
    if g.dim() == 1:
        return meta[name] * g
    parts = ["out", "in"] + (["kernel"] if g.dim() > 2 else [])
    matrix = meta[f"{name}:{parts[0]}"]
    for part in parts[1:]:
        matrix = torch.kron(matrix, meta[f"{name}:{part}"])
    return (matrix @ g.flatten()).reshape(g.shape)


def unrolled_query_loss(algo, theta, meta, batch, create_graph):
    """Mean query loss after the inner loop phi <- phi - alpha * dense_step(g), written out on the whole network;
    ``create_graph=False`` holds every g_k constant (the first-order graph)."""
    xs, ys, xq, yq = batch
    total = 0.0
    for t in range(len(xs)):
        phi = dict(theta)
        for _ in range(algo.inner_steps):
            loss = F.cross_entropy(functional_call(algo.backbone, phi, (xs[t],)), ys[t])
            grads = torch.autograd.grad(loss, [phi[n] for n in algo.adapted], create_graph=create_graph)
            for n, g in zip(algo.adapted, grads):
                phi[n] = phi[n] - algo.inner_lr * dense_step(n, g, meta)
        total = total + F.cross_entropy(functional_call(algo.backbone, phi, (xq[t],)), yq[t])
    return total / len(xs)


def test_the_step_is_the_kronecker_product_of_the_factors():
    algo = curved("meta_curvature")
    meta = {k: v.detach() for k, v in algo.meta_parameters().items()}
    assert {"body.block2.conv.weight:kernel", "head.weight:in", "head.bias"} <= set(meta)
    for n, p in algo.backbone.named_parameters():
        g = torch.randn_like(p)
        torch.testing.assert_close(algo.precondition(n, g, meta), dense_step(n, g, meta))


def test_one_step_from_the_identity_is_maml():
    xs, ys, _, _ = make_tasks(tasks=1)
    mc = make_algo("meta_curvature", steps=1, lr=0.3)
    maml = make_algo("fomaml", steps=1, lr=0.3)
    maml.backbone.load_state_dict(mc.backbone.state_dict())
    got, want = mc.adapt(xs[0], ys[0]), maml.adapt(xs[0], ys[0])
    for n in want:
        torch.testing.assert_close(got[n], want[n])


def test_first_order_meta_gradients_equal_the_unrolled_graph():
    algo = curved("meta_curvature", steps=3, lr=0.2, first_order=True)
    batch = make_tasks(tasks=2)
    theta = dict(algo.backbone.named_parameters())
    algo.zero_grad()
    unrolled_query_loss(algo, theta, algo.meta_parameters(), batch, create_graph=False).backward()
    want = {n: p.grad.clone() for n, p in {**theta, **algo.meta_parameters()}.items()}
    algo.zero_grad()
    algo.meta_backward(*batch)
    got = {n: p.grad for n, p in {**theta, **algo.meta_parameters()}.items()}
    for n in want:
        assert rel_err(got[n], want[n]) < 1e-8, n
    assert all(want[n].abs().sum() > 0 for n in algo.meta_parameters())  # every factor gets a gradient


def test_second_order_meta_gradients_match_finite_differences():
    algo = curved("meta_curvature", steps=2, lr=0.3)
    assert not algo.first_order  # second order by default, as Park and Oliva
    torch.manual_seed(1)
    batch = make_tasks(tasks=2, n_way=3, shots=1, queries=2)
    algo.zero_grad()
    algo.meta_backward(*batch)
    # theta and the factors, keyed apart (a bias's factor has the bias's own name)
    learned = {("theta", n): p for n, p in algo.backbone.named_parameters()}
    learned.update({("meta", n): p for n, p in algo.meta_parameters().items()})
    point = {k: p.detach().clone() for k, p in learned.items()}
    grad = {k: p.grad for k, p in learned.items()}

    def loss_at(values):
        theta = {n: v.requires_grad_() for (kind, n), v in values.items() if kind == "theta"}
        meta = {n: v for (kind, n), v in values.items() if kind == "meta"}
        return unrolled_query_loss(algo, theta, meta, batch, create_graph=False).item()

    gen = torch.Generator().manual_seed(2)
    for _ in range(3):
        v = {k: torch.randn(p.shape, generator=gen, dtype=p.dtype) for k, p in point.items()}
        plus = loss_at({k: point[k] + EPS * v[k] for k in point})
        minus = loss_at({k: point[k] - EPS * v[k] for k in point})
        analytic = sum((grad[k] * v[k]).sum() for k in point).item()
        assert analytic == pytest.approx((plus - minus) / (2 * EPS), rel=1e-5, abs=1e-8)


def test_tasks_run_one_at_a_time():
    algo = make_algo("meta_curvature", steps=1)
    xs, ys, xq, yq = make_tasks(tasks=2)
    algo.fast_forward = True
    assert algo.evaluate(xs, ys, xq, yq).accuracy.shape == (2,)  # the automatic choice: one task at a time
    with pytest.raises(ValueError, match="element-wise"):
        algo.evaluate(xs, ys, xq, yq, batched=True)
