"""The DataLoaders behind EpisodicDataModule: a resumable training stream split between ranks, and fixed
evaluation episodes in batches."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .sampler import Episode, EpisodeSampler

MetaBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class StreamStarts(Sampler[int]):
    """First episode index of each training meta-batch of an epoch. Runs in the main process (also with
    workers), so advancing the stream here keeps its position right in the process that checkpoints.

    Under a Trainer, `pending` holds the starts handed out but not yet trained on (the loader prefetches): a new
    iterator (next epoch, or a resumed run) goes back to the first of them, so no meta-batch is skipped.
    `repeat`: every epoch starts where the first did, so that it trains on the same meta-batches (overfit_batches)."""

    def __init__(
        self, stream: EpisodeSampler, batches: int, tasks: int, pending: deque[int] | None = None, repeat: bool = False
    ) -> None:
        self.stream, self.batches, self.tasks, self.pending = stream, batches, tasks, pending
        self.first = stream.position if repeat else None

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[int]:
        if self.first is not None:
            self.stream.position = self.first
            if self.pending:
                self.pending.clear()
        if self.pending:
            self.stream.position = self.pending[0]
            self.pending.clear()
        for _ in range(self.batches):
            start = self.stream.position
            self.stream.position = start + self.tasks
            if self.pending is not None:
                self.pending.append(start)
            yield start


class StreamBatches(Dataset):
    """This rank's share of the meta-batch of `tasks` consecutive training episodes starting at a stream index:
    episodes start + rank * tasks / world ... start + (rank + 1) * tasks / world - 1."""

    def __init__(self, stream: EpisodeSampler, tasks: int, rank: int = 0, world: int = 1) -> None:
        if tasks % world:
            raise ValueError(f"meta_batch_size={tasks} is not divisible by the number of ranks ({world})")
        self.stream, self.tasks, self.rank, self.world = stream, tasks, rank, world

    def __getitem__(self, start: int) -> MetaBatch:
        share = self.tasks // self.world
        first = start + self.rank * share
        return self.stream.batch([self.stream.episode(i) for i in range(first, first + share)])


class FixedBatches(Dataset):
    """A fixed episode list in batches of `tasks` (the last one may be smaller)."""

    def __init__(self, sampler: EpisodeSampler, episodes: Sequence[Episode], tasks: int) -> None:
        self.sampler, self.episodes, self.tasks = sampler, episodes, tasks

    def __len__(self) -> int:
        return math.ceil(len(self.episodes) / self.tasks)

    def __getitem__(self, b: int) -> MetaBatch:
        return self.sampler.batch(self.episodes[b * self.tasks : (b + 1) * self.tasks])


class Stream(Protocol):
    """The datamodule as the training loader sees it (``EpisodicDataModule``): a stream position to save and restore."""

    @property
    def train_position(self) -> int: ...

    def restore_position(self, position: int) -> None: ...


class TrainLoader(DataLoader):
    """The training loader, resumable in Lightning's sense (``state_dict`` / ``load_state_dict``): its state is the
    datamodule's stream position, so that Lightning knows a mid-epoch checkpoint resumes exactly."""

    def __init__(self, datamodule: Stream, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.datamodule = datamodule

    def state_dict(self) -> dict[str, Any]:
        return {"train_position": self.datamodule.train_position}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.datamodule.restore_position(int(state_dict["train_position"]))
