"""CUB-200-2011 (Wah et al., 2011) in the official archive's layout: `CUB_200_2011/images/<class>/<image>.jpg` under
root (root may also be the `CUB_200_2011` folder itself). The few-shot split is the 100/50/50 classes of Chen et
al. (2019) shipped in `assets/cub` (or `split_dir`); every listed class must be there with its images.

Each image is read whole (no bounding-box crop), as RGB, and resized to image_size x image_size (84 by default),
as the authors' code and torchmeta do. Classes are the folder names, sorted. `download=True` fetches
`CUB_200_2011.tgz` from CaltechDATA (1.1 GB; MD5 pinned) and extracts its `CUB_200_2011/` folder into root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..class_lists import read_class_list
from ..download import download_and_extract
from ..errors import DatasetError
from ..images import as_size, decode_images, is_image_file
from ..registry import register_format
from ..store import ImageStore

URL = "https://data.caltech.edu/records/65de6-vp158/files"
ARCHIVE = "CUB_200_2011.tgz"
MD5 = "97eceeb196236b17998738112f37df78"  # the archive's digest as torchmeta and torchvision-style loaders pin it


def image_root(root: Path) -> Path:
    """The `images/` folder: root/CUB_200_2011/images or root/images."""
    for folder in (root / "CUB_200_2011" / "images", root / "images"):
        if folder.is_dir():
            return folder
    raise DatasetError(
        f"no CUB-200-2011 images in {root}: expected CUB_200_2011/images/<class>/<image>.jpg (the official "
        f"{ARCHIVE} extracted there); pass download=True to fetch it"
    )


def _files(root: Path, split: str, split_dir: str | None) -> dict[str, list[Path]]:
    """{class: its image files, sorted} for the split's classes, sorted; checked to be all present."""
    classes = sorted(str(c) for c in read_class_list("cub", split, split_dir))
    base = image_root(root)
    files = {c: sorted(p for p in (base / c).glob("*") if is_image_file(p)) for c in classes}
    missing = [c for c, fs in files.items() if not fs]
    if missing:
        raise DatasetError(
            f"{len(missing)} of the {len(classes)} classes of the CUB {split!r} split have no images in {base}, "
            f"e.g. {missing[:3]}: the dataset is incomplete, extract {ARCHIVE} again"
        )
    return files


def sources(root: Path, split: str, split_dir: str | None = None, **_: object) -> list[Path]:
    try:
        return [f for fs in _files(root, split, split_dir).values() for f in fs]
    except DatasetError:
        return []


def download(root: Path, split: str, url: str | None = None, **_: object) -> None:
    """Fetch and extract the official archive unless an images/ folder is there."""
    try:
        image_root(root)
    except DatasetError:
        download_and_extract(
            f"{(url or URL).rstrip('/')}/{ARCHIVE}", root, "CUB_200_2011", md5=MD5, member="CUB_200_2011"
        )


@register_format("cub", sources=sources, download=download)
def load_cub(root: Path, split: str, image_size: Any = 84, split_dir: str | None = None) -> ImageStore:
    """Load a CUB split ("train", "val", "test": 100/50/50 classes); images uint8 [N, 3, S, S]."""
    files = _files(root, split, split_dir)
    paths = [f for fs in files.values() for f in fs]
    labels = torch.repeat_interleave(torch.arange(len(files)), torch.tensor([len(fs) for fs in files.values()]))
    return ImageStore(decode_images(paths, as_size(image_size), "RGB"), labels, list(files))
