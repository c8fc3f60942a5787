"""Format registry and `load_split`, the one entry point from a dataset on disk to an ImageStore.

A format is a function `load(root: Path | None, split: str, **options) -> ImageStore` registered by name::

    from sparse_maml.data import ImageStore, register_format

    @register_format("my_format")
    def load_my_format(root, split, image_size: int = 32) -> ImageStore:
        ...

Optional hooks: `sources(root, split, **options) -> list[Path]`, the files whose change invalidates the cache
(default: every file under root); `download(root, split, url, **options)`, which fetches missing files from `url`
(None: the dataset's public source) and verifies them.

Two options work with every format: `image_size` (an int or [H, W]) and `channels` (1 or 3). A loader that takes
them decodes at that size; for one that does not, `load_split` resizes and converts what it returns. So any split
can be read at a model's input shape (e.g. CUB at Omniglot's 28x28 grayscale for a cross-domain test).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import cache
from .errors import DatasetError
from .images import as_size, convert_channels, resize_images
from .store import ImageStore

UNIVERSAL_OPTIONS = ("image_size", "channels")


@dataclass(frozen=True)
class FormatSpec:
    """A registered format: its loader and hooks (see the module docstring)."""

    name: str
    load: Callable[..., ImageStore]
    sources: Callable[..., list[Path]] | None = None
    download: Callable[..., None] | None = None
    needs_root: bool = True
    cache: bool = True
    uncached_options: tuple[str, ...] = ()  # options that do not change the decoded images (e.g. a URL)

    def option_names(self) -> set[str] | None:
        """Keyword options the loader takes, or None when it takes any (**kwargs)."""
        params = list(inspect.signature(self.load).parameters.values())[2:]
        if any(p.kind is p.VAR_KEYWORD for p in params):
            return None
        return {p.name for p in params}


_REGISTRY: dict[str, FormatSpec] = {}


def register_format(
    name: str,
    *,
    sources: Callable[..., list[Path]] | None = None,
    download: Callable[..., None] | None = None,
    needs_root: bool = True,
    cache: bool = True,
    uncached_options: Sequence[str] = (),
) -> Callable[[Callable[..., ImageStore]], Callable]:
    """Decorator registering `load(root, split, **options) -> ImageStore` as format `name`."""

    def decorator(load: Callable[..., ImageStore]) -> Callable[..., ImageStore]:
        _REGISTRY[name] = FormatSpec(name, load, sources, download, needs_root, cache, tuple(uncached_options))
        return load

    return decorator


def available_formats() -> tuple[str, ...]:
    """Names of every registered format, built-in and user-added."""
    return tuple(_REGISTRY)


def get_format(name: str) -> FormatSpec:
    if name not in _REGISTRY:
        raise DatasetError(
            f"unknown dataset format {name!r}; known formats: {', '.join(_REGISTRY)} (add one with @register_format)"
        )
    return _REGISTRY[name]


def plain(value: Any) -> Any:
    """Config containers (e.g. Hydra's DictConfig/ListConfig) as plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def _tree(root: Path) -> list[Path]:
    return [
        Path(d) / f
        for d, dirs, files in os.walk(root)
        for f in files
        if not any(part.startswith(".") for part in Path(d).relative_to(root).parts) and not f.startswith(".")
    ]


def load_split(
    dataset: str,
    root: str | os.PathLike | None,
    split: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    download: bool = False,
    url: str | None = None,
    **options: Any,
) -> ImageStore:
    """Load one split of a dataset as an ImageStore, decoding once and caching on disk.

    Args:
        dataset: a format name (`available_formats()`), e.g. "omniglot", "miniimagenet", "folder", "embedded".
        root: the folder holding the files (None for formats that need none, e.g. "embedded").
        split: "train" / "val" / "test", or a format-specific spec (Omniglot: "background_small1", ...).
        cache_dir: where decoded splits are cached (default: `<root>/.sparse_maml_cache`, or ~/.cache/sparse_maml
            when root is read-only).
        use_cache: False decodes every time and writes no cache.
        download: fetch, verify and extract missing files first (formats with a downloader only).
        url: where the downloader fetches from (a mirror or a local server); None: the dataset's public source.
        **options: format options, plus `image_size` and `channels` for every format; unknown ones raise
            DatasetError.

    Returns:
        ImageStore with images uint8 [N, C, H, W], labels int64 [N], class_names, named "<dataset>/<split>", and
        its `digest` (kept in the cache with the images).
    """
    spec = get_format(dataset)
    options = {k: v for k, v in plain(options).items() if not (k in UNIVERSAL_OPTIONS and v is None)}
    accepted = spec.option_names()
    if accepted is not None and set(options) - accepted - set(UNIVERSAL_OPTIONS):
        raise DatasetError(
            f"format {dataset!r} has no option(s) {sorted(set(options) - accepted - set(UNIVERSAL_OPTIONS))}; its "
            f"options are {sorted(accepted | set(UNIVERSAL_OPTIONS))}"
        )
    root_path = None if root is None else Path(root).expanduser()
    if spec.needs_root:
        if root_path is None:
            raise DatasetError(f"format {dataset!r} needs root=<folder holding the dataset files>")
        if download:
            download_split(dataset, root_path, split, url, **options)
        if not root_path.is_dir():
            hint = ", or pass download=True" if spec.download is not None else ""
            raise DatasetError(
                f"dataset root {root_path} does not exist; pass the folder that holds the {dataset} files{hint}"
            )
    name = f"{dataset}/{split}"
    cached = use_cache and spec.cache and root_path is not None
    if cached:
        assert root_path is not None
        sources = spec.sources(root_path, split, **options) if spec.sources else _tree(root_path)
        digest = cache.fingerprint(sources)
        key_options = {k: v for k, v in options.items() if k not in spec.uncached_options}
        folder = Path(cache_dir).expanduser() if cache_dir is not None else cache.default_cache_dir(root_path)
        path = cache.cache_path(folder, dataset, root_path, split, key_options)
        store = cache.read_cache(path, digest)
        if store is not None:
            store.name = name
            return store
    passed = {k: v for k, v in options.items() if accepted is None or k in accepted}
    store = spec.load(root_path, split, **passed)
    if not isinstance(store, ImageStore):
        raise TypeError(f"format {dataset!r} returned {type(store).__name__}, not an ImageStore")
    store = _conform(store, options.get("image_size"), options.get("channels"))
    store.name = name
    if cached:
        cache.write_cache(path, store, digest)
    return store


def _conform(store: ImageStore, image_size: Any, channels: int | None) -> ImageStore:
    """The store at image_size and with channels (None: as it is)."""
    images = store.images
    fewer = channels is not None and int(channels) < images.shape[1]
    if fewer:  # convert first, so that fewer channels are resized
        images = convert_channels(images, int(channels))
    if image_size is not None:
        images = resize_images(images, as_size(image_size))
    if channels is not None and not fewer:
        images = convert_channels(images, int(channels))
    if images is store.images:
        return store
    return ImageStore(images, store.labels, store.class_names, store.class_groups, store.name)


def download_split(
    dataset: str, root: str | os.PathLike | None, split: str, url: str | None = None, **options: Any
) -> None:
    """Fetch, verify and extract what ``split`` needs and ``root`` lacks (from ``url``, None: the dataset's public
    source); nothing is decoded. Raises DatasetError for a format without a downloader."""
    spec = get_format(dataset)
    if spec.download is None:
        raise DatasetError(f"format {dataset!r} has no downloader; put its files in {root} and set download=False")
    if root is None:
        raise DatasetError(f"format {dataset!r} needs root=<folder to download the dataset into>")
    spec.download(Path(root).expanduser(), split, url, **plain(options))
