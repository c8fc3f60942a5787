"""The statistics of a comparison, on ``scipy.stats``: a mean with its 95% t interval and one-sample t-test (paired
when the values are paired differences), and a hierarchical bootstrap over seeds, test characters and episodes.

Which carries a verdict: the paired t-test over seeds (``seed_test``), each seed's mean difference one observation,
so that training noise is in it; a verdict needs at least ``MIN_SEEDS`` seeds. The bootstrap CI sits beside it: it
also lets the test characters vary, so the 600 test episodes count for what the ~64 characters they are drawn from
are worth. The t-test over episodes (``mean_ci`` of per-episode differences) holds the trained models fixed and
treats episodes as independent; it is kept as a secondary column only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Seeds a seed-level test needs before it may decide a verdict.
MIN_SEEDS = 3
#: Bootstrap replicates and the generator seed: fixed, so that a regenerated table is byte-identical.
RESAMPLES = 4000
BOOTSTRAP_SEED = 0


@dataclass
class Estimate:
    """Mean of n values, half-width of its 95% t interval and the two-sided p-value of a t-test of mean = 0; NaN
    interval and p below two values."""

    mean: float
    ci95: float
    p: float
    n: int


def mean_ci(values: Sequence[float]) -> Estimate:
    """The mean of ``values`` [n] with its 95% t interval (n - 1 degrees of freedom, ``scipy.stats.t.ppf``) and the
    two-sided p-value of ``scipy.stats.ttest_1samp`` against 0. All values equal: a zero-width interval, p 1 at a
    mean of 0 and 0 elsewhere (scipy's NaN for a zero standard error says nothing a reader can use)."""
    x = np.asarray(values, dtype=float)
    n = x.size
    mean = float(x.mean()) if n else math.nan
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    se = float(x.std(ddof=1)) / math.sqrt(n)
    if se <= 1e-12 * max(1.0, abs(mean)):  # equal up to rounding (accuracies are in [0, 1])
        return Estimate(mean, 0.0, 1.0 if mean == 0 else 0.0, n)
    p = float(stats.ttest_1samp(x, 0.0).pvalue)
    return Estimate(mean, float(stats.t.ppf(0.975, n - 1)) * se, p, n)


def seed_test(per_seed: Sequence[float]) -> Estimate:
    """The verdict statistic: the paired t-test over seeds, ``per_seed`` [seeds] being each shared seed's mean
    difference A - B over the shared episodes (the same as ``scipy.stats.ttest_rel`` of the seeds' mean
    accuracies)."""
    return mean_ci(per_seed)


def decides(seed_level: Estimate) -> str:
    """What the seed-level test says: ``A > B`` or ``A < B`` at p < 0.05 with at least ``MIN_SEEDS`` seeds, ``no
    difference shown`` with enough seeds and p >= 0.05, else ``inconclusive (n seeds)``."""
    n = seed_level.n
    if n < MIN_SEEDS:
        return f"inconclusive ({n} seed{'s' if n != 1 else ''})"
    if seed_level.p < 0.05:
        return "A > B" if seed_level.mean > 0 else "A < B"
    return "no difference shown"


def hierarchical_bootstrap(
    diffs: np.ndarray,
    classes: Sequence[Sequence[int]] | None,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """95% percentile interval (low, high) of the mean of ``diffs`` [seeds, episodes] (A - B per seed and episode),
    resampling seeds, then test characters, then episodes.

    Seeds and episodes are crossed (every seed is tested on the same episodes), and an episode's accuracy is the
    mean over its ``n_way`` characters' queries, so characters are crossed with episodes, not nested in them: a
    character is in ~47 of 600 episodes. Resampling whole episodes by their characters' multiplicities (Owen's
    pigeonhole bootstrap, Ann. Appl. Stat. 1(2), 2007) moves an episode's value by only 1/n_way of a character's
    effect, or, with product weights, multiplies the episode noise 2^n_way-fold. So the mean is split into its
    three parts and each part is resampled over its own factor (the effects bootstrap of Davison & Hinkley,
    Bootstrap Methods, 1997, section 3.8; Field & Welsh, JRSS B 69(3), 2007, on which schemes are consistent for
    random-effect data):

    - seeds: each seed's mean deviation from the grand mean, seeds drawn with replacement;
    - characters: each character's effect, fitted by least squares to the seed-averaged episodes (episode value =
      mean of its characters' effects + noise) and shrunk so that its spread is the effects' estimated variance,
      not that plus the fit's noise (Davison & Hinkley's adjustment); characters drawn with replacement, each
      weighted by how many episodes hold it;
    - episodes: the fit's residuals, inflated for the degrees of freedom the fit used, episodes drawn with
      replacement.

    Without ``classes`` ([episodes][n_way] class ids), or when the characters are too many to separate from the
    episodes (fewer than 3/4 of the episodes' degrees of freedom left), all of an episode's deviation is resampled
    as episode noise. With one seed the seed part is zero: the interval then leaves out training noise."""
    d = np.asarray(diffs, dtype=float)
    if d.ndim != 2 or 0 in d.shape:
        raise ValueError(f"diffs must be [seeds, episodes] with both > 0, got shape {d.shape}")
    n_seeds, n_episodes = d.shape
    if classes is not None and len(classes) != n_episodes:
        raise ValueError(f"{len(classes)} class lists for {n_episodes} episodes")
    rng = np.random.default_rng(seed)
    grand = d.mean()
    seed_dev = d.mean(axis=1) - grand  # [seeds]
    y = d.mean(axis=0) - grand  # [episodes]
    parts = _character_effects(y, classes) if classes is not None else None
    residual, weight, effect = parts if parts is not None else (y, np.zeros(0), np.zeros(0))
    a = rng.multinomial(n_seeds, [1 / n_seeds] * n_seeds, size=resamples)  # [R, seeds]
    u = rng.multinomial(n_episodes, [1 / n_episodes] * n_episodes, size=resamples)  # [R, episodes]
    means = grand + a @ seed_dev / n_seeds + (u - 1) @ residual / n_episodes
    if effect.size:
        w = rng.multinomial(effect.size, [1 / effect.size] * effect.size, size=resamples)  # [R, characters]
        means += (w - 1) @ (weight * effect) / n_episodes
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def _character_effects(
    y: np.ndarray, classes: Sequence[Sequence[int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(episode residuals [E], each character's share of the episodes [C], its shrunk effect [C]) of the centred
    episode values ``y`` [E] under y_e = mean of e's characters' effects + noise; None when the characters leave
    too few residual degrees of freedom to tell the two apart."""
    ids = {c: i for i, c in enumerate(sorted({int(c) for cs in classes for c in cs}))}
    member = np.zeros((len(y), len(ids)))  # member[e, c] = 1 / n_way where episode e holds character c
    for e, cs in enumerate(classes):
        for c in cs:
            member[e, ids[int(c)]] += 1 / len(cs)
    centred = member - member.mean(axis=0)  # rows sum to 1: the all-ones effect is the intercept, left out
    # Least squares through the SVD: the minimum-norm effects (summing to 0), and the trace of (X'X)^+ from the
    # same kept singular values (pinv of X'X would invert a round-off eigenvalue of the intercept direction).
    u, sv, vt = np.linalg.svd(centred, full_matrices=False)
    kept = sv > sv.max(initial=0.0) * max(centred.shape) * np.finfo(float).eps
    rank = int(kept.sum())
    df = len(y) - rank
    if rank == 0 or df < 0.75 * len(y):
        return None
    effect = vt[kept].T @ ((u[:, kept].T @ y) / sv[kept])
    residual = y - centred @ effect
    noise = residual @ residual / df  # the episode noise's variance
    spread = effect @ effect
    fit_noise = noise * float(np.sum(1 / sv[kept] ** 2))  # what the fit's noise adds to ``spread`` on average
    shrink = math.sqrt(max(0.0, 1 - fit_noise / spread)) if spread > 0 else 0.0
    return residual * math.sqrt(len(y) / df), member.sum(axis=0), shrink * effect
