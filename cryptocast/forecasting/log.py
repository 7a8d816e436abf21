"""The forecast log: one Parquet file per series, one row per (forecast origin, run, step).

``data/forecasts/{exchange}/{BASE}-{QUOTE}_{timeframe}.parquet`` with the columns of
``LOG_COLUMNS``. A row is keyed by ``(last_candle, run_id, step)``: appending a key that is already
there is a no-op, so a forecast job can run twice for the same candle; a repeated key in the file
(a hand edit) is read once, the first row counting (``load_log``). Every change goes through
``log_lock`` (a file lock beside the log) and ``write_parquet_atomic``, so a reader sees either the
old or the new file, never a torn one. Scoring fills ``realised_close`` and ``error`` once the
target candle is stored and reports live accuracy next to persistence on the same forecasts; for
a quantile model also live interval coverage and CRPS next to ``rw_ewma`` on the same origins.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.errors import ConfigError, DataError, brief

TS = "datetime64[ns, UTC]"
#: Column -> dtype. ``error = realised_close - predicted_close`` (the sign convention of
#: ``evaluate.metrics``); ``predicted_return = predicted_close / last_close - 1``.
LOG_SCHEMA: dict[str, str] = {
    "made_at": TS,
    "last_candle": TS,
    "step": "int64",
    "target_time": TS,
    "model": "str",
    "run_id": "str",
    "config_hash": "str",
    "last_close": "float64",
    "predicted_close": "float64",
    "predicted_return": "float64",
    "stale": "bool",
    "gap": "bool",  # made with --allow-gaps from a window spanning a gap
    "realised_close": "float64",
    "error": "float64",
    # quantile models: JSON {level: predicted close} of this step; "" for a point model
    "quantiles": "str",
    # the same calibrated per backtest.calibration (forecasting/calibration.py); "" if none
    "calibrated_quantiles": "str",
    "calibration": "str",  # cqr | aci | none (a quantile run without one); "" for a point model
}
LOG_COLUMNS = list(LOG_SCHEMA)
#: columns added after the first release: filled with this default when an older log lacks them
OPTIONAL_COLUMNS = {"quantiles": "", "gap": False, "calibrated_quantiles": "", "calibration": ""}
KEY = ["last_candle", "run_id", "step"]
#: The log of a ``realized_vol`` run (``data/vol_forecasts/...``): annualised volatilities.
#: ``rv_last`` = RV of the origin day; ``error = realised_vol - predicted_vol``.
VOL_LOG_SCHEMA: dict[str, str] = {
    "made_at": TS,
    "last_candle": TS,
    "step": "int64",
    "target_time": TS,  # the UTC day whose RV is forecast
    "model": "str",
    "run_id": "str",
    "config_hash": "str",
    "rv_last": "float64",
    "predicted_vol": "float64",
    "stale": "bool",
    "gap": "bool",  # made with --allow-gaps from a window spanning a gap
    "realised_vol": "float64",
    "error": "float64",
}


def coerce_log(df: pd.DataFrame, schema: dict[str, str] | None = None) -> pd.DataFrame:
    """``df`` with exactly the columns of ``schema`` (default ``LOG_SCHEMA``), in order, typed."""
    out = pd.DataFrame(index=range(len(df)))
    for col, dtype in (schema or LOG_SCHEMA).items():
        if col in df.columns:
            values = df[col].to_numpy()
        else:
            values = np.full(len(df), OPTIONAL_COLUMNS.get(col, np.nan), dtype=object)
        if dtype == TS:
            out[col] = pd.to_datetime(values, utc=True).astype(TS)
        elif dtype == "str":
            out[col] = pd.Series(values, dtype=object).astype(str).to_numpy(object)
        else:
            out[col] = pd.Series(values).astype(dtype).to_numpy()
    return out


def empty_log(schema: dict[str, str] | None = None) -> pd.DataFrame:
    return coerce_log(pd.DataFrame(columns=list(schema or LOG_SCHEMA)), schema)


def read_log(path: Path, schema: dict[str, str] | None = None) -> pd.DataFrame:
    """The stored log (empty when the file does not exist yet), one row per key (``load_log``).

    Raises:
        DataError: the file is unreadable, lacks log columns or holds a cell of the wrong type
            (the message names the row); it is never overwritten.
    """
    return load_log(path, schema)[0]


def load_log(path: Path, schema: dict[str, str] | None = None) -> tuple[pd.DataFrame, int]:
    """(the stored log, how many rows were dropped as repeats of an earlier row's key).

    A key ``(last_candle, run_id, step)`` is one forecast; a hand-appended repeat would be scored
    and counted twice, so only the first row of each key is kept (the caller says so).
    """
    path = Path(path)
    if not path.exists():
        return empty_log(schema), 0
    try:
        df = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises many types for a corrupt file
        reason = brief(err)
        raise DataError(
            f"forecast log {path} is unreadable ({reason}); move it aside and rerun"
        ) from None
    missing = [
        c for c in (schema or LOG_SCHEMA) if c not in df.columns and c not in OPTIONAL_COLUMNS
    ]
    if missing:
        raise DataError(
            f"forecast log {path} lacks column(s) {', '.join(missing)}; move it aside and rerun"
        )
    try:
        log = coerce_log(df, schema)
    except (ValueError, TypeError, OverflowError):
        raise DataError(_bad_cell(path, df, schema or LOG_SCHEMA)) from None
    repeated = log.duplicated(KEY, keep="first").to_numpy()
    return log[~repeated].reset_index(drop=True), int(repeated.sum())


def _bad_cell(path: Path, df: pd.DataFrame, schema: dict[str, str]) -> str:
    """The message naming the first cell of ``df`` that is not of its column's log type."""
    for col, dtype in schema.items():
        if col not in df.columns or dtype in ("str", "bool"):  # any value reads as these
            continue
        for row, value in enumerate(df[col].tolist()):
            try:
                coerce_log(pd.DataFrame({col: [value]}), {col: dtype})
            except (ValueError, TypeError, OverflowError):
                kind = {"int64": "a whole number", "float64": "a number"}.get(dtype, "a time")
                return (
                    f"forecast log {path}: row {row} holds {col} = {value!r}, not {kind}; fix or "
                    "delete that row (or move the log aside) and rerun"
                )
    return f"forecast log {path} holds a value of the wrong type; move it aside and rerun"


def check_lock_timeout(timeout: float) -> float:
    """``timeout`` when it is a finite number of seconds >= 0; ConfigError otherwise (a negative
    one would make the lock wait forever)."""
    if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout >= 0):
        raise ConfigError(
            f"--lock-timeout {timeout} is not a number of seconds >= 0; use e.g. 10 (0: give up "
            "at once when another forecast holds the log)"
        )
    return float(timeout)


def log_lock(path: Path, timeout: float = 10.0) -> contextlib.AbstractContextManager[None]:
    """Hold the lock of one forecast log (``<log>.lock``); LockedError after ``timeout`` s."""
    from cryptocast.data.store import file_lock

    path = Path(path)
    lock_path = path.with_name(path.name + ".lock")
    return file_lock(
        lock_path,
        check_lock_timeout(timeout),
        f"another cryptocast forecast is working on {path} (lock {lock_path} held for more "
        f"than {timeout:g} s); let it finish, then rerun",
    )


def append_rows(
    log: pd.DataFrame, rows: pd.DataFrame, schema: dict[str, str] | None = None
) -> tuple[pd.DataFrame, int]:
    """Add the rows whose ``(last_candle, run_id, step)`` is not logged yet. (log, n added)."""
    rows = coerce_log(rows, schema)
    if len(log):
        have = set(zip(*(log[k] for k in KEY), strict=True))
        new = [k not in have for k in zip(*(rows[k] for k in KEY), strict=True)]
        rows = rows[np.asarray(new, dtype=bool)]
    if rows.empty:
        return log, 0
    if log.empty:
        return rows.reset_index(drop=True), len(rows)
    out = pd.concat([log, rows], ignore_index=True)
    out = out.sort_values(["last_candle", "made_at", "step"], kind="stable")
    return out.reset_index(drop=True), len(rows)


def fill_realised(log: pd.DataFrame, candles: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Fill ``realised_close``/``error`` of unscored rows whose target candle is stored.

    Returns the updated log and how many rows were filled.
    """
    if log.empty:
        return log, 0
    closes = pd.Series(
        candles["close"].to_numpy("float64"), index=pd.DatetimeIndex(candles["timestamp"])
    )
    todo = log["realised_close"].isna().to_numpy()
    realised = closes.reindex(pd.DatetimeIndex(log["target_time"])).to_numpy()
    return write_realised(log, todo & np.isfinite(realised), realised, "close")


def write_realised(
    log: pd.DataFrame, fill: np.ndarray, realised: np.ndarray, what: str
) -> tuple[pd.DataFrame, int]:
    """Set ``realised_{what}`` and ``error`` (realised - ``predicted_{what}``) of the rows in
    ``fill`` (a new frame; ``log`` itself when none); returns it and how many rows were filled."""
    if not fill.any():
        return log, 0
    log = log.copy()
    log.loc[fill, f"realised_{what}"] = realised[fill]
    log.loc[fill, "error"] = realised[fill] - log.loc[fill, f"predicted_{what}"].to_numpy()
    return log, int(fill.sum())


def scored_by_model(log: pd.DataFrame, what: str, *columns: str) -> Iterator[tuple[Any, ...]]:
    """Per model (sorted by name) over its rows with ``realised_{what}``: the model name, then
    ``realised_{what}``, ``predicted_{what}`` and each of ``columns`` as float64 arrays."""
    scored = log[log[f"realised_{what}"].notna()]
    names = (f"realised_{what}", f"predicted_{what}", *columns)
    for model, grp in scored.groupby("model", sort=True):
        yield str(model), *(grp[c].to_numpy("float64") for c in names)


def live_metrics(log: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Live accuracy per model over its scored forecasts, with persistence on the same rows.

    Every scored row (any step, stale rows included) is one point. Returns
    ``{model: {n, mae, mape, directional_accuracy, persistence_mae, persistence_mape,
    persistence_directional_accuracy, mase}}``; persistence never calls a direction (NaN).
    """
    from cryptocast.evaluate.metrics import point_metrics

    out: dict[str, dict[str, Any]] = {}
    for model, yt, yp, lc in scored_by_model(log, "close", "last_close"):
        m = point_metrics(yt, yp, lc, ["mae", "mape", "directional_accuracy", "mase"])
        p = point_metrics(yt, lc, lc, ["mae", "mape", "directional_accuracy"])
        out[model] = {
            "n": int(m["n"]),
            "mae": m["mae"],
            "mape": m["mape"],
            "directional_accuracy": m["directional_accuracy"],
            "persistence_mae": p["mae"],
            "persistence_mape": p["mape"],
            "persistence_directional_accuracy": p["directional_accuracy"],
            "mase": m["mase"],
        }
    return out


def quantiles_json(levels, prices) -> str:
    """One step's predicted quantiles as the log's JSON text ``{"0.05": price, ...}``."""
    import json

    return json.dumps({f"{t:g}": float(p) for t, p in zip(levels, prices, strict=True)})


def price_rows(
    base: dict[str, Any],
    prices: np.ndarray,
    quantiles: np.ndarray | None,
    levels: tuple[float, ...] | None,
    last_close: float,
    timeframe: str,
) -> pd.DataFrame:
    """Log rows (``LOG_SCHEMA`` order) of one price forecast: one per step of ``prices`` (H,),
    with ``quantiles`` (H, Q) at ``levels`` for a quantile model; ``base`` holds the columns every
    step shares (made_at, last_candle, model, run_id, config_hash, stale, gap)."""
    from cryptocast.config.timeframes import timeframe_delta

    steps = np.arange(1, len(prices) + 1)
    last = base["last_candle"]
    rows = pd.DataFrame(
        {
            **base,
            "step": steps,
            "target_time": [last + timeframe_delta(timeframe) * int(h) for h in steps],
            "last_close": last_close,
            "predicted_close": prices,
            "predicted_return": prices / last_close - 1.0,
            "realised_close": np.nan,
            "error": np.nan,
            "quantiles": (
                [quantiles_json(levels, qh) for qh in quantiles] if quantiles is not None else ""
            ),
            "calibrated_quantiles": "",  # set by forecasting.calibration
            "calibration": "",
        }
    )
    return rows[LOG_COLUMNS]


def live_prob_metrics(log: pd.DataFrame, candles: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Live scores of the scored rows that carry quantiles, beside ``rw_ewma`` on the same rows.

    ``rw_ewma`` is what the Gaussian EWMA random walk would have forecast at each logged origin
    from the stored closes up to that origin (seeded on the closes before the first origin).
    Returns ``{model: {n_quantile, coverage_80, coverage_90, crps, rw_ewma_coverage_80,
    rw_ewma_coverage_90, rw_ewma_crps, crps_skill}}``; CRPS in log-return units.
    """
    import json

    from cryptocast.evaluate.probabilistic import crps_from_quantiles
    from cryptocast.models.distribution import interval_indices
    from cryptocast.models.random_walk import RandomWalkQuantiles

    scored = log[log["realised_close"].notna() & (log["quantiles"].astype(str) != "")]
    if scored.empty:
        return {}
    ts = pd.DatetimeIndex(candles["timestamp"])
    close = candles["close"].to_numpy("float64")
    out: dict[str, dict[str, Any]] = {}
    for model, grp in scored.groupby("model", sort=True):
        qs = [json.loads(t) for t in grp["quantiles"]]
        levels = [float(k) for k in qs[0]]
        keep = [list(map(float, d)) == levels for d in qs]  # one level set per model
        grp = grp[np.asarray(keep)]
        q = np.array([list(d.values()) for d, k in zip(qs, keep, strict=True) if k])  # (n, Q)
        origin = ts.get_indexer(pd.DatetimeIndex(grp["last_candle"]))
        ok = origin > 1
        grp, q, origin = grp[ok], q[ok], origin[ok]
        if len(grp) == 0:
            continue
        lc = grp["last_close"].to_numpy("float64")
        zy = np.log(grp["realised_close"].to_numpy("float64") / lc)
        zq = np.log(q / lc[:, None])
        steps = grp["step"].to_numpy("int64")
        rw = RandomWalkQuantiles("ewma", int(steps.max()), levels)
        rw.fit_series(close[: int(origin.min()) + 1])
        zr = rw.predict_series(close, origin)[np.arange(len(origin)), steps - 1]  # (n, Q)
        rec: dict[str, Any] = {"n_quantile": int(len(grp))}
        for name, z in (("", zq), ("rw_ewma_", zr)):
            for cov in (80, 90):
                idx = interval_indices(levels, cov)
                if idx is not None:
                    inside = (z[:, idx[0]] <= zy) & (zy <= z[:, idx[1]])
                    rec[f"{name}coverage_{cov}"] = float(inside.mean())
            rec[f"{name}crps"] = float(crps_from_quantiles(z, zy, levels).mean())
        rec["crps_skill"] = 1.0 - rec["crps"] / rec["rw_ewma_crps"] if rec["rw_ewma_crps"] else None
        out[str(model)] = rec
    return out
