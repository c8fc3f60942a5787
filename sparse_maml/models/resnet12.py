"""ResNet-12 as in the official sparse-MAML code (after BOIL): 64-128-256-512, or 64-160-320-640 when wide."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def conv_bn(in_channels: int, out_channels: int, kernel_size: int, i: int | str = "") -> list[tuple[str, nn.Module]]:
    return [
        (f"conv{i}", nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)),
        (f"norm{i}", nn.BatchNorm2d(out_channels, track_running_stats=False)),
    ]


class ResidualBlock(nn.Module):
    """Three conv3x3-BN layers with LeakyReLU, a 1x1 conv-BN shortcut, then an optional 2x2 max-pool."""

    def __init__(self, in_channels: int, out_channels: int, pool_padding: int | None) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            OrderedDict(
                [
                    *conv_bn(in_channels, out_channels, 3, 1),
                    ("relu1", nn.LeakyReLU()),
                    *conv_bn(out_channels, out_channels, 3, 2),
                    ("relu2", nn.LeakyReLU()),
                    *conv_bn(out_channels, out_channels, 3, 3),
                ]
            )
        )
        self.shortcut = nn.Sequential(OrderedDict(conv_bn(in_channels, out_channels, 1)))
        self.act = nn.LeakyReLU()
        self.pool = nn.Identity() if pool_padding is None else nn.MaxPool2d(2, padding=pool_padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.layers(x) + self.shortcut(x)))


class ResNet12(nn.Module):
    """ResNet-12 body with global average pooling and a linear head.

    Like the official code, blocks 1-3 end in a max-pool (the third padded) and block 4 does not:
    84x84 inputs give 11x11 maps before the average pool. ``body``: [B, C, H, W] -> [B, feature_dim].
    """

    def __init__(
        self, in_channels: int = 3, image_size: int = 84, n_way: int = 5, wide: bool = False, **_: object
    ) -> None:
        super().__init__()
        widths = (64, 160, 320, 640) if wide else (64, 128, 256, 512)
        pools = (0, 0, 1, None)
        blocks, c = [], in_channels
        for i, (w, p) in enumerate(zip(widths, pools)):
            blocks.append((f"block{i + 1}", ResidualBlock(c, w, p)))
            c = w
        self.feature_dim = widths[-1]
        self.body = nn.Sequential(OrderedDict([*blocks, ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]))
        self.head = nn.Linear(self.feature_dim, n_way)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, H, W] -> logits [B, n_way]."""
        return self.head(self.body(x))
