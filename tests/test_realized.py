"""Realized measures from 5-minute candles (issue 22 part 3): RV, RQ, RS+/RS-, BV and the jump
part against a hand computation, the missing-candle rule, and BV's robustness to jumps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED_FINE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fine" / "binance"
MU1 = math.sqrt(2 / math.pi)


def five_minute(ret: np.ndarray, start: str = "2022-01-01") -> pd.DataFrame:
    """5-minute candles whose close-to-close log returns are ``ret`` (the first candle opens one
    interval before ``start``, so return i ends in candle i + 1)."""
    close = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(ret)]))
    ts = pd.date_range(start, periods=close.size, freq="5min", tz="UTC") - pd.Timedelta("5min")
    return pd.DataFrame({"timestamp": ts.astype("datetime64[ns, UTC]"), "close": close})


def by_hand(fine: pd.DataFrame, per_day: int = 288, need: int = 240) -> dict:
    """Each day's measures by plain loops over consecutive candle pairs (the documented rule)."""
    ts = fine["timestamp"].tolist()
    close = fine["close"].tolist()
    days: dict = {}
    prev_day, prev_r = None, None
    for i in range(1, len(ts)):
        if ts[i] - ts[i - 1] != pd.Timedelta("5min"):
            prev_r = None
            continue
        r = math.log(close[i] / close[i - 1])
        d = ts[i].floor("1D")
        rec = days.setdefault(d, {"r": [], "pairs": []})
        rec["r"].append(r)
        if prev_r is not None and prev_day == d:
            rec["pairs"].append(abs(r) * abs(prev_r))
        prev_day, prev_r = d, r
    out = {}
    for d, rec in days.items():
        r = np.array(rec["r"])
        n, p = len(r), len(rec["pairs"])
        if n < need:
            out[d] = None
            continue
        rv = per_day / n * np.sum(r**2)
        bv = per_day / p * np.sum(rec["pairs"]) / MU1**2
        out[d] = {
            "n": n,
            "rv": math.sqrt(rv),
            "rs_pos": per_day / n * np.sum(r[r > 0] ** 2),
            "rs_neg": per_day / n * np.sum(r[r < 0] ** 2),
            "rq": per_day**2 / (3 * n) * np.sum(r**4),
            "bv": bv,
            "jump": max(rv - bv, 0.0),
        }
    return out


def test_each_measure_equals_a_hand_computation_with_missing_candles():
    from cryptocast.features.volatility import daily_realized_vol

    rng = np.random.default_rng(0)
    ret = rng.normal(0, 0.002, 4 * 288)
    ret[300] += 0.03  # a jump on day 2
    fine = five_minute(ret)
    t = fine["timestamp"]
    # day 3 loses 20 candles (21 returns: 267 left, rescaled); day 4 loses 60 (227 < 240: none)
    lose3 = (t >= "2022-01-03 06:00") & (t < "2022-01-03 07:40")
    lose4 = (t >= "2022-01-04 01:00") & (t < "2022-01-04 06:00")
    fine = fine[~(lose3 | lose4)].reset_index(drop=True)
    got = daily_realized_vol(fine, "5m", min_count=20).set_index("day")
    expect = by_hand(fine)
    assert set(got.index) == set(expect)
    assert expect[pd.Timestamp("2022-01-03", tz="UTC")]["n"] == 267
    assert expect[pd.Timestamp("2022-01-04", tz="UTC")] is None
    for day, rec in expect.items():
        row = got.loc[day]
        if rec is None:
            assert row[["rv", "rq", "rs_pos", "rs_neg", "bv", "jump"]].isna().all()
            continue
        assert row["n"] == rec["n"]
        for key in ("rv", "rq", "rs_pos", "rs_neg", "bv", "jump"):
            assert row[key] == pytest.approx(rec[key], rel=1e-10), (day, key)
        assert row["rs_pos"] + row["rs_neg"] == pytest.approx(row["rv"] ** 2, rel=1e-12)
    assert got.loc[pd.Timestamp("2022-01-02", tz="UTC"), "jump"] > 0.5 * 0.03**2


def test_bipower_variation_stays_near_the_continuous_variance_when_rv_does_not():
    from cryptocast.features.volatility import daily_realized_vol

    rng = np.random.default_rng(3)
    days, sigma_d, jump = 120, 0.03, 0.04
    ret = rng.normal(0, sigma_d / math.sqrt(288), days * 288)
    jump_days = np.arange(1, days, 2)
    ret[jump_days * 288 + 150] += jump * np.where(jump_days % 4 == 1, 1.0, -1.0)
    got = daily_realized_vol(five_minute(ret), "5m").iloc[1:-1]  # full days only
    on = got["day"].dt.day_of_year.to_numpy() - 1
    jd = np.isin(on, jump_days)
    rv2 = got["rv"].to_numpy() ** 2
    bv = got["bv"].to_numpy()
    # with jumps, RV holds sigma^2 + J^2 (2.8x the continuous variance); BV stays near sigma^2:
    # only the two products holding the jump leak into it, 2 |J| E|r| / mu1^2 (M / (M - 1)) with
    # E|r| = mu1 sigma_i, a fifth of sigma^2 here (the estimator's known small-sample bias)
    leak = 2 * jump * sigma_d / math.sqrt(288) / MU1 * 288 / 287
    assert np.mean(rv2[jd]) == pytest.approx(sigma_d**2 + jump**2, rel=0.05)
    assert np.mean(bv[jd]) == pytest.approx(sigma_d**2 + leak, rel=0.05)
    assert np.mean(bv[jd]) < 1.25 * sigma_d**2 < 0.5 * np.mean(rv2[jd])
    assert np.mean(bv[~jd]) == pytest.approx(sigma_d**2, rel=0.05)
    assert np.mean(got["jump"].to_numpy()[jd]) == pytest.approx(jump**2 - leak, rel=0.1)
    assert np.mean(got["jump"].to_numpy()[~jd]) < 0.05 * jump**2
    # RQ estimates the integrated quarticity sigma^4 on the days without a jump
    assert np.mean(got["rq"].to_numpy()[~jd]) == pytest.approx(sigma_d**4, rel=0.1)


def test_the_min_fraction_rule_scales_to_the_source():
    from cryptocast.features.volatility import min_returns

    assert min_returns("1h", 20) == 20
    assert min_returns("5m", 20) == 240
    assert min_returns("15m", 20) == 80
    assert min_returns("1m", 24) == 1440


def test_rv_source_5m_builds_the_measure_features_causally():
    from cryptocast.config.schema import FeaturesConfig
    from cryptocast.features.table import compute_features
    from cryptocast.features.volatility import VOL_FEATURES
    from tests.test_volatility import daily_from

    rng = np.random.default_rng(5)
    ret = rng.normal(0, 0.03 / math.sqrt(288), 80 * 288)
    fine = five_minute(ret, "2022-01-01")
    full = fine.assign(
        open=fine["close"].shift(1).fillna(100.0), high=fine["close"] * 1.001,
        low=fine["close"] * 0.999, volume=1.0,
    )  # fmt: skip
    daily = daily_from(full.iloc[1:])
    f = FeaturesConfig(target="realized_vol", rv_source="5m", indicators=[], lookback=5)
    table = compute_features(daily, f, "1d", fine=fine)
    assert set(VOL_FEATURES) <= set(table.columns)
    assert table[VOL_FEATURES].notna().all().all()
    # a scrambled future leaves every earlier row's features unchanged
    cut = pd.Timestamp("2022-02-20", tz="UTC")
    later = fine["timestamp"] >= cut
    fine2 = fine.copy()
    fine2.loc[later, "close"] = fine.loc[later, "close"].sample(frac=1, random_state=1).to_numpy()
    table2 = compute_features(daily, f, "1d", fine=fine2)
    before = table["timestamp"] < cut
    pd.testing.assert_frame_equal(table.loc[before, VOL_FEATURES], table2.loc[before, VOL_FEATURES])


@pytest.mark.skipif(
    not (SHARED_FINE / "BTC-USDT_5m.parquet").is_file(),
    reason="reference 5-minute candles not in ../shared/data/fine/binance",
)
def test_real_5m_candles_give_sane_measures():
    from cryptocast.features.volatility import daily_realized_vol

    fine = pd.read_parquet(SHARED_FINE / "BTC-USDT_5m.parquet", columns=["timestamp", "close"])
    fine = fine[fine["timestamp"] < pd.Timestamp("2022-04-01", tz="UTC")]
    got = daily_realized_vol(fine, "5m").dropna()
    assert len(got) >= 85
    rv2 = got["rv"] ** 2
    assert 0.005 < got["rv"].median() < 0.08  # BTC's daily volatility, early 2022
    np.testing.assert_allclose(got["rs_pos"] + got["rs_neg"], rv2, rtol=1e-10)
    assert (got["jump"] <= rv2).all() and (got["bv"] > 0).all()
