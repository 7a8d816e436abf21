"""Daily realized measures from finer candles, and the causal volatility features built on them.

Returns. ``r_i = log(close_i / close_{i-1})`` between two CONSECUTIVE stored candles of
``features.rv_source`` (``1m``, ``5m``, ``15m`` or ``1h``; ``M = 86400000 / timeframe_ms`` of them
open on a UTC day: 1440, 288, 96 or 24). A return belongs to the day of the candle it ends in, so
day ``d``'s first return is measured from the close of day ``d-1``'s last candle. A missing candle
removes its return (and the next one) instead of merging two intervals into one.

Measures of day ``d`` (daily, variance units; Barndorff-Nielsen & Shephard 2004, Patton & Sheppard
2015, Bollerslev, Patton & Quaedvlieg 2016), from its ``n`` returns and the ``p`` pairs of adjacent
returns both inside the day (``p = M - 1`` on a complete day):

- ``RV = (M / n) sum r_i^2`` (the column ``rv`` is its square root, a daily volatility);
- ``RS+ = (M / n) sum r_i^2 [r_i > 0]``, ``RS- = (M / n) sum r_i^2 [r_i < 0]`` (``RS+ + RS- = RV``);
- ``RQ = (M^2 / (3 n)) sum r_i^4`` (``(M / 3) sum r_i^4`` on a complete day);
- ``BV = mu1^-2 (M / p) sum |r_i| |r_{i-1}|``, ``mu1 = sqrt(2 / pi)``: robust to a few jumps, so it
  stays near the continuous (integrated) variance where ``RV`` does not;
- ``J = max(RV - BV, 0)``, the jump part, and ``C = RV - J = min(RV, BV)``, the continuous part.

Missing-candle rule (the same for every source). Each sum is rescaled to a full day by ``M / n``
(``M / p`` for BV), and ``rv_missing_hours`` holds the missing returns ``M - n`` (0 on a complete
day; for a finer source it counts missing candles, not hours). A day with fewer than
``ceil(features.rv_min_hours / 24 * M)`` returns (the same FRACTION of a day: 20/24 = 240 of 288
five-minute returns) gets no measure at all (NaN: not a label, and carried forward as a feature).
With ``rv_source: 1h`` every measure is still computed, from 24 hourly returns: noisier, but the
HAR-family models of ``models/har.py`` run unchanged on it.

Row ``t`` of a daily feature table is the candle of day ``t``, closed at midnight ending it; its
measures use candles of day ``t`` only, so they are known at that close. Features, all causal:

- ``log_rv_d``, ``log_rv_w``, ``log_rv_m``: log of RV (as volatility) and of its 7- and 30-day
  means (the HAR components of Corsi 2009; crypto trades every day, so a week is 7 rows);
- ``rv_missing_hours``: ``M - n``;
- ``log_parkinson``, ``log_garman_klass``: log range-based daily volatility of the daily candle
  (Parkinson 1980; Garman and Klass 1980);
- ``ret_1d``, ``abs_ret_1d``: the signed and absolute daily log return;
- ``log_ewma_vol``: log of RiskMetrics' (J.P. Morgan 1996) one-day-ahead volatility of daily log
  returns, ``s2_{t+1} = 0.94 s2_t + 0.06 r_t^2``;
- ``rq_rel_d``: ``sqrt(RQ) / RV``, dimensionless (about 1 for constant Gaussian volatility), the
  measurement-error proxy by which HARQ lets the daily coefficient vary;
- ``log_rs_pos_d``, ``log_rs_neg_d``: ``0.5 log RS+``, ``0.5 log RS-``;
- ``log_cv_d``, ``log_cv_w``, ``log_cv_m``: log of ``sqrt(C)`` and of its 7- and 30-day means;
- ``jv_d``, ``jv_w``, ``jv_m``: the jump volatility ``sqrt(J)`` (0 on a day without a jump) and its
  7- and 30-day means (Andersen, Bollerslev & Diebold 2007's C and J components, in vol units);
- with ``features.rv_cross`` set, ``x_log_rv_d``, ``x_log_rv_w``, ``x_log_rv_m``: the HAR
  components of that other symbol's RV, from its own ``rv_source`` candles of the same UTC day.

Every volatility here is DAILY (not annualised) and a fraction; ``targets`` annualises for output.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import timeframe_ms
from cryptocast.errors import ConfigError, DataError

DAY_MS = 86_400_000
RISKMETRICS_LAMBDA = 0.94
HAR_WINDOWS = {"w": 7, "m": 30}
MU1 = math.sqrt(2.0 / math.pi)  # E|Z| of a standard normal
VOL_FEATURES = [
    "log_rv_d", "log_rv_w", "log_rv_m", "rv_missing_hours", "log_parkinson",
    "log_garman_klass", "ret_1d", "abs_ret_1d", "log_ewma_vol",
    "rq_rel_d", "log_rs_pos_d", "log_rs_neg_d", "log_cv_d", "log_cv_w", "log_cv_m",
    "jv_d", "jv_w", "jv_m",
]  # fmt: skip
CROSS_FEATURES = ["x_log_rv_d", "x_log_rv_w", "x_log_rv_m"]


def _ms(ts: pd.Series) -> np.ndarray:
    return ts.astype("datetime64[ns, UTC]").astype("int64").to_numpy() // 1_000_000


def min_returns(source: str, min_hours: int) -> int:
    """Fewest returns a day of ``source`` candles needs: the fraction ``min_hours / 24`` of it."""
    per_day = DAY_MS // timeframe_ms(source)
    return max(1, math.ceil(min_hours / 24 * per_day - 1e-9))


def daily_realized_vol(fine: pd.DataFrame, source: str = "1h", min_count: int = 20) -> pd.DataFrame:
    """Daily realized measures from finer candles (the module doc has the formulas and rule).

    Args:
        fine: candles of ``source`` (``timestamp``, ``close``), sorted and unique.
        source: their timeframe; a day holds ``M = 86400000 / timeframe_ms(source)`` of them.
        min_count: ``features.rv_min_hours``: a day needs ``min_count / 24`` of its ``M`` returns.

    Returns:
        One row per UTC day that has at least one return: ``day`` (UTC midnight), ``rv`` (daily
        volatility fraction), ``n`` (returns counted) and the variances ``rq``, ``rs_pos``,
        ``rs_neg``, ``bv``, ``jump``, ``cont``; every measure NaN on a day with too few returns.
    """
    per_day = DAY_MS // timeframe_ms(source)
    ms = _ms(fine["timestamp"])
    close = fine["close"].to_numpy("float64")
    if np.any(~np.isfinite(close)) or np.any(close <= 0):
        raise DataError(f"{source} candles hold non-positive or missing closes; re-fetch them")
    ok = np.diff(ms) == timeframe_ms(source)  # return i: from candle i to candle i+1
    r = np.diff(np.log(close))
    day = ms[1:] // DAY_MS  # the day of the candle the return ends in (by its open time)
    # pairs (r_{i-1}, r_i): both counted and inside the same day
    pair = np.zeros(len(r), dtype=bool)
    pair[1:] = ok[1:] & ok[:-1] & (day[1:] == day[:-1])
    prod = np.zeros(len(r))
    prod[1:] = np.abs(r[1:]) * np.abs(r[:-1])
    r2 = r * r
    frame = pd.DataFrame(
        {
            "day": day[ok],
            "r2": r2[ok],
            "pos": np.where(r > 0, r2, 0.0)[ok],
            "neg": np.where(r < 0, r2, 0.0)[ok],
            "r4": (r2 * r2)[ok],
            "bp": np.where(pair, prod, 0.0)[ok],
            "np": pair[ok].astype("int64"),
        }
    )
    g = frame.groupby("day").agg(
        rv=("r2", "sum"), n=("r2", "count"), pos=("pos", "sum"), neg=("neg", "sum"),
        r4=("r4", "sum"), bp=("bp", "sum"), np=("np", "sum"),
    )  # fmt: skip
    n = g["n"].to_numpy()
    scale = per_day / np.maximum(n, 1)
    rv2 = g["rv"].to_numpy() * scale
    bv = g["bp"].to_numpy() * per_day / np.maximum(g["np"].to_numpy(), 1) / MU1**2
    bv = np.where(g["np"].to_numpy() > 0, bv, np.nan)
    keep = n >= min_returns(source, min_count)
    out = {
        "rv": np.sqrt(rv2),
        "rq": per_day * scale * g["r4"].to_numpy() / 3.0,
        "rs_pos": g["pos"].to_numpy() * scale,
        "rs_neg": g["neg"].to_numpy() * scale,
        "bv": bv,
        "jump": np.maximum(rv2 - bv, 0.0),
        "cont": np.minimum(rv2, bv),
    }
    days = pd.to_datetime(g.index.to_numpy() * DAY_MS, unit="ms", utc=True)
    res = pd.DataFrame({"day": days, "n": n})
    for k, v in out.items():
        res[k] = np.where(keep, v, np.nan)
    return res[["day", "rv", "n", "rq", "rs_pos", "rs_neg", "bv", "jump", "cont"]]


def cross_symbol(rv_cross: str, symbol: str) -> str:
    """The symbol ``features.rv_cross`` names for ``symbol``: ``auto`` is BTC/USDT (ETH/USDT for
    BTC/USDT itself); the series' own symbol is a ConfigError (its RV is already a feature)."""
    other = rv_cross
    if rv_cross == "auto":
        other = "ETH/USDT" if symbol.upper() == "BTC/USDT" else "BTC/USDT"
    if other.upper() == symbol.upper():
        raise ConfigError(
            f"features.rv_cross={rv_cross} is the series itself ({symbol}); name another symbol"
        )
    return other


def load_cross(data_dir, exchange: str, symbol: str, cfg) -> pd.DataFrame:
    """The stored ``cfg.rv_source`` candles of the ``cfg.rv_cross`` symbol (through the store)."""
    from cryptocast.data.hints import fetch_command
    from cryptocast.data.store import load_series

    other = cross_symbol(cfg.rv_cross, symbol)
    cross = load_series(data_dir, exchange, other, cfg.rv_source)
    if len(cross) == 0:
        raise DataError(
            f"no {cfg.rv_source} candles stored for {other} (features.rv_cross); run "
            f"{fetch_command(exchange, other, cfg.rv_source, data_dir)}"
        )
    return cross


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


def _on_days(rvd: pd.DataFrame, days: np.ndarray, col: str) -> np.ndarray:
    """``rvd[col]`` of each day in ``days`` (UTC-midnight ms); NaN for a day it lacks."""
    pos = pd.Index(_ms(rvd["day"])).get_indexer(days)
    return np.where(pos >= 0, rvd[col].to_numpy("float64")[np.maximum(pos, 0)], np.nan)


def _har_means(name: str, daily: np.ndarray, log: bool = True) -> dict[str, np.ndarray]:
    """``{name}_d``, ``{name}_w``, ``{name}_m``: the day and its 7- and 30-row means (logged)."""
    s = pd.Series(daily)
    out = {f"{name}_d": daily}
    for key, w in HAR_WINDOWS.items():
        out[f"{name}_{key}"] = s.rolling(w, min_periods=(w + 1) // 2).mean().to_numpy()
    return {k: _log(v) for k, v in out.items()} if log else out


def vol_columns(
    candles: pd.DataFrame,
    fine: pd.DataFrame,
    source: str,
    min_count: int,
    cross: pd.DataFrame | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Volatility features for daily ``candles`` and the raw daily RV per row (for the labels).

    Args:
        cross: ``source`` candles of the ``features.rv_cross`` symbol; adds ``CROSS_FEATURES``.

    Returns:
        ``(features, rv)``: ``features`` maps the ``VOL_FEATURES`` names to (n,) arrays; ``rv``
        (n,) is each row's RV, NaN where the day has none (no carry-forward: labels must not
        invent a realised value).
    """
    rvd = daily_realized_vol(fine, source, min_count)
    per_day = DAY_MS // timeframe_ms(source)
    days = _ms(candles["timestamp"]) // DAY_MS * DAY_MS
    rv = _on_days(rvd, days, "rv")
    n = np.nan_to_num(_on_days(rvd, days, "n"), nan=0.0)
    out: dict[str, np.ndarray] = dict(_har_means("log_rv", rv))
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
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rq_rel_d"] = np.sqrt(_on_days(rvd, days, "rq")) / rv**2
    out["log_rs_pos_d"] = 0.5 * _log(_on_days(rvd, days, "rs_pos"))
    out["log_rs_neg_d"] = 0.5 * _log(_on_days(rvd, days, "rs_neg"))
    out.update(_har_means("log_cv", np.sqrt(_on_days(rvd, days, "cont"))))
    out.update(_har_means("jv", np.sqrt(_on_days(rvd, days, "jump")), log=False))
    if cross is not None:
        x_rv = _on_days(daily_realized_vol(cross, source, min_count), days, "rv")
        out.update({f"x_{k}": v for k, v in _har_means("log_rv", x_rv).items()})
    return out, rv
