"""A procedural few-shot dataset generated from a seed: no files, no download, the same bytes on every machine.

Every class is a composition of 2 to 4 strokes drawn from one bank of shared primitives (quadratic Bezier
curves): low-level features (stroke shapes and thickness) are shared by all classes, while a class is defined by
which primitives it uses and where, at what angle and scale it places them. Each instance varies: a small global
affine jitter (rotation, scale, shear, shift), per-stroke jitter of placement, stroke thickness and contrast, and
pixel noise (and a random tint when channels=3). Class identity is visible but instances are not copies.

Options: `image_size` (28), `channels` (1 or 3), `classes` ([train, val, test] class counts, [64, 16, 20]),
`images_per_class` (20), `data_seed` (0). Splits: "train", "val", "test"; their classes are disjoint.

Only uniform draws and IEEE-exact arithmetic (+, *, /, sqrt, min, clip) are used, so a seed gives the same bytes
on every platform. Generation is vectorised: 2,000 28x28 images take well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import DatasetError
from ..images import as_size
from ..registry import register_format
from ..store import ImageStore

SPLITS = ("train", "val", "test")
NUM_PRIMITIVES = 32
MAX_STROKES = 4
POINTS = 6  # points per stroke: 5 segments
# per-instance variation: ranges of uniform draws (turns are tangents of angles)
VARIATION = {
    "stroke_shift": 0.1,
    "stroke_turn": 0.25,
    "stroke_scale": (0.85, 1.15),
    "turn": 0.3,
    "scale": (0.85, 1.15),
    "shear": 0.15,
    "shift": 0.15,
    "width": (0.05, 0.12),
    "contrast": (0.6, 1.0),
    "noise": 0.15,
    "distractor": 0.5,
}


def _rotate(x: np.ndarray, y: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotate points by explicit products (no BLAS: no fused multiply-add, identical bits everywhere)."""
    return cos * x - sin * y, sin * x + cos * y


def _unit_angle(rng: np.random.Generator, shape: tuple, spread: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of random angles without trigonometric functions (bit-exact everywhere).

    spread=None: any angle (a random direction); else a small angle of tangent at most `spread`.
    """
    if spread is None:
        v = rng.uniform(-1, 1, (*shape, 2))
        v[np.abs(v).sum(-1) < 1e-3] = (1.0, 0.0)  # avoid a degenerate zero vector
    else:
        v = np.stack([np.ones(shape), rng.uniform(-spread, spread, shape)], -1)
    r = np.sqrt(v[..., 0] * v[..., 0] + v[..., 1] * v[..., 1])
    return v[..., 0] / r, v[..., 1] / r


def _primitives(rng: np.random.Generator) -> np.ndarray:
    """[P, POINTS, 2] quadratic Bezier strokes in [-1, 1]^2."""
    ctrl = rng.uniform(-1, 1, (NUM_PRIMITIVES, 3, 2))
    t = (np.arange(POINTS) / (POINTS - 1))[None, :, None]
    return (1 - t) * (1 - t) * ctrl[:, None, 0] + 2 * (1 - t) * t * ctrl[:, None, 1] + t * t * ctrl[:, None, 2]


def _classes(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Per class: primitive ids, stroke mask, centres, rotations (cos, sin) and scales of its strokes."""
    cos, sin = _unit_angle(rng, (n, MAX_STROKES), None)
    return {
        "prim": rng.integers(0, NUM_PRIMITIVES, (n, MAX_STROKES)),
        "active": np.arange(MAX_STROKES)[None] < rng.integers(2, MAX_STROKES + 1, (n, 1)),
        "centre": rng.uniform(-0.4, 0.4, (n, MAX_STROKES, 2)),
        "cos": cos,
        "sin": sin,
        "scale": rng.uniform(0.4, 0.7, (n, MAX_STROKES)),
    }


def _render(points: np.ndarray, active: np.ndarray, width: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Anti-aliased strokes: points [n, S, POINTS, 2] in [-1, 1]^2, width [n] -> intensity float32 [n, H, W]."""
    h, w = size
    ys, xs = (np.arange(h, dtype=np.float32) + 0.5) / h * 2 - 1, (np.arange(w, dtype=np.float32) + 0.5) / w * 2 - 1
    gx, gy = np.meshgrid(xs, ys)
    gx, gy = gx.reshape(1, 1, -1), gy.reshape(1, 1, -1)
    pts = points.astype(np.float32)
    a, b = pts[:, :, :-1].reshape(len(pts), -1, 2), pts[:, :, 1:].reshape(len(pts), -1, 2)
    ax, ay, dx, dy = a[..., 0:1], a[..., 1:2], b[..., 0:1] - a[..., 0:1], b[..., 1:2] - a[..., 1:2]
    t = np.clip(((gx - ax) * dx + (gy - ay) * dy) / (dx * dx + dy * dy + np.float32(1e-12)), 0, 1)
    ex, ey = gx - ax - t * dx, gy - ay - t * dy
    d2 = ex * ex + ey * ey
    d2[~np.repeat(active, POINTS - 1, axis=1)] = np.inf  # unused strokes of the class draw nothing
    dist = np.sqrt(d2.min(1))
    pixel = np.float32(2.0 / min(h, w))
    return np.clip((width[:, None].astype(np.float32) - dist) / pixel + np.float32(0.5), 0, 1).reshape(-1, h, w)


def generate(
    n_classes: int,
    images_per_class: int,
    class_offset: int,
    total_classes: int,
    size: tuple[int, int],
    channels: int,
    data_seed: int,
    chunk: int = 256,
) -> np.ndarray:
    """uint8 [n_classes * images_per_class, H, W, channels] for classes class_offset..+n_classes, class-major.

    Class definitions are drawn for all total_classes at once, so a class is the same whichever split asks.
    """
    base = np.random.default_rng([data_seed, 0])
    prims = _primitives(base)
    cls = _classes(base, total_classes)
    rng = np.random.default_rng([data_seed, 1, class_offset])  # instances: one stream per split
    n, v = n_classes * images_per_class, VARIATION
    c = np.repeat(np.arange(class_offset, class_offset + n_classes), images_per_class)
    # per instance: the class's strokes plus one distractor stroke (a random primitive, shown with some probability)
    extra = _classes(rng, n)
    prim = np.concatenate([cls["prim"][c], extra["prim"][:, :1]], 1)
    active = np.concatenate([cls["active"][c], rng.random((n, 1)) < v["distractor"]], 1)
    cos = np.concatenate([cls["cos"][c], extra["cos"][:, :1]], 1)
    sin = np.concatenate([cls["sin"][c], extra["sin"][:, :1]], 1)
    scale = np.concatenate([cls["scale"][c], extra["scale"][:, :1]], 1)
    scale = scale * rng.uniform(*v["stroke_scale"], (n, MAX_STROKES + 1))
    centre = np.concatenate([cls["centre"][c], extra["centre"][:, :1]], 1)
    centre = centre + rng.uniform(-v["stroke_shift"], v["stroke_shift"], (n, MAX_STROKES + 1, 2))
    jc, js = _unit_angle(rng, (n, MAX_STROKES + 1), v["stroke_turn"])
    gc, gs = _unit_angle(rng, (n,), v["turn"])
    gscale = rng.uniform(*v["scale"], n)
    shear = rng.uniform(-v["shear"], v["shear"], n)
    shift = rng.uniform(-v["shift"], v["shift"], (n, 2))
    width, contrast = rng.uniform(*v["width"], n), rng.uniform(*v["contrast"], n)
    tint = rng.uniform(0.35, 1.0, (n, 3))
    # stroke points: primitive -> class placement with per-instance jitter -> global affine of the instance
    local = prims[prim]  # [n, S + 1, POINTS, 2]
    x, y = _rotate(local[..., 0], local[..., 1], cos[..., None], sin[..., None])
    x, y = _rotate(x, y, jc[..., None], js[..., None])
    x, y = x * scale[..., None] + centre[..., 0:1], y * scale[..., None] + centre[..., 1:2]
    x = x + shear[:, None, None] * y
    x, y = _rotate(x, y, (gc * gscale)[:, None, None], (gs * gscale)[:, None, None])
    pts = np.stack([x + shift[:, 0, None, None], y + shift[:, 1, None, None]], -1)
    out = np.empty((n, size[0], size[1], channels), dtype=np.uint8)
    for i in range(0, n, chunk):
        j = slice(i, i + chunk)
        ink = _render(pts[j], active[j], width[j], size) * contrast[j, None, None]
        colour = np.ones((len(ink), channels)) if channels == 1 else tint[j]
        img = ink[..., None].astype(np.float32) * colour[:, None, None].astype(np.float32)
        img = img + rng.uniform(-v["noise"], v["noise"], img.shape).astype(np.float32)  # pixel noise
        out[j] = np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)
    return out


@register_format("embedded", needs_root=False, cache=False)
def load_embedded(
    root: object,
    split: str,
    image_size: int | list[int] = 28,
    channels: int = 1,
    classes: Sequence[int] = (64, 16, 20),
    images_per_class: int = 20,
    data_seed: int = 0,
) -> ImageStore:
    """Generate a split ("train", "val" or "test"); images uint8 [classes[split] * images_per_class, C, H, W]."""
    if split not in SPLITS:
        raise DatasetError(f"the embedded dataset has splits {SPLITS}, not {split!r}")
    if channels not in (1, 3) or len(classes) != 3 or min(classes) < 1 or images_per_class < 1:
        raise DatasetError(
            f"embedded: channels must be 1 or 3, classes three positive counts [train, val, test], "
            f"images_per_class positive; got channels={channels}, classes={list(classes)}, "
            f"images_per_class={images_per_class}"
        )
    k = SPLITS.index(split)
    offset, n_cls = int(sum(classes[:k])), int(classes[k])
    images = generate(n_cls, images_per_class, offset, int(sum(classes)), as_size(image_size), channels, data_seed)
    labels = torch.arange(n_cls).repeat_interleave(images_per_class)
    names = [f"class{offset + i:04d}" for i in range(n_cls)]
    return ImageStore(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels, names)
