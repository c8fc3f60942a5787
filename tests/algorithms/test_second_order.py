"""Second-order meta-gradients against central finite differences (float64, tiny Conv4 with BatchNorm)."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from .helpers import inner_loop_reference, make_algo, make_tasks

EPS = 1e-6


def query_loss(algo, theta, scales, batch):
    """Mean query loss after the inner loop, computed independently of the engine."""
    xs, ys, xq, yq = batch
    total = 0.0
    for t in range(xs.shape[0]):
        with torch.enable_grad():
            start = {n: p.detach().requires_grad_() for n, p in theta.items()}
            phi = inner_loop_reference(algo, start, scales, xs[t], ys[t], algo.inner_steps, create_graph=False)
        total += F.cross_entropy(functional_call(algo.backbone, phi, (xq[t],)), yq[t]).item()
    return total / xs.shape[0]


def directional_fd(f, point, direction):
    plus = {n: point[n] + EPS * direction[n] for n in point}
    minus = {n: point[n] - EPS * direction[n] for n in point}
    return (f(plus) - f(minus)) / (2 * EPS)


@pytest.mark.parametrize("name", ["maml", "sparse_maml", "meta_sgd", "anil", "boil"])
def test_theta_gradient_matches_finite_differences(name):
    algo = make_algo(name, steps=2, lr=0.3, hidden=3, first_order=None if name == "maml" else False)
    assert not algo.first_order
    torch.manual_seed(1)  # the same tasks whatever the algorithm's initialisation drew
    batch = make_tasks(tasks=2, n_way=3, shots=1, queries=2)
    algo.zero_grad()
    algo.meta_backward(*batch)
    theta = {n: p.detach().clone() for n, p in algo.backbone.named_parameters()}
    grad = {n: p.grad for n, p in algo.backbone.named_parameters()}
    m = algo.meta_parameters()
    scales = {n: algo.scale(v).detach() for n, v in m.items()} if m else None
    gen = torch.Generator().manual_seed(1)
    for _ in range(3):
        v = {n: torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in theta.items()}
        fd = directional_fd(lambda th: query_loss(algo, th, scales, batch), theta, v)
        analytic = sum((grad[n] * v[n]).sum() for n in theta).item()
        assert analytic == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_second_order_differs_from_first_order():
    """Guards against a second-order path that silently drops the second-order terms."""
    batch = make_tasks(tasks=2)
    grads = {}
    for name in ("maml", "fomaml"):
        torch.manual_seed(0)
        algo = make_algo(name, steps=3, lr=0.3)
        algo.meta_backward(*batch)
        grads[name] = torch.cat([p.grad.flatten() for p in algo.backbone.parameters()])
    assert (grads["maml"] - grads["fomaml"]).norm() > 1e-3 * grads["maml"].norm()


@pytest.mark.parametrize("name", ["sparse_maml", "meta_sgd", "sparse_relu_maml"])
def test_modulation_gradient_matches_finite_differences(name):
    """d/dm through the unrolled loop. The step function's straight-through derivative is checked against the
    finite differences of its linearisation s(m') = s(m) + (m' - m), which is what straight-through means."""
    algo = make_algo(name, steps=2, lr=0.3, hidden=3, first_order=False)
    torch.manual_seed(1)  # the same tasks whatever the algorithm's initialisation drew
    batch = make_tasks(tasks=2, n_way=3, shots=1, queries=2)
    algo.zero_grad()
    algo.meta_backward(*batch)
    theta = {n: p.detach() for n, p in algo.backbone.named_parameters()}
    m0 = {n: v.detach().clone() for n, v in algo.meta_parameters().items()}
    grad = {n: v.grad for n, v in algo.meta_parameters().items()}
    s0 = {n: algo.scale(v).detach() for n, v in m0.items()}

    def loss_at(m):
        return query_loss(algo, theta, {n: s0[n] + (m[n] - m0[n]) for n in m}, batch)

    gen = torch.Generator().manual_seed(2)
    for _ in range(3):
        v = {n: torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in m0.items()}
        fd = directional_fd(loss_at, m0, v)
        analytic = sum((grad[n] * v[n]).sum() for n in m0).item()
        assert analytic == pytest.approx(fd, rel=1e-5, abs=1e-8)
