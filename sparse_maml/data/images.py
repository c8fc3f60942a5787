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
    source: Path | bytes | np.ndarray,
    size: tuple[int, int],
    mode: str = "RGB",
    resample: str = "bilinear",
    name: str | None = None,
    box: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Decode one image (a file, or its encoded bytes) to uint8 [H, W, C] resized to size = (H, W); mode "RGB" or
    "L".

    box = (left, upper, right, lower) in the file's pixel coordinates crops the image before resizing (e.g. a
    bounding box). Raises DatasetError naming the file when it is corrupt or truncated.
    """
    encoded = isinstance(source, (bytes, bytearray, memoryview, np.ndarray))
    name = name or ("an encoded image" if encoded else str(source))
    try:
        with Image.open(io.BytesIO(source) if encoded else source) as im:  # type: ignore[arg-type]
            full = im.size
            if im.format == "JPEG":
                # DCT-domain downscale (large JPEGs decode many times faster), keeping the crop at least `size`
                bw, bh = (box[2] - box[0], box[3] - box[1]) if box is not None else full
                want = (-(-full[0] * size[1] // max(bw, 1)), -(-full[1] * size[0] // max(bh, 1)))
                im.draft(mode, want)
            if box is not None:
                sx, sy = im.size[0] / full[0], im.size[1] / full[1]
                im = im.crop((box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
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
    sources: Sequence[Path | bytes | np.ndarray],
    size: tuple[int, int],
    mode: str = "RGB",
    resample: str = "bilinear",
    names: Sequence[str] | None = None,
    boxes: Sequence[tuple[int, int, int, int]] | None = None,
) -> torch.Tensor:
    """Decode many images in a thread pool (PIL releases the GIL) into uint8 [N, C, H, W]; `boxes` crops each."""
    channels = 1 if mode == "L" else 3
    out = np.empty((len(sources), size[0], size[1], channels), dtype=np.uint8)

    def work(i: int) -> None:
        name, box = None if names is None else names[i], None if boxes is None else boxes[i]
        out[i] = decode_image(sources[i], size, mode, resample, name, box)

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


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 [N, C, H, W] with C in (1, 3) to `channels`: gray repeated to RGB, or RGB to gray with the ITU-R 601-2
    luma weights PIL uses for mode "L"."""
    if channels not in (1, 3):
        raise DatasetError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    have = images.shape[1]
    if have == channels:
        return images
    if have == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if have != 3:
        raise DatasetError(f"cannot convert images with {have} channels to {channels}")
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    out = torch.empty((images.shape[0], 1, *images.shape[2:]), dtype=torch.uint8)
    for i in range(0, images.shape[0], 2048):  # in chunks: no float copy of a whole split
        out[i : i + 2048] = (images[i : i + 2048].float() * weights).sum(1, keepdim=True).round_().clamp_(0, 255)
    return out
