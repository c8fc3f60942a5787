"""Conv4: the four-block convolutional backbone of MAML and sparse-MAML."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """conv3x3 -> BatchNorm (batch statistics only) -> ReLU -> max-pool 2."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            # Transductive batch norm: no running statistics, so train and eval both use the batch's own.
            norm=nn.BatchNorm2d(out_channels, track_running_stats=False),
            relu=nn.ReLU(),
            pool=nn.MaxPool2d(2),
        )
    )


class Conv4(nn.Module):
    """Four conv blocks and a linear head.

    ``body`` maps images [B, C, H, W] to flat features [B, feature_dim]; ``head`` maps features to logits
    [B, n_way]. Every backbone in the registry has these two submodules: algorithms that adapt only the head
    (ANIL) or only the body (BOIL) rely on the split.
    """

    def __init__(self, in_channels: int = 3, image_size: int = 84, n_way: int = 5, hidden: int = 64) -> None:
        super().__init__()
        size = image_size
        for _ in range(4):
            size //= 2  # each max-pool halves (floor) the spatial size
        if size < 1:
            raise ValueError(f"image_size={image_size} is too small for Conv4's four 2x2 max-pools (needs >= 16)")
        self.feature_dim = hidden * size * size
        # Named blocks give readable parameter names (body.block1.conv.weight) in sparsity logs and figures.
        blocks = [(f"block{i + 1}", conv_block(in_channels if i == 0 else hidden, hidden)) for i in range(4)]
        self.body = nn.Sequential(OrderedDict([*blocks, ("flatten", nn.Flatten())]))
        self.head = nn.Linear(self.feature_dim, n_way)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] -> logits [B, n_way]."""
        return self.head(self.body(x))
