"""A user's own images in a folder tree: `root/<split>/<class>/<image>`.

Any of png, jpg, jpeg, bmp, gif (first frame) and webp; hidden files and other extensions are ignored, and so are
class folders without images. Every image is resized to `image_size` (an int or [H, W]; 84 by default) and read
as RGB (`channels=3`) or grayscale (`channels=1`). Classes are the sorted folder names; splits are the folder
names under root ("train", "val", "test", or any other).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DatasetError
from ..images import as_size, decode_images, is_image_file
from ..registry import register_format
from ..store import ImageStore


def _classes(root: Path, split: str) -> dict[str, list[Path]]:
    base = root / split
    if not base.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise DatasetError(
            f"no folder {base}: the folder format expects {root}/{split}/<class>/<image> (folders present: {present})"
        )
    classes = {}
    for d in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in d.iterdir() if p.is_file() and is_image_file(p))
        if files:
            classes[d.name] = files
    if not classes:
        raise DatasetError(f"{base} holds no <class>/<image> files with extensions png, jpg, jpeg, bmp, gif, webp")
    return classes


def sources(root: Path, split: str, **_: object) -> list[Path]:
    try:
        return [f for files in _classes(root, split).values() for f in files]
    except DatasetError:
        return []


@register_format("folder", sources=sources)
def load_folder(root: Path, split: str, image_size: int | list[int] = 84, channels: int = 3) -> ImageStore:
    """Load root/<split>/<class>/<image>; images uint8 [N, channels, H, W]."""
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    classes = _classes(root, split)
    files = [f for fs in classes.values() for f in fs]
    labels = torch.repeat_interleave(torch.arange(len(classes)), torch.tensor([len(fs) for fs in classes.values()]))
    images = decode_images(files, as_size(image_size), "L" if channels == 1 else "RGB")
    return ImageStore(images, labels, list(classes))
