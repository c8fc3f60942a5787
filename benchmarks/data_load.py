"""Load time and memory of each dataset format, on generated files in the real layout at the real sizes.

    python -m benchmarks.data_load --dir /tmp/bench                     # every format, real sizes (see SIZES)
    python -m benchmarks.data_load --dir /tmp/bench --scale 0.25 --formats tiered_imagenet
    python -m benchmarks.data_load --quick                              # tiny sizes: checks that the script runs

For each format one split is written in its real layout (real class count, real images per class times `scale`,
real image sizes; smooth random images so that PNG/JPEG sizes are realistic), then loaded twice, each time in a
fresh interpreter: "decode" is the first load (read, decode, resize, hash, write the cache), "cached" the second
(a memory-mapped read of the cache). Peak RSS is that of the loading process. Images are decoded by the loaders'
thread pool (min(8, cores) threads).
"""

from __future__ import annotations

import argparse
import io
import json
import pickle
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# (split, classes, images per class, image (H, W), what the real split holds)
SIZES = {
    "tiered_imagenet": ("val", 97, 1281, (84, 84), "97 classes, 124,261 images"),
    "cifar_fs": ("train", 64, 600, (32, 32), "the whole CIFAR-100 archive, 60,000 images; the split: 38,400"),
    "fc100": ("train", 60, 600, (32, 32), "MetaOptNet's FC100_train.pickle, 36,000 images"),
    "cub": ("train", 100, 59, (375, 500), "100 classes, 5,885 images of about 500x375"),
    "cars": ("train", 98, 42, (480, 640), "the devkit's 8,144 training images (196 classes), 98 of them"),
}


def smooth_images(rng: np.random.Generator, n: int, size: tuple[int, int]) -> np.ndarray:
    """uint8 [n, H, W, 3]: upsampled coarse noise, compressing about as well as photographs."""
    coarse = rng.integers(0, 256, (n, max(size[0] // 8, 2), max(size[1] // 8, 2), 3), dtype=np.uint8)
    up = coarse.repeat(8, 1).repeat(8, 2)[:, : size[0], : size[1]]
    return (up.astype(np.int16) + rng.integers(-12, 13, up.shape, dtype=np.int16)).clip(0, 255).astype(np.uint8)


def _encode(img: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def write(fmt: str, root: Path, scale: float, rng: np.random.Generator) -> tuple[str, int]:
    """Write the split of SIZES[fmt] under root; returns (split, images written)."""
    from sparse_maml.data.class_lists import read_class_list
    from sparse_maml.data.formats.cifar import cifar100_classes

    split, n_classes, per_class, size, _ = SIZES[fmt]
    per_class = max(2, round(per_class * scale))
    root.mkdir(parents=True, exist_ok=True)
    if fmt == "tiered_imagenet":
        labels = np.arange(n_classes * per_class) % n_classes
        encoded = []
        for i in range(0, len(labels), 2048):
            encoded += [
                np.frombuffer(_encode(im, "PNG"), np.uint8)
                for im in smooth_images(rng, min(2048, len(labels) - i), size)
            ]
        meta = {
            "label_specific": labels,
            "label_general": labels % 6,
            "label_specific_str": [f"n{c:08d}" for c in range(n_classes)],
            "label_general_str": [f"c{g}" for g in range(6)],
        }
        pickle.dump(encoded, open(root / f"{split}_images_png.pkl", "wb"), protocol=4)
        pickle.dump(meta, open(root / f"{split}_labels.pkl", "wb"), protocol=4)
        return split, len(labels)
    if fmt in ("cifar_fs", "fc100"):
        classes = cifar100_classes()
        if fmt == "fc100":  # MetaOptNet's pickle of the split
            supers = read_class_list("fc100", split)
            ids = [i for i, c in enumerate(classes) if classes[c] in supers]
            fine = np.repeat(ids, per_class)
            data = smooth_images(rng, len(fine), size)
            pickle.dump({"data": data, "labels": fine.tolist()}, open(root / f"FC100_{split}.pickle", "wb"), protocol=4)
            return split, len(fine)
        coarse_names = sorted(set(classes.values()))  # the official archive: all 100 classes, train + test files
        parts = {"meta": {"fine_label_names": list(classes), "coarse_label_names": coarse_names}}
        for part, share in (("train", 5 / 6), ("test", 1 / 6)):
            fine = np.repeat(np.arange(100), round(per_class * share))
            data = smooth_images(rng, len(fine), size).transpose(0, 3, 1, 2).reshape(len(fine), -1)
            coarse = [coarse_names.index(classes[list(classes)[f]]) for f in fine]
            parts[part] = {"data": data, "fine_labels": fine.tolist(), "coarse_labels": coarse}
        with tarfile.open(root / "cifar-100-python.tar.gz", "w:gz") as t:
            for name, content in parts.items():
                blob = pickle.dumps(content, protocol=4)
                info = tarfile.TarInfo(f"cifar-100-python/{name}")
                info.size = len(blob)
                t.addfile(info, io.BytesIO(blob))
        return split, 100 * per_class
    if fmt == "cub":
        for c in read_class_list("cub", split):
            (root / "CUB_200_2011" / "images" / c).mkdir(parents=True, exist_ok=True)
            for i, im in enumerate(smooth_images(rng, per_class, size)):
                (root / "CUB_200_2011" / "images" / c / f"{i:04d}.jpg").write_bytes(_encode(im, "JPEG"))
        return split, n_classes * per_class
    from scipy.io import savemat  # cars: the devkit layout, every training image of all 196 classes

    names = sorted(c for s in ("train", "val", "test") for c in read_class_list("cars", s))
    (root / "cars_train").mkdir(exist_ok=True)
    (root / "devkit").mkdir(exist_ok=True)
    annos = np.zeros(
        (1, len(names) * per_class),
        dtype=[(k, "O") for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")],
    )
    for j in range(annos.shape[1]):
        if j % 32 == 0:
            batch = smooth_images(rng, min(32, annos.shape[1] - j), size)
        fname = f"{j + 1:05d}.jpg"
        (root / "cars_train" / fname).write_bytes(_encode(batch[j % 32], "JPEG"))
        annos[0, j] = (40, 60, size[1] - 40, size[0] - 30, j % len(names) + 1, fname)
    savemat(root / "devkit" / "cars_train_annos.mat", {"annotations": annos})
    savemat(root / "devkit" / "cars_meta.mat", {"class_names": np.array(names, dtype=object).reshape(1, -1)})
    return split, n_classes * per_class


def peak_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _load_in_child(fmt: str, root: Path, split: str, cache: Path) -> dict:
    code = (
        "import json, time\n"
        "from sparse_maml.data import load_split\n"
        "from benchmarks.data_load import peak_mib\n"
        "t = time.perf_counter()\n"
        f"s = load_split({fmt!r}, {str(root)!r}, {split!r}, cache_dir={str(cache)!r})\n"
        "d = s.digest\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'images': len(s), 'classes': s.num_classes,\n"
        "  'shape': list(s.image_shape), 'cached': s.from_cache, 'mib': s.images.numel() / 2**20,\n"
        "  'peak_mib': peak_mib()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="where to write the files (default: a temporary one)")
    parser.add_argument("--scale", type=float, default=1.0, help="images per class x this")
    parser.add_argument("--formats", nargs="*", default=list(SIZES))
    parser.add_argument("--quick", action="store_true", help="tiny sizes (scale 0.01)")
    args = parser.parse_args()
    scale = 0.01 if args.quick else args.scale
    base = args.dir or Path(tempfile.mkdtemp(prefix="sparse_maml-bench-"))
    rng = np.random.default_rng(0)
    print(f"files under {base}; scale {scale}; load average {Path('/proc/loadavg').read_text().split()[0]}")
    print(
        "| format | split | images | classes | decoded MiB | write s | decode s | cached s | peak MiB decode/cached |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for fmt in args.formats:
        root = base / fmt
        t = time.perf_counter()
        split, _ = write(fmt, root, scale, rng)
        written = time.perf_counter() - t
        first = _load_in_child(fmt, root, split, base / f"cache-{fmt}")
        again = _load_in_child(fmt, root, split, base / f"cache-{fmt}")
        assert not first["cached"] and again["cached"]
        print(
            f"| {fmt} | {split} | {first['images']:,} | {first['classes']} | {first['mib']:,.0f} | {written:.1f} | "
            f"{first['seconds']:.1f} | {again['seconds']:.2f} | {first['peak_mib']:,.0f}/{again['peak_mib']:,.0f} |"
        )
    print(f"peak RSS of the writing process: {peak_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
