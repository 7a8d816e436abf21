"""Daily realized volatility from finer candles, and the causal volatility features built on it.

``RV(d) = sqrt(sum_i r_i^2)`` over the log returns ``r_i = log(close_i / close_{i-1})`` of the
hourly candles that open on UTC day ``d`` (24 of them; the first one is measured from the close
of the last hour of day ``d-1``, which is day ``d-1``'s close). A return is counted only between
two consecutive stored candles (one hour apart): a missing hour removes its return (and the next
one) instead of merging two hours into one. A day with ``n < 24`` returns is rescaled by
``24 / n`` (``RV = sqrt(24/n * sum r^2)``) and flagged in ``rv_missing_hours``; a day with fewer
than ``features.rv_min_hours`` returns gets no RV at all (NaN: not a label, and carried forward
as a feature).

Row ``t`` of a daily feature table is the candle of day ``t``, closed at midnight ending it; its
RV uses hourly candles of day ``t`` only, so it is known at that close. Features, all causal:

- ``log_rv_d``, ``log_rv_w``, ``log_rv_m``: log of RV and of its 7- and 30-day means (the HAR
  components of Corsi 2009; crypto trades every day, so a week is 7 rows);
- ``rv_missing_hours``: ``24 - n`` (0 on a complete day);
- ``log_parkinson``, ``log_garman_klass``: log range-based daily volatility of the daily candle
  (Parkinson 1980; Garman and Klass 1980);
- ``ret_1d``, ``abs_ret_1d``: the signed and absolute daily log return;
- ``log_ewma_vol``: log of RiskMetrics' (J.P. Morgan 1996) one-day-ahead volatility of daily log
  returns, ``s2_{t+1} = 0.94 s2_t + 0.06 r_t^2``.

Every volatility here is DAILY (not annualised) and a fraction; ``targets`` annualises for output.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import timeframe_ms
from cryptocast.errors import DataError

DAY_MS = 86_400_000
RISKMETRICS_LAMBDA = 0.94
HAR_WINDOWS = {"w": 7, "m": 30}
VOL_FEATURES = [
    "log_rv_d", "log_rv_w", "log_rv_m", "rv_missing_hours", "log_parkinson",
    "log_garman_klass", "ret_1d", "abs_ret_1d", "log_ewma_vol",
]  # fmt: skip


def _ms(ts: pd.Series) -> np.ndarray:
    return ts.astype("datetime64[ns, UTC]").astype("int64").to_numpy() // 1_000_000


def daily_realized_vol(fine: pd.DataFrame, source: str = "1h", min_count: int = 20) -> pd.DataFrame:
    """Daily RV from finer candles.

    Args:
        fine: candles of ``source`` (``timestamp``, ``close``), sorted and unique.
        source: their timeframe; a day holds ``86400000 / timeframe_ms(source)`` of them.
        min_count: fewest returns a day needs to get an RV.

    Returns:
        One row per UTC day that has at least one return: ``day`` (UTC midnight), ``rv`` (daily
        fraction; NaN below ``min_count``), ``n`` (returns counted).
    """
    per_day = DAY_MS // timeframe_ms(source)
    ms = _ms(fine["timestamp"])
    close = fine["close"].to_numpy("float64")
    if np.any(~np.isfinite(close)) or np.any(close <= 0):
        raise DataError(f"{source} candles hold non-positive or missing closes; re-fetch them")
    ok = np.diff(ms) == timeframe_ms(source)  # return i: from candle i to candle i+1
    r2 = np.diff(np.log(close)) ** 2
    day = ms[1:] // DAY_MS  # the day of the candle the return ends in (by its open time)
    frame = pd.DataFrame({"day": day[ok], "r2": r2[ok]})
    g = frame.groupby("day")["r2"].agg(["sum", "count"])
    n = g["count"].to_numpy()
    rv = np.sqrt(g["sum"].to_numpy() * per_day / np.maximum(n, 1))
    rv = np.where(n >= min_count, rv, np.nan)
    days = pd.to_datetime(g.index.to_numpy() * DAY_MS, unit="ms", utc=True)
    return pd.DataFrame({"day": days, "rv": rv, "n": n})


def ewma_vol(ret: np.ndarray, lam: float = RISKMETRICS_LAMBDA) -> np.ndarray:
    """RiskMetrics one-step-ahead volatility after each row: ``s2_{t+1} = lam s2_t + (1-lam) r_t^2``.

    Starts at the first finite return (``s2 = r^2``); NaN before it; a NaN return keeps ``s2``.
    """
    out = np.full(len(ret), np.nan)
    s2 = math.nan
    for t, r in enumerate(ret):
        if math.isfinite(r):
            s2 = r * r if math.isnan(s2) else lam * s2 + (1.0 - lam) * r * r
        out[t] = s2
    return np.sqrt(out)


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), np.nan)


def vol_columns(
    candles: pd.DataFrame, fine: pd.DataFrame, source: str, min_count: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Volatility features for daily ``candles`` and the raw daily RV per row (for the labels).

    Returns:
        ``(features, rv)``: ``features`` maps the ``VOL_FEATURES`` names to (n,) arrays; ``rv``
        (n,) is each row's RV, NaN where the day has none (no carry-forward: labels must not
        invent a realised value).
    """
    rvd = daily_realized_vol(fine, source, min_count)
    per_day = DAY_MS // timeframe_ms(source)
    days = _ms(candles["timestamp"]) // DAY_MS * DAY_MS
    idx = pd.Index(_ms(rvd["day"]))
    pos = idx.get_indexer(days)
    found = pos >= 0
    rv = np.where(found, rvd["rv"].to_numpy()[np.maximum(pos, 0)], np.nan)
    n = np.where(found, rvd["n"].to_numpy()[np.maximum(pos, 0)], 0)
    rv_s = pd.Series(rv)
    out: dict[str, np.ndarray] = {"log_rv_d": _log(rv)}
    for key, w in HAR_WINDOWS.items():
        mean = rv_s.rolling(w, min_periods=(w + 1) // 2).mean().to_numpy()
        out[f"log_rv_{key}"] = _log(mean)
    out["rv_missing_hours"] = np.clip(per_day - n, 0, per_day).astype("float64")
    o, h, lo, c = (candles[k].to_numpy("float64") for k in ("open", "high", "low", "close"))
    hl = np.log(h / lo)
    co = np.log(c / o)
    out["log_parkinson"] = 0.5 * _log(hl**2 / (4.0 * math.log(2.0)))
    out["log_garman_klass"] = 0.5 * _log(0.5 * hl**2 - (2.0 * math.log(2.0) - 1.0) * co**2)
    ret = np.full(len(c), np.nan)
    ret[1:] = np.diff(np.log(c))
    out["ret_1d"] = ret
    out["abs_ret_1d"] = np.abs(ret)
    out["log_ewma_vol"] = _log(ewma_vol(ret))
    return out, rv
