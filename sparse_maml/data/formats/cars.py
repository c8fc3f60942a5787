"""Stanford Cars (Krause et al., 2013) in its official layouts, with the 98/49/49 class split of the code released
with "Learning where to learn" (shipped in `assets/cars`, or `split_dir`). Detected in root:

- "devkit": `cars_train/<image>.jpg` with `devkit/cars_train_annos.mat` (bounding box, class and file of each
  image) and `devkit/cars_meta.mat` (the 196 class names); with subset="all" also `cars_test/` and
  `cars_test_annos_withlabels.mat` (in root or devkit/).
- "car_ims": `car_ims/<image>.jpg` with `cars_annos.mat` (all 16,185 images with boxes, classes and a test flag,
  and the class names).

subset="train" (default) keeps the official training half, as the authors' code does (8,144 images, 24 to 68 a
class); "all" adds the test half. Each image is cropped to its bounding box (crop=True, as the authors' code) and
resized to image_size x image_size (84), RGB. Classes are the class names, sorted. Reading the .mat annotation
files needs scipy (`pip install 'sparse-maml[cars]'`). No downloader: the dataset's original site is gone; see
sparse_maml/data/README.md for where the files are kept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..class_lists import read_class_list
from ..errors import DatasetError
from ..images import as_size, decode_images
from ..registry import register_format
from ..store import ImageStore

LAYOUTS = ("devkit", "car_ims")
SUBSETS = ("train", "all")


def _loadmat(path: Path) -> dict:
    try:
        from scipy.io import loadmat
    except ImportError as e:
        raise DatasetError(
            "reading Stanford Cars' .mat annotation files needs scipy: pip install 'sparse-maml[cars]'"
        ) from e
    try:
        return loadmat(path, squeeze_me=True)
    except Exception as e:  # scipy raises ValueError, TypeError, OSError, ... for a corrupt or truncated file
        raise DatasetError(f"cannot read {path} ({type(e).__name__}: {e}); the file is corrupt or truncated") from e


def _field(mat: dict, key: str, path: Path) -> Any:
    if key not in mat:
        raise DatasetError(f"{path} has no variable {key!r}: it is not the Stanford Cars annotation file expected")
    return np.atleast_1d(mat[key])


def _records(annos: np.ndarray, path: Path, fields: tuple[str, ...]) -> dict[str, list]:
    names = annos.dtype.names or ()
    missing = [f for f in fields if f not in names]
    if missing:
        raise DatasetError(f"{path}: the annotations lack the fields {missing} (they have {list(names)})")
    return {f: [v.item() if isinstance(v, np.ndarray) else v for v in annos[f]] for f in fields}


def detect(root: Path, subset: str = "train") -> tuple[str, dict[str, Path]]:
    """(layout, {role: path}) of the files present; raises DatasetError naming what was expected."""
    if subset not in SUBSETS:
        raise DatasetError(f"subset must be one of {', '.join(SUBSETS)}, got {subset!r}")
    devkit = {
        "train_images": root / "cars_train",
        "train_annos": root / "devkit" / "cars_train_annos.mat",
        "meta": root / "devkit" / "cars_meta.mat",
    }
    if subset == "all":
        test = [root / "cars_test_annos_withlabels.mat", root / "devkit" / "cars_test_annos_withlabels.mat"]
        devkit.update(test_images=root / "cars_test", test_annos=next((p for p in test if p.is_file()), test[0]))
    if all(p.exists() for p in devkit.values()):
        return "devkit", devkit
    car_ims = {"images": root / "car_ims", "annos": root / "cars_annos.mat"}
    if all(p.exists() for p in car_ims.values()):
        return "car_ims", car_ims
    raise DatasetError(
        f"no Stanford Cars files in {root}: expected cars_train/ with devkit/cars_train_annos.mat and "
        "devkit/cars_meta.mat"
        + (" (and cars_test/ with cars_test_annos_withlabels.mat for subset=all)" if subset == "all" else "")
        + ", or car_ims/ with cars_annos.mat"
    )


def _annotations(
    layout: str, paths: dict[str, Path], subset: str
) -> tuple[list[Path], list[tuple], list[int], list[str]]:
    """(image files, boxes, 0-based class ids, class names) of the subset."""
    box = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")
    files, boxes, classes = [], [], []
    if layout == "devkit":
        names = [str(n) for n in _field(_loadmat(paths["meta"]), "class_names", paths["meta"])]
        parts = [("train_images", "train_annos")] + ([("test_images", "test_annos")] if subset == "all" else [])
        for images, annos in parts:
            r = _records(
                _field(_loadmat(paths[annos]), "annotations", paths[annos]), paths[annos], (*box, "class", "fname")
            )
            files += [paths[images] / str(f) for f in r["fname"]]
            boxes += list(zip(*(r[b] for b in box)))
            classes += [int(c) - 1 for c in r["class"]]
    else:
        mat = _loadmat(paths["annos"])
        names = [str(n) for n in _field(mat, "class_names", paths["annos"])]
        r = _records(
            _field(mat, "annotations", paths["annos"]), paths["annos"], (*box, "class", "relative_im_path", "test")
        )
        keep = [subset == "all" or not int(t) for t in r["test"]]
        files = [paths["images"].parent / str(f) for f, k in zip(r["relative_im_path"], keep) if k]
        boxes = [b for b, k in zip(zip(*(r[b] for b in box)), keep) if k]
        classes = [int(c) - 1 for c, k in zip(r["class"], keep) if k]
    if classes and (min(classes) < 0 or max(classes) >= len(names)):
        raise DatasetError(f"Stanford Cars annotations in {paths}: class ids outside 1..{len(names)}")
    return files, [tuple(int(v) for v in b) for b in boxes], classes, names


def sources(root: Path, split: str, subset: str = "train", **_: object) -> list[Path]:
    """The annotation files and every file of the image folders."""
    try:
        _layout, paths = detect(root, subset)
    except DatasetError:
        return []
    return [f for p in paths.values() for f in (sorted(p.iterdir()) if p.is_dir() else [p])]


@register_format("cars", sources=sources)
def load_cars(
    root: Path, split: str, image_size: Any = 84, subset: str = "train", crop: bool = True, split_dir: str | None = None
) -> ImageStore:
    """Load a Stanford Cars split ("train", "val", "test": 98/49/49 classes); images uint8 [N, 3, S, S]."""
    wanted = sorted(str(c) for c in read_class_list("cars", split, split_dir))
    layout, paths = detect(root, subset)
    files, boxes, classes, names = _annotations(layout, paths, subset)
    unknown = [c for c in wanted if c not in names]
    if unknown:
        raise DatasetError(
            f"classes {unknown[:3]} of the cars {split!r} split are not among the {len(names)} classes of {root}"
        )
    index = {names.index(c): i for i, c in enumerate(wanted)}
    chosen = [i for i, c in enumerate(classes) if c in index]
    labels = torch.tensor([index[classes[i]] for i in chosen], dtype=torch.int64)
    empty = sorted(set(range(len(wanted))) - set(labels.tolist()))
    if empty:
        raise DatasetError(
            f"{len(empty)} of the {len(wanted)} classes of the cars {split!r} split have no images in {root} "
            f"(subset={subset!r}), e.g. {[wanted[i] for i in empty[:3]]}"
        )
    missing = [str(files[i]) for i in chosen if not files[i].is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} images listed in the annotations are missing, e.g. {missing[0]}")
    images = decode_images(
        [files[i] for i in chosen], as_size(image_size), "RGB", boxes=[boxes[i] for i in chosen] if crop else None
    )
    return ImageStore(images, labels, wanted)
