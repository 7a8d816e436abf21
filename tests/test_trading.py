"""Trading simulation known answers: always long, never long, oracle, Sharpe annualisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptocast.errors import DataError
from cryptocast.evaluate.trading import simulate


def _closes(n=200, seed=0):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n + 1)))
    return close[:-1], close[1:]


def test_always_long_is_buy_and_hold_minus_one_entry_fee():
    last, nxt = _closes()
    res = simulate(last, nxt, np.ones_like(last), "1d", fee_bps=10, slippage_bps=5)
    gross = np.prod(nxt / last)
    assert res.equity[-1] == pytest.approx(gross * (1 - 0.0015), rel=1e-12)
    np.testing.assert_allclose(res.equity, res.buy_hold_equity, rtol=1e-12)
    assert res.stats.n_trades == 1
    assert res.stats.turnover == pytest.approx(1 / len(last))
    assert res.stats.sharpe == pytest.approx(res.buy_hold.sharpe)


def test_never_long_is_flat_equity():
    last, nxt = _closes()
    res = simulate(last, nxt, -np.ones_like(last), "1h", fee_bps=10, slippage_bps=5)
    assert np.all(res.equity == 1.0)
    s = res.stats
    assert s.total_return == 0 and s.annual_vol == 0 and s.sharpe == 0.0
    assert s.max_drawdown == 0 and s.n_trades == 0 and math.isnan(s.hit_rate)


def test_perfect_sign_oracle_beats_buy_and_hold():
    last, nxt = _closes()
    res = simulate(last, nxt, nxt / last - 1, "1d", fee_bps=10, slippage_bps=5)
    assert res.equity[-1] > res.buy_hold_equity[-1]
    assert res.stats.sharpe > res.buy_hold.sharpe
    # net of costs a tiny correct move can still lose; without costs every in-market period wins
    assert simulate(last, nxt, nxt / last - 1, "1d", 0, 0).stats.hit_rate == 1.0
    ls = simulate(last, nxt, nxt / last - 1, "1d", fee_bps=10, slippage_bps=5, long_short=True)
    assert ls.equity[-1] > res.equity[-1]
    assert set(np.unique(ls.positions)) == {-1.0, 1.0}


def test_sharpe_annualisation_1h_vs_1d():
    last, nxt = _closes(seed=4)
    pred = np.sin(np.arange(len(last)))
    h = simulate(last, nxt, pred, "1h", 10, 5)
    d = simulate(last, nxt, pred, "1d", 10, 5)
    np.testing.assert_array_equal(h.returns, d.returns)
    assert h.stats.sharpe / d.stats.sharpe == pytest.approx(math.sqrt(24), rel=1e-12)
    assert h.stats.annual_vol / d.stats.annual_vol == pytest.approx(math.sqrt(24), rel=1e-12)
    assert d.stats.annual_return == pytest.approx(d.equity[-1] ** (365 / len(last)) - 1)


def test_costs_charged_per_position_change():
    last = np.full(4, 100.0)
    nxt = np.full(4, 100.0)  # no price move: only costs change equity
    res = simulate(last, nxt, [1, -1, 1, 1], "1d", fee_bps=20, slippage_bps=0)
    # enter, exit, enter -> three changes of size 1 at 20 bp each
    assert res.equity[-1] == pytest.approx(0.998**3)
    assert res.stats.n_trades == 3
    ls = simulate(last, nxt, [1, -1, 1, 1], "1d", fee_bps=20, slippage_bps=0, long_short=True)
    assert ls.equity[-1] == pytest.approx(0.998 * 0.996 * 0.996)  # reversals cost double


def test_max_drawdown_known():
    last = np.array([100.0, 120.0, 60.0])
    nxt = np.array([120.0, 60.0, 90.0])
    res = simulate(last, nxt, [1, 1, 1], "1d", 0, 0)
    assert res.stats.max_drawdown == pytest.approx(0.5)
    assert res.stats.total_return == pytest.approx(-0.1)
    assert res.to_dict()["bh_max_drawdown"] == pytest.approx(0.5)


def test_bad_inputs():
    with pytest.raises(DataError):
        simulate([1.0, 2.0], [1.0], [1.0, 1.0], "1d")
    with pytest.raises(DataError, match="positive"):
        simulate([1.0, np.nan], [1.0, 1.0], [1.0, 1.0], "1d")
