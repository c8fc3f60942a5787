"""Batched, on-device normalisation and augmentation of image tensors [..., C, H, W].

Augmentations follow the usual few-shot recipe (random crop with zero padding, colour jitter, horizontal flip);
each image gets its own random parameters, drawn from `generator` (on the tensor's device) when one is given,
else from torch's global random state.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 in [0, 255] -> float in [0, 1]; float input is taken to be in [0, 1] already."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x.float()


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images [N, C, H, W] on the [0, 1] scale."""
    c = images.shape[1]
    # Integer sums are exact, so the statistics do not depend on the thread count or the order of the reduction
    # (a resumed run must see the very same constants as the run it continues).
    s, s2, n = torch.zeros(c, dtype=torch.int64), torch.zeros(c, dtype=torch.int64), 0
    for i in range(0, images.shape[0], chunk):
        x = images[i : i + chunk].to(torch.int64).transpose(0, 1).reshape(c, -1)
        s += x.sum(1)
        s2 += (x * x).sum(1)
        n += x.shape[1]
    mean = s.double() / (255 * n)
    std = (s2.double() / (255 * 255 * n) - mean * mean).clamp_min(1e-12).sqrt()
    return mean.tolist(), std.tolist()


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(to_unit(x) - mean) / std per channel; x [..., C, H, W] uint8 or float in [0, 1] -> float."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    return (to_unit(x) - m) / s


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Pad [B, C, H, W] with zeros by `padding` and crop back to H x W at a random offset per image."""
    if padding <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding)).permute(0, 2, 3, 1)  # [B, H+2p, W+2p, C]
    oy = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device, generator=generator)
    ox = torch.randint(0, 2 * padding + 1, (b, 1), device=x.device, generator=generator)
    rows = (oy + torch.arange(h, device=x.device))[:, :, None]
    cols = (ox + torch.arange(w, device=x.device))[:, None, :]
    return padded[torch.arange(b, device=x.device)[:, None, None], rows, cols].permute(0, 3, 1, 2)


def hflip(x: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image of [B, C, H, W] left-right with probability p."""
    flip = torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=generator) < p
    return torch.where(flip, x.flip(-1), x)


def color_jitter(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Brightness, contrast and (for RGB) saturation factors in [1 - s, 1 + s] per image; x in [0, 1]."""
    if strength <= 0:
        return x
    b = x.shape[0]

    def factor() -> torch.Tensor:
        return torch.empty(b, 1, 1, 1, device=x.device).uniform_(1 - strength, 1 + strength, generator=generator)

    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)

    def gray(y: torch.Tensor) -> torch.Tensor:
        return (y * weights).sum(1, keepdim=True) if y.shape[1] == 3 else y

    x = (x * factor()).clamp_(0, 1)
    mu = gray(x).mean((1, 2, 3), keepdim=True)
    x = ((x - mu) * factor() + mu).clamp_(0, 1)
    if x.shape[1] == 3:
        g = gray(x)
        x = ((x - g) * factor() + g).clamp_(0, 1)
    return x


def augment(
    x: torch.Tensor,
    crop_padding: int = 8,
    flip: bool = True,
    jitter: float = 0.4,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Augment float images [..., C, H, W] in [0, 1] (any leading dims, e.g. [T, N*K])."""
    lead, shape = x.shape[:-3], x.shape[-3:]
    y = x.reshape(-1, *shape)
    y = random_crop(y, crop_padding, generator)
    if flip:
        y = hflip(y, generator=generator)
    y = color_jitter(y, jitter, generator)
    return y.reshape(*lead, *shape)


def augment_groups(
    xs: torch.Tensor,
    xq: torch.Tensor,
    seeds: Sequence[int],
    groups: Sequence[slice],
    crop_padding: int,
    flip: bool,
    jitter: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment each group of tasks of support xs and query xq (uint8) with its own generator, seeded by ``seeds``:
    support and query of a group draw from the same generator, one after the other."""
    out_s, out_q = [], []
    for seed, sl in zip(seeds, groups):
        g = torch.Generator(device=xs.device)
        g.manual_seed(seed)
        out_s.append(augment(to_unit(xs[sl]), crop_padding, flip, jitter, g))
        out_q.append(augment(to_unit(xq[sl]), crop_padding, flip, jitter, g))
    return torch.cat(out_s), torch.cat(out_q)
