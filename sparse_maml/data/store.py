"""ImageStore: one split of a dataset held in memory as a single uint8 tensor."""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .errors import DatasetError


@dataclass(eq=False)
class ImageStore:
    """A whole split: images, integer labels, class names and (optionally) a group per class.

    Attributes:
        images: uint8 [N, C, H, W].
        labels: int64 [N], class ids in 0..num_classes-1.
        class_names: list[str] of length num_classes; class id c is named class_names[c].
        class_groups: list[str] of length num_classes (e.g. Omniglot's alphabet of each character), or None.
        name: where the split came from, e.g. "omniglot/background_small1"; episode seeds depend on it.
        from_cache: True when the store was read from the on-disk cache rather than decoded.
        digest: SHA-256 of the images and labels (see `split_digest`); computed on first use and kept in the cache.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    class_groups: list[str] | None = None
    name: str = ""
    from_cache: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DatasetError(
                f"ImageStore {self.name!r}: images must be uint8 [N, C, H, W], got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        self.labels = self.labels.to(torch.int64)
        if self.labels.shape != (self.images.shape[0],):
            raise DatasetError(
                f"ImageStore {self.name!r}: labels {tuple(self.labels.shape)} do not match "
                f"{self.images.shape[0]} images"
            )
        self.class_names = [str(c) for c in self.class_names]
        n = len(self.class_names)
        if n == 0 or self.labels.numel() == 0:
            raise DatasetError(f"ImageStore {self.name!r} is empty: no images were found")
        if int(self.labels.min()) < 0 or int(self.labels.max()) >= n:
            raise DatasetError(f"ImageStore {self.name!r}: labels must lie in 0..{n - 1}")
        if len(set(self.class_names)) != n:
            raise DatasetError(f"ImageStore {self.name!r}: class names are not unique")
        if self.class_groups is not None:
            self.class_groups = [str(g) for g in self.class_groups]
            if len(self.class_groups) != n:
                raise DatasetError(f"ImageStore {self.name!r}: {len(self.class_groups)} groups for {n} classes")
        self._by_class: list[torch.Tensor] | None = None
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        """SHA-256 hex digest of this split's images and labels: which bytes a model was trained or tested on."""
        if self._digest is None:
            self._digest = split_digest(self.images, self.labels)
        return self._digest

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def class_counts(self) -> torch.Tensor:
        """int64 [num_classes]: images per class."""
        return torch.bincount(self.labels, minlength=self.num_classes)

    def indices_by_class(self) -> list[torch.Tensor]:
        """For each class id, the int64 indices of its images in ascending order."""
        if self._by_class is None:
            order = torch.argsort(self.labels, stable=True)
            self._by_class = list(torch.split(order, self.class_counts().tolist()))
        return self._by_class

    def group_ids(self) -> tuple[list[str], torch.Tensor] | None:
        """(sorted group names, int64 [num_classes] group id of each class), or None without groups."""
        if self.class_groups is None:
            return None
        names = sorted(set(self.class_groups))
        index = {g: i for i, g in enumerate(names)}
        return names, torch.tensor([index[g] for g in self.class_groups], dtype=torch.int64)

    def select_classes(self, class_ids: Sequence[int], name: str | None = None) -> ImageStore:
        """A new store with only the given classes, relabelled 0..len(class_ids)-1 in the given order."""
        ids = torch.as_tensor(list(class_ids), dtype=torch.int64)
        remap = torch.full((self.num_classes,), -1, dtype=torch.int64)
        remap[ids] = torch.arange(len(ids))
        keep = remap[self.labels] >= 0
        groups = None if self.class_groups is None else [self.class_groups[i] for i in ids.tolist()]
        return ImageStore(
            self.images[keep],
            remap[self.labels[keep]],
            [self.class_names[i] for i in ids.tolist()],
            groups,
            self.name if name is None else name,
        )

    @staticmethod
    def concat(stores: Sequence[ImageStore], name: str = "") -> ImageStore:
        """Join stores with disjoint class names into one (class ids are offset store by store)."""
        if len(stores) == 1:
            s = stores[0]
            return ImageStore(s.images, s.labels, s.class_names, s.class_groups, name or s.name)
        shapes = {s.image_shape for s in stores}
        if len(shapes) != 1:
            raise DatasetError(f"cannot join splits with different image shapes {sorted(shapes)}")
        names = [c for s in stores for c in s.class_names]
        if len(set(names)) != len(names):
            dup = sorted({c for c in names if names.count(c) > 1})
            raise DatasetError(f"cannot join splits that share classes {dup[:5]}: remove the overlapping part")
        offsets = [0]
        for s in stores[:-1]:
            offsets.append(offsets[-1] + s.num_classes)
        groups = None
        if all(s.class_groups is not None for s in stores):
            groups = [g for s in stores for g in s.class_groups]  # type: ignore[union-attr]
        return ImageStore(
            torch.cat([s.images for s in stores]),
            torch.cat([s.labels + o for s, o in zip(stores, offsets, strict=True)]),
            names,
            groups,
            name,
        )

    def to_dict(self) -> dict:
        """Plain contents for torch.save (weights_only-loadable)."""
        return {
            "images": self.images,
            "labels": self.labels,
            "class_names": list(self.class_names),
            "class_groups": None if self.class_groups is None else list(self.class_groups),
            "name": self.name,
            "digest": self.digest,
        }

    @classmethod
    def from_dict(cls, d: dict, from_cache: bool = False) -> ImageStore:
        store = cls(d["images"], d["labels"], d["class_names"], d["class_groups"], d["name"], from_cache)
        store._digest = d.get("digest")
        return store

    def __repr__(self) -> str:
        groups = "" if self.class_groups is None else f", groups={len(set(self.class_groups))}"
        return f"ImageStore({self.name!r}, images={len(self)}x{self.image_shape}, classes={self.num_classes}{groups})"


def split_digest(images: torch.Tensor, labels: torch.Tensor, chunk: int = 4096) -> str:
    """SHA-256 over the text "N,C,H,W\\n", the images' bytes (uint8, C-contiguous [N, C, H, W]) and the labels'
    bytes (int64 little-endian [N]); hashed in chunks of images, so no second copy of a large split is made."""
    h = hashlib.sha256(",".join(str(d) for d in images.shape).encode() + b"\n")
    for i in range(0, images.shape[0], chunk):
        h.update(images[i : i + chunk].contiguous().numpy())
    h.update(labels.to(torch.int64).contiguous().numpy().astype("<i8", copy=False))
    return h.hexdigest()


def rotated_classes(store: ImageStore) -> ImageStore:
    """Each class at 0, 90, 180 and 270 degrees as four classes of their own: class c at rotation r -> class
    4c + r, named "<c>", "<c>/rot90", "<c>/rot180", "<c>/rot270", in the same group. Four times the classes from
    the same images: Santoro et al. (2016) and Finn et al. (2017) train on Omniglot this way. Square images only."""
    height, width = store.image_shape[1:]
    if height != width:
        raise DatasetError(
            f"{store.name!r}: class rotations need square images, got {height}x{width}; set data.image_size "
            "to one number, or leave the rotations off"
        )
    images = torch.cat([torch.rot90(store.images, r, dims=(2, 3)) for r in range(4)])
    labels = torch.cat([store.labels * 4 + r for r in range(4)])
    names = [c if r == 0 else f"{c}/rot{90 * r}" for c in store.class_names for r in range(4)]
    groups = None if store.class_groups is None else [g for g in store.class_groups for _ in range(4)]
    return ImageStore(images, labels, names, groups, store.name)


def warn_shared_classes(train: ImageStore, train_split: str, others: dict[str, tuple[str, ImageStore]]) -> None:
    """Warn about classes of the train split that are also in another ({stage: (split name, store)}): few-shot
    results on them would be optimistic. A stage that reads the train split itself is not compared."""
    names = set(train.class_names)
    for stage, (split, store) in others.items():
        shared = names & set(store.class_names) if split != train_split else set()
        if shared:
            warnings.warn(
                f"{len(shared)} classes of the {stage} split {split!r} are also in the train "
                f"split, e.g. {sorted(shared)[:3]}: few-shot results would be optimistic",
                stacklevel=3,
            )
