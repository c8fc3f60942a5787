"""sparse-ReLU-MAML as the official code runs it (phi - ReLU(m) * g, m = alpha at start) and Meta-SGD as Li et al.
(phi - m * g, m from U(0.005, 0.1)): their initial m and one inner step against the published rules."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sparse_maml.algorithms import build_algorithm
from sparse_maml.models import build_backbone

from .helpers import make_algo, make_tasks


class Linear(nn.Module):
    """The smallest backbone: flattened pixels into a linear head, whose gradient is known in closed form."""

    def __init__(self, pixels=16, n_way=3):
        super().__init__()
        self.body = nn.Flatten()
        self.head = nn.Linear(pixels, n_way)


def hand_gradient(net, x, y):
    """d CE / d (W, b) of a linear softmax classifier: err = (softmax - onehot) / N, dW = err^T x, db = sum err."""
    with torch.no_grad():
        z = x.flatten(1)
        p = torch.softmax(z @ net.head.weight.T + net.head.bias, dim=-1)
        err = (p - F.one_hot(y, p.shape[-1]).to(p.dtype)) / len(y)
        return {"head.weight": err.T @ z, "head.bias": err.sum(0)}


def one_task(n_way=3, shots=2, size=4):
    x = torch.randn(n_way * shots, 1, size, size, dtype=torch.float64)
    return x, torch.arange(n_way).repeat_interleave(shots)


@pytest.mark.parametrize("name", ["sparse_relu_maml", "meta_sgd"])
def test_one_step_is_the_hand_computed_update(name):
    net = Linear().double()
    algo = build_algorithm(name, net, inner_lr=0.3, inner_steps=1)
    m = algo.meta_parameters()
    with torch.no_grad():  # some entries negative: ReLU freezes them, Meta-SGD steps uphill there
        for v in m.values():
            v.uniform_(-0.2, 0.5)
    x, y = one_task()
    g = hand_gradient(net, x, y)
    fast = algo.adapt(x, y)
    for n, grad in g.items():
        step = torch.relu(m[n]) if name == "sparse_relu_maml" else m[n]  # no alpha: m is the step size
        torch.testing.assert_close(fast[n], dict(net.named_parameters())[n] - step.detach() * grad)


def conv4():
    return build_backbone("conv4", in_channels=1, image_size=16, n_way=3, hidden=4).double()


def autograd_gradient(net, x, y):
    params = dict(net.named_parameters())
    loss = F.cross_entropy(functional_call(net, params, (x,)), y)
    return dict(zip(params, torch.autograd.grad(loss, list(params.values()))))


def test_sparse_relu_maml_starts_at_alpha_and_steps_by_relu_m():
    a = 0.07
    algo = build_algorithm("sparse_relu_maml", conv4(), inner_lr=a, inner_steps=1)
    m = algo.meta_parameters()
    assert set(m) == set(algo.adapted) and all(torch.all(v == a) for v in m.values())
    assert algo.network_sparsity() == 0.0  # every entry learns at the start
    with torch.no_grad():
        m["head.weight"][0] = -1.0  # frozen row
        m["head.weight"][1] = 0.0  # ReLU(0) = 0: frozen too
    xs, ys, _, _ = make_tasks(tasks=1)
    theta = {n: p.detach().clone() for n, p in algo.backbone.named_parameters()}
    g = autograd_gradient(algo.backbone, xs[0], ys[0])
    fast = algo.adapt(xs[0], ys[0])
    for n in theta:
        torch.testing.assert_close(fast[n], theta[n] - torch.relu(m[n].detach()) * g[n])
    assert torch.equal(fast["head.weight"][:2], theta["head.weight"][:2])
    frozen = 2 * m["head.weight"].shape[1]
    assert algo.update_sparsity()["head.weight"] == pytest.approx(frozen / m["head.weight"].numel())


def test_meta_sgd_starts_in_li_et_als_range_and_steps_by_m():
    algo = build_algorithm("meta_sgd", conv4(), inner_lr=0.5, inner_steps=1)
    m = algo.meta_parameters()
    values = torch.cat([v.detach().flatten() for v in m.values()])
    assert values.min() >= 0.005 and values.max() <= 0.1 and values.std() > 0.01  # U(0.005, 0.1), not constant
    xs, ys, _, _ = make_tasks(tasks=1)
    theta = {n: p.detach().clone() for n, p in algo.backbone.named_parameters()}
    g = autograd_gradient(algo.backbone, xs[0], ys[0])
    fast = algo.adapt(xs[0], ys[0])
    for n in theta:
        torch.testing.assert_close(fast[n], theta[n] - m[n].detach() * g[n])
    assert algo.update_sparsity() == {}  # m is a rate, not a mask


@pytest.mark.parametrize("name", ["sparse_relu_maml", "meta_sgd"])
def test_m_init_choices(name):
    constant = make_algo(name, lr=0.2, m_init="constant")  # built in float32, then cast: 0.2 to float32 precision
    assert all(torch.allclose(v, torch.full_like(v, 0.2)) for v in constant.meta_parameters().values())
    uniform = make_algo(name, lr=0.2, m_init="uniform")
    assert all(((v >= 0.005) & (v <= 0.1)).all() for v in uniform.meta_parameters().values())
    with pytest.raises(ValueError, match="m_init='kaiming'"):
        make_algo(name, m_init="kaiming")


def test_sparse_relu_maml_can_start_from_the_mask():
    algo = make_algo("sparse_relu_maml", m_init="mask", mask_init_sparsity=0.3)
    assert algo.network_sparsity() == pytest.approx(0.3, abs=0.02)
    assert make_algo("meta_sgd").name == "meta_sgd"
    with pytest.raises(ValueError, match="no option m_init"):
        make_algo("sparse_maml", m_init="constant")
