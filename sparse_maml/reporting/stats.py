"""Student's t tests without scipy: the distribution's tail from the regularised incomplete beta function, and the
mean of a sample with its 95% t interval and the p-value of a t-test of mean = 0 (a paired t-test when the values
are paired differences).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function, modified Lentz (Numerical Recipes, 3rd ed., 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for aa in (
            m * (b - m) * x / ((qam + 2 * m) * (a + 2 * m)),
            -(a + m) * (qab + m) * x / ((a + 2 * m) * (qap + 2 * m)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _beta_inc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0 or x >= 1.0:
        return max(0.0, min(1.0, x))
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom: I_{df / (df + t^2)}(df / 2, 1 / 2)."""
    return _beta_inc(df / 2.0, 0.5, df / (df + t * t)) if math.isfinite(t) else 0.0


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile (q > 0.5) of Student's t, by bisection of ``t_two_sided_p``."""
    lo, hi = 0.0, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided_p(mid, df) > 2 * (1 - q) else (lo, mid)
    return (lo + hi) / 2


@dataclass
class Estimate:
    """Mean of n values, half-width of its 95% t interval and the two-sided p-value of a t-test of mean = 0."""

    mean: float
    ci95: float
    p: float
    n: int


def estimate(values: list[float]) -> Estimate:
    """The mean of ``values`` with its 95% t interval (n - 1 degrees of freedom) and the two-sided p-value of a
    t-test of mean = 0; NaN interval and p for fewer than two values."""
    n = len(values)
    mean = statistics.fmean(values) if n else math.nan
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    se = statistics.stdev(values) / math.sqrt(n)
    if se == 0:
        return Estimate(mean, 0.0, 1.0 if mean == 0 else 0.0, n)
    return Estimate(mean, t_quantile(0.975, n - 1) * se, t_two_sided_p(mean / se, n - 1), n)
