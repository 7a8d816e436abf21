"""Pooled ("global") models in the backtest: one network (or ``gbm_vol``'s boosters) per (timeframe,
model, fold), trained on the windows of every series of the pool, forecasting each evaluated symbol.

The pool is the evaluated symbols (``backtest.symbols``) plus the training-only ``train.universe``.
A pooled job walks the same folds as the per-series jobs of its evaluated symbols
(``walkforward.job_folds``) and forecasts their origins through the same ``Predictor`` path
(``walkforward.SeriesWalk``), so its results sit beside theirs in every table, DM test and plot
as ``<model>@pooled``.

Leak-free across series: folds are cut on the calendar. Fold k's cut is the open time ``T`` of its
first forecast origin (the earliest over the evaluated symbols); every series of the pool, whatever
its own row indexing, contributes only windows whose target candle opened at or before ``T``,
i.e. whose target close is known when the fold's first forecast is made (:func:`cut_rows`, the
per-series rule ``e + H <= s`` of ``folds.py`` applied at each series' own row of ``T``). Each
series is scaled by its own training rows and validated on its own tail (``features/pooled.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.schema import Config
from cryptocast.errors import DataError

POOLED = "@pooled"


def pooled_name(model: str) -> str:
    """``lstm`` -> ``lstm@pooled``: the results' model name of a pooled job."""
    return f"{model}{POOLED}"


def base_name(name: str) -> str:
    """``lstm@pooled`` -> ``lstm`` (any other name unchanged)."""
    return name.removesuffix(POOLED)


@dataclass(frozen=True)
class PoolUnit:
    """One pooled job: a model on one timeframe over ``symbols`` (evaluated) + ``universe``."""

    timeframe: str
    model: str
    symbols: tuple[str, ...]
    universe: tuple[str, ...]  # training-only: never forecast or scored

    @property
    def series(self) -> tuple[str, ...]:
        """Every series the model trains on, in stacking order (its series-embedding index)."""
        return self.symbols + self.universe

    @property
    def job(self) -> tuple[str, str, str]:
        """How the job is named in progress and failures: ``(BTC/USDT,ETH/USDT, 1d, lstm@pooled)``."""
        return ",".join(self.symbols), self.timeframe, pooled_name(self.model)

    @property
    def results(self) -> list[tuple[str, str, str]]:
        """The (symbol, timeframe, model) of each result it yields, one per evaluated symbol."""
        return [(s, self.timeframe, pooled_name(self.model)) for s in self.symbols]


def pool_units(cfg: Config, jobs: list[tuple[str, str, str]], data_dir: Any) -> list[PoolUnit]:
    """The pooled jobs of a backtest whose per-series ``jobs`` are given: one per timeframe and
    poolable model (the neural ones and ``gbm_vol``, ``registry.is_poolable``) when
    ``backtest.pooled``, else none. Checks ``train.universe`` first.

    Raises:
        ConfigError: ``train.universe`` without ``backtest.pooled``.
        DataError: a universe symbol has no stored candles (naming the file and the fetch).
    """
    from cryptocast.models.registry import is_poolable

    if not check_pooled_keys(cfg):
        return []
    symbols = tuple(dict.fromkeys(s for s, _, _ in jobs))
    universe = tuple(u for u in cfg.train.universe if u not in symbols)
    timeframes = list(dict.fromkeys(t for _, t, _ in jobs))
    check_universe(cfg, universe, timeframes, data_dir)
    models = [m for m in dict.fromkeys(m for _, _, m in jobs) if is_poolable(m)]
    return [PoolUnit(t, m, symbols, universe) for t in timeframes for m in models]


def per_series(cfg: Config, jobs: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The jobs still run one per series: all of them, unless ``backtest.pooled`` is ``"only"``;
    then those of models that are not pooled (persistence, drift, the closed-form baselines)."""
    from cryptocast.models.registry import is_poolable

    if cfg.backtest.pooled != "only":
        return jobs
    return [j for j in jobs if not is_poolable(j[2])]


def check_pooled_keys(cfg: Config) -> bool:
    """Whether ``cfg`` trains pooled models (``backtest.pooled``).

    Raises:
        ConfigError: ``train.universe`` without ``backtest.pooled``.
    """
    from cryptocast.errors import ConfigError

    if not cfg.backtest.pooled and cfg.train.universe:
        raise ConfigError(
            "train.universe lists training-only series of pooled models, but backtest.pooled "
            "is false; set backtest.pooled=true or drop train.universe"
        )
    return bool(cfg.backtest.pooled)


def check_universe(cfg: Config, universe: Any, timeframes: list[str], data_dir: Any) -> None:
    """DataError naming the missing file and how to get it, for the first universe series
    without stored candles (checked before any feature is built)."""
    from pathlib import Path

    from cryptocast.data.hints import fetch_command
    from cryptocast.data.store import series_exists, series_path

    ex = cfg.data.exchange
    for u in universe:
        for t in timeframes:
            path = series_path(Path(data_dir), ex, u, t)
            if not series_exists(path):
                raise DataError(
                    f"train.universe: no candles for {u} {t} at {path}; run "
                    f"{fetch_command(ex, u, t, data_dir)}, or import a folder of candle files "
                    "with `cryptocast fetch --import DIR`"
                )


def cut_rows(df: pd.DataFrame, cut: pd.Timestamp, cfg: Config) -> dict[str, tuple] | None:
    """Training and validation rows of one series for a model whose first forecast is made at
    the close of the candle that opens at ``cut``: targets up to the series' last row at or before
    ``cut`` (``folds.train_val_rows`` at that row); None when the series has too little history."""
    from cryptocast.evaluate.folds import train_val_rows

    bt, H = cfg.backtest, cfg.features.horizon
    start = int(df["timestamp"].searchsorted(cut, side="right")) - 1
    if start < 0:
        return None
    try:
        train, val = train_val_rows(start, H, bt.window, bt.train_length, bt.val_fraction)
    except DataError:
        return None
    return {"train": train, "val": val}


def pooled_folds(tables: dict[str, pd.DataFrame], unit: PoolUnit, cfg: Config) -> tuple:
    """(each evaluated symbol's folds, the calendar cut of each fold)."""
    from cryptocast.evaluate.walkforward import job_config, job_folds

    folds = {
        s: job_folds(tables[s], job_config(cfg, s, unit.timeframe, unit.model))
        for s in unit.symbols
    }
    counts = {s: len(f) for s, f in folds.items()}
    if len(set(counts.values())) > 1:
        raise DataError(
            f"pooled {unit.model} {unit.timeframe}: the evaluated symbols have different numbers "
            f"of folds ({counts}); set backtest.test_start and test_end so their test periods "
            "share the calendar"
        )
    n = next(iter(counts.values()))
    starts = [
        [tables[s]["timestamp"].iloc[folds[s][k].test[0]] for s in unit.symbols] for k in range(n)
    ]
    return folds, [min(ts) for ts in starts]


def fold_data(tables: dict[str, pd.DataFrame], unit: PoolUnit, cut: Any, cfg: Config) -> Any:
    """The pooled training set of a fold cut at ``cut``: every series prepared alone on its rows
    before the cut (a training-only series with too little history then is left out)."""

    def rows(symbol: str, df: pd.DataFrame) -> dict[str, tuple]:
        segments = cut_rows(df, cut, cfg)
        if segments is None:
            raise DataError(f"{symbol} has no training rows before {cut}")
        return segments

    return stack_series(tables, unit, rows, cfg, embargo=False)


def stack_series(
    tables: dict[str, pd.DataFrame],
    unit: PoolUnit,
    segments_of: Callable[[str, pd.DataFrame], dict[str, tuple]],
    cfg: Config,
    embargo: bool,
) -> Any:
    """Every series of ``unit`` prepared alone on its ``segments_of(symbol, table)`` (its scalers
    fit on its own training rows) and stacked (``features.pooled.pool``). A training-only series
    without a training window (or without a table) is left out; an evaluated one raises.
    """
    from cryptocast.features.pooled import pool
    from cryptocast.features.windows import prepare

    names, parts, ids = [], [], []
    for i, s in enumerate(unit.series):
        try:
            if s not in tables:
                raise DataError(f"{s} has no feature rows")
            part = prepare(tables[s], cfg.features, segments_of(s, tables[s]), embargo)
        except DataError as err:
            if s in unit.symbols:  # its per-series job would fail the same way
                msg = str(err)
                raise DataError(msg if msg.startswith(s) else f"{s}: {msg}") from None
            continue
        names.append(s)
        parts.append(part)
        ids.append(i)
    return pool(names, parts, ids if cfg.model.series_embedding else None)


def run_pooled(
    cfg: Config,
    tables: dict[str, pd.DataFrame],
    unit: PoolUnit,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
) -> list[Any]:
    """Walk forward with one pooled model per fold; one ``JobResult`` per evaluated symbol.

    A neural model is trained by ``training.loop.fit`` on the stacked windows; ``gbm_vol`` is
    fitted by the same call (``fit_pooled``: one set of boosters on every series' unscaled
    training rows) and forecasts each series through a copy holding that series' scalers
    (``for_series``). A tree has no series embedding and no warm start: both keys are ignored.
    """
    from cryptocast.evaluate.walkforward import SeriesWalk, job_config
    from cryptocast.models.registry import is_trainable
    from cryptocast.models.series import build_pooled_model
    from cryptocast.training.inference import Predictor
    from cryptocast.training.loop import fit, seed_everything

    t0 = time.perf_counter()
    t, m = unit.timeframe, unit.model
    c = job_config(cfg, unit.symbols[0], t, m)
    trainable = is_trainable(m)
    c.model.series_embedding = c.model.series_embedding and trainable
    f, bt = c.features, c.backtest
    folds, cuts = pooled_folds(tables, unit, cfg)
    walks = {s: SeriesWalk(tables[s], job_config(cfg, s, t, m)) for s in unit.symbols}
    warm_train = c.train.model_copy(update={"epochs": bt.warm_epochs})
    current: dict[str, tuple[Any, np.ndarray]] = {}
    max_seen = dict.fromkeys(unit.symbols, -1)
    previous, warm, fit_until = None, False, None
    for k, cut in enumerate(cuts):
        t_fold = time.perf_counter()
        if folds[unit.symbols[0]][k].retrain or not current:
            data = fold_data(tables, unit, cut, c)
            seed_everything(c.train.seed + k)
            n_feat = len(data.feature_names)
            model = build_pooled_model(c.model, n_feat, f.horizon, f.lookback, len(unit.series))
            warm = bt.warm_start and previous is not None and trainable
            if warm:  # the previous fit read only targets before the previous fold's cut
                model.load_state_dict(previous)
            fit(model, data, warm_train if warm else c.train)
            previous = {key: v.detach().clone() for key, v in model.state_dict().items()}
            seen = np.concatenate([data.ends["train"], data.ends["val"]]) + f.horizon
            latest = pd.Timestamp(data.timestamps[seen].max(), tz="UTC")  # newest target read
            fit_until = max(fit_until, latest) if warm and fit_until is not None else latest
            for s in unit.symbols:
                part = data.parts[data.series.index(s)]
                own_model = model if trainable else model.for_series(part)
                predictor = Predictor.from_prepared(own_model, part)  # its own scalers
                current[s] = (predictor, part.X)
                own = np.concatenate([part.ends["train"], part.ends["val"]])
                max_seen[s] = max(max_seen[s] if warm else -1, int(own.max()) + f.horizon)
                walks[s].new_model(predictor, part.X, part.ends["val"])
        pool_rec = {"cut": str(cut), "fit_until": str(fit_until), "pool": len(data.series)}
        for s in unit.symbols:
            walks[s].forecast(folds[s][k], *current[s])
            rec = walks[s].record(folds[s][k], warm, max_seen[s], **pool_rec)
            if on_fold is not None:  # the fit's seconds go to the first symbol's event
                on_fold({"symbol": s, "timeframe": t, "model": pooled_name(m), **rec,
                         "seconds": time.perf_counter() - t_fold})  # fmt: skip
                t_fold = time.perf_counter()
    seconds = time.perf_counter() - t0
    return [walks[s].result(s, t, pooled_name(m), seconds) for s in unit.symbols]


def series_predictor(model: Any, df: pd.DataFrame, cut: Any, cfg: Config) -> tuple[Any, Any]:
    """``(Predictor, scaled table)`` of a pooled ``model`` for a series outside its pool: the
    series' scalers fit on its own rows before ``cut``, as a pool member's would be.

    Raises:
        ConfigError: the model has a series embedding (it knows only the series of its pool).
        DataError: the series has no training rows before ``cut``.
    """
    from cryptocast.errors import ConfigError
    from cryptocast.features.windows import prepare
    from cryptocast.models.series import SeriesEmbedding
    from cryptocast.training.inference import Predictor

    if isinstance(model, SeriesEmbedding):
        raise ConfigError(
            "this pooled model has model.series_embedding and forecasts only the series it "
            "trained on; train it without the embedding to forecast other series"
        )
    segments = cut_rows(df, cut, cfg)
    if segments is None:
        raise DataError(f"the series has no training rows before {cut}; fetch more history")
    data = prepare(df, cfg.features, segments, embargo=False)
    return Predictor.from_prepared(model, data), data.X


def pooled_task(cfg_dict: dict, unit: PoolUnit, job: tuple, *tables: Any, emit: Any = None) -> Any:
    """One pooled job on any executor: the pool's feature tables arrive as objects, in
    ``unit.series`` order (top-level arguments, so Ray resolves them from its object store)."""
    from cryptocast.config.schema import config_from_dict

    cfg = config_from_dict(cfg_dict)
    return run_pooled(cfg, dict(zip(unit.series, tables, strict=True)), unit, on_fold=emit)


def result_order(jobs: list[tuple[str, str, str]], units: list[PoolUnit]) -> list[tuple]:
    """Result keys in report order: each series' per-series models, then its pooled ones."""
    pooled: dict[tuple[str, str], list[tuple]] = {}
    for u in units:
        for key in u.results:
            pooled.setdefault(key[:2], []).append(key)
    out = []
    for series in dict.fromkeys([j[:2] for j in jobs] + [k[:2] for u in units for k in u.results]):
        out += [j for j in jobs if j[:2] == series] + pooled.get(series, [])
    return out
