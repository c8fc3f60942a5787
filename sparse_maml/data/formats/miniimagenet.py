"""miniImageNet (Vinyals et al. 2016; Ravi and Larochelle's 64/16/20 class split) in three layouts.

The layout is detected from the files in `root` (or its `miniimagenet/` subfolder), checked in this order:

- pickle cache: `mini-imagenet-cache-{split}.pkl`, a dict with `image_data` uint8 (n, 84, 84, 3) and
  `class_dict` {class name: [indices]}. Read with a restricted unpickler that only builds numpy arrays and
  plain containers, so a pickle cannot run code.
- torchmeta hdf5: `{split}_data.hdf5` (group `datasets`, one uint8 (n, 84, 84, 3) dataset per class) and
  `{split}_labels.json` (the list of class names). Needs the optional h5py (`pip install sparse-maml[hdf5]`).
- Ravi and Larochelle's csv: `{split}.csv` (`filename,label`) and the images in `images/`, resized to 84x84.
  `csv_dir` points at a folder with the csv files when they live elsewhere (e.g. the split files shipped with
  this project).

`source="pickle" | "hdf5" | "csv"` forces a layout. Classes are sorted by name in every layout, so the same
data gives the same class ids (and episodes) whichever layout it is read from. Splits: "train", "val", "test".
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from ..class_lists import read_json_list
from ..errors import DatasetError
from ..images import as_size, decode_images, resize_images
from ..pickles import read_pickle
from ..registry import register_format
from ..store import ImageStore

LAYOUTS = ("pickle", "hdf5", "csv")


def _candidates(root: Path, split: str, csv_dir: str | None) -> list[tuple[str, list[Path]]]:
    """(layout, files it needs) in detection order, under root and then root/miniimagenet."""
    out = []
    for base in (root, root / "miniimagenet"):
        out += [
            ("pickle", [base / f"mini-imagenet-cache-{split}.pkl"]),
            ("hdf5", [base / f"{split}_data.hdf5", base / f"{split}_labels.json"]),
            ("csv", [Path(csv_dir or base) / f"{split}.csv", base / "images"]),
        ]
    return out


def detect(root: Path, split: str, source: str = "auto", csv_dir: str | None = None) -> tuple[str, list[Path]]:
    """(layout, its files) for a split; raises DatasetError naming what was expected."""
    if source not in ("auto", *LAYOUTS):
        raise DatasetError(f"unknown miniImageNet source {source!r}; use one of auto, {', '.join(LAYOUTS)}")
    for layout, files in _candidates(root, split, csv_dir):
        if source in ("auto", layout) and all(p.exists() for p in files):
            return layout, files
    if source != "auto":
        wanted = [[str(p) for p in files] for layout, files in _candidates(root, split, csv_dir) if layout == source]
        raise DatasetError(f"miniImageNet source {source!r} for split {split!r} needs the files {wanted[0]}")
    raise DatasetError(
        f"no miniImageNet files for split {split!r} in {root}: expected "
        f"mini-imagenet-cache-{split}.pkl, or {split}_data.hdf5 + {split}_labels.json, or "
        f"{split}.csv + images/ (the csv may be elsewhere: csv_dir=...)"
    )


def read_split_csv(path: Path) -> dict[str, list[str]]:
    """Ravi's `filename,label` csv as {label: [filenames in file order]}, labels sorted."""
    classes: dict[str, list[str]] = {}
    try:
        with open(path, newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                if i == 0 and row == ["filename", "label"]:
                    continue
                if len(row) != 2 or not row[0] or not row[1]:
                    raise DatasetError(f"{path}, line {i + 1}: expected 'filename,label', got {row}")
                classes.setdefault(row[1], []).append(row[0])
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from e
    if not classes:
        raise DatasetError(f"{path} lists no images")
    return dict(sorted(classes.items()))


def _from_arrays(image_data: np.ndarray, class_dict: dict, path: Path) -> tuple[torch.Tensor, torch.Tensor, list]:
    if not (isinstance(image_data, np.ndarray) and image_data.ndim == 4 and image_data.shape[-1] in (1, 3)):
        raise DatasetError(f"{path}: image_data must be an (n, H, W, 3) array")
    names = sorted(class_dict)
    order = [np.asarray(class_dict[c], dtype=np.int64).reshape(-1) for c in names]
    idx = np.concatenate(order)
    if idx.size and (idx.min() < 0 or idx.max() >= len(image_data)):
        raise DatasetError(f"{path}: class_dict indexes images outside 0..{len(image_data) - 1}")
    labels = np.repeat(np.arange(len(names)), [len(o) for o in order])
    src = torch.from_numpy(image_data.astype(np.uint8, copy=False))
    images = torch.empty((len(idx), src.shape[3], src.shape[1], src.shape[2]), dtype=torch.uint8)
    for i in range(0, len(idx), 4096):  # gather and go channels-first in chunks: no second full-size copy
        images[i : i + 4096] = src[torch.from_numpy(idx[i : i + 4096])].permute(0, 3, 1, 2)
    return images, torch.from_numpy(labels), [str(c) for c in names]


def _load_pickle(path: Path) -> tuple[torch.Tensor, torch.Tensor, list]:
    data = read_pickle(path, "a miniImageNet cache")
    if not isinstance(data, dict) or "image_data" not in data or "class_dict" not in data:
        raise DatasetError(f"{path} is not a miniImageNet cache: expected a dict with image_data and class_dict")
    return _from_arrays(data["image_data"], data["class_dict"], path)


def _load_hdf5(data_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor, list]:
    try:
        import h5py
    except ImportError as e:
        raise DatasetError("reading torchmeta's hdf5 files needs h5py: pip install 'sparse-maml[hdf5]'") from e
    names = sorted(str(n) for n in read_json_list(labels_path))
    try:
        with h5py.File(data_path, "r") as f:
            group = f["datasets"]
            missing = [n for n in names if n not in group]
            if missing:
                raise DatasetError(f"{data_path} has no dataset for classes {missing[:5]} listed in {labels_path}")
            arrays = [np.asarray(group[n][...]) for n in names]
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError) as e:
        raise DatasetError(f"cannot read {data_path} ({e}); the file is corrupt or truncated, download it again") from e
    labels = np.repeat(np.arange(len(names)), [len(a) for a in arrays])
    images = torch.from_numpy(np.concatenate(arrays).astype(np.uint8, copy=False)).permute(0, 3, 1, 2)
    return images.contiguous(), torch.from_numpy(labels), names


def _load_csv(csv_path: Path, image_dir: Path, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, list]:
    classes = read_split_csv(csv_path)
    files = [image_dir / f for fs in classes.values() for f in fs]
    missing = [str(p) for p in files[:: max(1, len(files) // 1000)] if not p.is_file()]  # cheap spot check
    if missing:
        raise DatasetError(f"images listed in {csv_path} are missing from {image_dir}, e.g. {missing[0]}")
    labels = np.repeat(np.arange(len(classes)), [len(fs) for fs in classes.values()])
    return decode_images(files, size, "RGB", "lanczos"), torch.from_numpy(labels), list(classes)


def sources(root: Path, split: str, source: str = "auto", csv_dir: str | None = None, **_: object) -> list[Path]:
    try:
        layout, paths = detect(root, split, source, csv_dir)
    except DatasetError:
        return []
    if layout != "csv":
        return paths
    return [paths[0]] + [paths[1] / f for fs in read_split_csv(paths[0]).values() for f in fs]


@register_format("miniimagenet", sources=sources)
def load_miniimagenet(
    root: Path, split: str, image_size: int = 84, source: str = "auto", csv_dir: str | None = None
) -> ImageStore:
    """Load a miniImageNet split; images uint8 [N, 3, S, S] (84x84 unless image_size says otherwise)."""
    layout, paths = detect(root, split, source, csv_dir)
    size = as_size(image_size)
    if layout == "pickle":
        images, labels, names = _load_pickle(paths[0])
    elif layout == "hdf5":
        images, labels, names = _load_hdf5(*paths)
    else:
        images, labels, names = _load_csv(paths[0], paths[1], size)
    return ImageStore(resize_images(images, size), labels, names)
