"""The lean functional Conv4 and the fused batch norm/ReLU/pool equal the module's own forward (float64)."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from sparse_maml.models import build_backbone
from sparse_maml.models.fused.functional import Conv4Functional, channels_last
from sparse_maml.models.fused.kernels import (
    BatchNormReLUPool,
    batch_norm_relu_pool,
    bn_relu_pool_backward,
    bn_relu_pool_forward,
)


def conv4(size, channels=3, hidden=6):
    net = build_backbone("conv4", in_channels=channels, image_size=size, n_way=4, hidden=hidden).double()
    with torch.no_grad():  # negative scales make the fused op pool minima in those channels
        net.body.block2.norm.weight.uniform_(-1.0, 1.0)
        net.body.block3.norm.weight[:2] = -0.5
    return net


def grads(logits, y, params):
    return torch.autograd.grad(F.cross_entropy(logits, y), list(params.values()))


@pytest.mark.parametrize("size, channels", [(84, 3), (30, 3), (16, 3), (28, 1)])  # 30: odd maps drop a row/column
@pytest.mark.parametrize("fused", [True, False])
def test_forward_and_gradients_equal_the_module(size, channels, fused):
    net = conv4(size, channels)
    fn = Conv4Functional(net)
    params = {n: p.detach().clone().requires_grad_() for n, p in net.named_parameters()}
    x, y = torch.randn(5, channels, size, size, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0])
    want = functional_call(net, params, (x,))
    got = fn(params, x, fused=fused)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    for g, w in zip(grads(got, y, params), grads(want, y, params)):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def test_one_channel_images_get_channels_last_strides():
    x = torch.randn(4, 1, 6, 5)
    got = channels_last(x)
    assert got.stride() == (30, 1, 5, 1) and torch.equal(got, x)
    assert F.conv2d(got, torch.randn(8, 1, 3, 3), padding=1).is_contiguous(memory_format=torch.channels_last)
    rgb = torch.randn(4, 3, 6, 5)
    assert channels_last(rgb).stride() == rgb.contiguous(memory_format=torch.channels_last).stride()


def test_tasks_together_equal_one_by_one():
    net = conv4(20, channels=1)
    fn = Conv4Functional(net)
    tasks = 3
    params = {
        n: torch.stack([p.detach() + 0.05 * torch.randn_like(p) for _ in range(tasks)]).requires_grad_()
        for n, p in net.named_parameters()
    }
    x, y = torch.randn(tasks, 4, 1, 20, 20, dtype=torch.float64), torch.randint(0, 4, (tasks, 4))
    got = fn.forward_tasks(params, x, fused=True)
    want = torch.stack([functional_call(net, {n: p[t] for n, p in params.items()}, (x[t],)) for t in range(tasks)])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    loss = lambda out: sum(F.cross_entropy(out[t], y[t]) for t in range(tasks))  # noqa: E731
    g_got = torch.autograd.grad(loss(got), list(params.values()))
    g_want = torch.autograd.grad(loss(want), list(params.values()))
    for g, w in zip(g_got, g_want):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def test_fused_op_gradcheck():
    x = torch.randn(3, 4, 6, 7, dtype=torch.float64, requires_grad=True)
    w = torch.tensor([1.0, -0.7, 0.3, -2.0], dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *a: BatchNormReLUPool.apply(*a, 1e-5), (x, w, b))
    want = F.max_pool2d(F.relu(F.batch_norm(x, None, None, w, b, True, 0.0, 1e-5)), 2)
    torch.testing.assert_close(batch_norm_relu_pool(x, w, b, 1e-5), want)
    torch.testing.assert_close(batch_norm_relu_pool(x, w, b, 1e-5, fused=False), want)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("scatter", [False, True])  # False: the pool's backward, as on GPU
def test_fused_backward_variants_equal_autograd(scatter, channels_last):
    x = torch.randn(3, 4, 6, 7, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.tensor([1.0, -0.7, 0.3, -2.0], dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    dy = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    y, saved = bn_relu_pool_forward(x, w, b, 1e-5)
    out = torch.full_like(x, float("nan"))  # a reused buffer holds stale values: every entry must be written
    dx, dw, db = bn_relu_pool_backward(dy, saved, 1e-5, out=out, scatter=scatter)
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    want_y = F.max_pool2d(F.relu(F.batch_norm(leaves[0], None, None, *leaves[1:], True, 0.0, 1e-5)), 2)
    torch.testing.assert_close(y, want_y)
    for got, want in zip((dx, dw, db), torch.autograd.grad(want_y, leaves, dy)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    if scatter:
        assert dx.data_ptr() == out.data_ptr()


def test_fused_op_refuses_second_order():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    w, b = torch.ones(3, dtype=torch.float64, requires_grad=True), torch.zeros(3, dtype=torch.float64)
    (g,) = torch.autograd.grad(BatchNormReLUPool.apply(x, w, b, 1e-5).sum(), [w], create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), [x])


def test_fused_is_chosen_only_without_second_order_graph():
    net = conv4(16)
    fn = Conv4Functional(net)
    params = dict(net.named_parameters())
    assert not fn._fused(params, torch.zeros(1), None)
    with torch.no_grad():
        assert fn._fused(params, torch.zeros(1), None)
    assert fn._fused({n: p.detach() for n, p in params.items()}, torch.zeros(1), None)


def test_supports_only_plain_conv4():
    net = build_backbone("conv4", in_channels=1, image_size=16, n_way=3, hidden=4)
    assert Conv4Functional.supports(net)
    net.body.block2.pool = torch.nn.AvgPool2d(2)
    assert not Conv4Functional.supports(net)
    assert not Conv4Functional.supports(build_backbone("resnet12", in_channels=3, image_size=32, n_way=3))
