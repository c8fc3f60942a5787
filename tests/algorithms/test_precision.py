"""bf16 autocast: the fast paths run their convolutions in bf16 and deliver float32 meta-gradients, as accurate as
autocast of the module's own ops (bf16 meta-gradients of a batch-normalised network are far from the float32 ones:
the comparison is with what plain autocast gives, not with float32)."""

import pytest
import torch
import torch.nn.functional as F

from sparse_maml.algorithms import build_algorithm
from sparse_maml.models import build_backbone
from sparse_maml.models.fused.block import fused_block


def smooth_tasks(tasks=2, ways=5, shots=1, queries=5, size=28):
    """Images with class structure (a per-class pattern plus noise), float32."""
    gen = torch.Generator().manual_seed(0)
    protos = F.interpolate(torch.randn(tasks, ways, 7, 7, generator=gen), size=(size, size), mode="bilinear")

    def draw(per_class):
        y = torch.arange(ways).repeat_interleave(per_class)
        x = protos[:, y] + 0.5 * torch.randn(tasks, len(y), size, size, generator=gen)
        return x.unsqueeze(2), y.repeat(tasks, 1)

    return (*draw(shots), *draw(queries))


def meta_grads(fast, batched, bf16):
    torch.manual_seed(0)
    algo = build_algorithm("sparse_maml", build_backbone("conv4", 1, 28, 5, 16), inner_steps=2)
    algo.fast_forward, algo.batch_tasks = fast, batched
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        algo.meta_backward(*smooth_tasks())
    grads = {n: p.grad for n, p in algo.named_parameters()}
    assert all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads.values())
    # conv biases before batch norm: zero gradient up to rounding, nothing to compare
    return torch.cat([g.flatten() for n, g in grads.items() if not n.endswith(("conv.bias", "conv__bias"))])


@pytest.mark.parametrize("batched", [False, True])
def test_bf16_meta_gradients_as_accurate_as_plain_autocast(batched):
    want = meta_grads(fast=False, batched=False, bf16=False)
    plain = meta_grads(fast=False, batched=False, bf16=True)
    got = meta_grads(fast=True, batched=batched, bf16=True)
    err = (got - want).norm() / want.norm()
    assert 0 < err <= 1.25 * (plain - want).norm() / want.norm()


def test_fused_block_runs_in_bf16_under_autocast():
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    params = [torch.randn(5, 3, 3, 3), torch.zeros(5), torch.ones(5), torch.zeros(5)]
    params = [p.requires_grad_() for p in params]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fused_block(x, *params, 1e-5, fused=True)
    assert y.dtype == torch.bfloat16
    grads = torch.autograd.grad(y.float().square().sum(), [x, *params])
    assert [g.dtype for g in grads] == [torch.float32] * 5
    assert not grads[2].any()  # the conv bias, cancelled by batch norm
