"""Windows: train-only scaling, window/target alignment, segment and gap boundaries, batching."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from cryptocast.config.schema import FeaturesConfig, SplitConfig
from cryptocast.errors import DataError
from cryptocast.features.table import compute_features, feature_columns, target_columns
from cryptocast.features.windows import (
    Scaler,
    WindowDataset,
    apply_scalers,
    gather_windows,
    prepare,
    split_bounds,
    window_ends,
)
from tests.conftest import make_ohlcv


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    # hourly candles with two gaps: 1 missing candle and 5 missing candles
    candles = make_ohlcv(1200, "1h", seed=7, drop=[400, *range(800, 805)])
    return compute_features(candles, FeaturesConfig(horizon=3), "1h")


def _naive_ends(n, lo, hi, L, H, gaps, tol, embargo):
    """The window rule written out one window at a time (the reference for window_ends)."""
    out = []
    for e in range(n):
        start = e - L + 1
        if start < 0 or e < lo or e + H >= hi or (embargo and start < lo):
            continue
        if any(gaps[r] > tol for r in range(start + 1, e + H + 1)):
            continue
        out.append(e)
    return out


@pytest.mark.parametrize("embargo", [True, False])
def test_window_ends_matches_the_rule_one_window_at_a_time(embargo):
    rng = np.random.default_rng(1)
    gaps = np.where(rng.random(300) < 0.03, rng.integers(1, 6, 300), 0)
    for lo, hi, L, H, tol in [(0, 200, 10, 3, 0), (120, 300, 24, 1, 2), (50, 60, 5, 5, 0)]:
        got = window_ends(300, lo, hi, L, H, gaps, tol, embargo)
        assert got.dtype == np.int64
        assert got.tolist() == _naive_ends(300, lo, hi, L, H, gaps, tol, embargo)


def test_window_input_ends_at_e_and_target_is_close_at_e_plus_h(table):
    L, H = 24, 3
    cfg = FeaturesConfig(lookback=L, horizon=H)
    seg = split_bounds(table, SplitConfig(), L, H)
    data = prepare(table, cfg, seg, embargo=True)
    X = torch.from_numpy(data.X)
    raw_y = data.y_scaler.inverse_transform(data.Y)
    for i, e in enumerate(data.ends["test"][:50]):
        w = gather_windows(X, torch.tensor([e]), L)[0]
        assert torch.equal(w[-1], X[e]) and torch.equal(w[0], X[e - L + 1])
        # with no gap in between, window i of a segment starting at row lo ends at lo + i + L - 1
        if i == 0:
            assert e == seg["test"][0] + L - 1
        np.testing.assert_allclose(
            raw_y[e], np.log(data.close[e + 1 : e + H + 1] / data.close[e]), rtol=1e-5, atol=1e-7
        )


def test_no_window_crosses_a_segment_boundary_or_a_large_gap(table):
    L, H = 24, 3
    gaps = table["gap_before"].to_numpy()
    assert sorted(gaps[gaps > 0].tolist()) == [1, 5]
    seg = split_bounds(table, SplitConfig(train=0.5, val=0.2), L, H)
    for tol in (0, 1, 5):
        data = prepare(table, FeaturesConfig(lookback=L, horizon=H, gap_tolerance=tol), seg, True)
        for name, (lo, hi) in seg.items():
            ends = data.ends[name]
            assert (ends - L + 1 >= lo).all() and (ends + H < hi).all()
            for e in ends:
                assert gaps[e - L + 2 : e + H + 1].max(initial=0) <= tol
        # the 5-candle gap drops windows until the tolerance covers it
        assert (data.dropped_gap_windows == 0) == (tol == 5)
    # without the embargo, inputs may reach back into the previous segment, targets never
    loose = prepare(table, FeaturesConfig(lookback=L, horizon=H, gap_tolerance=5), seg, False)
    assert loose.ends["val"][0] == seg["val"][0]
    assert (loose.ends["train"] + H < seg["train"][1]).all()


def test_scaler_statistics_ignore_test_rows(table):
    cfg = FeaturesConfig(lookback=24, horizon=3)
    seg = split_bounds(table, SplitConfig(), 24, 3)
    a = prepare(table, cfg, seg, True)
    changed = table.copy()
    lo = seg["val"][0]
    cols = feature_columns(changed) + target_columns(3)
    changed.loc[lo:, cols] = changed.loc[lo:, cols] * 50 + 7  # wreck val and test
    b = prepare(changed, cfg, seg, True)
    for s in ("x_scaler", "y_scaler"):
        np.testing.assert_array_equal(getattr(a, s).center, getattr(b, s).center)
        np.testing.assert_array_equal(getattr(a, s).scale, getattr(b, s).scale)
    assert not np.array_equal(a.X[lo:], b.X[lo:])  # the data did change
    train = a.X[seg["train"][0] : seg["train"][1]]
    np.testing.assert_allclose(train.mean(axis=0), 0, atol=1e-4)


@pytest.mark.parametrize("kind", ["standard", "robust"])
def test_scaler_round_trip_json_and_constant_columns(kind):
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(5, 3, 500), np.full(500, 2.0), rng.exponential(1, 500)])
    sc = Scaler.fit(X, kind)
    assert sc.scale[1] == 1.0  # constant column: floored, not divided by zero
    np.testing.assert_allclose(sc.inverse_transform(sc.transform(X)), X)
    again = Scaler.from_dict(json.loads(json.dumps(sc.to_dict())))
    np.testing.assert_array_equal(again.transform(X), sc.transform(X))
    if kind == "robust":
        np.testing.assert_allclose(sc.center[0], np.median(X[:, 0]))
    out = apply_scalers(pd.DataFrame(X, columns=list("abc")), ["a", "b", "c"], sc)
    assert out.dtype == np.float32 and out.shape == (500, 3)
    with pytest.raises(DataError, match="lacks"):
        apply_scalers(pd.DataFrame(X, columns=list("abd")), ["a", "b", "c"], sc)


def test_split_bounds_by_fraction_and_date(table):
    seg = split_bounds(table, SplitConfig(train=0.6, val=0.2), 10, 1)
    n = len(table)
    assert seg == {
        "train": (0, int(n * 0.6)),
        "val": (int(n * 0.6), int(n * 0.8)),
        "test": (int(n * 0.8), n),
    }
    ts = table["timestamp"]
    cfg = SplitConfig(
        method="date", val_start=str(ts.iloc[500].date()), test_start=str(ts.iloc[800].date())
    )
    seg = split_bounds(table, cfg, 10, 1)
    assert ts.iloc[seg["val"][0]] == pd.Timestamp(cfg.val_start, tz="UTC")
    assert (
        ts.iloc[seg["test"][0] - 1]
        < pd.Timestamp(cfg.test_start, tz="UTC")
        <= ts.iloc[seg["test"][0]]
    )
    with pytest.raises(DataError, match="test segment has"):
        split_bounds(table, SplitConfig(train=0.9, val=0.09), 30, 1)


def test_gather_windows_is_index_arithmetic_and_dataset_agrees():
    N, F, L = 2000, 7, 168  # hourly-week windows
    X = torch.arange(N * F, dtype=torch.float32).reshape(N, F)
    ends = torch.tensor([L - 1, 500, N - 1])
    w = gather_windows(X, ends, L)
    assert w.shape == (3, L, F)
    for b, e in enumerate(ends.tolist()):
        assert torch.equal(w[b], X[e - L + 1 : e + 1])
    df = compute_features(make_ohlcv(600, "1h"), FeaturesConfig(lookback=L, horizon=2), "1h")
    seg = {"train": (0, 400), "test": (400, len(df))}
    data = prepare(df, FeaturesConfig(lookback=L, horizon=2), seg, embargo=False)
    ds = WindowDataset(data, "train")
    x, y = ds[3]
    e = int(data.ends["train"][3])
    assert torch.equal(x, torch.from_numpy(data.X[e - L + 1 : e + 1])) and y.shape == (2,)
    assert ds.X.data_ptr() == data.X.ctypes.data  # the dataset shares the table, no copies


def test_window_i_ends_at_i_plus_l_minus_1_with_target_at_plus_h():
    L, H = 12, 4
    df = compute_features(
        make_ohlcv(300, "1d", seed=2), FeaturesConfig(lookback=L, horizon=H), "1d"
    )
    n = len(df)
    ends = window_ends(n, 0, n, L, H, df["gap_before"].to_numpy(), 0, embargo=True)
    np.testing.assert_array_equal(ends, np.arange(L - 1, n - H))  # window i ends at row i+L-1
    close = df["close"].to_numpy()
    for i in (0, 7, len(ends) - 1):
        e = ends[i]
        assert e == i + L - 1
        # the last target of window i is the close at row i+L-1+H, relative to the close at e
        np.testing.assert_allclose(
            df[f"target_{H}"].iloc[e], np.log(close[i + L - 1 + H] / close[e])
        )
