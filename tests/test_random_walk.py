"""The probabilistic random-walk baselines rw_ewma and rw_empirical, by hand and causally."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from cryptocast.config.schema import ModelConfig
from cryptocast.models.random_walk import RandomWalkQuantiles, ewma_variance
from cryptocast.models.registry import build_model

LEVELS = [0.1, 0.5, 0.9]


def test_ewma_variance_by_hand():
    r = np.array([0.1, -0.2, 0.0])
    lam, seed = 0.9, 0.04
    v1 = 0.9 * 0.04 + 0.1 * 0.01
    v2 = 0.9 * v1 + 0.1 * 0.04
    v3 = 0.9 * v2
    np.testing.assert_allclose(ewma_variance(r, lam, seed), [v1, v2, v3])


def test_rw_ewma_quantiles_are_gaussian_with_sqrt_h_scaling():
    close = 100 * np.exp(np.cumsum([0.0, 0.01, -0.02, 0.03, 0.0, -0.01]))
    m = RandomWalkQuantiles("ewma", 2, LEVELS, lam=0.94)
    m.fit_series(close[:3])
    r_train = np.diff(np.log(close[:3]))
    assert float(m.seed_var) == pytest.approx(np.mean(r_train**2))
    q = m.predict_series(close, np.array([4]))  # (1, 2, 3)
    v = float(m.seed_var)
    for r in np.diff(np.log(close[:5])):  # returns up to row 4
        v = 0.94 * v + 0.06 * r**2
    expected = np.sqrt(v) * np.sqrt([[1.0], [2.0]]) * norm.ppf(LEVELS)
    np.testing.assert_allclose(q[0], expected, rtol=1e-10)
    assert q[0, :, 1].tolist() == [0.0, 0.0]  # median: no change, so the point is persistence


def test_rw_empirical_uses_the_trailing_window_of_h_step_returns():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 60)))
    m = RandomWalkQuantiles("empirical", 2, LEVELS, window=20)
    e = 50
    q = m.predict_series(close, np.array([e]))
    lc = np.log(close)
    for h in (1, 2):
        past = lc[e - 19 : e + 1] - lc[e - 19 - h : e + 1 - h]  # returns ending at e-19 .. e
        np.testing.assert_allclose(q[0, h - 1], np.quantile(past, LEVELS))


@pytest.mark.parametrize("kind", ["ewma", "empirical"])
def test_random_walks_never_read_past_the_origin(kind):
    rng = np.random.default_rng(1)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))
    m = RandomWalkQuantiles(kind, 3, LEVELS, window=50)
    m.fit_series(close[:100])
    ends = np.arange(120, 200)
    base = m.predict_series(close, ends)
    for cut in (150, 199):
        future = close.copy()
        future[cut + 1 :] = np.nan  # anything read after row `cut` would turn into NaN or move
        sel = ends <= cut
        np.testing.assert_array_equal(m.predict_series(future, ends[sel]), base[sel])
    assert (np.diff(base, axis=-1) >= 0).all()


def test_registry_builds_them_with_the_config_levels():
    m = build_model(ModelConfig(name="rw_ewma", ewma_lambda=0.97), 3, 2, 8)
    assert m.quantile_levels == (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95) and m.lam == 0.97
    m = build_model(ModelConfig(name="rw_empirical", quantiles=LEVELS, rw_window=30), 3, 2, 8)
    assert m.quantile_levels == tuple(LEVELS) and m.window == 30
