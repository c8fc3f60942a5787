"""First-order meta-gradients equal autograd through the explicitly unrolled first-order graph (Appendix B)."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from .helpers import grads_of, inner_loop_reference, make_algo, make_tasks, rel_err

FIRST_ORDER = ["fomaml", "meta_sgd", "sparse_maml", "sparse_relu_maml", "anil", "boil"]


def unrolled_first_order_grads(algo, xs, ys, xq, yq):
    """Inner gradients detached, phi_0 = theta in the graph, s(m) in the graph with its straight-through
    derivative: backward of the mean query loss gives the first-order meta-gradients."""
    theta = dict(algo.backbone.named_parameters())
    m = algo.meta_parameters()
    total = 0.0
    for t in range(xs.shape[0]):
        scales = {n: algo.scale(m[n]) for n in m} if m else None
        # create_graph=False: every g_k is a constant; only theta and s(m) carry gradients.
        phi = inner_loop_reference(algo, theta, scales, xs[t], ys[t], algo.inner_steps, create_graph=False)
        total = total + F.cross_entropy(functional_call(algo.backbone, phi, (xq[t],)), yq[t])
    algo.zero_grad()
    (total / xs.shape[0]).backward()
    return grads_of(algo)


@pytest.mark.parametrize("name", FIRST_ORDER)
def test_meta_backward_matches_unrolled_graph(name):
    algo = make_algo(name, steps=4, first_order=True)
    if name == "meta_sgd":  # step sizes large enough that the inner loop moves phi well away from theta
        with torch.no_grad():
            for m in algo.meta_parameters().values():
                m.uniform_(0.5, 1.5)
    xs, ys, xq, yq = make_tasks(tasks=3)
    want_theta, want_m = unrolled_first_order_grads(algo, xs, ys, xq, yq)
    algo.zero_grad()
    algo.meta_backward(xs, ys, xq, yq)
    got_theta, got_m = grads_of(algo)
    assert set(got_m) == set(want_m)
    for n in want_theta:
        assert rel_err(got_theta[n], want_theta[n]) < 1e-5, n
    for n in want_m:
        assert want_m[n].abs().sum() > 0, n  # the check would be vacuous on a zero gradient
        assert rel_err(got_m[n], want_m[n]) < 1e-5, n


def test_mask_gradient_is_the_papers_update():
    """dL/dm = -alpha * grad L_query(phi_K) * sum_k grad L_support(phi_k) for one task (paper, Section 2)."""
    algo = make_algo("sparse_maml", steps=3, lr=0.2)
    xs, ys, xq, yq = make_tasks(tasks=1)
    theta = {n: p.detach() for n, p in algo.backbone.named_parameters()}
    mask = {n: (m >= 0).to(m.dtype).detach() for n, m in algo.meta_parameters().items()}
    phi = {n: p.clone().requires_grad_() for n, p in theta.items()}
    grad_sum = {n: torch.zeros_like(p) for n, p in theta.items()}
    for _ in range(3):
        loss = F.cross_entropy(functional_call(algo.backbone, phi, (xs[0],)), ys[0])
        grads = dict(zip(phi, torch.autograd.grad(loss, list(phi.values()))))
        phi = {n: (phi[n] - 0.2 * mask[n] * grads[n]).detach().requires_grad_() for n in phi}
        grad_sum = {n: grad_sum[n] + grads[n] for n in phi}
    loss_q = F.cross_entropy(functional_call(algo.backbone, phi, (xq[0],)), yq[0])
    g_query = dict(zip(phi, torch.autograd.grad(loss_q, list(phi.values()))))
    algo.zero_grad()
    algo.meta_backward(xs, ys, xq, yq)
    for n, m in algo.meta_parameters().items():
        assert rel_err(m.grad, -0.2 * g_query[n] * grad_sum[n]) < 1e-8, n
        assert rel_err(dict(algo.backbone.named_parameters())[n].grad, g_query[n]) < 1e-8, n


def test_outer_loss_is_mean_over_tasks():
    algo = make_algo("fomaml", steps=2)
    xs, ys, xq, yq = make_tasks(tasks=2)
    algo.zero_grad()
    algo.meta_backward(xs, ys, xq, yq)
    both, _ = grads_of(algo)
    per_task = []
    for t in range(2):
        algo.zero_grad()
        algo.meta_backward(xs[t : t + 1], ys[t : t + 1], xq[t : t + 1], yq[t : t + 1])
        per_task.append(grads_of(algo)[0])
    for n in both:
        assert rel_err(both[n], (per_task[0][n] + per_task[1][n]) / 2) < 1e-10, n
