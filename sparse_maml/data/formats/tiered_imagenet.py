"""tieredImageNet (Ren et al., 2018): 608 ImageNet classes under 34 categories; 351/97/160 classes (20/6/8
categories) for train/val/test; 84x84 RGB. Two layouts, detected in root (or root/tiered-imagenet/):

- "png": Ren et al.'s release, `{split}_images_png.pkl` (a pickled list of PNG-encoded images) with
  `{split}_labels.pkl` (a dict: `label_specific` [n] the class of each image, `label_specific_str` the class wnids,
  `label_general` [n] the category of each image, `label_general_str` the category names).
- "npz": the decoded variant many codebases use, `{split}_images.npz` (`images` uint8 [n, 84, 84, 3]) with the same
  labels pickle. The usual conversion script decodes the PNGs with OpenCV, which stores BGR: `npz_order="bgr"`
  (default) flips the channels so that both layouts give the same RGB images; say "rgb" for an npz stored as RGB.

Classes are the wnids, sorted; each is in the group of its category (`within_group=True` draws an episode from one
category). The number of classes of train, val and test is checked against the published 351/97/160. Pickles are
read with a restricted unpickler (arrays and containers only). `source="png" | "npz"` forces a layout.
"""

from __future__ import annotations

import ctypes
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DatasetError
from ..images import as_size, decode_images, resize_images
from ..pickles import entry, read_pickle
from ..registry import register_format
from ..store import ImageStore

CLASSES = {"train": 351, "val": 97, "test": 160}
LAYOUTS = ("png", "npz")


def detect(root: Path, split: str, source: str = "auto") -> tuple[str, list[Path]]:
    """(layout, [images file, labels file]) for a split; raises DatasetError naming what was expected."""
    if source not in ("auto", *LAYOUTS):
        raise DatasetError(f"unknown tieredImageNet source {source!r}; use one of auto, {', '.join(LAYOUTS)}")
    for base in (root, root / "tiered-imagenet"):
        labels = base / f"{split}_labels.pkl"
        for layout, images in (("png", base / f"{split}_images_png.pkl"), ("npz", base / f"{split}_images.npz")):
            if source in ("auto", layout) and images.is_file() and labels.is_file():
                return layout, [images, labels]
    raise DatasetError(
        f"no tieredImageNet files for split {split!r} in {root}: expected {split}_labels.pkl with "
        f"{split}_images_png.pkl (Ren et al.'s release) or {split}_images.npz"
        + ("" if source == "auto" else f" (source={source!r})")
    )


def _labels(path: Path, n: int, split: str) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
    """(class of each image [n], class wnids, category of each image [n], category names), checked."""
    what = "a tieredImageNet labels pickle"
    data = read_pickle(path, what)
    specific = np.asarray(entry(data, "label_specific", path, what), dtype=np.int64).reshape(-1)
    general = np.asarray(entry(data, "label_general", path, what), dtype=np.int64).reshape(-1)
    wnids = [str(w) for w in entry(data, "label_specific_str", path, what)]
    categories = [str(c) for c in entry(data, "label_general_str", path, what)]
    if not len(specific) == len(general) == n:
        raise DatasetError(f"{path} labels {len(specific)} images but the images file holds {n}: they do not match")
    if n and (
        specific.min() < 0 or specific.max() >= len(wnids) or general.min() < 0 or general.max() >= len(categories)
    ):
        raise DatasetError(f"{path}: labels outside the {len(wnids)} classes or {len(categories)} categories it names")
    expected = CLASSES.get(split)
    if expected is not None and len(wnids) != expected:
        raise DatasetError(
            f"{path} names {len(wnids)} classes but the tieredImageNet {split} split has {expected}: "
            "the file is from another split or another dataset"
        )
    empty = sorted(set(range(len(wnids))) - set(np.unique(specific).tolist()))
    if empty:
        raise DatasetError(f"{path}: {len(empty)} classes have no images, e.g. {[wnids[i] for i in empty[:3]]}")
    return specific, wnids, general, categories


def _read_png(path: Path) -> list:
    """The PNG-encoded images (uint8 arrays), not yet decoded."""
    encoded = read_pickle(path, "Ren et al.'s tieredImageNet images pickle")
    if not isinstance(encoded, (list, tuple, np.ndarray)):
        raise DatasetError(f"{path}: expected a list of PNG-encoded images, got {type(encoded).__name__}")
    return list(encoded)


def _decode_png(encoded: list, size: tuple[int, int], path: Path, chunk: int = 8192) -> torch.Tensor:
    """Decode in chunks, handing each chunk's PNG bytes back to the system once decoded, so that the encoded and
    the decoded split are not both held whole (train: about 8 and 9.5 GB)."""
    images = torch.empty((len(encoded), 3, *size), dtype=torch.uint8)
    for i in range(0, len(encoded), chunk):
        names = [f"{path}[{j}]" for j in range(i, min(i + chunk, len(encoded)))]
        images[i : i + chunk] = decode_images(encoded[i : i + chunk], size, "RGB", names=names)
        encoded[i : i + chunk] = [None] * len(names)
        _trim_heap()
    return images


def _trim_heap() -> None:
    """Return freed heap pages to the system (glibc's malloc_trim): the freed PNG bytes are many small blocks that
    malloc would otherwise keep resident. A no-op where there is no glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _read_npz(path: Path, order: str) -> torch.Tensor:
    if order not in ("bgr", "rgb"):
        raise DatasetError(f"npz_order must be 'bgr' or 'rgb', got {order!r}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            images = npz["images"]
    except KeyError as e:
        raise DatasetError(f"{path} has no array 'images'") from e
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"cannot read {path} ({e}); the file is corrupt or truncated, download it again") from e
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        raise DatasetError(f"{path}: images must be uint8 [n, H, W, 3], got {images.dtype} {images.shape}")
    channels = [2, 1, 0] if order == "bgr" else [0, 1, 2]
    out = torch.empty((images.shape[0], 3, images.shape[1], images.shape[2]), dtype=torch.uint8)
    for i in range(0, len(images), 4096):  # channels first in chunks: no second full-size copy
        out[i : i + 4096] = torch.from_numpy(images[i : i + 4096][..., channels]).permute(0, 3, 1, 2)
    return out


def sources(root: Path, split: str, source: str = "auto", **_: object) -> list[Path]:
    try:
        return detect(root, split, source)[1]
    except DatasetError:
        return []


@register_format("tiered_imagenet", sources=sources)
def load_tiered_imagenet(
    root: Path, split: str, image_size: Any = 84, source: str = "auto", npz_order: str = "bgr"
) -> ImageStore:
    """Load a tieredImageNet split ("train", "val", "test"); images uint8 [N, 3, S, S] (84x84 by default)."""
    layout, (images_path, labels_path) = detect(root, split, source)
    raw = _read_png(images_path) if layout == "png" else _read_npz(images_path, npz_order)
    specific, wnids, general, categories = _labels(labels_path, len(raw), split)  # checked before decoding
    size = as_size(image_size)
    if layout == "png":
        images = _decode_png(raw, size, images_path)
    else:
        images = resize_images(raw, size)
    names = sorted(wnids)
    rank = np.argsort(np.argsort(wnids, kind="stable"), kind="stable")  # file class id -> sorted class id
    labels = rank[specific]
    category = dict(zip(specific.tolist(), general.tolist()))
    groups = [categories[category[wnids.index(w)]] for w in names]
    return ImageStore(images, torch.from_numpy(labels), names, groups)  # file order: no copy of a large split
