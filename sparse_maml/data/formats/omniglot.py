"""Omniglot (Lake, Salakhutdinov and Tenenbaum, 2015) from the official archives or their extracted folders.

Files in `root`: `images_<archive>.zip` or the extracted `images_<archive>/<alphabet>/<character>/<drawer>.png`
(a folder is preferred over a zip of the same name; zips are read in place). Archives: `background` (30
alphabets, 964 characters), `evaluation` (20, 659), `background_small1` (5, 136) and `background_small2` (5, 156).
Every character is a class named "<alphabet>/<character>" whose group is its alphabet; images are resized
(28x28 by default) and inverted so that strokes are bright on a dark background.

Split specs. A split is either a name looked up in the `splits` mapping or a spec written directly:

    spec     := part ("+" part)*
    part     := archive ["[" selector "]"]          archive name without "images_"
    selector := "a:b"                               a slice of the archive's alphabets, sorted by name
              | alphabet ("," alphabet)*            alphabets by name

    "background_small1"                       the whole archive
    "background+evaluation"                   both archives as one split
    "background_small2[Sanskrit]"             one alphabet
    "evaluation[:10]", "evaluation[10:]"      first ten / remaining alphabets (sorted)

`splits` is a preset name or a mapping {split name: spec}:
    "standard": train = background, val = evaluation[:10], test = evaluation[10:]
    "minimal":  train = background_small1, val = background_small2[Sanskrit],
                test = background_small2[Japanese_(katakana),Tagalog]
Note that Greek and Latin are in both small1 and small2 (the same files), which is why "minimal" leaves them out
of val and test; keep splits alphabet-disjoint when writing your own.

`rotations=True` adds the usual 90-degree class augmentation to the split: each character at 0, 90, 180 and 270
degrees is a class of its own ("<alphabet>/<character>/rot90", ...), in the same alphabet. As a format option it
rotates every split a run reads (as Finn et al.'s and the paper's authors' loaders do, so their validation and test
tasks hold rotated characters too); the datamodule's ``train_rotations`` rotates the training split alone.

`download=True` (through load_split) fetches missing archives from the dataset's public repository, verifying the
SHA-256 digests known for the minimal archives (and torchvision's MD5 pins for background/evaluation); pass
`sha256={"background": "<digest>"}` (or one string) to verify any archive with your own digest.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from ..download import download_and_extract
from ..errors import DatasetError
from ..images import as_size, decode_images
from ..registry import register_format
from ..store import ImageStore, rotated_classes

URL = "https://github.com/brendenlake/omniglot/raw/master/python"
ARCHIVES = ("background", "evaluation", "background_small1", "background_small2")
SHA256 = {  # from the archives distributed with this project (shared/data/omniglot/SHA256SUMS)
    "background_small1": "f38eb80f801274ac2b4dff5b24289016bfaba4a7d5bb50deebf27104ad6cb8a4",
    "background_small2": "3ccaa407515a8778e5d0861875af38b17e418f301ad5bb3b5a6b65d901a41c7f",
}
MD5 = {  # the SHA-256 of these two is not known here; these MD5s are the ones torchvision pins
    "background": "68d2efa1b9178cc56df9314c21c6e718",
    "evaluation": "6b91aef0f799c5bb55b94e3f2daec811",
}
PRESETS = {
    "standard": {"train": "background", "val": "evaluation[:10]", "test": "evaluation[10:]"},
    "minimal": {
        "train": "background_small1",
        "val": "background_small2[Sanskrit]",
        "test": "background_small2[Japanese_(katakana),Tagalog]",
    },
}
_PART = re.compile(r"^\s*([A-Za-z0-9_]+)\s*(?:\[([^\]]*)\])?\s*$")
_SLICE = re.compile(r"^\s*(-?\d*)\s*:\s*(-?\d*)\s*$")


def resolve_split(split: str, splits: str | Mapping[str, str] = "standard") -> list[tuple[str, str | None]]:
    """The (archive, selector or None) parts of a split name or spec."""
    if isinstance(splits, str):
        if splits not in PRESETS:
            raise DatasetError(
                f"unknown Omniglot split preset {splits!r}; presets: {', '.join(PRESETS)}, or pass "
                "a mapping {split: spec}"
            )
        splits = PRESETS[splits]
    spec = splits.get(split, split)
    parts = []
    for text in spec.split("+"):
        m = _PART.match(text)
        if m is None:
            raise DatasetError(
                f"cannot parse Omniglot split {spec!r}: write e.g. 'background_small1', "
                "'background_small2[Sanskrit,Tagalog]' or 'evaluation[:10]'"
            )
        name = m.group(1).removeprefix("images_")
        parts.append((name, m.group(2)))
    return parts


def _archive_source(root: Path, archive: str) -> Path:
    folder, zipped = root / f"images_{archive}", root / f"images_{archive}.zip"
    if folder.is_dir():
        return folder
    if zipped.is_file():
        return zipped
    known = "" if archive in ARCHIVES else f" (official archives: {', '.join(ARCHIVES)})"
    raise DatasetError(
        f"Omniglot archive images_{archive} not found in {root}: expected images_{archive}.zip or "
        f"the folder images_{archive}/{known}; pass download=True to fetch it"
    )


def _list_archive(source: Path) -> dict[str, dict[str, list[tuple[str, Path | str]]]]:
    """{alphabet: {character: [(drawer file name, path or zip member)]}}, from a folder or a zip."""
    tree: dict[str, dict[str, list[tuple[str, Path | str]]]] = {}
    if source.is_dir():
        entries = [(p.relative_to(source).parts, p) for p in source.glob("*/*/*.png")]
    else:
        try:
            with zipfile.ZipFile(source) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError) as e:
            raise DatasetError(f"{source} is not a readable zip archive ({e}); delete it and download it again") from e
        entries = [
            (tuple(n.split("/")[-3:]), n)
            for n in names
            if n.lower().endswith(".png") and not n.startswith("__MACOSX") and n.count("/") >= 2
        ]
    for (alphabet, character, drawer), where in entries:
        if alphabet.startswith(".") or drawer.startswith("."):
            continue
        tree.setdefault(alphabet, {}).setdefault(character, []).append((drawer, where))
    if not tree:
        raise DatasetError(f"{source} holds no <alphabet>/<character>/<drawer>.png images")
    return tree


def _select(alphabets: list[str], selector: str | None, source: Path) -> list[str]:
    if selector is None:
        return alphabets
    m = _SLICE.match(selector)
    if m is not None:
        a, b = (int(v) if v else None for v in m.groups())
        chosen = alphabets[a:b]
    else:
        chosen = [s.strip() for s in selector.split(",") if s.strip()]
        unknown = [s for s in chosen if s not in alphabets]
        if unknown:
            raise DatasetError(f"alphabet(s) {unknown} not in {source}; its alphabets are {alphabets}")
    if not chosen:
        raise DatasetError(f"selector [{selector}] picks no alphabet of {source} (alphabets: {alphabets})")
    return chosen


def _load_part(root: Path, archive: str, selector: str | None, size: tuple[int, int]) -> ImageStore:
    source = _archive_source(root, archive)
    tree = _list_archive(source)
    blobs: list[Path | bytes] = []
    names, labels, class_names, groups = [], [], [], []
    z = zipfile.ZipFile(source) if source.is_file() else None
    try:
        for alphabet in _select(sorted(tree), selector, source):
            for character in sorted(tree[alphabet]):
                for _drawer, where in sorted(tree[alphabet][character]):
                    try:
                        blobs.append(z.read(where) if z is not None else where)  # type: ignore[arg-type]
                    except (zipfile.BadZipFile, OSError, EOFError) as e:
                        raise DatasetError(
                            f"cannot read {where} from {source} ({e}); the archive is corrupt or "
                            "truncated, delete it and download it again"
                        ) from e
                    names.append(f"{source}:{where}" if z is not None else str(where))
                    labels.append(len(class_names))
                class_names.append(f"{alphabet}/{character}")
                groups.append(alphabet)
    finally:
        if z is not None:
            z.close()
    images = 255 - decode_images(blobs, size, mode="L", names=names)  # strokes bright, background dark
    return ImageStore(images, torch.tensor(labels), class_names, groups)


def sources(root: Path, split: str, splits: str | Mapping[str, str] = "standard", **_: object) -> list[Path]:
    """Archive files (or every image of extracted folders) behind a split, for cache invalidation."""
    out: list[Path] = []
    for archive, _sel in resolve_split(split, splits):
        try:
            src = _archive_source(root, archive)
        except DatasetError:
            continue  # the loader reports the missing archive
        out.extend(sorted(src.glob("*/*/*.png")) if src.is_dir() else [src])
    return out


def download(
    root: Path,
    split: str,
    url: str | None = None,
    splits: str | Mapping[str, str] = "standard",
    sha256: str | Mapping[str, str] | None = None,
    **_: object,
) -> None:
    """Fetch the archives a split needs that are neither extracted nor zipped in root, from url (default: URL)."""
    url = url or URL
    for archive, _sel in resolve_split(split, splits):
        if (root / f"images_{archive}").is_dir() or (root / f"images_{archive}.zip").is_file():
            continue
        digest = sha256.get(archive, sha256.get(f"images_{archive}")) if isinstance(sha256, Mapping) else sha256
        download_and_extract(
            f"{url.rstrip('/')}/images_{archive}.zip",
            root,
            f"images_{archive}",
            sha256=digest or SHA256.get(archive),
            md5=None if digest else MD5.get(archive),
        )


@register_format("omniglot", sources=sources, download=download, uncached_options=("sha256",))
def load_omniglot(
    root: Path,
    split: str,
    image_size: int = 28,
    rotations: bool = False,
    splits: str | Mapping[str, str] = "standard",
    sha256: str | Mapping[str, str] | None = None,
) -> ImageStore:
    """Load an Omniglot split (see the module docstring for split specs); images uint8 [N, 1, S, S]."""
    size = as_size(image_size)
    store = ImageStore.concat([_load_part(root, a, s, size) for a, s in resolve_split(split, splits)])
    return rotated_classes(store) if rotations else store
