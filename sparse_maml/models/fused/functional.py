"""A lean functional forward of Conv4 on a flat parameter dict: the inner loop's hot path.

Equal to ``torch.func.functional_call(conv4, params, x)`` up to rounding (tests/models/test_functional.py), and
faster: no module dispatch, channels-last activations (the convolution and pooling kernels of oneDNN are several
times faster in that layout on CPU), and each block as one operation (``block.py``, ``kernels.py``).

``forward_tasks`` runs T tasks at once, each with its own parameters, by folding the tasks into the channels and
using grouped convolutions: the batch statistics stay per task because batch norm is per channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..conv4 import Conv4
from .block import fused_block

Params = dict[str, Tensor]


def channels_last(x: Tensor) -> Tensor:
    """x [B, C, H, W] in channels-last memory, strides included when C == 1.

    With one channel both layouts have the same memory, and ``contiguous(memory_format=channels_last)`` keeps the
    NCHW strides, from which oneDNN picks its NCHW kernels for the whole first block: at 28x28 its convolution,
    statistics and max-pool then run 5-15x slower (Omniglot's grey-scale images).
    """
    x = x.contiguous(memory_format=torch.channels_last)
    if x.shape[1] == 1 and x.stride(1) != 1:
        x = x.as_strided(x.shape, (x.stride(0), 1, x.stride(2), x.stride(3)))
    return x


class Conv4Functional:
    """Parameter names and batch-norm eps of a Conv4, and its forward pass on given parameters.

    ``fused``: use the single-pass batch norm/ReLU/pool (first-order gradients only); None picks it whenever no
    second-order graph can be asked for (grad mode off, or nothing requires grad).
    """

    def __init__(self, backbone: Conv4) -> None:
        self.blocks: list[tuple[str, str, str, str, float]] = []
        for name, block in backbone.body.named_children():
            if isinstance(block, nn.Flatten):
                continue
            conv, norm = f"body.{name}.conv", f"body.{name}.norm"
            eps = block.norm.eps
            self.blocks.append((f"{conv}.weight", f"{conv}.bias", f"{norm}.weight", f"{norm}.bias", eps))
        #: widest activation, for memory estimates
        self.hidden = max(block.conv.out_channels for block in backbone.body if not isinstance(block, nn.Flatten))

    @staticmethod
    def supports(backbone: nn.Module) -> bool:
        """Whether ``backbone`` is a plain Conv4 (conv3x3 pad 1 -> batch statistics BN -> ReLU -> 2x2 max-pool)."""
        if type(backbone) is not Conv4:
            return False
        for block in backbone.body.children():
            if isinstance(block, nn.Flatten):
                continue
            conv, norm, relu, pool = (getattr(block, k, None) for k in ("conv", "norm", "relu", "pool"))
            ok = (
                type(conv) is nn.Conv2d
                and conv.kernel_size == (3, 3)
                and conv.padding == (1, 1)
                and conv.stride == (1, 1)
                and conv.groups == 1
                and conv.bias is not None
                and type(norm) is nn.BatchNorm2d
                and norm.affine
                and not norm.track_running_stats
                and type(relu) is nn.ReLU
                and type(pool) is nn.MaxPool2d
                and pool.kernel_size == 2
                and pool.stride == 2
                and pool.padding == 0
                and not pool.ceil_mode
                and len(block) == 4
            )
            if not ok:
                return False
        return True

    @staticmethod
    def _fused(params: Params, x: Tensor, fused: bool | None) -> bool:
        if fused is not None:
            return fused
        return not torch.is_grad_enabled() or not (x.requires_grad or any(p.requires_grad for p in params.values()))

    def body(self, params: Params, x: Tensor, fused: bool | None = None) -> Tensor:
        """Flat features [B, feature_dim] of images x [B, C, H, W]."""
        fused = self._fused(params, x, fused)
        x = channels_last(x)
        for w, b, gamma, beta, eps in self.blocks:
            x = fused_block(x, params[w], params[b], params[gamma], params[beta], eps, fused)
        return x.flatten(1)  # (channel, row, column) order, as nn.Flatten on NCHW

    @staticmethod
    def head(params: Params, z: Tensor) -> Tensor:
        """Logits [B, n_way] of features z [B, feature_dim]."""
        return F.linear(z, params["head.weight"], params["head.bias"])

    def __call__(self, params: Params, x: Tensor, fused: bool | None = None) -> Tensor:
        """Logits [B, n_way] of images x [B, C, H, W]."""
        return self.head(params, self.body(params, x, fused))

    # ---- T tasks at once ---------------------------------------------------------------------------------
    def body_tasks(self, params: Params, x: Tensor, fused: bool | None = None) -> Tensor:
        """Features [T, B, feature_dim] of x [T, B, C, H, W]; every parameter has a leading task dim T."""
        fused = self._fused(params, x, fused)
        tasks, batch = x.shape[:2]
        # [T, B, C, H, W] -> [B, T*C, H, W]: task t owns channels t*C .. (t+1)*C - 1 at every layer.
        x = channels_last(x.transpose(0, 1).reshape(batch, -1, *x.shape[-2:]))
        for w, b, gamma, beta, eps in self.blocks:
            p = [params[k].flatten(0, 1) for k in (w, b, gamma, beta)]
            x = fused_block(x, *p, eps, fused, groups=tasks)
        return x.reshape(batch, tasks, -1).transpose(0, 1)

    @staticmethod
    def head_tasks(params: Params, z: Tensor) -> Tensor:
        """Logits [T, B, n_way] of features z [T, B, feature_dim]."""
        return torch.baddbmm(params["head.bias"].unsqueeze(1), z, params["head.weight"].transpose(1, 2))

    def forward_tasks(self, params: Params, x: Tensor, fused: bool | None = None) -> Tensor:
        """Logits [T, B, n_way] of x [T, B, C, H, W] with per-task parameters (leading dim T)."""
        return self.head_tasks(params, self.body_tasks(params, x, fused))
