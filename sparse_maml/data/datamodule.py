"""EpisodicDataModule: meta-batches of episodes for Lightning, normalised and augmented on the model's device."""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from . import augment as aug
from .loaders import FixedBatches, MetaBatch, StreamBatches, StreamStarts, TrainLoader
from .registry import download_split, get_format, load_split, plain
from .sampler import Episode, EpisodeSampler, episode_seed
from .store import ImageStore, rotated_classes, warn_shared_classes


class EpisodicDataModule(pl.LightningDataModule):
    """Few-shot episodes from any registered format as meta-batches.

    Batches are `(xs [T, N*K, C, H, W], ys [T, N*K], xq [T, N*Q, C, H, W], yq [T, N*Q])`: T = meta_batch_size
    for training and eval_batch_size for validation/test. Images leave the dataloader as uint8 and are
    normalised (and, in training with `augment`, augmented) in `on_after_batch_transfer` on the model's device.

    Args:
        dataset: format name (`sparse_maml.data.available_formats()`: "omniglot", "cub", ... or a registered one).
        root: dataset folder (None for "embedded").
        train_split, val_split, test_split: split names passed to the format.
        n_way, k_shot, k_query: episode shape.
        meta_batch_size: training tasks per batch; train_batches_per_epoch: batches per Lightning epoch.
        num_val_tasks, num_test_tasks: sizes of the fixed evaluation lists; eval_batch_size: tasks per eval batch.
        seed: determines every episode (with dataset and split).
        eval_seed: determines the validation and test episodes instead of ``seed`` (None: ``seed``); the configs
            fix it at 0 so that runs with different seeds are compared on the same episodes.
        image_size, channels: images at this size and with 1 or 3 channels (None: as the format gives them); any
            format can be read at any model's input shape this way.
        augment: random crop (crop_padding), horizontal flip (hflip) and colour jitter (color_jitter) in training.
        mean, std: normalisation constants per channel on the [0, 1] scale (None: computed from the train split).
        within_group: all classes of a training episode from one group (e.g. Omniglot alphabet).
        train_rotations: each training class also at 90, 180 and 270 degrees, as classes of their own (four times
            the training classes, against over-fitting them); validation and test stay as they are, so their
            episodes are those of a run without it. Square images only.
        cache_dir, download, url: see `load_split`; `prepare_data` downloads.
        num_workers: dataloader workers (0 is right: the data is in memory and gathering is one index op).
        **format_options: passed to the format loader (e.g. Omniglot's `splits`, `rotations`).

    >>> dm = EpisodicDataModule("embedded", n_way=5, k_shot=1, k_query=2, meta_batch_size=2)
    >>> xs, ys, xq, yq = next(iter(dm.train_dataloader()))
    >>> tuple(xs.shape), tuple(xq.shape), xs.dtype, dm.normalize(xs).dtype
    ((2, 5, 1, 28, 28), (2, 10, 1, 28, 28), torch.uint8, torch.float32)
    """

    def __init__(
        self,
        dataset: str,
        root: str | None = None,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str = "test",
        n_way: int = 5,
        k_shot: int = 1,
        k_query: int = 15,
        meta_batch_size: int = 4,
        train_batches_per_epoch: int = 100,
        num_val_tasks: int = 500,
        num_test_tasks: int = 300,
        eval_batch_size: int = 1,
        seed: int = 0,
        eval_seed: int | None = None,
        image_size: int | None = None,
        channels: int | None = None,
        augment: bool = False,
        crop_padding: int = 8,
        hflip: bool = True,
        color_jitter: float = 0.4,
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        within_group: bool = False,
        train_rotations: bool = False,
        cache_dir: str | None = None,
        download: bool = False,
        url: str | None = None,
        num_workers: int = 0,
        **format_options: Any,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        get_format(dataset)  # fail early on an unknown name
        self.dataset, self.root = dataset, root
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.n_way, self.k_shot, self.k_query = n_way, k_shot, k_query
        self.meta_batch_size, self.train_batches_per_epoch = meta_batch_size, train_batches_per_epoch
        self.num_tasks = {"val": num_val_tasks, "test": num_test_tasks}
        self.eval_batch_size, self.seed, self.within_group = eval_batch_size, seed, within_group
        self.train_rotations = train_rotations
        self.eval_seed = seed if eval_seed is None else eval_seed
        self.augment, self.crop_padding, self.hflip, self.color_jitter = augment, crop_padding, hflip, color_jitter
        self.cache_dir, self.download, self.url, self.num_workers = cache_dir, download, url, num_workers
        self.format_options = plain(format_options)
        for key, value in (("image_size", image_size), ("channels", channels)):
            if value is not None:
                self.format_options[key] = plain(value)
        self.mean = None if mean is None else plain(mean)
        self.std = None if std is None else plain(std)
        self._stores: dict[str, ImageStore] = {}
        self._samplers: dict[str, EpisodeSampler] = {}
        self._episodes: dict[str, list[Episode]] = {}
        self._restored_position: int | None = None
        self._train_batches_seen = 0
        # Starts of the training meta-batches handed to the trainer's loader and not yet trained on: the first of
        # them is the exact stream position at any batch boundary, whatever the loader prefetched.
        self._pending: deque[int] = deque()

    # data
    def store(self, stage: str) -> ImageStore:
        """The ImageStore of "train", "val" or "test" (loaded on first use)."""
        if stage not in self._stores:
            store = load_split(
                self.dataset, self.root, self.splits[stage], cache_dir=self.cache_dir, **self.format_options
            )
            self._stores[stage] = rotated_classes(store) if stage == "train" and self.train_rotations else store
        return self._stores[stage]

    def sampler(self, stage: str) -> EpisodeSampler:
        """The EpisodeSampler of "train", "val" or "test"."""
        if stage not in self._samplers:
            s = EpisodeSampler(
                self.store(stage),
                self.n_way,
                self.k_shot,
                self.k_query,
                self.seed if stage == "train" else self.eval_seed,
                self.within_group and stage == "train",
            )
            if stage == "train" and self._restored_position is not None:
                s.position = self._restored_position
            self._samplers[stage] = s
        return self._samplers[stage]

    def episodes(self, stage: str) -> list[Episode]:
        """The fixed evaluation episodes of "val" or "test": the same for every run with this ``eval_seed``."""
        if stage not in self._episodes:
            self._episodes[stage] = self.sampler(stage).fixed_episodes(self.num_tasks[stage])
        return self._episodes[stage]

    def prepare_data(self) -> None:
        """With ``download``: fetch, verify and extract the files the splits need that root lacks (Lightning and
        ``ddp.prepare_data`` run it once per machine). Idempotent, and nothing is decoded here: each split is decoded
        (and cached) when first asked for, so a test reads only the test split."""
        if self.download:
            for split in dict.fromkeys(self.splits.values()):
                download_split(self.dataset, self.root, split, self.url, **self.format_options)

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ["train", "val"], "validate": ["val"], "test": ["test"], None: ["train", "val", "test"]}
        for s in wanted.get(stage, []):
            self.sampler(s)
        if stage in ("fit", None):
            others = {s: (self.splits[s], self._stores[s]) for s in ("val", "test") if s in self._stores}
            warn_shared_classes(self.store("train"), self.splits["train"], others)

    # loaders
    def _rank(self) -> tuple[int, int]:
        """(rank, number of ranks) of the trainer this module is attached to; (0, 1) without one."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        """Each rank gets its share of every meta-batch; all ranks advance the stream by meta_batch_size."""
        stream = self.sampler("train")
        rank, world = self._rank()
        pending = self._pending if self.trainer is not None else None
        overfit = self.trainer is not None and self.trainer.overfit_batches > 0
        return TrainLoader(
            self,
            StreamBatches(stream, self.meta_batch_size, rank, world),
            batch_size=None,
            sampler=StreamStarts(stream, self.train_batches_per_epoch, self.meta_batch_size, pending, overfit),
            num_workers=self.num_workers,
            generator=torch.Generator(),  # not the global one: making an iterator then leaves global RNG alone
        )

    def _eval_loader(self, stage: str) -> DataLoader:
        """The fixed episodes of a stage; with several ranks each gets a contiguous share (no padding, so that
        every episode is evaluated exactly once and the gathered metrics equal a single process's)."""
        episodes = self.episodes(stage)
        rank, world = self._rank()
        share = episodes[rank * len(episodes) // world : (rank + 1) * len(episodes) // world]
        return DataLoader(
            FixedBatches(self.sampler(stage), share, self.eval_batch_size),
            batch_size=None,
            shuffle=False,
            num_workers=self.num_workers,
            generator=torch.Generator(),
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    # on the model's device
    @property
    def normalization(self) -> tuple[Any, Any]:
        """(mean, std) per channel on the [0, 1] scale: the configured ones, else those of the train split. The one
        source of the constants: a model records them with its weights so that a checkpoint alone can classify."""
        if self.mean is None or self.std is None:
            mean, std = aug.channel_stats(self.store("train").images)
            self.mean = mean if self.mean is None else self.mean
            self.std = std if self.std is None else self.std
        return self.mean, self.std

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Images [..., C, H, W], uint8 or float in [0, 1], to normalised float on x's device."""
        return aug.normalize(x, *self.normalization)

    def on_after_batch_transfer(self, batch: MetaBatch, dataloader_idx: int) -> MetaBatch:
        xs, ys, xq, yq = batch
        if self.trainer is not None and self.trainer.training:
            self._train_batches_seen += 1
            start = self._pending.popleft() if self._pending else None
            if self.augment:
                xs, xq = self._augment(xs, xq, start)
        return self.normalize(xs), ys, self.normalize(xq), yq

    def _augment(self, xs: torch.Tensor, xq: torch.Tensor, start: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment each task with a generator seeded by its episode index: the same images whatever the meta-batch
        is split into (ranks) and wherever a run was resumed."""
        if start is None:  # a loader made outside a trainer: seed by the batch count
            seeds = [episode_seed("augment", self.seed, self._train_batches_seen) >> 1]
            groups = [slice(None)]
        else:
            rank, world = self._rank()
            first = start + rank * (self.meta_batch_size // world)
            seeds = [episode_seed("augment", self.seed, first + t) >> 1 for t in range(xs.shape[0])]
            groups = [slice(t, t + 1) for t in range(xs.shape[0])]
        return aug.augment_groups(xs, xq, seeds, groups, self.crop_padding, self.hflip, self.color_jitter)

    # info
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images (loads the train split if needed)."""
        return self.store("train").image_shape

    @property
    def split_digests(self) -> dict[str, str]:
        """{stage: SHA-256 of its images and labels} of the splits this datamodule has read (after training: "train",
        "val" and "test"; after a test alone: "test"). Kept in the cache with each split: free after the first decode.
        Saved in checkpoints (``state_dict``) and results, so that a result names the exact data it came from."""
        return {stage: self._stores[stage].digest for stage in self.splits if stage in self._stores}

    @property
    def num_classes(self) -> int:
        """Classes in the train split (a model's head has n_way outputs)."""
        return self.store("train").num_classes

    # checkpoints
    @property
    def train_position(self) -> int:
        """Index of the next training episode to train on (under a trainer: exact at every batch boundary)."""
        if self._pending:
            return self._pending[0]
        position = self._samplers["train"].position if "train" in self._samplers else self._restored_position
        return position or 0

    def state_dict(self) -> dict[str, Any]:
        """Training stream position, augmentation counter, normalisation constants and the splits' digests."""
        return {
            "train_position": self.train_position,
            "train_batches_seen": self._train_batches_seen,
            "mean": self.mean,
            "std": self.std,
            "split_digests": self.split_digests,
        }

    def restore_position(self, position: int) -> None:
        """Continue the training stream at episode ``position`` (a checkpoint's ``train_position``)."""
        self._restored_position = position
        self._pending.clear()
        if "train" in self._samplers:
            self._samplers["train"].position = position

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.restore_position(int(state_dict.get("train_position", 0)))
        self._train_batches_seen = int(state_dict.get("train_batches_seen", 0))
        if state_dict.get("mean") is not None and self.hparams.get("mean") is None:
            self.mean, self.std = state_dict["mean"], state_dict["std"]
        saved, now = state_dict.get("split_digests") or {}, self.split_digests
        changed = [s for s in now if s in saved and saved[s] != now[s]]
        if changed:
            warnings.warn(
                f"the {', '.join(changed)} split(s) of {self.dataset!r} differ from those the checkpoint was trained "
                "with (their SHA-256 digests differ): the resumed run continues on other data",
                stacklevel=2,
            )
