"""``cryptocast features`` through the CLI: summary table, cache reuse, one-line errors, exit codes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import make_ohlcv

runner = CliRunner()


def _store(data_dir: Path, candles: pd.DataFrame, symbol: str, timeframe: str) -> None:
    from cryptocast.data.store import series_path, write_parquet_atomic

    path = series_path(data_dir, "binance", symbol, timeframe)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(candles, path)


def _run(*args: str):
    return runner.invoke(app, ["features", *args], env={"COLUMNS": "200"})


def _features_file(data_dir: Path, slug: str = "BTC-USDT_1d") -> Path:
    return data_dir / "features" / "binance" / f"{slug}.parquet"


def test_features_builds_then_reuses_the_cache(data_dir, shared_ohlcv):
    _store(data_dir, pd.read_parquet(shared_ohlcv / "BTC-USDT_1d.parquet"), "BTC/USDT", "1d")
    result = _run("--data-dir", str(data_dir), "-s", "BTC/USDT", "-t", "1d")
    assert result.exit_code == 0, result.output
    assert "BTC/USDT 1d" in result.output and "2007" in result.output and "1956" in result.output
    assert "built" in result.output
    assert _features_file(data_dir).is_file()
    again = _run("--data-dir", str(data_dir), "-s", "BTC/USDT", "-t", "1d")
    assert again.exit_code == 0 and "cached" in again.output
    forced = _run("--data-dir", str(data_dir), "-s", "BTC/USDT", "-t", "1d", "--force")
    assert forced.exit_code == 0 and "built" in forced.output


def test_features_section_from_config_and_set(data_dir, tmp_path):
    _store(data_dir, make_ohlcv(300, "1d"), "BTC/USDT", "1d")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "features:\n  indicators: [{name: rsi, params: {window: 7}}]\n  calendar: false\n"
    )
    result = _run("--data-dir", str(data_dir), "-s", "BTC/USDT", "-t", "1d", "-c", str(cfg))
    assert result.exit_code == 0, result.output
    cols = pd.read_parquet(_features_file(data_dir)).columns
    assert "rsi_7" in cols and "dow_sin" not in cols and "macd_12_26_9_line" not in cols
    result = _run(
        "--data-dir", str(data_dir), "-s", "BTC/USDT", "-t", "1d", "-c", str(cfg),
        "--set", "features.horizon=3",
    )  # fmt: skip
    assert result.exit_code == 0 and "target_3" in pd.read_parquet(_features_file(data_dir)).columns


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--set", "features.indicators=[{name: rsx}]"], 2, "valid indicators: adx"),
        (["--set", "features.indicators=[{name: rsi, params: {w: 3}}]"], 2, "valid parameters"),
        (["--set", "features.lookback=0"], 2, "features.lookback"),
        (["--set", "features.horizon=0"], 2, "features.horizon"),
        (["--set", "features.lookback=900"], 3, "fetch more history"),
        (
            ["-s", "ETH/USDT"],
            3,
            "run `cryptocast fetch --symbol ETH/USDT --timeframe 1d --exchange",
        ),
        (["-t", "7x"], 2, "unknown timeframe"),
    ],
)
def test_bad_inputs_one_line_error_nonzero_exit_nothing_overwritten(data_dir, args, code, needle):
    _store(data_dir, make_ohlcv(300, "1d"), "BTC/USDT", "1d")
    ok = _run("--data-dir", str(data_dir), "-s", "BTC/USDT", "-t", "1d")
    assert ok.exit_code == 0, ok.output
    out = _features_file(data_dir)
    before = out.read_bytes()
    base = ["--data-dir", str(data_dir), "--force"]
    if "-s" not in args:
        base += ["-s", "BTC/USDT"]
    if "-t" not in args:
        base += ["-t", "1d"]
    result = _run(*base, *args)
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert needle in result.output.replace("\n", "")
    assert out.read_bytes() == before


def test_one_missing_series_fails_that_series_only(data_dir):
    _store(data_dir, make_ohlcv(300, "1d"), "BTC/USDT", "1d")
    result = _run("--data-dir", str(data_dir), "-s", "BTC/USDT", "-s", "LTC/USDT", "-t", "1d")
    assert result.exit_code == 8
    assert "LTC/USDT 1d: failed" in result.output and "cryptocast fetch" in result.output
    assert "BTC/USDT 1d" in result.output and _features_file(data_dir).is_file()


def test_exchange_comes_from_the_config_unless_given(data_dir, tmp_path):
    from cryptocast.data.store import series_path, write_parquet_atomic

    path = series_path(data_dir, "kraken", "BTC/USDT", "1d")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(make_ohlcv(300, "1d"), path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  exchange: kraken\n")
    result = _run("--data-dir", str(data_dir), "-s", "BTC/USDT", "-t", "1d", "-c", str(cfg))
    assert result.exit_code == 0, result.output
    assert (data_dir / "features" / "kraken" / "BTC-USDT_1d.parquet").is_file()
    # an explicit --exchange wins: nothing is stored for binance, so it says to fetch
    result = _run(
        "--data-dir", str(data_dir), "-s", "BTC/USDT", "-t", "1d", "-c", str(cfg),
        "--exchange", "binance",
    )  # fmt: skip
    assert result.exit_code == 3 and "cryptocast fetch" in result.output


def test_every_series_failing_exits_with_their_own_code_not_partial(data_dir):
    """The rule the README gives: several series, all failed -> the first failure's code."""
    result = _run("--data-dir", str(data_dir), "-s", "BTC/USDT", "-s", "LTC/USDT", "-t", "1d")
    assert result.exit_code == 3, result.output  # DataError: no candles stored, not 8
    assert "all 2 series failed" in result.output and "cryptocast fetch" in result.output
