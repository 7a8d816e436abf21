"""Scores of quantile forecasts against hand-computed values and the Gaussian CRPS closed form."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from cryptocast.evaluate.probabilistic import (
    crps_from_quantiles,
    crps_weights,
    gaussian_crps,
    interval_score,
    pinball_matrix,
    pit_histogram,
    prob_scores,
    reliability,
)
from cryptocast.models.distribution import DEFAULT_QUANTILES

LEVELS = list(DEFAULT_QUANTILES)


def test_pinball_and_crps_by_hand():
    q = np.array([[0.0, 1.0, 3.0]])
    y = np.array([1.0])
    np.testing.assert_allclose(pinball_matrix(q, y, [0.25, 0.5, 0.75]), [[0.25, 0.0, 0.5]])
    # weights: cells [0, .375), [.375, .625), [.625, 1] -> (.375, .25, .375)
    np.testing.assert_allclose(crps_weights([0.25, 0.5, 0.75]), [0.375, 0.25, 0.375])
    np.testing.assert_allclose(crps_from_quantiles(q, y, [0.25, 0.5, 0.75]), [2 * 0.28125])


def test_interval_score_by_hand():
    lo, hi = np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0])
    y = np.array([0.5, -0.5, 3.0])
    # alpha 0.2: width 1 + 10 * miss
    np.testing.assert_allclose(interval_score(lo, hi, y, 0.2), [1.0, 6.0, 21.0])


@pytest.mark.parametrize("levels, rtol", [(np.arange(1, 100) / 100, 0.005), (LEVELS, 0.03)])
def test_exact_gaussian_quantiles_score_close_to_the_closed_form_crps(levels, rtol):
    """Independent check: N(mu, sigma) quantiles scored on N(mu, sigma) draws and on a shifted
    outcome must reproduce the closed-form Gaussian CRPS (Gneiting & Raftery 2007, eq. 21)."""
    rng = np.random.default_rng(0)
    mu, sigma = 0.3, 2.0
    q = np.tile(mu + sigma * norm.ppf(levels), (1, 1))
    for y in (rng.normal(mu, sigma, 50_000), np.full(1000, mu + 3 * sigma)):
        approx = crps_from_quantiles(np.repeat(q, len(y), axis=0), y, levels).mean()
        exact = gaussian_crps(mu, sigma, y).mean()
        assert approx == pytest.approx(exact, rel=rtol)


def test_gaussian_crps_closed_form_against_numerical_integration():
    # CRPS = integral (F(x) - 1{x >= y})^2 dx, on a fine grid
    x = np.linspace(-12, 12, 200_001)
    for y in (-1.0, 0.0, 2.5):
        integrand = (norm.cdf(x) - (x >= y)) ** 2
        numeric = np.trapezoid(integrand, x)
        assert gaussian_crps(0.0, 1.0, y) == pytest.approx(numeric, rel=1e-4)


def test_calibrated_gaussian_forecast_scores_nominal_coverage_flat_pit():
    rng = np.random.default_rng(1)
    n = 20_000
    sigma = rng.uniform(0.01, 0.05, n)  # heteroscedastic, forecast knows sigma
    last = np.full(n, 100.0)
    z = sigma * rng.normal(size=n)
    y_true = (last * np.exp(z))[:, None]
    q = last[:, None, None] * np.exp(sigma[:, None, None] * norm.ppf(LEVELS)[None, None, :])
    s = prob_scores(y_true, q, last, LEVELS)
    for cov in (50, 80, 90):
        assert s[f"coverage_{cov}"] == pytest.approx(cov / 100, abs=0.015)
    np.testing.assert_allclose(s["reliability"], LEVELS, atol=0.015)
    np.testing.assert_allclose(s["pit"]["density"], 1.0, atol=0.1)
    assert s["width_90"] == pytest.approx(2 * 1.645 * sigma.mean(), rel=0.01)
    assert s["crps"] == pytest.approx(gaussian_crps(0, sigma, z).mean(), rel=0.03)
    # a forecast twice too narrow: coverage far below nominal, U-shaped PIT, worse interval score
    narrow = last[:, None, None] * np.exp(0.5 * np.log(q / last[:, None, None]))
    t = prob_scores(y_true, narrow, last, LEVELS)
    assert t["coverage_90"] < 0.7 and t["pit"]["density"][0] > 2
    assert t["interval_score_90"] > s["interval_score_90"]


def test_pit_histogram_and_reliability_by_hand():
    q = np.array([[0.0, 1.0, 2.0]] * 4)
    y = np.array([-1.0, 0.5, 1.5, 3.0])  # one in each of the 4 bins
    h = pit_histogram(q, y, [0.25, 0.5, 0.75])
    assert h["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    np.testing.assert_allclose(h["density"], [1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(reliability(q, y), [0.25, 0.5, 0.75])


def test_unrealised_outcomes_are_left_out():
    last = np.array([100.0, 100.0])
    y = np.array([[101.0], [np.nan]])
    q = np.tile(np.array([95.0, 100.0, 105.0]), (2, 1, 1))
    s = prob_scores(y, q, last, [0.1, 0.5, 0.9])
    assert s["coverage_80"] == 1.0 and s["per_step"]["coverage_80"] == [1.0]
