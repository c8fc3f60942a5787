"""Transductive batch norm -> ReLU -> 2x2 max-pool as one operation, for the first-order inner loop.

ReLU and the per-channel affine map of batch norm are monotone, so they commute with the max-pool:

    maxpool(relu(a * (x - mean) + b)) = relu(a * (maxpool(x) - mean) + b)      for a = weight * invstd >= 0

(channels with a < 0 pool the minimum instead). Only the statistics and the pool read the full-size tensor; the
normalisation and ReLU, forward and backward, run on the pooled quarter, and the backward adds the gradient through
the statistics, c1 + c2 * x per channel, to the pool's scattered gradient in place. Against the op-by-op chain
this saves two full-size passes and four of its five full-size allocations per layer (on CPU, large fresh
allocations cost as much as the arithmetic: they are page-faulted in).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

_POOL = ([2, 2], [2, 2])  # kernel, stride


def _pool(x: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
    """Max-pool of x [B, C, H, W], min-pool for channels with a < 0; (pooled, argmax indices in each plane)."""
    p, idx = torch.ops.aten.max_pool2d_with_indices(x, *_POOL)
    neg = a < 0
    # On GPU, asking whether any scale is negative would wait for the device: pool the minima regardless.
    if x.is_cuda or bool(neg.any()):
        neg = neg.view(1, -1, 1, 1)
        p_min, idx_min = torch.ops.aten.max_pool2d_with_indices(-x, *_POOL)
        p, idx = torch.where(neg, -p_min, p), torch.where(neg, idx_min, idx)
    return p, idx


def bn_relu_pool_forward(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> tuple[Tensor, tuple[Tensor, ...]]:
    """(y [B, C, H // 2, W // 2], what the backward needs) for x [B, C, H, W]."""
    # Biased variance, as batch norm normalises with; one fused pass over x.
    mean, var = torch.batch_norm_update_stats(x, None, None, 0.0)
    invstd = torch.rsqrt(var + eps)
    p, idx = _pool(x, weight * invstd)
    c = (1, -1, 1, 1)
    xhat = (p - mean.view(c)).mul_(invstd.view(c))  # normalised pooled values; subtract first, as BN does
    y = torch.addcmul(bias.view(c), xhat, weight.view(c)).relu_()
    return y, (x, idx, xhat, y, mean, invstd, weight)


def bn_relu_pool_backward(
    dy: Tensor, saved: tuple[Tensor, ...], out: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, d weight, d bias) from dy; dx is written into ``out`` (shaped and strided like x) when given."""
    x, idx, xhat, y, mean, invstd, weight = saved
    c = (1, -1, 1, 1)
    n = x.numel() // x.shape[1]
    dz = torch.ops.aten.threshold_backward(dy, y, 0)  # through the ReLU
    d_bias = dz.sum((0, 2, 3))
    d_weight = (dz * xhat).sum((0, 2, 3))
    a = weight * invstd
    dp = dz * a.view(c)
    # mean and invstd depend on every entry of x: d/dx += d_mean / n + d_var * 2 (x - mean) / n.
    d_mean = -a * d_bias
    d_var = -0.5 * d_weight * a * invstd
    c2 = 2.0 * d_var / n
    c1 = d_mean / n - c2 * mean
    args = (dp, x, *_POOL, [0, 0], [1, 1], False, idx)
    if out is None:
        dx = torch.ops.aten.max_pool2d_with_indices_backward(*args)
    else:
        dx = torch.ops.aten.max_pool2d_with_indices_backward.grad_input(*args, grad_input=out)
    dx.addcmul_(x, c2.view(c)).add_(c1.view(c))
    return dx, d_weight, d_bias


class BatchNormReLUPool(torch.autograd.Function):
    """relu(batch_norm(x)) max-pooled 2x2, with batch statistics; not twice differentiable."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
        y, saved = bn_relu_pool_forward(x, weight, bias, eps)
        ctx.save_for_backward(*saved)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        return (*bn_relu_pool_backward(dy, ctx.saved_tensors), None)


def batch_norm_relu_pool(x: Tensor, weight: Tensor, bias: Tensor, eps: float, fused: bool = True) -> Tensor:
    """max_pool2d(relu(batch_norm(x, batch statistics)), 2): x [B, C, H, W] -> [B, C, H // 2, W // 2].

    ``fused=False`` composes differentiable ops (twice differentiable, for second-order meta-gradients); the pool
    comes before the ReLU, which is the same function with a quarter of the ReLU work.
    """
    if fused:
        return BatchNormReLUPool.apply(x, weight, bias, eps)
    return F.relu(F.max_pool2d(F.batch_norm(x, None, None, weight, bias, True, 0.0, eps), 2))
