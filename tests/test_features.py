"""Features: causality of every default indicator (with a leaky control), targets, warm-up, gaps,
scale-freeness, the PSAR index trap, bad inputs and the on-disk cache."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cryptocast.config.schema import FeaturesConfig, IndicatorSpec
from cryptocast.errors import ConfigError, DataError
from cryptocast.features import ta_ports
from cryptocast.features.indicators import CATALOGUE, compute_indicator
from cryptocast.features.ta_ports import psar_values
from cryptocast.features.table import (
    DEFAULT_INDICATORS,
    META_COLUMNS,
    build_features,
    compute_features,
    feature_columns,
    gap_before,
    target_columns,
    target_to_price,
)
from cryptocast.features.targets import get_target
from tests.conftest import REPO, make_ohlcv

Compute = Callable[[pd.DataFrame], pd.DataFrame]


def causality_violations(compute: Compute, candles: pd.DataFrame, cuts: list[int]) -> list[str]:
    """Feature columns whose value at some row <= t changes when candles after t are added.

    Compares ``compute(candles[:t])`` with ``compute(candles)`` on the rows both contain, for each
    cut ``t``; target columns are skipped (they are meant to look ahead; checked separately).
    """
    full = compute(candles).set_index("timestamp")
    bad: set[str] = set()
    for t in cuts:
        part = compute(candles.iloc[:t]).set_index("timestamp")
        assert len(part) > 0
        ref = full.loc[part.index]
        for col in part.columns:
            if str(col).startswith("target_"):
                continue
            a, b = part[col].to_numpy("float64"), ref[col].to_numpy("float64")
            if not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
                bad.add(col)
    return sorted(bad)


@pytest.fixture(scope="module")
def btc_1h_slice(shared_ohlcv: Path) -> pd.DataFrame:
    # 1000 hours around a maintenance gap (2018-06-26) so gap handling is exercised as well
    df = pd.read_parquet(shared_ohlcv / "BTC-USDT_1h.parquet")
    start = int(df.index[df.timestamp >= pd.Timestamp("2018-06-01", tz="UTC")][0])
    return df.iloc[start : start + 1000].reset_index(drop=True)


def test_every_default_indicator_and_target_input_is_causal(btc_1h_slice):
    cfg = FeaturesConfig(horizon=3)
    rng = np.random.default_rng(0)
    cuts = sorted(int(t) for t in rng.integers(200, len(btc_1h_slice) - 1, size=4))
    full = compute_features(btc_1h_slice, cfg, "1h")
    # every default indicator contributes a column, so every one of them is under test
    for spec in DEFAULT_INDICATORS:
        assert any(c.startswith(spec["name"] + "_") for c in feature_columns(full)), spec
    assert causality_violations(lambda d: compute_features(d, cfg, "1h"), btc_1h_slice, cuts) == []


def test_causality_checker_catches_a_centred_rolling_mean(btc_1h_slice):
    cfg = FeaturesConfig()

    def leaky(d: pd.DataFrame) -> pd.DataFrame:
        out = compute_features(d, cfg, "1h")
        centred = d["close"].rolling(5, center=True, min_periods=1).mean() / d["close"]
        out["leaky_centred_mean"] = centred.to_numpy()[out.attrs["warmup_dropped"] :]
        return out

    assert causality_violations(leaky, btc_1h_slice, [300, 700]) == ["leaky_centred_mean"]


def test_targets_are_the_row_shifted_close_ratio():
    candles = make_ohlcv(300, "1d", drop=[100, 101])  # a gap: targets still use the next ROW
    for target in ("log_return", "price"):
        df = compute_features(candles, FeaturesConfig(horizon=4, target=target), "1d")
        close = df["close"].to_numpy()
        for h, col in enumerate(target_columns(4), start=1):
            ratio = close[h:] / close[:-h]
            want = np.log(ratio) if target == "log_return" else ratio
            np.testing.assert_array_equal(df[col].to_numpy()[:-h], want)
            assert df[col].iloc[-h:].isna().all()  # the newest rows keep unknown targets


def test_warmup_dropped_from_start_only_and_reported():
    candles = make_ohlcv(400, "1h")
    df = compute_features(candles, FeaturesConfig(), "1h")
    warm = df.attrs["warmup_dropped"]
    assert warm == 51  # Ichimoku span B (52 candles) is the longest warm-up in the default set
    assert len(df) == 400 - warm
    assert df["timestamp"].iloc[0] == candles["timestamp"].iloc[warm]
    assert not df[feature_columns(df)].isna().any().any()
    assert list(df.columns[:3]) == META_COLUMNS
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert {"hour_sin", "dow_cos"} <= set(df.columns)
    daily = compute_features(make_ohlcv(200, "1d"), FeaturesConfig(), "1d")
    assert "hour_sin" not in daily.columns and "dow_sin" in daily.columns


def test_gap_before_counts_missing_candles():
    candles = make_ohlcv(10, "1h", drop=[3, 6, 7, 8])
    assert gap_before(candles["timestamp"], "1h").tolist() == [0, 0, 0, 1, 0, 3]


def test_features_are_scale_free():
    candles = make_ohlcv(300, "1d", seed=3)
    scaled = candles.copy()
    scaled[["open", "high", "low", "close"]] *= 1000.0
    a = compute_features(candles, FeaturesConfig(), "1d")
    b = compute_features(scaled, FeaturesConfig(), "1d")
    cols = feature_columns(a)
    np.testing.assert_allclose(b[cols].to_numpy(), a[cols].to_numpy(), rtol=1e-6, atol=1e-9)


def test_psar_on_datetime_index_equals_range_index_and_ta():
    from ta.trend import PSARIndicator

    candles = make_ohlcv(600, "1h", seed=5)
    ranged = candles.drop(columns="timestamp")
    dated = candles.set_index("timestamp")
    params = {"step": 0.02, "max_step": 0.2}
    on_dates = compute_indicator(dated, "psar", params)
    on_range = compute_indicator(ranged, "psar", params)
    pd.testing.assert_frame_equal(on_dates, on_range)
    # the fast port gives ta's own numbers (ta run on a RangeIndex, where it is correct)
    ref = PSARIndicator(ranged.high, ranged.low, ranged.close, fillna=False).psar().to_numpy()
    mine = psar_values(
        ranged.high.to_numpy(), ranged.low.to_numpy(), ranged.close.to_numpy(), 0.02, 0.2
    )
    np.testing.assert_array_equal(mine, ref)


def test_array_ports_give_ta_numbers(btc_1h_slice):
    import ta

    d = btc_1h_slice
    h, lo, c, v = d.high, d.low, d.close, d.volume
    H, L, C, V = (x.to_numpy() for x in (h, lo, c, v))
    aroon = ta.trend.AroonIndicator(h, lo, 25, fillna=False)
    atr = ta.volatility.AverageTrueRange(h, lo, c, 14, fillna=False).average_true_range()
    atr.iloc[:13] = np.nan  # ta writes 0.0 into the warm-up rows; the port leaves NaN
    pairs = {
        "adx": (ta_ports.adx_values(H, L, C, 14), ta.trend.ADXIndicator(h, lo, c, 14).adx()),
        "atr": (ta_ports.atr_values(H, L, C, 14), atr),
        "cci": (
            ta_ports.cci_values(H, L, C, 20, 0.015),
            ta.trend.CCIIndicator(h, lo, c, 20, 0.015, fillna=False).cci(),
        ),
        "mfi": (
            ta_ports.mfi_values(H, L, C, V, 14),
            ta.volume.MFIIndicator(h, lo, c, v, 14, fillna=False).money_flow_index(),
        ),
        "aroon_up": (ta_ports.aroon_values(H, 25, True), aroon.aroon_up()),
        "aroon_down": (ta_ports.aroon_values(L, 25, False), aroon.aroon_down()),
    }
    for name, (mine, ref) in pairs.items():
        np.testing.assert_allclose(mine, ref.to_numpy(), rtol=1e-9, atol=1e-9, err_msg=name)


def test_every_catalogue_entry_runs_with_defaults():
    candles = make_ohlcv(200, "1d", seed=1)
    for name in CATALOGUE:
        out = compute_indicator(candles, name, {})
        assert len(out) == 200 and out.shape[1] >= 1, name
        assert np.isfinite(out.iloc[-1]).all(), name


def test_default_config_file_matches_default_indicators():
    raw = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    assert raw["features"]["indicators"] == DEFAULT_INDICATORS


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"name": "rsx"}, "valid indicators: adx, aroon"),
        ({"name": "rsi", "params": {"windw": 3}}, "valid parameters: window=14"),
        ({"name": "rsi", "params": {"window": 2.5}}, "must be an integer"),
        ({"name": "rsi", "params": {"window": 0}}, "must be > 0"),
    ],
)
def test_bad_indicator_config_names_the_valid_choices(spec, needle):
    cfg = FeaturesConfig(indicators=[IndicatorSpec(**spec)])
    with pytest.raises(ConfigError, match=needle) as info:
        compute_features(make_ohlcv(200), cfg, "1d")
    assert "\n" not in str(info.value)


def test_lookback_and_horizon_must_be_positive():
    from cryptocast.config.schema import load_config

    for key in ("features.lookback=0", "features.horizon=-1"):
        with pytest.raises(ConfigError, match=key.split("=")[0]):
            load_config(None, [key])


def test_too_few_rows_for_warmup_plus_one_window():
    with pytest.raises(DataError, match="fetch more history"):
        compute_features(make_ohlcv(80), FeaturesConfig(lookback=30, horizon=1), "1d")


def test_target_helpers():
    assert get_target("log_return").identity() == 0.0 and get_target("price").identity() == 1.0
    last = np.array([100.0, 200.0])
    pred = np.array([[0.0, np.log(1.1)], [np.log(0.5), 0.0]])
    np.testing.assert_allclose(target_to_price(pred, last, "log_return"), [[100, 110], [100, 200]])
    np.testing.assert_allclose(
        target_to_price(np.exp(pred), last, "price"), [[100, 110], [100, 200]]
    )
    with pytest.raises(ConfigError):
        get_target("pips").identity()


# ---- cache -------------------------------------------------------------------------------------
def _store(data_dir: Path, candles: pd.DataFrame, symbol="BTC/USDT", timeframe="1d") -> None:
    from cryptocast.data.store import series_path, write_parquet_atomic

    path = series_path(data_dir, "binance", symbol, timeframe)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(candles, path)


def test_build_features_caches_and_rebuilds_when_stale(data_dir):
    from cryptocast.data.store import series_path

    candles = make_ohlcv(300, "1d")
    _store(data_dir, candles.iloc[:250])
    cfg = FeaturesConfig()
    first = build_features(data_dir, "binance", "BTC/USDT", "1d", cfg)
    path = series_path(data_dir, "binance", "BTC/USDT", "1d", kind="features")
    manifest = json.loads(path.with_suffix(".manifest.json").read_text())
    assert first.attrs["cached"] is False and path.is_file()
    assert manifest["source"]["rows"] == 250 and len(manifest["hash"]) == 12
    again = build_features(data_dir, "binance", "BTC/USDT", "1d", cfg)
    assert again.attrs["cached"] is True and again.attrs["warmup_dropped"] == 51
    pd.testing.assert_frame_equal(again, first, check_like=False)
    # a config change rebuilds; a lookback change does not (it only shapes windows)
    assert build_features(data_dir, "binance", "BTC/USDT", "1d", FeaturesConfig(lookback=5)).attrs[
        "cached"
    ]
    assert not build_features(
        data_dir, "binance", "BTC/USDT", "1d", FeaturesConfig(horizon=2)
    ).attrs["cached"]
    # new candles rebuild, and so does --force
    _store(data_dir, candles)
    grown = build_features(data_dir, "binance", "BTC/USDT", "1d", cfg)
    assert not grown.attrs["cached"] and len(grown) == 300 - 51
    assert not build_features(data_dir, "binance", "BTC/USDT", "1d", cfg, force=True).attrs[
        "cached"
    ]


def test_build_features_errors_leave_the_cache_alone(data_dir):
    from cryptocast.data.store import series_path

    with pytest.raises(DataError, match="cryptocast fetch --symbol ETH/USDT --timeframe 1d"):
        build_features(data_dir, "binance", "ETH/USDT", "1d", FeaturesConfig())
    _store(data_dir, make_ohlcv(200, "1d"))
    build_features(data_dir, "binance", "BTC/USDT", "1d", FeaturesConfig())
    path = series_path(data_dir, "binance", "BTC/USDT", "1d", kind="features")
    before = (path.read_bytes(), path.with_suffix(".manifest.json").read_bytes())
    bad = FeaturesConfig(indicators=[IndicatorSpec(name="nope")])
    with pytest.raises(ConfigError):
        build_features(data_dir, "binance", "BTC/USDT", "1d", bad, force=True)
    with pytest.raises(DataError, match="BTC/USDT 1d: only 200 candles"):
        build_features(
            data_dir, "binance", "BTC/USDT", "1d", FeaturesConfig(lookback=500), force=True
        )
    assert (path.read_bytes(), path.with_suffix(".manifest.json").read_bytes()) == before
