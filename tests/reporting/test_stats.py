"""The statistics against direct scipy calls, and the hierarchical bootstrap against what it must do: widen when
episodes share characters, and agree with the seed-level interval when seeds dominate."""

import numpy as np
import pytest
from scipy import stats

from sparse_maml.reporting.stats import decides, hierarchical_bootstrap, mean_ci, seed_test


def test_mean_ci_and_seed_test_are_scipys():
    x = [0.012, -0.004, 0.021, 0.009, 0.015]
    e = mean_ci(x)
    t = stats.ttest_1samp(x, 0.0)
    low, high = t.confidence_interval(0.95)
    assert e.n == 5 and e.mean == pytest.approx(np.mean(x))
    assert e.p == pytest.approx(t.pvalue, rel=1e-12)
    assert e.ci95 == pytest.approx((high - low) / 2, rel=1e-12)
    a, b = [0.92, 0.91, 0.93], [0.91, 0.905, 0.91]  # per-seed mean accuracies of A and B
    s = seed_test([x - y for x, y in zip(a, b)])
    assert s.p == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
    assert mean_ci([0.1] * 4).p == 0.0 and mean_ci([0.0] * 4).p == 1.0 and mean_ci([0.1] * 4).ci95 == 0.0
    assert np.isnan(mean_ci([0.1]).ci95)


def test_decides_needs_three_seeds():
    assert decides(mean_ci([0.011, 0.012])) == "inconclusive (2 seeds)"
    assert decides(mean_ci([])) == "inconclusive (0 seeds)"
    assert decides(mean_ci([0.011, 0.009, 0.012])) == "A > B"
    assert decides(mean_ci([-0.011, -0.009, -0.012])) == "A < B"
    assert decides(mean_ci([0.01, -0.012, 0.003])) == "no difference shown"


def episodes_of(n_episodes, n_characters, n_way, rng):
    """Each episode's ``n_way`` distinct characters out of ``n_characters``: [episodes][n_way]."""
    return [list(rng.choice(n_characters, n_way, replace=False)) for _ in range(n_episodes)]


def experiment(rng, classes, n_characters, seeds=1, character_sd=0.1, episode_sd=0.02, seed_sd=0.0):
    """d [seeds, episodes]: a seed effect, plus the mean of the episode's characters' effects (characters drawn
    anew from their population, as a new test set would be), plus episode noise."""
    gamma = rng.normal(0, character_sd, n_characters)
    shared = np.array([gamma[c].mean() for c in classes])
    return rng.normal(0, seed_sd, (seeds, 1)) + shared[None, :] + rng.normal(0, episode_sd, (seeds, len(classes)))


def width(interval):
    return interval[1] - interval[0]


def test_the_interval_widens_when_episodes_share_characters():
    rng = np.random.default_rng(1)
    shared = episodes_of(600, 64, 5, rng)  # 600 episodes drawn from 64 test characters
    d = experiment(rng, shared, 64)
    naive = width(hierarchical_bootstrap(d, None))  # every episode independent
    assert width(hierarchical_bootstrap(d, shared)) > 2.5 * naive  # the characters' variation counts
    # The same structure with characters that do not matter: nothing to add, and little is added.
    flat = experiment(rng, shared, 64, character_sd=0.0)
    flat_naive = width(hierarchical_bootstrap(flat, None))
    assert 0.9 * flat_naive < width(hierarchical_bootstrap(flat, shared)) < 1.15 * flat_naive
    # Each episode its own characters: characters and episodes cannot be told apart, so episodes carry it all.
    own = [list(range(5 * e, 5 * e + 5)) for e in range(600)]
    assert hierarchical_bootstrap(d, own) == hierarchical_bootstrap(d, None)


def test_the_interval_covers_the_true_spread_of_the_mean():
    # The spread of the mean over repeated experiments (new characters, episodes and seeds each time) against the
    # bootstrap's interval from one experiment: the episode-level t interval is far too narrow, the bootstrap not.
    rng = np.random.default_rng(2)
    classes = episodes_of(600, 64, 5, rng)
    means, widths, t_widths = [], [], []
    for _ in range(40):
        d = experiment(rng, classes, 64, seeds=3, seed_sd=0.004)
        means.append(d.mean())
        widths.append(width(hierarchical_bootstrap(d, classes, resamples=1000)))
        t_widths.append(2 * mean_ci(d.mean(axis=0)).ci95)
    true_width = 2 * 1.96 * np.std(means, ddof=1)
    assert 0.75 * true_width < np.median(widths) < 1.3 * true_width
    assert np.median(t_widths) < 0.5 * true_width


def test_matches_the_seed_level_interval_when_seeds_dominate():
    rng = np.random.default_rng(3)
    classes = episodes_of(200, 64, 5, rng)
    d = experiment(rng, classes, 64, seeds=20, character_sd=0.001, episode_sd=0.001, seed_sd=0.05)
    low, high = hierarchical_bootstrap(d, classes)
    seed_means = d.mean(axis=1)
    ref = stats.bootstrap((seed_means,), np.mean, method="percentile", n_resamples=4000, random_state=0)
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.1 * width(ref.confidence_interval))
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.1 * width(ref.confidence_interval))
    t = mean_ci(seed_means)
    assert 0.8 * 2 * t.ci95 < high - low < 1.05 * 2 * t.ci95  # percentile intervals run a little narrow


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"\[seeds, episodes\]"):
        hierarchical_bootstrap(np.zeros(5), None)
    with pytest.raises(ValueError, match="3 class lists for 5 episodes"):
        hierarchical_bootstrap(np.zeros((1, 5)), [[0]] * 3)
