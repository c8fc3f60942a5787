"""Writers of tiny datasets in each format's real file layout, for tests."""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import shutil
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from http.server import HTTPServer, SimpleHTTPRequestHandler
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


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def write_tiered(
    root: Path, split: str, n_classes: int, per_class: int = 2, size: int = 84, layout: str = "png"
) -> tuple[np.ndarray, list[str]]:
    """Ren et al.'s `{split}_labels.pkl` with `{split}_images_png.pkl` (layout "png") or `{split}_images.npz` stored
    BGR as OpenCV writes it (layout "npz"). Classes are listed in reverse wnid order, images interleaved, four
    categories. Returns (the RGB images [n, size, size, 3] in file order, the wnid of each image)."""
    root.mkdir(parents=True, exist_ok=True)
    n = n_classes * per_class
    specific = np.arange(n) % n_classes
    wnids = [f"n{9000 - c:08d}" for c in range(n_classes)]
    images = np.stack([pattern(int(c), i // n_classes, size) for i, c in enumerate(specific)])
    images[:, 1:, :, 1:] = (7, 250)  # channels differ, so that a BGR/RGB mix-up shows
    labels = {
        "label_specific": specific,
        "label_general": specific % 4,
        "label_specific_str": wnids,
        "label_general_str": [f"category{g}" for g in range(4)],
    }
    with open(root / f"{split}_labels.pkl", "wb") as f:
        pickle.dump(labels, f, protocol=2)
    if layout == "png":
        with open(root / f"{split}_images_png.pkl", "wb") as f:
            pickle.dump([np.frombuffer(png_bytes(img), dtype=np.uint8) for img in images], f, protocol=2)
    else:
        np.savez(root / f"{split}_images.npz", images=np.ascontiguousarray(images[..., ::-1]))
    return images, [wnids[c] for c in specific]


def cifar_image(fine: int, index: int) -> np.ndarray:
    """A 32x32x3 image encoding (fine class, index) in pixel (0, 0)."""
    img = pattern(fine, index, 32)
    img[0, 0] = (fine, index % 256, 200)
    return img


def write_cifar100(root: Path, per_class: tuple[int, int] = (2, 1), tar: bool = False, skip: int | None = None) -> Path:
    """The official python archive's `cifar-100-python/{train,test,meta}` (or the .tar.gz holding them): every one
    of CIFAR-100's classes with per_class = (train, test) images, except class id `skip`."""
    from sparse_maml.data.formats.cifar import cifar100_classes

    classes = cifar100_classes()
    fine_names, coarse_names = list(classes), sorted(set(classes.values()))
    parts = {"meta": {b"fine_label_names": fine_names, b"coarse_label_names": coarse_names}}
    for part, count in zip(("train", "test"), per_class):
        fine = [f for i in range(count) for f in range(100) if f != skip]
        index = [i + (per_class[0] if part == "test" else 0) for i in range(count) for f in range(100) if f != skip]
        rows = [cifar_image(f, i).transpose(2, 0, 1).reshape(-1) for f, i in zip(fine, index)]
        data = np.stack(rows) if rows else np.zeros((0, 3072), dtype=np.uint8)
        parts[part] = {
            b"data": data,
            b"fine_labels": fine,
            b"coarse_labels": [coarse_names.index(classes[fine_names[f]]) for f in fine],
            b"filenames": [f"{f}_{i}.png".encode() for f, i in zip(fine, index)],
        }
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in parts.items():
        with open(folder / name, "wb") as f:
            pickle.dump(content, f, protocol=2)
    if not tar:
        return folder
    archive = root / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(folder, arcname="cifar-100-python")
    shutil.rmtree(folder)
    return archive


def write_metaoptnet(root: Path, dataset: str, split: str, per_class: int = 3) -> Path:
    """MetaOptNet's `CIFAR_FS_{split}.pickle` / `FC100_{split}.pickle`: data [n, 32, 32, 3], labels CIFAR-100 ids."""
    from sparse_maml.data.formats.cifar import cifar100_classes, wanted_classes

    classes = cifar100_classes()
    ids = [list(classes).index(c) for c in wanted_classes(dataset, split, classes, None)]
    fine = [f for i in range(per_class) for f in ids]
    index = [i for i in range(per_class) for _ in ids]
    prefix = {"cifar_fs": "CIFAR_FS", "fc100": "FC100"}[dataset]
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{prefix}_{split}.pickle"
    with open(path, "wb") as f:
        data = np.stack([cifar_image(c, i) for c, i in zip(fine, index)])
        pickle.dump({"data": data, "labels": fine}, f, protocol=2)
    return path


def write_cub(root: Path, per_class: int = 2, size: tuple[int, int] = (10, 12)) -> Path:
    """CUB_200_2011/images/<class>/<class name>_<i>.jpg for all 200 classes of the shipped split lists."""
    from sparse_maml.data.class_lists import read_class_list

    classes = sorted(c for s in ("train", "val", "test") for c in read_class_list("cub", s))
    base = root / "CUB_200_2011" / "images"
    for label, name in enumerate(classes):
        (base / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = np.full((*size, 3), (label, 40 * i, 120), dtype=np.uint8)
            Image.fromarray(img).save(base / name / f"{name.split('.', 1)[1]}_{i:04d}.jpg", quality=95)
    return base


def cars_classes() -> list[str]:
    from sparse_maml.data.class_lists import read_class_list

    return sorted(c for s in ("train", "val", "test") for c in read_class_list("cars", s))


def write_cars(root: Path, layout: str = "devkit", per_class: int = 2, size: tuple[int, int] = (24, 32)) -> None:
    """Stanford Cars with all 196 classes (in reverse order in the class-name list), per_class training images of
    size (H, W) each, and per_class test images: the devkit layout (cars_train/, cars_test/, devkit/*.mat,
    cars_test_annos_withlabels.mat) or car_ims/ with cars_annos.mat. A class's car is a bright box inside its
    bounding box (x 4..20, y 2..18) on a dark background."""
    from scipy.io import savemat

    names = cars_classes()[::-1]
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    rows = {"train": [], "test": []}
    for part in ("train", "test"):
        folder = root / ("car_ims" if layout == "car_ims" else f"cars_{part}")
        folder.mkdir(parents=True, exist_ok=True)
        for c in range(len(names)):
            for i in range(per_class):
                fname = f"{len(rows['train']) + len(rows['test']) + 1:05d}.jpg"
                img = np.zeros((*size, 3), dtype=np.uint8)
                img[2:18, 4:20] = (255 - c, 100 + 50 * i, 60 if part == "train" else 200)
                Image.fromarray(img).save(folder / fname, quality=100, subsampling=0)  # colours kept
                rows[part].append((4, 2, 20, 18, c + 1, fname))

    def struct(records: list[tuple], names_: list[str]) -> np.ndarray:
        out = np.zeros((1, len(records)), dtype=[(n, "O") for n in names_])
        for j, r in enumerate(records):
            for n, v in zip(names_, r):
                out[0, j][n] = v
        return out

    class_names = np.array(names, dtype=object).reshape(1, -1)
    if layout == "devkit":
        (root / "devkit").mkdir(exist_ok=True)
        savemat(root / "devkit" / "cars_meta.mat", {"class_names": class_names})
        savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": struct(rows["train"], fields)})
        savemat(root / "cars_test_annos_withlabels.mat", {"annotations": struct(rows["test"], fields)})
        return
    records = [(*r[:5], f"car_ims/{r[5]}", int(part == "test")) for part in ("train", "test") for r in rows[part]]
    all_fields = [*fields[:5], "relative_im_path", "test"]
    savemat(root / "cars_annos.mat", {"annotations": struct(records, all_fields), "class_names": class_names})


@contextlib.contextmanager
def local_server(directory: Path, seconds: float = 600.0) -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 serving `directory`, yielding (its URL, the paths requested so far). It answers
    requests one by one until the block exits or `seconds` have passed, whichever comes first: it stops by itself."""

    requested: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    httpd.timeout = 0.2
    stop, deadline = threading.Event(), time.monotonic() + seconds

    def serve() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            httpd.handle_request()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requested
    finally:
        stop.set()
        thread.join(timeout=5)
        httpd.server_close()
