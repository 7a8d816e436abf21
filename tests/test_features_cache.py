"""The features cache is keyed on the candles' content, not on their first/last time and row count
(issue 25 point 14)."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.config.schema import FeaturesConfig
from cryptocast.data.store import series_path
from cryptocast.features.table import build_features, manifest_path
from tests.conftest import make_ohlcv


def test_a_corrected_close_reimported_with_overwrite_rebuilds_the_features(data_dir, tmp_path):
    candles = make_ohlcv(200, "1d", start="2022-01-01", seed=7)
    src = tmp_path / "BTC-USDT_1d.parquet"
    candles.to_parquet(src)
    run = CliRunner()
    res = run.invoke(app, ["fetch", "--import", str(src), "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    cfg = FeaturesConfig()
    first = build_features(data_dir, "binance", "BTC/USDT", "1d", cfg)
    assert not first.attrs["cached"]
    assert build_features(data_dir, "binance", "BTC/USDT", "1d", cfg).attrs["cached"]

    fixed = candles.copy()  # same first/last time and row count, one close corrected
    fixed.loc[150, "close"] = fixed.loc[150, "close"] * 1.001
    fixed.loc[150, "high"] = max(fixed.loc[150, "high"], fixed.loc[150, "close"])
    fixed.to_parquet(src)
    res = run.invoke(
        app, ["fetch", "--import", str(src), "--data-dir", str(data_dir), "--overwrite"]
    )
    assert res.exit_code == 0, res.output
    again = build_features(data_dir, "binance", "BTC/USDT", "1d", cfg)
    assert not again.attrs["cached"]
    row = again.index[again["timestamp"] == fixed.loc[150, "timestamp"]][0]
    assert again.loc[row, "close"] == fixed.loc[150, "close"] != first.loc[row, "close"]
    manifest = json.loads(
        manifest_path(
            series_path(data_dir, "binance", "BTC/USDT", "1d", kind="features")
        ).read_text()
    )
    assert len(manifest["source"]["sha256"]) == 64


def test_a_manifest_nested_too_deep_is_rebuilt_not_a_traceback(data_dir):
    candles = make_ohlcv(200, "1d", seed=1)
    path = series_path(data_dir, "binance", "BTC/USDT", "1d")
    path.parent.mkdir(parents=True)
    candles.to_parquet(path)
    cfg = FeaturesConfig()
    build_features(data_dir, "binance", "BTC/USDT", "1d", cfg)
    mpath = manifest_path(series_path(data_dir, "binance", "BTC/USDT", "1d", kind="features"))
    mpath.write_text("[" * 100_000 + "]" * 100_000)
    table = build_features(data_dir, "binance", "BTC/USDT", "1d", cfg)
    assert not table.attrs["cached"] and isinstance(table, pd.DataFrame)
