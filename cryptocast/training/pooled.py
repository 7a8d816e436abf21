"""A pooled run's checkpoint: what it records of its pool, and the view of one series in it.

``cryptocast train`` of a pooled config (``backtest.pooled``, ``evaluate/pooled_train.py``) writes
ONE checkpoint for the whole pool. Besides the weights and what every checkpoint holds (model and
features config, feature list, lookback, horizon, target, config and hashes, ``trained_until``:
the newest candle of ANY series the weights learnt from), its meta carries ``pooled``:

- ``evaluated``: the symbols the run forecasts (``backtest.symbols``);
- ``series``: every series of the pool in stacking order, the evaluated ones first and then the
  training-only ``train.universe``; a series' position is its row of the series embedding
  (``model.series_embedding``; the table itself is in the weights, ``embed.weight``);
- ``members``: each series that trained, with its own x and y scaler statistics (fitted on its
  own training rows only), the volatility target's factor, its rows, its own ``trained_until``
  and, for a calibrated quantile run, its calibration record;
- ``scaled_before``: the deployed scalers were fitted on rows that open before this time (every
  stored row after a refit); a series outside the pool is scaled on its own rows before it.

The meta is written by ``training.runs.pooled_meta``. :func:`series_meta` turns it into the meta
of one series, shaped like a per-series checkpoint's (``data.symbol``, ``x_scaler``, ...), so
``Predictor`` and the daily job read both alike.
"""

from __future__ import annotations

from typing import Any

from cryptocast.errors import CheckpointError, ConfigError

POOLED = "pooled"


def n_series(meta: dict[str, Any]) -> int:
    """Rows of a pooled checkpoint's series embedding (1 for a per-series checkpoint)."""
    return len(meta[POOLED]["series"]) if POOLED in meta else 1


def served_symbols(meta: dict[str, Any]) -> list[str] | None:
    """The symbols a pooled checkpoint forecasts by default (its evaluated ones); None for a
    per-series checkpoint."""
    if POOLED not in meta:
        return None
    return [str(s) for s in meta[POOLED]["evaluated"]]


def series_meta(meta: dict[str, Any], symbol: str | None, run: str) -> dict[str, Any]:
    """The meta of ``symbol``'s series, shaped like a per-series checkpoint's.

    A per-series checkpoint serves its own series only. A pooled one serves every series it
    trained on with their recorded scalers (by default: its only evaluated symbol); with the
    series embedding off, also a series outside its pool, whose scalers (``x_scaler`` None
    here) ``forecasting.pooled.outside_predictor`` then fits on that series' own rows before ``scaled_before``.

    Raises:
        ConfigError: ``symbol`` is not a series the checkpoint can forecast, or a pooled
            checkpoint of several symbols was given none (``run`` names it in the message).
        CheckpointError: the pool's record is malformed.
    """
    if POOLED not in meta:
        own = (meta.get("data") or {}).get("symbol")
        if symbol is not None and own is not None and symbol != own:
            raise ConfigError(
                f"run {run} was trained on {own} only, not {symbol}; drop --symbol or pass "
                f"--symbol {own}"
            )
        return meta
    try:
        pool, data = meta[POOLED], meta["data"]
        evaluated, members = list(pool["evaluated"]), dict(pool["members"])
        series = list(pool["series"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"run {run}: its pool record lacks {err}; retrain") from None
    if symbol is None:
        if len(evaluated) != 1:
            raise ConfigError(
                f"run {run} is pooled over {', '.join(evaluated)}: name one with --symbol "
                "(`cryptocast forecast` without it forecasts each)"
            )
        symbol = evaluated[0]
    embedding = bool(pool.get("embedding"))
    if embedding and symbol not in members:
        raise ConfigError(
            f"run {run} has model.series_embedding and forecasts only the series it trained on "
            f"({', '.join(members)}), not {symbol}; add {symbol} to backtest.symbols and retrain, "
            "or train without the embedding to forecast other series"
        )
    out = {k: v for k, v in meta.items() if k not in (POOLED, "calibration")}
    own = members.get(symbol, {})
    out["data"] = {
        "exchange": data.get("exchange"),
        "symbol": symbol,
        "timeframe": data.get("timeframe"),
        **own.get("data", {}),
    }
    out["x_scaler"], out["y_scaler"] = own.get("x_scaler"), own.get("y_scaler")
    out["variance_factor"] = own.get("variance_factor")
    if own.get("calibration"):
        out["calibration"] = own["calibration"]
    out["pool"] = {
        "evaluated": evaluated,
        "series": series,
        "scaled_before": pool.get("scaled_before"),
        "member": symbol in members,
    }
    out["series_index"] = series.index(symbol) if embedding else None
    return out
