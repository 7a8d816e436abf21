"""``cryptocast train`` of a pooled config: one model over many series, written as one run.

With ``backtest.pooled``, ``train`` fits ONE model (``model.name``, trained by gradient descent)
on ``data.timeframe`` over the pool: the evaluated symbols (``backtest.symbols``) followed by the
training-only ``train.universe`` (``data.symbol`` is not read). The split is ``split``'s, cut on
the calendar so that it holds across series:

- each evaluated symbol's own split (``windows.split_bounds``) gives the open times of its first
  validation and first test row; the pool's cuts ``val_cut`` and ``cut`` are the earliest of them
  (``split.method: date``: the two dates);
- every series of the pool is cut at its own rows of those times (:func:`calendar_segments`):
  training targets open before ``val_cut`` and validation targets before ``cut``, so no series
  contributes a training or validation window whose target opens at or after the first test
  candle (the backtest's rule, ``evaluate/pooled.py``), whatever its own row indexing;
- each series is prepared alone (scalers fit on its own training rows) and the series are
  stacked (``pooled.stack_series``); a training-only series without a training window is left
  out; the model is scored on each evaluated symbol's test windows.

With ``train.refit_all`` the model is then refit like a per-series run (``runs.refit_model``):
from the seed, for the validated best epoch count, on every stored row of every series of the
pool, each scaled by all its rows. The checkpoint records the pool (``training/pooled.py``). A
pool of one evaluated symbol is the per-series run of that symbol, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.schema import Config
from cryptocast.errors import ConfigError, DataError
from cryptocast.training.runs import RunResult, load_feature_table


def train_pooled(
    cfg: Config,
    data_dir: Path,
    progress_cb: Callable[[dict[str, float]], None] | None = None,
    batch_cb: Callable[[int, int, int], None] | None = None,
) -> RunResult:
    """Train one pooled model (see module doc) and write a complete run directory."""
    from cryptocast.config.names import check_writable_dir
    from cryptocast.evaluate.run_files import (
        calibration_for,
        calibration_summary,
        run_metrics,
        write_run,
    )
    from cryptocast.evaluate.scoring import scoring_for
    from cryptocast.features.targets import get_target
    from cryptocast.models.registry import is_poolable, is_trainable
    from cryptocast.models.series import build_pooled_model
    from cryptocast.training.inference import predict_prices
    from cryptocast.training.loop import fit, resolve_device, seed_everything
    from cryptocast.training.runs import pooled_meta

    resolve_device(cfg.train.device)
    if not is_trainable(cfg.model.name):
        name = cfg.model.name
        what = (
            f"is pooled by backtest only ({name}@pooled)"
            if is_poolable(name)
            else "is fitted per series"
        )
        raise ConfigError(
            f"model.name {name} {what}; a pooled `train` trains one model "
            "by gradient descent over the pool (lstm, gru, transformer, performer_bilstm): pick "
            "one of those, or set backtest.pooled=false"
        )
    target = get_target(cfg.features.target)
    target.check_models([cfg.model.name])
    target.check_timeframe(cfg.data.timeframe)
    unit = train_unit(cfg, data_dir)
    tables = feature_tables(cfg, data_dir, unit)
    f = cfg.features
    val_cut, cut = calendar_cuts(tables, unit.symbols, cfg, f.lookback, f.horizon)
    segments = partial(calendar_segments, val_cut=val_cut, cut=cut, evaluated=unit.symbols)
    data = _stack(tables, unit, segments, cfg)
    check_writable_dir(Path(cfg.output.runs_dir), "output.runs_dir")  # not after an hour's fit
    seed_everything(cfg.train.seed)
    build = partial(build_pooled_model, cfg.model, len(data.feature_names), f.horizon,
                    f.lookback, len(unit.series))  # fmt: skip
    model = build()
    result = fit(model, data, cfg.train, progress_cb, batch_cb)

    test: dict[str, Any] = {}
    calibration: dict[str, dict[str, Any]] = {}
    for s in unit.symbols:
        part = data.parts[data.series.index(s)]
        ends = part.ends.get("test", np.empty(0, np.int64))
        test[s] = {}
        if len(ends):  # each symbol's own test windows, through its own scalers
            pred = predict_prices(model, part, ends)
            test[s] = scoring_for(target).holdout(target, tables[s], part, ends, pred)
        record = calibration_for(cfg, model, part, tables[s])  # the validated model
        if record is not None:
            calibration[s] = record
    seen = np.concatenate([data.ends["train"], data.ends.get("val", [])]).astype(np.int64)
    fit_until = pd.Timestamp(data.timestamps[seen + f.horizon].max(), tz="UTC")
    deployed, scaled_before = (model, data, tables, result, None), val_cut
    if cfg.train.refit_all:
        deployed, scaled_before = refit_pooled(cfg, data_dir, unit, build, result)
    pool = {"evaluated": unit.symbols, "series": unit.series, "scaled_before": scaled_before}
    meta = pooled_meta(cfg, *deployed, pool=pool, calibration=calibration or None)
    summary = {s: calibration_summary(r) for s, r in calibration.items()}
    metrics = run_metrics(cfg, result, data, test, summary or None, meta)
    metrics["pooled"] = {
        "evaluated": list(unit.symbols),
        "universe": list(unit.universe),
        "trained": list(data.series),  # a training-only series without windows is left out
        "deployed": list(deployed[1].series),
        "val_cut": str(val_cut),
        "cut": str(cut),
        "fit_until": str(fit_until),  # the newest target candle the validated fit read
        "n_windows": {s: {k: int(len(v)) for k, v in p.ends.items()}
                      for s, p in zip(data.series, data.parts, strict=True)},
    }  # fmt: skip
    files = {"members": calibration} if calibration else None  # per symbol, for ACI replays
    return write_run(cfg, metrics, meta, deployed[0], files)


def train_unit(cfg: Config, data_dir: Path) -> Any:
    """The pool of a pooled ``train``: ``backtest.symbols``, then ``train.universe`` (checked:
    stored candles of each), on ``data.timeframe``."""
    from cryptocast.evaluate.pooled import PoolUnit, check_universe

    symbols = tuple(dict.fromkeys(cfg.backtest.symbols))
    universe = tuple(u for u in cfg.train.universe if u not in symbols)
    check_universe(cfg, universe, [cfg.data.timeframe], data_dir)
    return PoolUnit(cfg.data.timeframe, cfg.model.name, symbols, universe)


def series_config(cfg: Config, symbol: str) -> Config:
    """``cfg`` pointed at one series of the pool."""
    c = cfg.model_copy(deep=True)
    c.data.symbol = symbol
    return c


def feature_tables(
    cfg: Config, data_dir: Path, unit: Any, to_last: bool = False
) -> dict[str, pd.DataFrame]:
    """Each series' feature table (``runs.load_feature_table``: ``data.start``/``data.end``, or
    every row up to the last with ``to_last``); a training-only series with no rows is left
    out, an evaluated one raises DataError naming it."""
    tables = {}
    for s in unit.series:
        try:
            tables[s] = load_feature_table(series_config(cfg, s), data_dir, to_last=to_last)
        except DataError:
            if s in unit.symbols:
                raise
    return tables


def calendar_cuts(
    tables: dict[str, pd.DataFrame], symbols: tuple[str, ...], cfg: Config, lookback: int,
    horizon: int,
) -> tuple[pd.Timestamp, pd.Timestamp]:  # fmt: skip
    """(open time of the first validation row, of the first test row) shared by the pool: the
    earliest over the evaluated symbols' own splits (``split.method: date``: its two dates).

    Raises:
        DataError: an evaluated symbol's own split has no room for a training or test window.
    """
    from cryptocast.config.dates import to_timestamp
    from cryptocast.features.windows import split_bounds

    val, test = [], []
    for s in symbols:
        try:
            bounds = split_bounds(tables[s], cfg.split, lookback, horizon)
        except DataError as err:
            raise DataError(f"{s}: {err}") from None
        ts = tables[s]["timestamp"]
        val.append(ts.iloc[bounds["val"][0]])
        test.append(ts.iloc[bounds["test"][0]])
    if cfg.split.method == "date":
        return (
            to_timestamp(cfg.split.val_start, "split.val_start"),
            to_timestamp(cfg.split.test_start, "split.test_start"),
        )
    return min(val), min(test)


def calendar_segments(
    symbol: str, df: pd.DataFrame, val_cut: Any, cut: Any, evaluated: tuple[str, ...]
) -> dict[str, tuple[int, int]]:
    """One series' rows of the calendar split: training rows open before ``val_cut``,
    validation rows before ``cut``, and (an evaluated symbol only) test rows from ``cut`` on.
    ``windows.window_ends`` keeps every window's target inside its segment."""
    ts = pd.DatetimeIndex(df["timestamp"])
    a, b = int(ts.searchsorted(val_cut)), int(ts.searchsorted(cut))
    segments = {"train": (0, a), "val": (a, b)}
    if symbol in evaluated:
        segments["test"] = (b, len(df))
    return segments


def refit_pooled(
    cfg: Config, data_dir: Path, unit: Any, build: Callable[[], Any], validated: Any
) -> tuple[tuple, pd.Timestamp]:
    """The pooled model refit on every stored row of each series of the pool (``refit_all``):
    ((model, data, tables, fit result, refit summary), the time its scaled rows end before)."""
    from cryptocast.config.timeframes import timeframe_delta
    from cryptocast.training.runs import refit_model, refit_summary

    tables = feature_tables(cfg, data_dir, unit, to_last=True)
    data = _stack(tables, unit, lambda s, df: {"train": (0, len(df))}, cfg)
    model, result, done = refit_model(cfg, data, build, validated)
    used = [tables[s]["timestamp"] for s in data.series]
    first, last = min(t.iloc[0] for t in used), max(t.iloc[-1] for t in used)
    summary = refit_summary(done, sum(len(t) for t in used), first, last)
    return (model, data, tables, result, summary), last + timeframe_delta(cfg.data.timeframe)


def _stack(tables: dict[str, pd.DataFrame], unit: Any, segments: Any, cfg: Config) -> Any:
    """The pool's training set: ``pooled.stack_series`` with the split's embargo."""
    from cryptocast.evaluate.pooled import stack_series

    return stack_series(tables, unit, segments, cfg, cfg.split.embargo)
