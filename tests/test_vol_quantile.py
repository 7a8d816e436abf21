"""Volatility-driven quantile models (models/vol_quantile.py): calibrated on a GARCH-t series, equal
to their formula by hand, causal, and fitted on training rows only (spy through the walk-forward)."""

from __future__ import annotations

import numpy as np
import pytest

from cryptocast.config.schema import ModelConfig
from cryptocast.models.registry import build_model
from cryptocast.models.vol_quantile import VARIANTS, VolQuantiles
from tests.conftest import make_ohlcv
from tests.test_backtest import config, store

RISK_LEVELS = [0.01, 0.05, 0.1, 0.5, 0.9, 0.95, 0.99]


def garch_t_closes(n: int, seed: int = 0, nu: float = 4.0) -> np.ndarray:
    """Closes whose log returns follow a zero-mean GARCH(1,1) with unit-variance Student-t(nu)
    innovations: sigma2_t = 1e-5 + 0.1 r_{t-1}^2 + 0.85 sigma2_{t-1} (daily vol ~1.4%)."""
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 1e-5, 0.10, 0.85
    eps = rng.standard_t(nu, n) / np.sqrt(nu / (nu - 2.0))
    s2, r = omega / (1 - alpha - beta), np.empty(n)
    for t in range(n):
        r[t] = np.sqrt(s2) * eps[t]
        s2 = omega + alpha * r[t] ** 2 + beta * s2
    return 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(r)]))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_quantiles_cover_at_their_nominal_rate_on_a_garch_t_series(name):
    """Fit on 1500 days, forecast the next 3000 one step ahead: the share of returns below each
    quantile is its level within 3 standard errors (1% and 99% included). The error is that of
    the test share (n_test origins) plus that of the fitted quantile, itself a tail estimate from
    n_train residuals: se = sqrt(tau (1 - tau) (1 / n_test + 1 / n_train))."""
    close = garch_t_closes(4500, seed=7)
    vol, shape, dist = VARIANTS[name]
    m = VolQuantiles(vol, shape, 1, RISK_LEVELS, dist=dist)
    m.fit_series(close[:1501])
    ends = np.arange(1500, close.size - 1)
    q = m.predict_series(close, ends)[:, 0, :]  # (n, Q)
    y = np.log(close[ends + 1] / close[ends])
    share = np.mean(y[:, None] <= q, axis=0)
    tau = np.asarray(RISK_LEVELS)
    se = np.sqrt(tau * (1 - tau) * (1 / len(y) + 1 / 1500))
    assert np.all(np.abs(share - tau) <= 3 * se), share.round(4)


def test_a_gaussian_random_walk_on_the_same_series_misses_the_fat_tails():
    """The check above can fail: rw_ewma's normal 1%/99% quantiles are exceeded too often."""
    from cryptocast.models.random_walk import RandomWalkQuantiles

    close = garch_t_closes(4500, seed=7)
    m = RandomWalkQuantiles("ewma", 1, RISK_LEVELS)
    m.fit_series(close[:1501])
    ends = np.arange(1500, close.size - 1)
    q = m.predict_series(close, ends)[:, 0, :]
    y = np.log(close[ends + 1] / close[ends])
    tails = np.mean(y < q[:, 0]) + np.mean(y > q[:, -1])
    assert tails > 0.02 + 3 * np.sqrt(0.02 * 0.98 / len(y))


def test_fhs_ewma_is_the_rw_ewma_sigma_times_the_empirical_residual_quantiles():
    from cryptocast.models.random_walk import RandomWalkQuantiles

    close = garch_t_closes(400, seed=1)
    levels = [0.05, 0.5, 0.95]
    m = VolQuantiles("ewma", "fhs", 2, levels, lam=0.94)
    m.fit_series(close[:301])
    # by hand: RiskMetrics sigma before each training return, residuals after the 30-row burn-in
    r = np.diff(np.log(close[:301]))
    v, sig = np.mean(r**2), []
    for x in r:
        sig.append(np.sqrt(v))
        v = 0.94 * v + 0.06 * x**2
    z = (r / np.array(sig))[30:]
    np.testing.assert_allclose(m.z_levels.numpy(), np.quantile(z, levels), rtol=1e-10)
    rw = RandomWalkQuantiles("ewma", 2, [0.1587, 0.5, 0.8413], lam=0.94)
    rw.fit_series(close[:301])
    ends = np.array([320, 399])
    sd = rw.predict_series(close, ends)[:, :, 2] / 0.99982  # z(0.8413) = 0.99982: one sd
    expected = sd[:, :, None] * np.quantile(z, levels)[None, None, :]  # sqrt(h) sigma * z_tau
    np.testing.assert_allclose(m.predict_series(close, ends), expected, rtol=1e-4)


def test_garch_variance_path_reverts_to_its_unconditional_level():
    close = garch_t_closes(800, seed=3)
    m = VolQuantiles("garch", "fhs", 30, [0.05, 0.5, 0.95])
    m.fit_series(close[:601])
    omega, alpha, beta = (float(v) for v in m.garch)
    assert 0 < alpha + beta < 1
    q = m.predict_series(close, np.array([700]))[0]  # (H, Q)
    var_h = np.diff(np.concatenate([[0.0], (q[:, 2] / float(m.z_levels[2])) ** 2]))
    unc = omega / (1 - alpha - beta)
    assert abs(var_h[-1] - unc) < abs(var_h[0] - unc)  # closer to unc at the far step


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_no_quantile_reads_past_its_origin(name):
    close = garch_t_closes(400, seed=2)
    m = build_model(ModelConfig(name=name, quantiles=RISK_LEVELS), 3, 3, 8)
    m.fit_series(close[:200])
    ends = np.arange(220, 300)
    base = m.predict_series(close, ends)
    for cut in (250, 299):
        future = close.copy()
        future[cut + 1 :] = np.nan  # anything read after row `cut` would turn into NaN or move
        sel = ends <= cut
        np.testing.assert_array_equal(m.predict_series(future, ends[sel]), base[sel])
    assert np.isfinite(base).all() and (np.diff(base, axis=-1) >= 0).all()


@pytest.mark.parametrize("name", ["fhs_garch", "t_ewma"])
def test_spy_no_residual_statistic_reads_a_row_at_or_after_the_fold_origin(
    data_dir, monkeypatch, name
):
    """Spy on the fit through the real walk-forward: every fit (the volatility parameters and the
    standardized residuals' quantiles) is handed only closes of rows before its fold's first
    origin; ``test_no_quantile_reads_past_its_origin`` covers what prediction reads."""
    from cryptocast.evaluate.walkforward import run_job

    store(data_dir, make_ohlcv(300, "1d", start="2021-01-01", seed=1))
    H = 2
    cfg = config(
        f"model.quantiles={RISK_LEVELS}", "train.loss=pinball", f"features.horizon={H}",
        "backtest.test_start=2021-07-01", "backtest.fold_length=30",
    )  # fmt: skip
    seen: list[int] = []
    real = VolQuantiles.fit_series

    def spy(self, close_train):
        seen.append(len(close_train) - 1)  # the last row the fit can read
        real(self, close_train)

    monkeypatch.setattr(VolQuantiles, "fit_series", spy)
    result = run_job(cfg, data_dir, "BTC/USDT", "1d", name)
    retrained = [f for f in result.fold_info if f["retrained"]]
    assert len(seen) == len(retrained) >= 3
    for last_row, fold in zip(seen, retrained, strict=True):
        assert last_row < fold["first_origin"]
    assert np.isfinite(result.y_quantiles).all()


def test_registry_builds_every_variant_with_the_config_levels():
    for name, (vol, shape, dist) in VARIANTS.items():
        m = build_model(ModelConfig(name=name, quantiles=RISK_LEVELS, ewma_lambda=0.97), 3, 2, 8)
        assert (m.vol, m.shape, m.dist) == (vol, shape, dist)
        assert m.quantile_levels == tuple(RISK_LEVELS) and m.lam == 0.97


def test_too_few_training_returns_is_a_data_error():
    from cryptocast.errors import DataError

    m = VolQuantiles("garch", "fhs", 1, RISK_LEVELS)
    with pytest.raises(DataError, match="at least 60 training returns"):
        m.fit_series(garch_t_closes(30))


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_volatility_target_refuses_them_by_name(name):
    """They forecast return quantiles: with features.target=realized_vol the backtest's model
    check names them before any work starts."""
    from cryptocast.errors import ConfigError
    from cryptocast.features.targets import get_target

    with pytest.raises(ConfigError, match=f"model '{name}' does not forecast"):
        get_target("realized_vol").check_models(["har", name])
