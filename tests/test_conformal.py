"""Conformal calibration: CQR by hand, ACI converging to nominal coverage on a heteroscedastic
series, and neither reading an outcome before it is known."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from cryptocast.evaluate.conformal import aci, conformal_quantile, cqr, symmetric_pairs

LEVELS = [0.1, 0.5, 0.9]


def test_symmetric_pairs():
    assert symmetric_pairs([0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]) == [
        (0, 6, pytest.approx(0.1)), (1, 5, pytest.approx(0.2)), (2, 4, pytest.approx(0.5)),
    ]  # fmt: skip
    assert symmetric_pairs([0.1, 0.3, 0.5, 0.8]) == []


def test_conformal_quantile_is_the_finite_sample_rank():
    s = np.arange(1.0, 10.0)  # m = 9 sorted scores
    assert conformal_quantile(s, 0.2) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert conformal_quantile(s, 0.01) == 9.0  # beyond the sample: the largest
    assert conformal_quantile(s, 0.99) == 1.0


def test_cqr_by_hand():
    # calibration: interval [-1, 1], outcomes give scores max(-1 - y, y - 1)
    cal_y = np.array([0.0, 0.5, 2.0, -3.0, 1.5])[:, None]  # scores -1, -0.5, 1, 2, 0.5
    cal_q = np.tile([-1.0, 0.0, 1.0], (5, 1, 1))
    test_q = np.array([[[-1.0, 0.2, 1.0]]])
    out = cqr(test_q, cal_q, cal_y, LEVELS)
    # alpha 0.2, m = 5: ceil(6 * 0.8) = 5th smallest of (-1, -0.5, 0.5, 1, 2) = 2
    np.testing.assert_allclose(out, [[[-3.0, 0.2, 3.0]]])
    # over-wide intervals are narrowed: scores (-10, -9.5, -8, -7, -8.5), 5th smallest -7
    cal_q_wide = np.tile([-10.0, 0.0, 10.0], (5, 1, 1))
    narrowed = cqr(np.array([[[-10.0, 0.2, 10.0]]]), cal_q_wide, cal_y, LEVELS)
    np.testing.assert_allclose(narrowed, [[[-3.0, 0.2, 3.0]]])
    # ... but never past the median
    tight = cqr(np.array([[[-10.0, 9.5, 10.0]]]), cal_q_wide, cal_y, LEVELS)
    np.testing.assert_allclose(tight, [[[-3.0, 9.5, 9.5]]])


def _heteroscedastic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Returns with a volatility that switches regime (0.01 <-> 0.04) every 250 steps."""
    rng = np.random.default_rng(seed)
    sigma = np.where((np.arange(n) // 250) % 2 == 0, 0.01, 0.04)
    return sigma * rng.normal(size=n), sigma


def test_aci_coverage_converges_to_nominal_on_a_heteroscedastic_series():
    n = 4000
    y, _ = _heteroscedastic(n)
    # a model that ignores the regimes and is too narrow: quantiles of N(0, 0.01)
    zq = np.tile(0.01 * norm.ppf(LEVELS), (n, 1))[:, None, :]
    zy = y[:, None]
    cal_y = (0.01 * np.random.default_rng(1).normal(size=200))[:, None]  # calm-period calibration
    cal_q = zq[:200]
    raw_cov = np.mean((zq[:, 0, 0] <= y) & (y <= zq[:, 0, 2]))
    adj = aci(zq, zy, np.arange(n), [(cal_q, cal_y)], np.zeros(n, int), LEVELS, gamma=0.05)
    cov = np.mean((adj[:, 0, 0] <= y) & (y <= adj[:, 0, 2]))
    assert raw_cov < 0.6  # the uncalibrated interval is far off nominal 0.8
    assert abs(cov - 0.8) < 0.02, cov
    # and it adapts: wider in the volatile regime than in the calm one
    width = adj[:, 0, 2] - adj[:, 0, 0]
    volatile = (np.arange(n) // 250) % 2 == 1
    assert width[volatile].mean() > 1.5 * width[~volatile].mean()


@pytest.mark.parametrize("h", [1, 3])
def test_aci_uses_only_outcomes_known_at_each_origin(h):
    n = 300
    y, _ = _heteroscedastic(n, seed=2)
    zy = np.stack(
        [np.convolve(y, np.ones(k), "full")[k - 1 : n + k - 1] for k in range(1, h + 1)], 1
    )
    zq = np.tile(0.02 * norm.ppf(LEVELS), (n, h, 1))
    cal = [(zq[:50], zy[:50])]
    base = aci(zq, zy, np.arange(n), cal, np.zeros(n, int), LEVELS, 0.05)
    k = 150
    scrambled = zy.copy()
    scrambled[k:] = np.random.default_rng(5).normal(size=scrambled[k:].shape)
    other = aci(zq, scrambled, np.arange(n), cal, np.zeros(n, int), LEVELS, 0.05)
    # origin t reads step-j outcomes of origins s with s + j <= t: all of them < k up to t = k
    np.testing.assert_array_equal(base[: k + 1], other[: k + 1])
    assert not np.array_equal(base[k + 1 :], other[k + 1 :])
