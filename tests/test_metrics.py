"""Point metrics: hand-checked values, persistence and straight-line oracles, metric filter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cryptocast.errors import ConfigError, DataError
from cryptocast.evaluate.metrics import METRICS, fold_rmse, point_metrics, select_metrics


def test_hand_computed_one_step():
    last = np.array([100.0, 100.0, 100.0, 100.0])
    true = np.array([110.0, 90.0, 100.0, 105.0])
    pred = np.array([105.0, 95.0, 101.0, 100.0])
    m = point_metrics(true, pred, last)
    # errors 5, -5, -1, 5 ; persistence errors 10, -10, 0, 5
    assert m["mse"] == pytest.approx((25 + 25 + 1 + 25) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt(76 / 4))
    assert m["mae"] == pytest.approx(16 / 4)
    assert m["mape"] == pytest.approx(100 * (5 / 110 + 5 / 90 + 1 / 100 + 5 / 105) / 4)
    rmse_p = math.sqrt((100 + 100 + 0 + 25) / 4)
    assert m["skill_rmse"] == pytest.approx(1 - m["rmse"] / rmse_p)
    assert m["mase"] == pytest.approx(4 / (25 / 4))
    ret_err = np.log(true / 100) - np.log(pred / 100)
    assert m["rmse_ret"] == pytest.approx(math.sqrt(np.mean(ret_err**2)))
    assert m["mae_ret"] == pytest.approx(np.mean(np.abs(ret_err)))
    # realised moves +,-,0,+ ; predicted +,-,+,0 -> tie excluded, 2 hits of 3
    assert m["n_ties"] == 1
    assert m["directional_accuracy"] == pytest.approx(2 / 3)
    assert m["n"] == 4 and m["horizon"] == 1


def test_persistence_scores_zero_skill_and_no_direction():
    rng = np.random.default_rng(0)
    last = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 50)))
    true = last * np.exp(rng.normal(0, 0.02, 50))
    m = point_metrics(true, last, last)
    assert m["skill_rmse"] == pytest.approx(0.0)
    assert m["mase"] == pytest.approx(1.0)
    assert math.isnan(m["directional_accuracy"])
    # persistence's errors are exactly the one-step differences
    assert m["mae"] == pytest.approx(np.mean(np.abs(true - last)))


def test_drift_on_straight_line_has_zero_error_and_multi_step():
    price = 100 + 2.0 * np.arange(40)
    n, horizon = 30, 3
    last = price[:n]
    true = np.stack([price[1 + h : n + 1 + h] for h in range(horizon)], axis=1)
    drift = np.stack([last + 2.0 * (h + 1) for h in range(horizon)], axis=1)
    m = point_metrics(true, drift, last)
    assert m["rmse"] == 0.0 and m["mae"] == 0.0
    assert m["skill_rmse"] == pytest.approx(1.0)
    assert m["directional_accuracy"] == 1.0
    assert m["horizon"] == 3 and len(m["per_step"]["rmse"]) == 3
    pers = point_metrics(true, np.repeat(last[:, None], 3, axis=1), last)
    # persistence's step-h error on a line is exactly h * slope
    assert pers["per_step"]["rmse"] == pytest.approx([2.0, 4.0, 6.0])
    assert pers["rmse"] == pytest.approx(6.0)


def test_non_finite_rows_dropped_per_step():
    last = np.array([1.0, 1.0, 1.0])
    true = np.array([[2.0, 3.0], [2.0, np.nan], [2.0, np.nan]])
    pred = np.array([[2.0, 1.0], [1.0, 1.0], [2.0, 1.0]])
    m = point_metrics(true, pred, last)
    assert m["per_step"]["n"] == [3, 1]
    assert m["rmse"] == pytest.approx(2.0)


def test_metric_filter_and_unknown_name():
    m = point_metrics([2.0, 3.0], [2.5, 2.5], [1.0, 2.0], metrics=["rmse", "sharpe"])
    assert "rmse" in m and "mae" not in m
    assert select_metrics(None) == list(METRICS)
    with pytest.raises(ConfigError, match="unknown metric 'rsme'.*valid metrics: mse"):
        select_metrics(["rsme"])


def test_shape_mismatch_is_data_error():
    with pytest.raises(DataError, match="disagree"):
        point_metrics(np.ones((3, 2)), np.ones((3, 1)), np.ones(3))


def test_fold_rmse():
    folds = np.array([0, 0, 1, 1])
    r = fold_rmse([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 5.0, 4.0], [0, 0, 0, 0], folds)
    assert r == {0: 0.0, 1: pytest.approx(math.sqrt(2.0))}
