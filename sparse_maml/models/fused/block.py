"""A whole Conv4 block, conv3x3 -> batch norm (batch statistics) -> ReLU -> 2x2 max-pool, as one autograd op for
the first-order inner loop.

On top of ``kernels.py`` it owns the convolution, which buys three things. The gradient of the convolution's output
never leaves the op, so it is written into a buffer kept from call to call instead of a fresh full-size tensor:
glibc maps blocks above 32 MiB anew on every allocation, and page-faulting them in costs as much as the arithmetic
on them. The convolution's bias, which batch norm cancels exactly (it shifts the mean by itself and leaves the
variance alone), is neither added nor given the rounding noise of a gradient: its gradient is exactly zero. And
under autocast (bf16 mixed precision) the block runs in the autocast dtype, with its statistics and the gradients
of its float32 parameters in float32.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from .kernels import batch_norm_relu_pool, bn_relu_pool_backward, bn_relu_pool_forward

_BUFFERS = threading.local()  # per thread: concurrent backward passes never share a buffer
_MAX_BUFFERS = 8  # one per block for the support set and one for the query set


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
        dtype = compute_dtype(inp)
        ctx.dtypes = (inp.dtype, weight.dtype)
        if inp.dtype != dtype or weight.dtype != dtype:
            inp, weight = inp.to(dtype), weight.to(dtype)
        x = F.conv2d(inp, weight, None, padding=1, groups=groups)  # + conv_bias: cancelled by batch norm
        y, saved = bn_relu_pool_forward(x, gamma, beta, eps)
        ctx.save_for_backward(inp, weight, *saved)
        ctx.groups, ctx.bias_shape, ctx.eps = groups, conv_bias.shape, eps
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor):
        inp, weight, *saved = ctx.saved_tensors
        dx, d_gamma, d_beta = bn_relu_pool_backward(dy, tuple(saved), ctx.eps, out=_buffer_like(saved[0]))
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False]
        d_inp, d_weight, _ = torch.ops.aten.convolution_backward(
            dx, inp, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], ctx.groups, mask
        )
        if weight.dtype != ctx.dtypes[1]:  # autocast: gradients in the dtypes of the inputs
            d_inp = d_inp.to(ctx.dtypes[0]) if d_inp is not None else None
            d_weight = d_weight.to(ctx.dtypes[1]) if d_weight is not None else None
        d_bias = dy.new_zeros(ctx.bias_shape, dtype=ctx.dtypes[1]) if ctx.needs_input_grad[2] else None
        return d_inp, d_weight, d_bias, d_gamma, d_beta, None, None


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype convolutions on x run in: autocast's where it is on for x's device, else x's own."""
    device = x.device.type
    if torch.is_autocast_enabled(device) and x.dtype != torch.float64:  # autocast leaves float64 alone
        return torch.get_autocast_dtype(device)
    return x.dtype


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
