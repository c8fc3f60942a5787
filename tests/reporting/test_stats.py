"""Student's t distribution and the t-test estimate against tables and numerical integration."""

import math

import pytest

from sparse_maml.reporting.stats import estimate, t_quantile, t_two_sided_p


def t_tail_by_quadrature(t, df, n=20000):
    """P(|T| >= t) by Simpson's rule on the density over [t, t + 400] (an independent check of the closed form)."""

    def pdf(x):
        log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
        return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))

    h = 400 / n
    total = pdf(t) + pdf(t + 400) + sum((4 if i % 2 else 2) * pdf(t + i * h) for i in range(1, n))
    return 2 * total * h / 3


def test_t_distribution_matches_tables():
    # Two-sided 97.5% quantiles from standard tables.
    for df, q in ((1, 12.7062), (2, 4.3027), (9, 2.2622), (30, 2.0423), (1e6, 1.9600)):
        assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-4)
    assert t_two_sided_p(2.0, 5) == pytest.approx(0.10194, abs=1e-5)
    assert t_two_sided_p(1.0, 1) == pytest.approx(0.5)  # Cauchy
    assert t_two_sided_p(0.0, 7) == 1.0
    for t, df in ((0.5, 3), (2.5, 9), (7.5, 9), (3.0, 299)):
        assert t_two_sided_p(t, df) == pytest.approx(t_tail_by_quadrature(t, df), rel=1e-3)
    assert estimate([0.1] * 4).p == 0.0 and estimate([0.0] * 4).p == 1.0
