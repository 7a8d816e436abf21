"""Diebold-Mariano: a hand-computed example, symmetry, HAC lags for h > 1, degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cryptocast.errors import ConfigError
from cryptocast.evaluate.significance import (
    diebold_mariano,
    dm_between,
    dm_vs_best_other,
    dm_vs_persistence,
)

E1 = np.array([1.0, -2.0, 3.0, 0.0, 2.0, -1.0])
E2 = np.array([2.0, 1.0, -1.0, 1.0, 1.0, 2.0])


def test_hand_computed_h1():
    # d = e1^2 - e2^2 = [1-4, 4-1, 9-1, 0-1, 4-1, 1-4] = [-3, 3, 8, -1, 3, -3]
    d = [-3.0, 3.0, 8.0, -1.0, 3.0, -3.0]
    n = 6
    dbar = 7.0 / 6.0
    gamma0 = sum((x - dbar) ** 2 for x in d) / n
    dm = dbar / math.sqrt(gamma0 / n)
    stat = dm * math.sqrt((n + 1 - 2 + 0) / n)  # HLN with h = 1: sqrt((n - 1) / n)
    p = 2 * stats.t.sf(abs(stat), n - 1)
    got_stat, got_p = diebold_mariano(E1, E2, h=1)
    # sum d^2 = 9 + 9 + 64 + 1 + 9 + 9 = 101; sum (d - dbar)^2 = 101 - 6 * dbar^2
    assert gamma0 == pytest.approx((101 - 6 * (7 / 6) ** 2) / 6)
    assert got_stat == pytest.approx(stat, rel=1e-12)
    # 7/6 / sqrt(15.4722/6) * sqrt(5/6) = 1.16667 / 1.60584 * 0.91287
    assert got_stat == pytest.approx(0.66321, rel=1e-4)
    assert got_p == pytest.approx(p, rel=1e-12)


def test_hand_computed_h2_uses_lag1_autocovariance():
    d = [-3.0, 3.0, 8.0, -1.0, 3.0, -3.0]
    n, h = 6, 2
    dbar = 7.0 / 6.0
    c = [x - dbar for x in d]
    gamma0 = sum(x * x for x in c) / n
    gamma1 = sum(c[t] * c[t - 1] for t in range(1, n)) / n
    var = gamma0 + 2 * gamma1
    assert var > 0
    stat = dbar / math.sqrt(var / n) * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    got, p = diebold_mariano(E1, E2, h=2)
    assert got == pytest.approx(stat, rel=1e-12)
    assert p == pytest.approx(2 * stats.t.sf(abs(stat), n - 1), rel=1e-12)
    assert got != pytest.approx(diebold_mariano(E1, E2, h=1)[0])


def test_absolute_loss():
    d = np.abs(E1) - np.abs(E2)  # [-1, 1, 2, -1, 1, -1]
    n = 6
    dbar = 1.0 / 6.0
    gamma0 = float(np.sum((d - dbar) ** 2) / n)
    stat = dbar / math.sqrt(gamma0 / n) * math.sqrt(5 / 6)
    assert diebold_mariano(E1, E2, loss="absolute")[0] == pytest.approx(stat)


@pytest.mark.parametrize("h", [1, 3])
@pytest.mark.parametrize("loss", ["squared", "absolute"])
def test_swap_negates_statistic_keeps_pvalue(h, loss):
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 80), rng.normal(0, 1.3, 80)
    s1, p1 = diebold_mariano(a, b, h=h, loss=loss)
    s2, p2 = diebold_mariano(b, a, h=h, loss=loss)
    assert s1 == pytest.approx(-s2)
    assert p1 == pytest.approx(p2)


def test_clearly_better_forecast_is_significant():
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 1, 300)
    s, p = diebold_mariano(0.1 * noise, noise + rng.normal(0, 1, 300))
    assert s < 0 and p < 1e-6


def test_degenerate_cases():
    e = np.array([1.0, -2.0, 0.5, 3.0])
    assert diebold_mariano(e, e) == (0.0, 1.0)
    s, p = diebold_mariano(np.zeros(5), np.full(5, 2.0))  # always better by the same amount
    assert s == -math.inf and p == 0.0
    s, p = diebold_mariano([1.0, 2.0], [2.0, 1.0])
    assert math.isnan(s) and math.isnan(p)
    with pytest.raises(ConfigError, match="loss"):
        diebold_mariano(e, e, loss="huber")


def test_vs_persistence_and_between_models():
    rng = np.random.default_rng(3)
    last = 100 + rng.normal(0, 1, 60)
    true = last + rng.normal(0, 2, 60)
    s, p = dm_vs_persistence(true, true - rng.normal(0, 0.1, 60), last)
    assert s < 0 and p < 0.01
    s, p = dm_between(true, true, true + 1.0)
    assert s == -math.inf and p == 0.0


def test_vs_best_other_candidate():
    rng = np.random.default_rng(4)
    true = 100 + rng.normal(0, 1, (50, 1))
    preds = {
        "lstm": true + rng.normal(0, 0.5, (50, 1)),
        "gru": true + rng.normal(0, 1.0, (50, 1)),
        "persistence": true + 3.0,
    }
    rmse = {m: float(np.sqrt(np.mean((true - p) ** 2))) for m, p in preds.items()}
    out = dm_vs_best_other(true, preds, rmse, candidates=["lstm", "gru"])
    assert out["gru"][0] == "lstm" and out["lstm"][0] == "gru"
    assert out["persistence"][0] == "lstm" and out["persistence"][1] > 0
    assert out["lstm"][1] == pytest.approx(-out["gru"][1])
    only = dm_vs_best_other(true, preds, rmse, candidates=["lstm"])
    assert only["lstm"][0] is None and math.isnan(only["lstm"][2])
