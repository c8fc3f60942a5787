"""EpisodeSampler: N-way K-shot Q-query episodes as index tensors into an ImageStore.

Episode i of a stream is drawn from its own generator, seeded by a hash of (store name, seed, stream, i). So:
- evaluation episodes ("val"/"test" stream) are a fixed list determined by (dataset, split, seed) alone,
  identical for every algorithm and run;
- the training stream is endless, and its position is one integer (the next episode index), which
  `state_dict()` / `load_state_dict()` save and restore exactly.
Only uniform draws and sorting are used, so episodes do not depend on any global random state.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import torch

from .errors import DatasetError
from .store import ImageStore


class Episode(NamedTuple):
    """Indices into a store. Episode label j is class `classes[j]`; support and query are label-major.

    support: int64 [N*K] (label j at positions j*K..j*K+K-1); query: int64 [N*Q]; classes: int64 [N] store class ids.
    """

    support: torch.Tensor
    query: torch.Tensor
    classes: torch.Tensor


def episode_seed(*parts: object) -> int:
    """A 64-bit seed from a stable hash of the parts (independent of PYTHONHASHSEED)."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little")


def _choose(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """k distinct values of range(n) in random order (argsort of uniforms: stable across numpy versions)."""
    return np.argsort(rng.random(n), kind="stable")[:k]


class EpisodeSampler:
    """Draw episodes from a store.

    Args:
        store: the split to sample from.
        n_way, k_shot, k_query: classes per episode, support and query images per class.
        seed: with the store's name, determines every episode.
        within_group: draw all N classes of an episode from one group (e.g. one Omniglot alphabet).

    Iterating yields the training stream from `position`, advancing it.
    """

    def __init__(
        self, store: ImageStore, n_way: int, k_shot: int, k_query: int, seed: int = 0, within_group: bool = False
    ) -> None:
        if min(n_way, k_shot) < 1 or k_query < 0:
            raise DatasetError(f"need n_way >= 1, k_shot >= 1, k_query >= 0; got {n_way}, {k_shot}, {k_query}")
        self.store, self.n_way, self.k_shot, self.k_query = store, n_way, k_shot, k_query
        self.seed, self.within_group, self.position = int(seed), within_group, 0
        if store.num_classes < n_way:
            raise DatasetError(
                f"split {store.name!r} has {store.num_classes} classes, fewer than n_way={n_way}; "
                "lower n_way or use a split with more classes"
            )
        counts = store.class_counts()
        small = torch.nonzero(counts < k_shot + k_query).flatten().tolist()
        if small:
            c = small[0]
            raise DatasetError(
                f"class {store.class_names[c]!r} of split {store.name!r} has {int(counts[c])} images, "
                f"fewer than k_shot + k_query = {k_shot + k_query} (and {len(small) - 1} more such "
                "classes); lower k_shot/k_query or remove those classes"
            )
        self._by_class = [ix.numpy() for ix in store.indices_by_class()]
        self._groups: list[np.ndarray] = []
        if within_group:
            ids = store.group_ids()
            if ids is None:
                raise DatasetError(f"within_group sampling needs class groups, and split {store.name!r} has none")
            names, of_class = ids
            members = [torch.nonzero(of_class == g).flatten().numpy() for g in range(len(names))]
            self._groups = [m for m in members if len(m) >= n_way]
            if not self._groups:
                raise DatasetError(
                    f"no group of split {store.name!r} has n_way={n_way} classes; largest has "
                    f"{max(len(m) for m in members)}"
                )

    def episode(self, index: int, stream: str = "train") -> Episode:
        """Episode `index` of a stream ("train", or e.g. "eval" for fixed evaluation lists)."""
        rng = np.random.default_rng(episode_seed(self.store.name, self.seed, stream, int(index)))
        if self._groups:
            group = self._groups[int(_choose(rng, len(self._groups), 1)[0])]
            classes = group[_choose(rng, len(group), self.n_way)]
        else:
            classes = _choose(rng, len(self._by_class), self.n_way)
        k, m = self.k_shot, self.k_shot + self.k_query
        picks = [self._by_class[c][_choose(rng, len(self._by_class[c]), m)] for c in classes]
        support = np.concatenate([p[:k] for p in picks])
        query = np.concatenate([p[k:] for p in picks])
        return Episode(torch.from_numpy(support), torch.from_numpy(query), torch.from_numpy(classes.astype(np.int64)))

    def fixed_episodes(self, num: int) -> list[Episode]:
        """The first `num` episodes of the evaluation stream: the same list for every run with this seed."""
        return [self.episode(i, "eval") for i in range(num)]

    def __iter__(self) -> Iterator[Episode]:
        return self

    def __next__(self) -> Episode:
        ep = self.episode(self.position)
        self.position += 1
        return ep

    def batch(self, episodes: Sequence[Episode]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Gather episodes into a meta-batch of uint8 images.

        Returns:
            xs uint8 [T, N*K, C, H, W], ys int64 [T, N*K], xq uint8 [T, N*Q, C, H, W], yq int64 [T, N*Q].
        """
        t, shape = len(episodes), self.store.images.shape[1:]
        xs = self._gather(torch.cat([e.support for e in episodes])).view(t, -1, *shape)
        xq = self._gather(torch.cat([e.query for e in episodes])).view(t, -1, *shape)
        labels = torch.arange(self.n_way)
        ys = labels.repeat_interleave(self.k_shot).expand(t, -1).contiguous()
        yq = labels.repeat_interleave(self.k_query).expand(t, -1).contiguous()
        return xs, ys, xq, yq

    def _gather(self, index: torch.Tensor) -> torch.Tensor:
        images = self.store.images
        if images.device.type == "cpu":  # numpy's single-threaded copy: no thread start-up for a few MB
            return torch.from_numpy(images.numpy()[index.numpy()])
        return images.index_select(0, index.to(images.device))

    def state_dict(self) -> dict:
        """The stream position, with what identifies the stream (checked on load)."""
        return {"position": self.position, "name": self.store.name, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        if (state.get("name"), state.get("seed")) != (self.store.name, self.seed):
            warnings.warn(
                f"restoring the position of stream ({state.get('name')!r}, seed {state.get('seed')}) "
                f"into ({self.store.name!r}, seed {self.seed})",
                stacklevel=2,
            )
        self.position = int(state["position"])
