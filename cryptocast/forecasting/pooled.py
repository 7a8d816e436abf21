"""The daily job's side of a pooled run: which series it forecasts, and a series outside its pool.

A pooled run (``backtest.pooled``; its checkpoint: :mod:`cryptocast.training.pooled`) forecasts
each of its evaluated symbols through ``job.forecast_series``, one series at a time, so every
guarantee of the job (model age, fetch, freshness, gaps, the log's lock, idempotence, the replay
refusal) holds per series. ``--symbol`` picks among them; it may also name a training-only series
of the pool, and, when the run has no series embedding, a series outside the pool: its scalers
are then fitted on its own rows before the run's ``scaled_before`` (:func:`outside_predictor`),
as the backtest's ``evaluate.pooled.series_predictor`` fits them before a fold's cut.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cryptocast.errors import DataError


def run_symbols(ckpt: Path, wanted: list[str] | None = None) -> list[str | None]:
    """The series to forecast with the run of checkpoint ``ckpt``: ``wanted`` if given, else
    every evaluated symbol of a pooled run, else ``[None]`` (a per-series run's own series)."""
    from cryptocast.training.checkpoint import read_checkpoint
    from cryptocast.training.pooled import served_symbols

    if wanted:
        return list(dict.fromkeys(wanted))
    meta = read_checkpoint(ckpt).get("meta")
    served = served_symbols(meta) if isinstance(meta, dict) else None
    return list(served) if served else [None]


def outside_predictor(predictor: Any, table: pd.DataFrame) -> Any:
    """``predictor`` (a pooled model without the series embedding, for a series outside its pool)
    with that series' own scalers and factor, fitted on its feature rows (``table``) from
    ``data.start`` to before the run's ``scaled_before``, the rows a pool member's were fitted on.

    Raises:
        DataError: the series has no training window before ``scaled_before``.
    """
    from dataclasses import replace

    from cryptocast.config.dates import to_timestamp
    from cryptocast.config.schema import FeaturesConfig
    from cryptocast.features.windows import prepare
    from cryptocast.training.inference import fit_variance_factor

    meta = predictor.meta
    before = pd.Timestamp(meta["pool"]["scaled_before"])
    start = ((meta.get("config") or {}).get("data") or {}).get("start")
    keep = table["timestamp"] < before
    if start:
        keep &= table["timestamp"] >= to_timestamp(start, "data.start")
    rows = table[keep].reset_index(drop=True)
    fcfg = FeaturesConfig.model_validate(meta["features_config"])
    try:
        data = prepare(rows, fcfg, {"train": (0, len(rows))}, embargo=True)
    except DataError:
        raise DataError(
            f"{meta['data']['symbol']} is outside this pooled run's series, so it is scaled on "
            f"its own rows before {before:%Y-%m-%d %H:%M} (where the run's training rows end), "
            f"but it has {len(rows)} of them, too few for one window; fetch its history or "
            "train a run whose pool includes it"
        ) from None
    factor = fit_variance_factor(predictor.model, data)
    return replace(
        predictor, x_scaler=data.x_scaler, y_scaler=data.y_scaler, variance_factor=factor
    )
