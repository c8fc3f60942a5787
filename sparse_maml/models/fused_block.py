"""A whole Conv4 block, conv3x3 -> batch norm (batch statistics) -> ReLU -> 2x2 max-pool, as one autograd op for
the first-order inner loop.

On top of ``fused.py`` it owns the convolution, which buys two things. The gradient of the convolution's output
never leaves the op, so it is written into a buffer kept from call to call instead of a fresh full-size tensor:
glibc maps blocks above 32 MiB anew on every allocation, and page-faulting them in costs as much as the arithmetic
on them. And the convolution's bias, which batch norm cancels exactly (it shifts the mean by itself and leaves the
variance alone), is neither added nor given the rounding noise of a gradient: its gradient is exactly zero.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .fused import batch_norm_relu_pool, bn_relu_pool_backward, bn_relu_pool_forward

_BUFFERS = threading.local()  # per thread: concurrent backward passes never share a buffer
_MAX_BUFFERS = 4


def _buffer_like(x: Tensor) -> Tensor | None:
    """A reused tensor with x's shape, strides, dtype and device (CPU only: CUDA's allocator already caches)."""
    if x.is_cuda:
        return None
    cache = getattr(_BUFFERS, "cache", None)
    if cache is None:
        cache = _BUFFERS.cache = {}
    key = (x.shape, x.stride(), x.dtype, x.device)
    buf = cache.pop(key, None)
    if buf is None:
        buf = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device)
        if len(cache) >= _MAX_BUFFERS:
            cache.pop(next(iter(cache)))  # the least recently used
    cache[key] = buf
    return buf


class FusedConvBlock(torch.autograd.Function):
    """max_pool2d(relu(batch_norm(conv2d(inp, weight, bias, padding=1, groups=groups))), 2); first order."""

    @staticmethod
    def forward(ctx, inp, weight, conv_bias, gamma, beta, eps: float, groups: int) -> Tensor:
        x = F.conv2d(inp, weight, None, padding=1, groups=groups)  # + conv_bias: cancelled by batch norm
        y, saved = bn_relu_pool_forward(x, gamma, beta, eps)
        ctx.save_for_backward(inp, weight, *saved)
        ctx.groups, ctx.bias_shape = groups, conv_bias.shape
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor):
        inp, weight, *saved = ctx.saved_tensors
        dx, d_gamma, d_beta = bn_relu_pool_backward(dy, tuple(saved), out=_buffer_like(saved[0]))
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False]
        d_inp, d_weight, _ = torch.ops.aten.convolution_backward(
            dx, inp, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], ctx.groups, mask
        )
        d_bias = dy.new_zeros(ctx.bias_shape) if ctx.needs_input_grad[2] else None
        return d_inp, d_weight, d_bias, d_gamma, d_beta, None, None


def fused_block(
    x: Tensor,
    weight: Tensor,
    conv_bias: Tensor,
    gamma: Tensor,
    beta: Tensor,
    eps: float,
    fused: bool = True,
    groups: int = 1,
) -> Tensor:
    """One Conv4 block on x [B, C_in, H, W] -> [B, C_out, H // 2, W // 2]. ``fused=False``: differentiable ops
    (twice differentiable, for second-order meta-gradients)."""
    if fused:
        return FusedConvBlock.apply(x, weight, conv_bias, gamma, beta, eps, groups)
    x = F.conv2d(x, weight, conv_bias, padding=1, groups=groups)
    return batch_norm_relu_pool(x, gamma, beta, eps, fused=False)
