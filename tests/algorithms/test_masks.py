"""The mask decides what the inner loop may change; masks start at the requested update sparsity."""

import pytest
import torch

from sparse_maml.algorithms import build_algorithm
from sparse_maml.algorithms.engine.masks import grouped_sparsity, init_mask, network_sparsity
from sparse_maml.models import build_backbone

from .helpers import make_algo, make_tasks


def test_negative_mask_entries_freeze_their_weights():
    algo = make_algo("sparse_maml", steps=3, hidden=8)
    with torch.no_grad():
        for m in algo.meta_parameters().values():
            m.copy_(torch.randn_like(m))  # about half of every tensor frozen, at random places
    xs, ys, _, _ = make_tasks(tasks=1)
    theta = {n: p.detach().clone() for n, p in algo.backbone.named_parameters()}
    fast = algo.adapt(xs[0], ys[0])
    moved = total = 0
    for n, m in algo.meta_parameters().items():
        frozen = m < 0
        assert torch.equal(fast[n][frozen], theta[n][frozen]), n
        delta = (fast[n] - theta[n])[~frozen]
        moved += (delta != 0).sum().item()
        total += delta.numel()
    # Entries with m >= 0 move unless their gradient is exactly zero (dead ReLUs, conv bias before BN).
    assert moved / total > 0.8


def test_relu_mask_is_the_step():
    """ReLU(m) is the step size itself (no alpha): m = 0.2 everywhere steps as first-order MAML with lr 0.2."""
    algo = make_algo("sparse_relu_maml", steps=1, lr=0.1)
    with torch.no_grad():
        for m in algo.meta_parameters().values():
            m.fill_(0.2)
    xs, ys, _, _ = make_tasks(tasks=1)
    theta = {n: p.detach().clone() for n, p in algo.backbone.named_parameters()}
    doubled = algo.adapt(xs[0], ys[0])
    plain = make_algo("fomaml", steps=1, lr=0.2)
    plain.backbone.load_state_dict(algo.backbone.state_dict())
    reference = plain.adapt(xs[0], ys[0])
    for n in theta:
        torch.testing.assert_close(doubled[n], reference[n])


@pytest.mark.parametrize(
    "name, adapts_head, adapts_body", [("anil", True, False), ("boil", False, True), ("maml", True, True)]
)
def test_which_parameters_adapt(name, adapts_head, adapts_body):
    algo = make_algo(name, steps=2, hidden=8)
    xs, ys, _, _ = make_tasks(tasks=1)
    theta = {n: p.detach().clone() for n, p in algo.backbone.named_parameters()}
    fast = algo.adapt(xs[0], ys[0])
    for n in theta:
        changed = not torch.equal(fast[n], theta[n])
        if n.startswith("head."):
            assert changed == adapts_head, n
        elif n.endswith("weight"):  # conv biases before BatchNorm get zero gradient and never move
            assert changed == adapts_body, n


def test_adapt_matches_hand_computed_sgd():
    """One inner step on the head of a network whose body is fixed is plain SGD on a linear softmax layer."""
    algo = make_algo("anil", steps=1, lr=0.5)
    xs, ys, _, _ = make_tasks(tasks=1)
    with torch.no_grad():
        z = algo.backbone.body(xs[0])
        w, b = algo.backbone.head.weight, algo.backbone.head.bias
        p = torch.softmax(z @ w.T + b, dim=-1)
        err = (p - torch.nn.functional.one_hot(ys[0], 3).to(p.dtype)) / len(ys[0])  # d CE / d logits
        want_w, want_b = w - 0.5 * err.T @ z, b - 0.5 * err.sum(0)
    fast = algo.adapt(xs[0], ys[0])
    torch.testing.assert_close(fast["head.weight"], want_w)
    torch.testing.assert_close(fast["head.bias"], want_b)


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_mask_init_sparsity_per_tensor(sparsity):
    backbone = build_backbone("conv4", in_channels=3, image_size=84, n_way=5, hidden=64)
    algo = build_algorithm("sparse_maml", backbone, mask_init_sparsity=sparsity)
    for name, value in algo.update_sparsity().items():
        n = algo.meta_parameters()[name].numel()
        assert abs(value - sparsity) <= max(0.02, 0.5 / n + 1e-6), (name, value)  # whole entries only
    assert network_sparsity({n: m.detach() for n, m in algo.meta_parameters().items()}) == pytest.approx(
        sparsity, abs=0.02
    )


def test_init_mask_is_kaiming_scaled_and_shifted():
    weight = torch.empty(64, 64, 3, 3)
    m = init_mask(weight, 0.3)
    assert (m < 0).float().mean().item() == pytest.approx(0.3, abs=1 / m.numel())
    bound = (6 / (64 * 9)) ** 0.5  # kaiming_uniform with the default gain
    assert m.max() - m.min() <= 2 * bound + 1e-6
    with pytest.raises(ValueError, match="mask_init_sparsity"):
        init_mask(weight, 1.5)


def test_sparsity_reports_follow_the_mask():
    masks = {
        "a.weight": torch.tensor([-1.0, 1.0, 2.0, -3.0]),
        "a.bias": torch.tensor([-1.0, -1.0]),
        "b.weight": torch.tensor([0.0, 1.0]),
    }
    assert grouped_sparsity(masks) == {"a": 4 / 6, "b": 0.0}
    assert network_sparsity(masks) == pytest.approx(4 / 8)
    algo = make_algo("sparse_maml")
    with torch.no_grad():
        algo.meta_parameters()["head.weight"].fill_(-1.0)
    assert algo.update_sparsity()["head.weight"] == 1.0
    assert algo.layer_sparsity()["head"] < 1.0  # the head bias kept its 50% init
    assert make_algo("maml").update_sparsity() == {}
