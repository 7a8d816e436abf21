"""Candles -> a causal, scale-free feature table with forecast targets (and its on-disk cache).

Row t of the table holds features known at the close of candle t and targets strictly after it:
``target_h = log(close[t+h] / close[t])`` (or the ratio, for ``target="price"``), taken by row
shift, i.e. the h-th next *stored* candle. The last h rows keep NaN targets so a forecast can use
the newest row. Warm-up rows (any feature still NaN) are dropped from the start only.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.schema import FeaturesConfig, IndicatorSpec
from cryptocast.config.timeframes import timeframe_ms
from cryptocast.errors import ConfigError, DataError
from cryptocast.features.indicators import compute_indicator, resolve_params
from cryptocast.features.targets import get_target
from cryptocast.features.targets import target_columns as _target_columns

META_COLUMNS = ["timestamp", "close", "gap_before"]
CANDLE_COLUMNS = ["open", "high", "low", "close", "volume"]
FEATURES_VERSION = 1  # bump when the meaning of a column changes, so caches are rebuilt

# The default indicator set (also written out in configs/default.yaml; a test keeps them equal).
DEFAULT_INDICATORS: list[dict[str, Any]] = [
    {"name": "rsi", "params": {"window": 14}},
    {"name": "stoch", "params": {"window": 14, "smooth_window": 3}},
    {"name": "roc", "params": {"window": 12}},
    {"name": "williams_r", "params": {"lbp": 14}},
    {"name": "sma", "params": {"window": 20}},
    {"name": "ema", "params": {"window": 50}},
    {"name": "macd", "params": {"window_fast": 12, "window_slow": 26, "window_sign": 9}},
    {"name": "adx", "params": {"window": 14}},
    {"name": "cci", "params": {"window": 20}},
    {"name": "aroon", "params": {"window": 25}},
    {"name": "ichimoku", "params": {"window1": 9, "window2": 26, "window3": 52}},
    {"name": "psar", "params": {"step": 0.02, "max_step": 0.2}},
    {"name": "bollinger", "params": {"window": 20, "window_dev": 2}},
    {"name": "atr", "params": {"window": 14}},
    {"name": "keltner", "params": {"window": 20, "window_atr": 10}},
    {"name": "obv", "params": {"window": 20}},
    {"name": "mfi", "params": {"window": 14}},
    {"name": "cmf", "params": {"window": 20}},
    {"name": "vwap", "params": {"window": 14}},
    {"name": "volume_ratio", "params": {"window": 20}},
]


def target_columns(horizon: int) -> list[str]:
    """``target_1 .. target_H``."""
    return _target_columns(horizon)


def feature_columns(df: pd.DataFrame) -> list[str]:
    """Every column that is neither meta nor a target, in table order."""
    return [c for c in df.columns if c not in META_COLUMNS and not str(c).startswith("target_")]


def target_to_price(
    pred: np.ndarray, last_close: np.ndarray, target: str, variance_factor: np.ndarray | None = None
) -> np.ndarray:
    """Predicted targets (n, H) at origins with close ``last_close`` (n,) -> the target's output
    unit (n, H): prices for the price targets, annualised volatility for ``realized_vol`` (its
    variance times ``variance_factor``, the log model's bias correction, when given)."""
    return get_target(target).to_output(pred, last_close, variance_factor)


def indicator_specs(cfg: FeaturesConfig) -> list[tuple[str, dict[str, Any]]]:
    """The configured (or default) indicators, validated: ConfigError names a bad one."""
    raw = (
        [IndicatorSpec(**d) for d in DEFAULT_INDICATORS]
        if cfg.indicators is None
        else cfg.indicators
    )
    specs = [(s.name, resolve_params(s.name, dict(s.params))) for s in raw]
    seen: set[str] = set()
    for name, params in specs:
        key = json.dumps([name, params], sort_keys=True)
        if key in seen:
            raise ConfigError(f"indicator {name!r} with {params} is listed twice in features")
        seen.add(key)
    if not specs and not (cfg.log_returns or cfg.range_features or cfg.calendar):
        raise ConfigError(
            "features: no features selected (no indicators, returns, range, calendar)"
        )
    return specs


def gap_before(timestamps: pd.Series, timeframe: str) -> np.ndarray:
    """Number of missing candles immediately before each row (0 for the first row)."""
    ms = timestamps.astype("datetime64[ns, UTC]").astype("int64").to_numpy() // 1_000_000
    steps = np.diff(ms, prepend=ms[:1]) // timeframe_ms(timeframe)
    return np.maximum(steps - 1, 0).astype("int64")


def _base_features(df: pd.DataFrame, cfg: FeaturesConfig, timeframe: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    close = df["close"].to_numpy("float64")
    if cfg.log_returns:
        logc = np.log(close)
        for k in (1, 2, 3):  # the model also sees lags through its window; a few are cheap
            r = np.full(len(close), np.nan)
            r[k:] = logc[k:] - logc[:-k]
            out[f"log_ret_{k}"] = r
    if cfg.range_features:
        high, low, open_ = (df[c].to_numpy("float64") for c in ("high", "low", "open"))
        out["hl_range"] = (high - low) / close
        out["body"] = np.log(close / open_)
    if cfg.calendar:
        ts = pd.DatetimeIndex(df["timestamp"])
        if timeframe_ms(timeframe) < 86_400_000:  # hour of day means nothing for daily candles
            hour = ts.hour.to_numpy() + ts.minute.to_numpy() / 60.0
            out["hour_sin"] = np.sin(2 * np.pi * hour / 24)
            out["hour_cos"] = np.cos(2 * np.pi * hour / 24)
        if timeframe_ms(timeframe) < 7 * 86_400_000:
            dow = ts.day_of_week.to_numpy()
            out["dow_sin"] = np.sin(2 * np.pi * dow / 7)
            out["dow_cos"] = np.cos(2 * np.pi * dow / 7)
    return out


def compute_features(
    candles: pd.DataFrame,
    cfg: FeaturesConfig,
    timeframe: str,
    fine: pd.DataFrame | None = None,
    cross: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Feature table (META + features + targets) for one series of candles.

    Args:
        candles: OHLCV frame (``timestamp open high low close volume``), sorted, unique.
        cfg: the ``features`` config section.
        timeframe: candle timeframe, e.g. ``1h`` (for gap counting and calendar features).
        fine: the ``features.rv_source`` candles of the same series; required (only) by the
            ``realized_vol`` target, which adds the ``features/volatility.py`` columns.
        cross: the ``rv_source`` candles of the ``features.rv_cross`` symbol; required (only)
            when it is set, for the ``x_log_rv_*`` columns.

    Returns:
        RangeIndex frame; ``attrs`` holds ``rows_in``, ``warmup_dropped``, ``filled_values``.

    Raises:
        ConfigError: an unknown indicator or parameter.
        DataError: missing columns, or too few candles for the warm-up plus one window.
    """
    specs = indicator_specs(cfg)
    target = get_target(cfg.target)
    target.check_timeframe(timeframe)
    if target.needs_fine_candles and fine is None:
        raise DataError(f"features.target={cfg.target} needs the {cfg.rv_source} candles too")
    missing = [c for c in ["timestamp", *CANDLE_COLUMNS] if c not in candles.columns]
    if missing:
        raise DataError(f"candles lack column(s) {', '.join(missing)}; re-run `cryptocast fetch`")
    df = candles.reset_index(drop=True)
    n = len(df)
    cols: dict[str, np.ndarray] = {}
    for name, params in specs:
        for c, v in compute_indicator(df, name, params).items():
            cols[c] = v.to_numpy()
    cols.update(_base_features(df, cfg, timeframe))
    rv = None
    if target.needs_fine_candles:
        from cryptocast.features.volatility import vol_columns

        if cfg.rv_cross is not None and cross is None:
            raise DataError(
                f"features.rv_cross needs the {cfg.rv_source} candles of {cfg.rv_cross}"
            )
        vol, rv = vol_columns(df, fine, cfg.rv_source, cfg.rv_min_hours, cross)
        cols.update(vol)
    feats = pd.DataFrame(cols).replace([np.inf, -np.inf], np.nan)

    # Warm-up = rows before every feature has produced its first value. Later NaNs (e.g. 0/0
    # on a flat zero-volume candle) are carried forward, which uses only the past.
    first_valid = [feats[c].first_valid_index() for c in feats.columns]
    warmup = n if any(i is None for i in first_valid) else int(max(first_valid, default=0))
    need = warmup + cfg.lookback + cfg.horizon
    if n < need:
        raise DataError(
            f"only {n} candles: the feature warm-up ({warmup} rows) plus one window "
            f"(lookback {cfg.lookback} + horizon {cfg.horizon}) needs {need}; fetch more history"
        )
    filled = int(feats.iloc[warmup:].isna().sum().sum())
    feats = feats.ffill()

    close = df["close"].to_numpy("float64")
    table = pd.DataFrame(
        {
            "timestamp": df["timestamp"].astype("datetime64[ns, UTC]"),
            "close": close,
            "gap_before": gap_before(df["timestamp"], timeframe),
        }
    )
    targets = target.labels(close, cfg.horizon, rv)  # row shift: the h-th next stored candle
    table = pd.concat([table, feats.astype("float64"), pd.DataFrame(targets)], axis=1)
    table = table.iloc[warmup:].reset_index(drop=True)
    table.attrs.update({"rows_in": n, "warmup_dropped": warmup, "filled_values": filled})
    return table


# ---- cache -------------------------------------------------------------------------------------
def features_signature(cfg: FeaturesConfig, timeframe: str) -> dict[str, Any]:
    """The parts of the config that change the table (lookback, scaler, gaps only shape windows)."""
    return {
        "version": FEATURES_VERSION,
        "timeframe": timeframe,
        "indicators": [{"name": n, "params": p} for n, p in indicator_specs(cfg)],
        "log_returns": cfg.log_returns,
        "range_features": cfg.range_features,
        "calendar": cfg.calendar,
        "horizon": cfg.horizon,
        "target": cfg.target,
        # rv_measures: the realized-measure columns' version (2: RQ, RS, BV, jumps)
        **(
            {"rv_source": cfg.rv_source, "rv_min_hours": cfg.rv_min_hours, "rv_measures": 2}
            | ({"rv_cross": cfg.rv_cross} if cfg.rv_cross is not None else {})
            if get_target(cfg.target).needs_fine_candles
            else {}
        ),
    }


def _hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def manifest_path(features_path: Path) -> Path:
    return features_path.with_suffix(".manifest.json")


def _source_info(candles: pd.DataFrame) -> dict[str, Any]:
    """What the cache is keyed on: the candles' content (a corrected close changes the SHA-256
    though first/last time and row count stay), plus the range for people reading the manifest."""
    from cryptocast.data.store import OHLCV_COLUMNS, content_digest

    ts = candles["timestamp"]
    return {
        "first": str(ts.iloc[0]),
        "last": str(ts.iloc[-1]),
        "rows": len(candles),
        "sha256": content_digest(candles[OHLCV_COLUMNS]),
    }


def build_features(
    data_dir: Path,
    exchange: str,
    symbol: str,
    timeframe: str,
    cfg: FeaturesConfig,
    force: bool = False,
) -> pd.DataFrame:
    """Feature table for a stored series, from the cache when it is fresh, else rebuilt.

    The cache is ``series_path(..., kind="features")`` plus a ``.manifest.json`` beside it with
    the feature signature and its hash and the source candles' SHA-256 (and first/last/rows). Any
    difference (or ``force``) rebuilds. The table's ``attrs`` also carry ``cached`` and ``path``.
    """
    from cryptocast.data.hints import fetch_command
    from cryptocast.data.store import (
        data_lock,
        load_series,
        remove_stale_temps,
        series_path,
        write_parquet_atomic,
    )

    signature = features_signature(cfg, timeframe)  # validates indicators before any I/O
    data_dir = Path(data_dir)
    candles = load_series(data_dir, exchange, symbol, timeframe)
    if len(candles) == 0:
        raise DataError(
            f"no candles stored for {symbol} {timeframe}; "
            f"run {fetch_command(exchange, symbol, timeframe, data_dir)}"
        )
    fine = None
    if get_target(cfg.target).needs_fine_candles:
        get_target(cfg.target).check_timeframe(timeframe)
        fine = load_series(data_dir, exchange, symbol, cfg.rv_source)
        if len(fine) == 0:
            raise DataError(
                f"no {cfg.rv_source} candles stored for {symbol}: features.target={cfg.target} "
                f"sums daily realized volatility from them; run "
                f"{fetch_command(exchange, symbol, cfg.rv_source, data_dir)}"
            )
    path = series_path(data_dir, exchange, symbol, timeframe, kind="features")
    mpath = manifest_path(path)
    manifest = {
        "symbol": symbol,
        "exchange": exchange,
        "timeframe": timeframe,
        "features": signature,
        "hash": _hash(signature),
        "source": _source_info(candles),
    }
    cross = None
    if fine is not None and cfg.rv_cross is not None:
        from cryptocast.features.volatility import load_cross

        cross = load_cross(data_dir, exchange, symbol, cfg)
    if fine is not None:
        manifest["source"]["fine"] = _source_info(fine)
    if cross is not None:
        manifest["source"]["cross"] = _source_info(cross)
    if not force and path.is_file() and mpath.is_file():
        try:
            old = json.loads(mpath.read_text())
        except (OSError, ValueError, RecursionError):  # an unreadable manifest: rebuild
            old = {}
        old = old if isinstance(old, dict) else {}
        if old.get("hash") == manifest["hash"] and old.get("source") == manifest["source"]:
            try:
                table = pd.read_parquet(path)
            except Exception:  # noqa: BLE001  (a corrupt cache is simply rebuilt)
                table = None
            if table is not None:
                table.attrs.update(old.get("stats", {}), cached=True, path=str(path))
                return table
    try:
        extra = {} if fine is None else {"fine": fine, "cross": cross}
        table = compute_features(candles, cfg, timeframe, **extra)
    except DataError as err:
        raise DataError(f"{symbol} {timeframe}: {err}") from None
    stats = {k: table.attrs[k] for k in ("rows_in", "warmup_dropped", "filled_values")}
    manifest["stats"] = stats
    manifest["columns"] = list(table.columns)
    try:
        with data_lock(data_dir):
            path.parent.mkdir(parents=True, exist_ok=True)
            # Manifest goes first and last: a crash between the writes leaves no manifest, so the
            # half-written pair is rebuilt next time rather than trusted.
            mpath.unlink(missing_ok=True)
            remove_stale_temps(path.parent)
            write_parquet_atomic(table, path)
            tmp = mpath.with_suffix(".tmp")
            tmp.write_text(json.dumps(manifest, indent=2, default=str))
            os.replace(tmp, mpath)
    except OSError as err:
        # the cache is an optimisation: a read-only or full data folder still trains and
        # backtests from the candles (the table is only not cached)
        from cryptocast.errors import describe_os_error

        table.attrs.update(stats, cached=False, path=None, cache_error=describe_os_error(err))
        return table
    table.attrs.update(stats, cached=False, path=str(path))
    return table
