"""Data pipeline: format loader -> ImageStore -> EpisodeSampler -> EpisodicDataModule.

    from sparse_maml.data import load_split
    store = load_split("omniglot", root, "background_small1")
    store.images  # uint8 [N, C, H, W];  store.labels  # int64 [N];  store.class_names  # list[str]

Formats (see each module's docstring): "miniimagenet" (pickle cache, Ravi csv + images, torchmeta hdf5),
"omniglot" (official archives or folders; split specs and download), "tiered_imagenet" (Ren et al.'s pickles or
the npz variant), "cifar_fs" and "fc100" (the CIFAR-100 python archive or MetaOptNet's pickles; download), "cub"
(the official archive's folders; download), "cars" (Stanford Cars' devkit or car_ims layout), "folder"
(root/<split>/<class>/), "embedded" (procedural, generated from a seed). Add a format with
`@register_format("name")`.
"""

from . import formats as _formats  # noqa: F401  (registers the built-in formats)
from .datamodule import EpisodicDataModule
from .errors import DatasetError
from .registry import available_formats, get_format, load_split, register_format
from .sampler import Episode, EpisodeSampler
from .store import ImageStore

FORMATS: tuple[str, ...] = (
    "miniimagenet",
    "omniglot",
    "tiered_imagenet",
    "cifar_fs",
    "fc100",
    "cub",
    "cars",
    "folder",
    "embedded",
)
"""The built-in formats; `available_formats()` also lists registered ones."""

__all__ = [
    "FORMATS",
    "DatasetError",
    "Episode",
    "EpisodeSampler",
    "EpisodicDataModule",
    "ImageStore",
    "available_formats",
    "get_format",
    "load_split",
    "register_format",
]
