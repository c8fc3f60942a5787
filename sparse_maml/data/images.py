"""Decoding and resizing helpers shared by the format loaders."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import DatasetError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
RESAMPLE = {
    "nearest": Image.NEAREST,
    "bilinear": Image.BILINEAR,
    "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS,
    "box": Image.BOX,
}


def is_image_file(path: str | Path) -> bool:
    name = Path(path).name
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def decode_image(
    source: Path | bytes, size: tuple[int, int], mode: str = "RGB", resample: str = "bilinear", name: str | None = None
) -> np.ndarray:
    """Decode one image to uint8 [H, W, C] resized to size = (H, W); mode "RGB" or "L".

    Raises DatasetError naming the file when it is corrupt or truncated.
    """
    name = name or str(source)
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
            if im.format == "JPEG":
                im.draft(mode, (size[1], size[0]))  # DCT-domain downscale: large JPEGs decode many times faster
            im = im.convert(mode)  # first frame for GIF, palette and alpha resolved
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), RESAMPLE[resample])
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(
            f"cannot decode image {name}: {e}; the file is corrupt or truncated, replace or remove it"
        ) from e
    return arr[:, :, None] if arr.ndim == 2 else arr


def decode_images(
    sources: Sequence[Path | bytes],
    size: tuple[int, int],
    mode: str = "RGB",
    resample: str = "bilinear",
    names: Sequence[str] | None = None,
) -> torch.Tensor:
    """Decode many images in a thread pool (PIL releases the GIL) into uint8 [N, C, H, W]."""
    channels = 1 if mode == "L" else 3
    out = np.empty((len(sources), size[0], size[1], channels), dtype=np.uint8)

    def work(i: int) -> None:
        out[i] = decode_image(sources[i], size, mode, resample, None if names is None else names[i])

    workers = min(8, os.cpu_count() or 1)
    if len(sources) < 64 or workers == 1:
        for i in range(len(sources)):
            work(i)
    else:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(work, range(len(sources)), chunksize=64))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def resize_images(images: torch.Tensor, size: tuple[int, int], chunk: int = 2048) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 [N, C, H, W] to uint8 [N, C, *size], in chunks to bound memory."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    out = torch.empty((images.shape[0], images.shape[1], *size), dtype=torch.uint8)
    for i in range(0, images.shape[0], chunk):
        x = F.interpolate(
            images[i : i + chunk].float(), size=size, mode="bilinear", antialias=True, align_corners=False
        )
        out[i : i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def as_size(image_size: int | Sequence[int]) -> tuple[int, int]:
    """An int or (H, W) as (H, W)."""
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = (int(v) for v in image_size)
    return h, w
