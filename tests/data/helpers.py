"""Writers of tiny datasets in each format's real file layout, for tests."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def pattern(label: int, index: int, size: int = 16, channels: int = 3) -> np.ndarray:
    """A uint8 [size, size, channels] image whose pixels encode (label, index)."""
    img = np.full((size, size, channels), (label * 37 + index * 5) % 256, dtype=np.uint8)
    img[0, 0] = label
    return img


def write_omniglot(
    root: Path, archive: str, alphabets: dict[str, int], drawers: int = 3, zipped: bool = False, size: int = 20
) -> Path:
    """images_<archive>/<alphabet>/characterNN/<drawer>.png: black strokes (a bar per character) on white."""
    base = root / f"images_{archive}"
    files = {}
    for a, n_chars in alphabets.items():
        for c in range(1, n_chars + 1):
            for d in range(1, drawers + 1):
                img = np.full((size, size), 255, dtype=np.uint8)
                img[2:-2, c % (size - 4) + 2] = 0  # a vertical stroke whose column depends on the character
                files[f"{a}/character{c:02d}/{c:04d}_{d:02d}.png"] = img
    if zipped:
        path = root / f"images_{archive}.zip"
        root.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as z:
            for name, img in files.items():
                tmp = root / "_tmp.png"
                Image.fromarray(img).convert("1").save(tmp)
                z.write(tmp, f"images_{archive}/{name}")
                tmp.unlink()
        return path
    for name, img in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).convert("1").save(base / name)
    return base


def write_folder(root: Path, split: str, classes: dict[str, int], ext: str = "png", size: int = 16) -> None:
    """root/<split>/<class>/<i>.<ext> with pattern images."""
    for label, (name, n) in enumerate(classes.items()):
        d = root / split / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(pattern(label, i, size)).save(d / f"{i:03d}.{ext}")


def mini_arrays(n_classes: int, per_class: int, size: int = 84) -> tuple[np.ndarray, dict[str, list[int]]]:
    """(image_data (n, size, size, 3) uint8, class_dict) with classes interleaved in image_data."""
    n = n_classes * per_class
    labels = np.arange(n) % n_classes
    order = np.arange(n) // n_classes
    data = np.stack([pattern(int(lab), int(i), size) for lab, i in zip(labels, order, strict=True)])
    names = [f"n{1000 + c:08d}" for c in range(n_classes)]
    return data, {names[c]: np.nonzero(labels == c)[0].tolist() for c in range(n_classes)}


def write_mini_pickle(root: Path, split: str, n_classes: int = 3, per_class: int = 4, size: int = 84) -> Path:
    data, class_dict = mini_arrays(n_classes, per_class, size)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"mini-imagenet-cache-{split}.pkl"
    with open(path, "wb") as f:
        pickle.dump({"image_data": data, "class_dict": class_dict}, f, protocol=4)
    return path


def write_mini_hdf5(root: Path, split: str, n_classes: int = 3, per_class: int = 4, size: int = 84) -> None:
    import h5py

    data, class_dict = mini_arrays(n_classes, per_class, size)
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / f"{split}_data.hdf5", "w") as f:
        group = f.create_group("datasets")
        for name, idx in class_dict.items():
            group.create_dataset(name, data=data[idx])
    (root / f"{split}_labels.json").write_text(json.dumps(list(reversed(class_dict))))


def write_mini_csv(root: Path, split: str, n_classes: int = 3, per_class: int = 4, size: int = 100) -> None:
    """Ravi layout: root/<split>.csv and root/images/<wnid><index>.jpg (larger than 84, to be resized)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = ["filename,label"]
    for c in range(n_classes):
        wnid = f"n{1000 + c:08d}"
        for i in range(per_class):
            name = f"{wnid}{i:08d}.jpg"
            Image.fromarray(pattern(c, i, size)).save(root / "images" / name, quality=95)
            rows.append(f"{name},{wnid}")
    (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
