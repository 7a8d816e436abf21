"""Can the daily job trust its inputs? Stale candles, an old model, a window across an outage.

The checks, each a pure function of timestamps, so they can be tested by sweeping a clock:

- **stale data**: a candle that closed more than ``grace`` ago is missing from the store. A candle
  opened at ``t`` closes at ``t + timeframe``; the first candle missing after the newest stored one
  (open ``last``) opens at ``last + timeframe`` and closes at ``last + 2 * timeframe``, so the data
  is stale exactly when ``now - (last + 2 * timeframe) > grace``. Any hour of the day works with
  a complete store; only a candle the exchange should have delivered makes it stale.
- **model age**: ``now - trained_until`` (the open time of the newest candle the deployed
  weights learnt from) must not exceed ``forecast.max_model_age`` (default 14 candles, at least
  3 days: 14 days for 1d, 3 days for 1h).
- **trained after the origin**: a model that learnt from a candle after the forecast's newest
  input candle (a replay with a clock before ``trained_until``) is refused at any age.
- **gaps**: the forecast window (the last ``lookback`` rows) must not contain a row that follows
  more than ``features.gap_tolerance`` missing candles, the rule that drops training windows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import human_duration, timeframe_delta
from cryptocast.errors import CheckpointError, ConfigError, ModelTooOldError

GRACE_FRACTION = 0.1  # default grace: a tenth of a candle (2h 24min for 1d, 6min for 1h)
AGE_CANDLES = 14  # default max model age: 14 candles ...
AGE_FLOOR = pd.Timedelta("3D")  # ... and at least 3 days


def parse_grace(grace: str | pd.Timedelta | None, timeframe: str) -> pd.Timedelta:
    """Grace period after a candle closed before its absence counts; default a tenth of a candle."""
    if grace is None or grace == "":
        return timeframe_delta(timeframe) * GRACE_FRACTION
    try:
        delta = pd.Timedelta(grace)
    except (ValueError, TypeError):
        raise ConfigError(f"--grace {grace!r} is not a duration; use e.g. 30min, 2h, 1d") from None
    if delta < pd.Timedelta(0):
        raise ConfigError(f"--grace {grace!r} is negative")
    return delta


def missing_closed_candle(
    last_stored: pd.Timestamp, now: pd.Timestamp, timeframe: str, grace: pd.Timedelta
) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """(open, close) of the first unstored candle when it closed more than ``grace`` before ``now``.

    None when the store is fresh: every candle that closed more than ``grace`` ago is stored.
    """
    step = timeframe_delta(timeframe)
    first_missing = last_stored + step
    closed_at = first_missing + step
    return (first_missing, closed_at) if now - closed_at > grace else None


def stale_reason(
    last_stored: pd.Timestamp, now: pd.Timestamp, timeframe: str, grace: pd.Timedelta
) -> str | None:
    """A one-clause explanation when the store is stale (see the module doc), else None."""
    missing = missing_closed_candle(last_stored, now, timeframe, grace)
    if missing is None:
        return None
    opened, closed = missing
    return (
        f"the {timeframe} candle opened {opened:%Y-%m-%d %H:%M} closed at {closed:%Y-%m-%d %H:%M} "
        f"UTC, {human_duration(now - closed)} ago, more than the {human_duration(grace)} grace, "
        f"and is not stored (newest stored candle: {last_stored:%Y-%m-%d %H:%M})"
    )


def max_model_age(value: str | None, timeframe: str) -> pd.Timedelta:
    """``forecast.max_model_age`` as a Timedelta; None: 14 candles, at least 3 days."""
    if value is None:
        return max(timeframe_delta(timeframe) * AGE_CANDLES, AGE_FLOOR)
    return pd.Timedelta(value)  # validated by the config


def trained_until(meta: dict[str, Any]) -> pd.Timestamp | None:
    """Open time (UTC) of the newest candle the checkpoint's weights learnt from; None if unknown."""
    value = meta.get("trained_until")
    if not value:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def window_gap(table: pd.DataFrame, lookback: int, tolerance: int) -> tuple[int, int] | None:
    """The last row of the forecast window that follows a gap over ``tolerance`` candles.

    The window is the last ``lookback`` rows; as for training windows (``windows.window_ends``)
    a gap before its first row does not count. Returns ``(row, missing candles)`` or None.
    """
    gaps = table["gap_before"].to_numpy("int64")
    lo = max(len(gaps) - lookback + 1, 0)
    bad = np.flatnonzero(gaps[lo:] > tolerance)
    if len(bad) == 0:
        return None
    row = lo + int(bad[-1])
    return row, int(gaps[row])


def candle_gaps(candles: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    """``timestamp`` and ``gap_before`` (missing candles before each row) of stored candles."""
    step = timeframe_delta(timeframe)
    missing = (candles["timestamp"].diff() / step - 1).fillna(0).clip(lower=0).round()
    return pd.DataFrame({"timestamp": candles["timestamp"], "gap_before": missing.astype("int64")})


def gap_reason(table: pd.DataFrame, lookback: int, tolerance: int) -> str | None:
    """A one-clause explanation when the forecast window spans a gap (see the module doc)."""
    found = window_gap(table, lookback, tolerance)
    if found is None:
        return None
    row, missing = found
    ts = table["timestamp"]
    clear_in = row + lookback - len(table)  # more candles until the gap leaves the window
    return (
        f"the forecast window (last {lookback} candles, {ts.iloc[-lookback]:%Y-%m-%d %H:%M} .. "
        f"{ts.iloc[-1]:%Y-%m-%d %H:%M}) spans {missing} missing candle(s) before "
        f"{ts.iloc[row]:%Y-%m-%d %H:%M}, more than features.gap_tolerance {tolerance} "
        f"(training drops such windows; the gap leaves the window in {clear_in} candle(s))"
    )


def check_trained_before(
    until: pd.Timestamp | None, origin: pd.Timestamp, clock: pd.Timestamp, where: str
) -> None:
    """CheckpointError when the model learnt from a candle opened after ``origin``, the newest
    stored candle the forecast starts from: in a replay (a clock before ``trained_until``) the
    forecast would be scored on closes the model was trained on. Refused whatever the age limit."""
    if until is None or until <= origin:
        return
    raise CheckpointError(
        f"{where}: the model was trained on candles up to {until:%Y-%m-%d %H:%M}, after "
        f"{origin:%Y-%m-%d %H:%M}, the newest stored candle and origin of this forecast at "
        f"{clock:%Y-%m-%d %H:%M} UTC: it would be scored on closes it learnt from; nothing "
        "written (replay with a run trained up to the origin, or fetch the candles the model "
        "was trained on)"
    )


def check_model_age(
    meta: dict[str, Any], clock: pd.Timestamp, limit: pd.Timedelta, where: str
) -> pd.Timestamp | None:
    """ModelTooOldError when ``clock - trained_until`` exceeds ``limit`` (or is unknown)."""
    until = trained_until(meta)
    hint = (
        "retrain it (`cryptocast train --config ...`, weekly from cron; see the README), raise "
        "forecast.max_model_age, or pass --allow-old-model"
    )
    if until is None:
        raise ModelTooOldError(
            f"{where}: the checkpoint does not say which candles it was trained on (made before "
            f"cryptocast recorded trained_until), so its age is unknown; {hint}"
        )
    if clock - until > limit:
        raise ModelTooOldError(
            f"{where}: the model was trained on candles up to {until:%Y-%m-%d %H:%M}, "
            f"{human_duration(clock - until)} before {clock:%Y-%m-%d %H:%M} UTC, older than "
            f"forecast.max_model_age {human_duration(limit)}; nothing written; {hint}"
        )
    return until


def check_spacing(candles: pd.DataFrame, timeframe: str, series: str) -> None:
    """CheckpointError when the stored candles are not ``timeframe`` apart (e.g. 1h data, 1d model)."""
    ts = candles["timestamp"].iloc[-200:]
    if len(ts) < 3:
        return
    step = pd.Series(ts).diff().dropna().median()
    if step != timeframe_delta(timeframe):
        raise CheckpointError(
            f"{series}: the stored candles are {human_duration(step)} apart but the checkpoint was "
            f"trained on "
            f"{timeframe} candles; forecast with a model trained on this timeframe"
        )
