"""Backbones. Each has a ``body`` (images -> flat features) and a linear ``head`` (features -> logits)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .conv4 import Conv4
from .resnet12 import ResNet12

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "conv4": Conv4,
    "resnet12": ResNet12,
    "resnet12_wide": lambda **kw: ResNet12(wide=True, **kw),
}


def register_backbone(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator adding a backbone factory to ``build_backbone``; it must build a module with body and head."""

    def add(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        BACKBONES[name] = factory
        return factory

    return add


def build_backbone(
    name: str, in_channels: int = 3, image_size: int = 84, n_way: int = 5, hidden: int = 64, **kwargs: object
) -> nn.Module:
    """Build a registered backbone by name, e.g. ``build_backbone("conv4", in_channels=1, image_size=28)``.

    ``hidden`` is the Conv4 width; ResNet-12 ignores it and takes ``wide=True`` instead.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)} or register your own")
    model = BACKBONES[name](in_channels=in_channels, image_size=image_size, n_way=n_way, hidden=hidden, **kwargs)
    if not (hasattr(model, "body") and hasattr(model, "head")):
        raise TypeError(f"backbone {name!r} must have a `body` and a `head` submodule")
    return model


__all__ = ["BACKBONES", "Conv4", "ResNet12", "build_backbone", "register_backbone"]
