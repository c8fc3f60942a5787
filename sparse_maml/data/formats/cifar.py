"""CIFAR-FS (Bertinetto et al., 2019) and FC100 (Oreshkin et al., 2018): few-shot splits of CIFAR-100's 100
classes of 600 32x32 images, read from either of two layouts detected in `root`:

- "cifar100": the official CIFAR-100 python archive (Krizhevsky, 2009), `cifar-100-python.tar.gz` (read in place)
  or its extracted `cifar-100-python/{train,test,meta}` (or root itself holding train, test, meta). Its train and
  test files are joined, so a few-shot class has all 600 images. The split's classes come from the shipped lists:
  `assets/cifar_fs` (64/16/20 fine classes) and `assets/fc100` (12/4/4 superclasses, i.e. their 60/20/20 fine
  classes), or from `split_dir`.
- "metaoptnet": the pickles of the MetaOptNet release (Lee et al., 2019), `CIFAR_FS_{split}.pickle` or
  `FC100_{split}.pickle` in root or root/CIFAR-FS, root/FC100: `data` uint8 [n, 32, 32, 3] and `labels`, CIFAR-100
  fine-class ids; their classes must be exactly those of the same lists.

Classes are the fine-class names, sorted, each in the group of its superclass (so `within_group=True` draws an
episode from one superclass); images uint8 [N, 3, 32, 32] unless image_size says otherwise. Splits: train, val,
test. `source="cifar100" | "metaoptnet"` forces a layout. `download=True` fetches the official archive (MD5 as
published on its page) when neither layout is present.
"""

from __future__ import annotations

import tarfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..class_lists import read_class_list
from ..download import download_and_extract
from ..errors import DatasetError
from ..images import as_size, resize_images
from ..pickles import entry, read_pickle
from ..registry import register_format
from ..store import ImageStore

URL = "https://www.cs.toronto.edu/~kriz"
ARCHIVE = "cifar-100-python.tar.gz"
MD5 = "eb9058c3a382ffc7106e4002c42a8d85"  # published on https://www.cs.toronto.edu/~kriz/cifar.html
PREFIX = {"cifar_fs": ("CIFAR_FS", "CIFAR-FS"), "fc100": ("FC100", "FC100")}
LAYOUTS = ("cifar100", "metaoptnet")


def cifar100_classes() -> dict[str, str]:
    """{fine class: superclass} for CIFAR-100's 100 classes, in class-id order (ids are the sorted names)."""
    pairs = [p for s in ("train", "val", "test") for p in read_class_list("cifar_fs", s)]
    return {fine: coarse for coarse, fine in sorted(pairs, key=lambda p: p[1])}


def detect(root: Path, dataset: str, split: str, source: str = "auto") -> tuple[str, list[Path]]:
    """(layout, its files) for a split of cifar_fs or fc100; raises DatasetError naming what was expected."""
    if source not in ("auto", *LAYOUTS):
        raise DatasetError(f"unknown {dataset} source {source!r}; use one of auto, {', '.join(LAYOUTS)}")
    prefix, sub = PREFIX[dataset]
    candidates = [
        ("cifar100", [root / "cifar-100-python" / n for n in ("train", "test", "meta")]),
        ("cifar100", [root / n for n in ("train", "test", "meta")]),
        ("cifar100", [root / ARCHIVE]),
        ("metaoptnet", [root / f"{prefix}_{split}.pickle"]),
        ("metaoptnet", [root / sub / f"{prefix}_{split}.pickle"]),
    ]
    for layout, files in candidates:
        if source in ("auto", layout) and all(p.is_file() for p in files):
            return layout, files
    raise DatasetError(
        f"no {dataset} files for split {split!r} in {root}: expected the CIFAR-100 python archive ({ARCHIVE}, or "
        f"its extracted cifar-100-python/ folder) or MetaOptNet's {prefix}_{split}.pickle"
        + ("" if source == "auto" else f" (source={source!r})")
        + "; pass download=True to fetch the CIFAR-100 archive"
    )


def _read_cifar100(files: list[Path], classes: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 3, 32, 32], fine-class ids [N]) of the archive's train and test files joined, checked to
    be CIFAR-100: its meta names the 100 classes and 20 superclasses, each image's superclass is its class's."""
    what = "part of the CIFAR-100 python archive"
    names = ("train", "test", "meta")
    if len(files) == 1:  # the .tar.gz, read in place
        where = {n: files[0] / n for n in names}
        try:
            with tarfile.open(files[0], "r:*") as t:
                parts = {}
                for n in names:
                    member = t.getmember(f"cifar-100-python/{n}")
                    f = t.extractfile(member)
                    if f is None:
                        raise KeyError(n)
                    parts[n] = read_pickle(where[n], what, file=f, size=member.size)
        except (tarfile.TarError, KeyError, EOFError, OSError, zlib.error) as e:
            raise DatasetError(
                f"cannot read {files[0]} ({type(e).__name__}: {e}); the archive is corrupt or truncated, delete it "
                "and download it again"
            ) from e
    else:
        where = dict(zip(names, files))
        parts = {n: read_pickle(where[n], what) for n in names}
    fine_names = [str(n) for n in entry(parts["meta"], "fine_label_names", where["meta"], what)]
    coarse_names = [str(n) for n in entry(parts["meta"], "coarse_label_names", where["meta"], what)]
    if fine_names != list(classes) or coarse_names != sorted(set(classes.values())):
        raise DatasetError(f"{where['meta']} does not name CIFAR-100's 100 classes and 20 superclasses")
    super_id = np.array([coarse_names.index(classes[f]) for f in fine_names])
    images, fine = [], []
    for n in ("train", "test"):
        data = np.asarray(entry(parts[n], "data", where[n], what))
        labels = np.asarray(entry(parts[n], "fine_labels", where[n], what), dtype=np.int64).reshape(-1)
        supers = np.asarray(entry(parts[n], "coarse_labels", where[n], what), dtype=np.int64).reshape(-1)
        if (
            data.dtype != np.uint8
            or data.ndim != 2
            or data.shape[1] != 3072
            or not len(labels) == len(supers) == len(data)
        ):
            raise DatasetError(f"{where[n]}: expected data uint8 [n, 3072] and n labels, got {data.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= 100 or (super_id[labels] != supers).any()):
            raise DatasetError(f"{where[n]}: fine_labels outside 0..99, or coarse_labels that disagree with them")
        images.append(data.reshape(-1, 3, 32, 32))
        fine.append(labels)
    return np.concatenate(images), np.concatenate(fine)


def _read_metaoptnet(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 3, 32, 32], fine-class ids [N]) of a MetaOptNet pickle."""
    data = read_pickle(path, "a MetaOptNet pickle")
    images = np.asarray(entry(data, "data", path, "a MetaOptNet pickle"))
    labels = np.asarray(entry(data, "labels", path, "a MetaOptNet pickle"), dtype=np.int64).reshape(-1)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3 or len(labels) != len(images):
        raise DatasetError(f"{path}: expected data uint8 [n, 32, 32, 3] and n labels, got {images.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= 100):
        raise DatasetError(f"{path}: labels must be CIFAR-100 fine-class ids 0..99")
    return images.transpose(0, 3, 1, 2), labels


def wanted_classes(dataset: str, split: str, supers_of: dict[str, str], split_dir: str | None) -> list[str]:
    """The fine classes of a split, sorted: CIFAR-FS lists [superclass, class] pairs, FC100 lists superclasses."""
    listed = read_class_list(dataset, split, split_dir)
    where = f"the {dataset} class list for {split!r}"
    if dataset == "fc100":
        unknown = [s for s in listed if s not in set(supers_of.values())]
        if unknown:
            raise DatasetError(f"{where} names superclasses {unknown[:5]} that CIFAR-100 does not have")
        return sorted(f for f, s in supers_of.items() if s in listed)
    pairs = [tuple(p) if isinstance(p, list) else (supers_of.get(str(p)), p) for p in listed]
    wrong = [p for p in pairs if p[1] not in supers_of or supers_of[p[1]] != p[0]]
    if wrong:
        raise DatasetError(f"{where} has classes {wrong[:5]} that are not CIFAR-100 [superclass, class] pairs")
    return sorted(p[1] for p in pairs)


def _load(dataset: str, root: Path, split: str, image_size: Any, source: str, split_dir: str | None) -> ImageStore:
    classes = cifar100_classes()
    wanted = wanted_classes(dataset, split, classes, split_dir)  # the class list first: a typo fails fast
    layout, files = detect(root, dataset, split, source)
    if layout == "cifar100":
        images, fine_ids = _read_cifar100(files, classes)
    else:
        images, fine_ids = _read_metaoptnet(files[0])
    names = list(classes)
    ids = np.array([names.index(c) for c in wanted])
    present = set(np.unique(fine_ids).tolist())
    if layout == "metaoptnet" and present != set(ids.tolist()):
        extra = sorted(names[i] for i in present - set(ids.tolist()))
        raise DatasetError(
            f"{files[0]} holds classes outside the {dataset} {split!r} split, e.g. {extra[:3]}: it is another "
            f"split's file (expected {len(wanted)} classes, found {len(present)})"
        )
    missing = [c for c, i in zip(wanted, ids.tolist()) if i not in present]
    if missing:
        raise DatasetError(
            f"{len(missing)} of the {len(wanted)} classes of the {dataset} {split!r} split have no images in "
            f"{files[0]}, e.g. {missing[:3]}: the file is incomplete, download it again"
        )
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[ids] = np.arange(len(ids))
    labels = remap[fine_ids]
    order = np.argsort(labels, kind="stable")
    order = order[labels[order] >= 0]  # this split's images, class by class, in file order
    images = torch.from_numpy(np.ascontiguousarray(images[order]))
    groups = [classes[c] for c in wanted]
    return ImageStore(resize_images(images, as_size(image_size)), torch.from_numpy(labels[order]), wanted, groups)


def _sources(dataset: str):
    def sources(root: Path, split: str, source: str = "auto", **_: object) -> list[Path]:
        try:
            return detect(root, dataset, split, source)[1]
        except DatasetError:
            return []

    return sources


def _download(dataset: str):
    def download(root: Path, split: str, url: str | None = None, source: str = "auto", **_: object) -> None:
        try:
            detect(root, dataset, split, source)
        except DatasetError:
            download_and_extract(f"{(url or URL).rstrip('/')}/{ARCHIVE}", root, "cifar-100-python", md5=MD5)

    return download


@register_format("cifar_fs", sources=_sources("cifar_fs"), download=_download("cifar_fs"))
def load_cifar_fs(
    root: Path, split: str, image_size: int = 32, source: str = "auto", split_dir: str | None = None
) -> ImageStore:
    """A CIFAR-FS split (64/16/20 classes); images uint8 [N, 3, S, S]."""
    return _load("cifar_fs", root, split, image_size, source, split_dir)


@register_format("fc100", sources=_sources("fc100"), download=_download("fc100"))
def load_fc100(
    root: Path, split: str, image_size: int = 32, source: str = "auto", split_dir: str | None = None
) -> ImageStore:
    """An FC100 split (60/20/20 classes from 12/4/4 superclasses); images uint8 [N, 3, S, S]."""
    return _load("fc100", root, split, image_size, source, split_dir)
