"""Transductive batch norm -> ReLU -> 2x2 max-pool as one operation, for the first-order inner loop.

ReLU and the per-channel affine map of batch norm are monotone, so they commute with the max-pool:

    maxpool(relu(a * (x - mean) + b)) = relu(a * (maxpool(x) - mean) + b)      for a = weight * invstd >= 0

(channels with a < 0 pool the minimum instead). Only the statistics and the pool read the full-size tensor in the
forward pass; batch norm (with the statistics of the full tensor) and ReLU run on the pooled quarter, and so does
their backward. The gradient through the statistics, c1 + c2 * x per channel, is the one full-size pass of the
backward, and the gradient of the pooled entries is added where they came from. Against the op-by-op chain this
saves three full-size passes and most full-size allocations per layer (on CPU, large fresh allocations cost as
much as the arithmetic: they are page-faulted in).
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


def _statistics(x: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """Per-channel mean, biased variance and 1 / sqrt(variance + eps) of x [B, C, H, W] (float32 for bf16 x)."""
    if x.is_cuda:
        mean, invstd = torch.batch_norm_stats(x, eps)  # one kernel, float32 accumulation
        return mean, invstd.pow(-2).sub_(eps), invstd
    # One fused pass; the CPU kernel would round the statistics of a low-precision x to its dtype.
    low = x.dtype not in (torch.float32, torch.float64)
    mean, var = torch.batch_norm_update_stats(x.float() if low else x, None, None, 0.0)
    return mean, var, torch.rsqrt(var + eps)


def bn_relu_pool_forward(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> tuple[Tensor, tuple[Tensor, ...]]:
    """(y [B, C, H // 2, W // 2], what the backward needs) for x [B, C, H, W]."""
    mean, var, invstd = _statistics(x, eps)
    p, idx = _pool(x, weight)  # the sign of the scale weight * invstd is that of weight
    # Batch norm with the statistics of x, applied to the pooled values.
    y = torch.batch_norm(p, weight, bias, mean, var, False, 0.0, eps, True).relu_()
    return y, (x, idx, p, y, mean, var, invstd, weight)


def bn_relu_pool_backward(
    dy: Tensor, saved: tuple[Tensor, ...], eps: float, out: Tensor | None = None, scatter: bool | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """(dx, d weight, d bias) from dy; dx is written into ``out`` (shaped and strided like x) when given.

    Batch norm's backward with fixed statistics on the pooled values gives their gradient dp and those of the
    scale and shift; the statistics depend on every entry of x, which adds c1 + c2 * x per channel to dx, and dp
    goes to the pooled entries.
    """
    x, idx, p, y, mean, var, invstd, weight = saved
    dz = torch.ops.aten.threshold_backward(dy, y, 0)  # through the ReLU
    dp, d_weight, d_bias = torch.ops.aten.native_batch_norm_backward(
        dz, p, weight, mean, var, None, None, False, eps, [True, True, True]
    )
    # d mean = -a * d_bias and d var = -d_weight * a * invstd / 2 with a = weight * invstd; each entry of x enters
    # the mean with 1/n and the variance with 2 (x - mean) / n.
    n = x.numel() // x.shape[1]
    a_n = weight * invstd / n
    c2 = -(d_weight * invstd) * a_n
    c1 = torch.addcmul(-a_n * d_bias, c2, mean, value=-1.0)
    c = (1, -1, 1, 1)
    if scatter is None:
        scatter = not x.is_cuda  # CUDA's scatter-add is not deterministic, the pool's backward is
    if not scatter:  # the pool's backward zero-fills dx, then writes the pooled entries
        dx = torch.ops.aten.max_pool2d_with_indices_backward(dp, x, *_POOL, [0, 0], [1, 1], False, idx)
        return dx.addcmul_(x, c2.view(c)).add_(c1.view(c)), d_weight, d_bias
    dx = torch.addcmul(c1.view(c), x, c2.view(c)) if out is None else torch.addcmul(c1.view(c), x, c2.view(c), out=out)
    _add_at(dx, idx, dp)
    return dx, d_weight, d_bias


def _add_at(dx: Tensor, idx: Tensor, dp: Tensor) -> None:
    """dx[b, c].flatten()[idx[b, c, i, j]] += dp[b, c, i, j] for x [B, C, H, W] and dp, idx [B, C, H', W'].

    One read and write at the pooled entries, where the pool's own backward zero-fills all of dx first.
    """
    if dx.is_contiguous():  # planes contiguous: [B, C, H*W]
        dx.view(*dx.shape[:2], -1).scatter_add_(2, idx.reshape(*idx.shape[:2], -1), dp.reshape(*dp.shape[:2], -1))
        return
    rows = [t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, t.shape[1]) for t in (idx, dp)]  # channels-last: [B, H*W, C]
    dx.permute(0, 2, 3, 1).view(dx.shape[0], -1, dx.shape[1]).scatter_add_(1, *rows)


class BatchNormReLUPool(torch.autograd.Function):
    """relu(batch_norm(x)) max-pooled 2x2, with batch statistics; not twice differentiable."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
        y, saved = bn_relu_pool_forward(x, weight, bias, eps)
        ctx.save_for_backward(*saved)
        ctx.eps = eps
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        return (*bn_relu_pool_backward(dy, ctx.saved_tensors, ctx.eps), None)


def batch_norm_relu_pool(x: Tensor, weight: Tensor, bias: Tensor, eps: float, fused: bool = True) -> Tensor:
    """max_pool2d(relu(batch_norm(x, batch statistics)), 2): x [B, C, H, W] -> [B, C, H // 2, W // 2].

    ``fused=False`` composes differentiable ops (twice differentiable, for second-order meta-gradients); the pool
    comes before the ReLU, which is the same function with a quarter of the ReLU work.
    """
    if fused:
        return BatchNormReLUPool.apply(x, weight, bias, eps)
    return F.relu(F.max_pool2d(F.batch_norm(x, None, None, weight, bias, True, 0.0, eps), 2))
