"""Candle data for the benchmarks: the reference candles copied into a temp folder, or seeded
synthetic ones (quick mode, or when ../shared is absent), and the test periods cut from them.

A data folder is what the CLI's ``--data-dir`` takes: candles under ``ohlcv/binance/`` as
``BASE-QUOTE_tf.parquet``. Reference files are copied byte for byte, so a benchmark reads what a
user's imported data would be.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import SHARED_OHLCV


def file_name(symbol: str, timeframe: str) -> str:
    """``BTC/USDT``, ``1d`` -> ``BTC-USDT_1d.parquet``, as the store names a series."""
    return f"{symbol.replace('/', '-')}_{timeframe}.parquet"


def synthetic_candles(
    n: int,
    seed: int,
    freq: str = "1D",
    *,
    end: str | None = None,
    drift: float = 0.0005,
    vol: float = 0.03,
    spread: float = 0.01,
) -> pd.DataFrame:
    """Seeded geometric-random-walk candles from 2020-01-01 (or ending at ``end``), with
    log-return mean ``drift`` and sd ``vol`` per candle and high/low ``spread`` around the body."""
    rng = np.random.default_rng(seed)
    ts = (
        pd.date_range("2020-01-01", periods=n, freq=freq, tz="UTC")
        if end is None
        else pd.date_range(end=pd.Timestamp(end, tz="UTC"), periods=n, freq=freq)
    ).astype("datetime64[ns, UTC]")  # the store's timestamp type
    close = 100 * np.exp(np.cumsum(rng.normal(drift, vol, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread_ = np.abs(rng.normal(0, spread, n))
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread_),
            "low": np.minimum(open_, close) * (1 - spread_),
            "close": close,
            "volume": rng.lognormal(3, 0.5, n),
        }
    )


def candles_dir(
    dest: Path,
    symbols: list[str],
    timeframes: list[str],
    synthetic: Callable[[int, str], pd.DataFrame],
    reference: bool = True,
) -> bool:
    """Fill ``dest`` with every symbol x timeframe: copies of the reference candles when
    ``reference`` and all of them exist, else ``synthetic(i, timeframe)`` for the i-th symbol.

    Returns True when the reference files were copied.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names = [file_name(s, t) for s in symbols for t in timeframes]
    if reference and all((SHARED_OHLCV / name).is_file() for name in names):
        for name in names:
            shutil.copy(SHARED_OHLCV / name, dest / name)
        return True
    from cryptocast.data.store import write_parquet_atomic

    for i, s in enumerate(symbols):
        for t in timeframes:
            write_parquet_atomic(synthetic(i, t), dest / file_name(s, t))
    return False


def last_candle(data_dir: Path, symbol: str = "BTC/USDT", timeframe: str = "1d") -> pd.Timestamp:
    """Open time of the last stored candle of one series in a data folder."""
    path = Path(data_dir) / "ohlcv" / "binance" / file_name(symbol, timeframe)
    return pd.read_parquet(path, columns=["timestamp"])["timestamp"].iloc[-1]


def daily_candles(root: Path, quick: bool) -> tuple[Path, str, pd.Timestamp]:
    """Daily BTC and ETH candles in ``root`` (reference, or 500 synthetic days in quick mode);
    returns (data dir, label, last candle time). The walk-forward benchmarks' data."""
    ref = candles_dir(
        root / "ohlcv" / "binance",
        ["BTC/USDT", "ETH/USDT"],
        ["1d"],
        lambda i, _: synthetic_candles(500, i),
        reference=not quick,
    )
    return root, "reference BTC/ETH 1d" if ref else "synthetic 1d", last_candle(root)


def walk_period(last: pd.Timestamp, folds: int, fold_days: int = 30) -> list[str]:
    """Overrides for a test period of exactly ``folds`` folds ending one candle before the data."""
    end = (last.normalize() - pd.Timedelta(days=1)).tz_localize(None)
    start = end - pd.Timedelta(days=folds * fold_days)
    return [f"backtest.test_start={start:%Y-%m-%d}", f"backtest.test_end={end:%Y-%m-%d}"]
