"""Walk-forward evaluation of one (symbol, timeframe, model) job.

Per fold: the scalers are fit on that fold's training rows only (``windows.prepare``), the model
is trained with early stopping on the validation tail, and every test origin of the fold is
forecast through the same ``Predictor`` path the daily forecast uses. Models are reused between
retrains (``backtest.retrain_every``). With ``backtest.warm_start`` a retrain after the first
starts from the previous retrain's weights and trains ``backtest.warm_epochs`` epochs (early
stopping as usual); the scalers are still refit on the new fold's training rows. Each fold records
the largest row index the model was fit on, so tests (and users) can check that nothing after the
forecast time was used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.dates import to_timestamp
from cryptocast.config.schema import Config
from cryptocast.errors import DataError


@dataclass
class JobResult:
    """Forecasts of one job, aligned by forecast origin."""

    symbol: str
    timeframe: str
    model: str
    timestamps: np.ndarray  # (n,) datetime64 of the forecast origins (candle open times)
    folds: np.ndarray  # (n,) fold id
    last_close: np.ndarray  # (n,)
    y_true: np.ndarray  # (n, H) realised values in the target's unit (closes, or annualised RV)
    y_pred: np.ndarray  # (n, H) predictions in the same unit (the median of a quantile model)
    fold_info: list[dict[str, Any]] = field(default_factory=list)
    aux: dict[str, np.ndarray] = field(default_factory=dict)  # targets.Target.aux: (n,) arrays
    seconds: float = 0.0
    data_range: tuple[str, str] = ("", "")
    # quantile models (cryptocast.models.distribution): predicted close quantiles (n, H, Q), calibrated
    # per backtest.calibration; None for a point model
    y_quantiles: np.ndarray | None = None
    # what calibration starts from, so another method can be applied without retraining
    # (``recalibrate``): uncalibrated quantiles, origin rows, per-model calibration sets
    raw_quantiles: np.ndarray | None = None
    origin_rows: np.ndarray | None = None
    calibration_sets: list = field(default_factory=list)
    calibration_of: np.ndarray | None = None
    quantile_levels: tuple[float, ...] | None = None


def job_config(cfg: Config, symbol: str, timeframe: str, model: str) -> Config:
    """A copy of ``cfg`` pointed at one series and one model, with the timeframe's
    ``backtest.timeframe_overrides`` applied."""
    from cryptocast.config.schema import for_timeframe

    c = for_timeframe(cfg, timeframe).model_copy(deep=True)
    c.data.symbol, c.data.timeframe, c.model.name = symbol, timeframe, model
    return c


def fold_length_for(cfg: Config, timeframe: str) -> int:
    """Candles per fold: ``backtest.fold_period`` converted for this timeframe, else fold_length."""
    from cryptocast.config.timeframes import timeframe_delta
    from cryptocast.errors import ConfigError

    period = cfg.backtest.fold_period
    if not period:
        return cfg.backtest.fold_length
    try:
        delta = pd.Timedelta(period)
    except ValueError:
        raise ConfigError(
            f"backtest.fold_period {period!r} is not a duration like 30D or 12h"
        ) from None
    n = int(delta / timeframe_delta(timeframe))
    if n < 1:
        raise ConfigError(f"backtest.fold_period {period} is shorter than one {timeframe} candle")
    return n


def test_rows(df: pd.DataFrame, cfg: Config) -> tuple[int, int]:
    """Forecast-origin rows ``[lo, hi)`` of the test period; origins need realised targets."""
    bt, H = cfg.backtest, cfg.features.horizon
    n = len(df)
    ts = df["timestamp"]
    last_origin = n - H  # origins e with e + H <= n - 1
    if bt.test_start:
        start = to_timestamp(bt.test_start, "backtest.test_start")
        if start > ts.iloc[-1] or start < ts.iloc[0]:
            raise DataError(
                f"--test-start {bt.test_start} is outside the data "
                f"({ts.iloc[0]:%Y-%m-%d} .. {ts.iloc[-1]:%Y-%m-%d}, the first candles go to the "
                "indicators' warm-up); pick a date inside it"
            )
        lo = int(ts.searchsorted(start))
    else:
        lo = int(n * (1 - bt.test_fraction))
    hi = last_origin
    if bt.test_end:
        end = to_timestamp(bt.test_end, "backtest.test_end")
        if lo >= n or end <= ts.iloc[lo]:
            raise DataError(
                f"--test-end {bt.test_end} is not after the test start; widen the period"
            )
        hi = min(hi, int(ts.searchsorted(end)))
    if hi <= lo:
        raise DataError(
            f"test period has no forecast origin with a realised target (rows {lo}..{hi}); "
            "move --test-start earlier or --test-end later"
        )
    return lo, hi


def job_folds(df: pd.DataFrame, cfg: Config) -> list:
    """The walk-forward folds of one series (``cfg`` pointed at it by ``job_config``)."""
    from cryptocast.evaluate.folds import make_folds

    bt, f = cfg.backtest, cfg.features
    lo, hi = test_rows(df, cfg)
    return make_folds(
        len(df), lo, hi, fold_length_for(cfg, cfg.data.timeframe), f.horizon, bt.window,
        bt.train_length, bt.retrain_every, bt.val_fraction, lookback=f.lookback,
    )  # fmt: skip


def run_job(
    cfg: Config,
    data_dir: Path | None,
    symbol: str,
    timeframe: str,
    model_name: str,
    on_fold: Callable[[dict[str, Any]], None] | None = None,
    df: pd.DataFrame | None = None,
    scored_folds: bool = False,
) -> JobResult:
    """Walk forward over the test period of one series with one model.

    ``df`` (the series' feature table) when given, else it is loaded from ``data_dir``.
    ``scored_folds`` adds each fold's origin rows ``ends``, predictions ``pred`` and quantiles
    ``q`` (None for a point model) at ``levels`` to its ``on_fold`` event; an exception raised by ``on_fold`` ends the walk there.
    """
    from cryptocast.features.windows import prepare
    from cryptocast.models.registry import build_model, is_trainable
    from cryptocast.training.inference import Predictor
    from cryptocast.training.loop import fit, seed_everything
    from cryptocast.training.runs import load_feature_table

    t0 = time.perf_counter()
    c = job_config(cfg, symbol, timeframe, model_name)
    f = c.features
    if df is None:
        df = load_feature_table(c, data_dir)
    L, H = f.lookback, f.horizon
    folds = job_folds(df, c)
    bt = c.backtest
    warm_train = c.train.model_copy(update={"epochs": bt.warm_epochs})
    walk = SeriesWalk(df, c)
    predictor = X = previous = None
    max_seen, warm = -1, False  # warm: the weights in use continued an earlier fit
    for fold in folds:
        t_fold = time.perf_counter()
        if fold.retrain or predictor is None:
            segments = {"train": fold.train, "val": fold.val}
            data = prepare(df, f, segments, embargo=False)
            seed_everything(c.train.seed + fold.fold)
            model = build_model(c.model, len(data.feature_names), H, L)
            warm = bt.warm_start and previous is not None and is_trainable(model_name)
            if warm:
                # the previous fit read only rows before the previous fold's first origin
                model.load_state_dict(previous)
            fit(model, data, warm_train if warm else c.train)
            previous = {k: v.detach().clone() for k, v in model.state_dict().items()}
            predictor = Predictor.from_prepared(model, data)
            X = data.X  # every row scaled with THIS fold's training statistics
            seen = np.concatenate([data.ends["train"], data.ends["val"]])
            # last target row any fit behind these weights read (warm starts carry earlier fits)
            max_seen = max(max_seen if warm else -1, int(seen.max()) + H)
            walk.new_model(predictor, X, data.ends["val"])
        ends, pred, q = walk.forecast(fold, predictor, X)
        rec = walk.record(fold, warm, max_seen)
        if on_fold is not None:  # tune scores (and may stop) the walk after each fold
            # seconds (training + forecasting) go to progress only: fold_info stays reproducible
            ev = {"symbol": symbol, "timeframe": timeframe, "model": model_name, **rec,
                  "seconds": time.perf_counter() - t_fold}  # fmt: skip
            scored = {"ends": ends, "pred": pred, "q": q, "levels": predictor.levels}
            on_fold({**ev, **scored} if scored_folds else ev)
    return walk.result(symbol, timeframe, model_name, time.perf_counter() - t0)


class SeriesWalk:
    """One series' forecasts over a walk, fold by fold, and the ``JobResult`` they make.

    The per-series walk (:func:`run_job`) and the pooled one (``evaluate/pooled.py``) both
    forecast a series through this, so the two report identical things in identical ways.
    """

    def __init__(self, df: pd.DataFrame, cfg: Config):
        self.df, self.cfg = df, cfg
        self.close = df["close"].to_numpy("float64")
        self.gaps = df["gap_before"].to_numpy("int64")
        self.ends: list[np.ndarray] = []
        self.folds: list[np.ndarray] = []
        self.preds: list[np.ndarray] = []
        self.quants: list[tuple[Any, int]] = []
        self.info: list[dict[str, Any]] = []
        self.cal_sets: list = []  # one conformal calibration set per trained model
        self.levels: tuple[float, ...] | None = None

    def new_model(self, predictor: Any, X: np.ndarray, val_ends: np.ndarray) -> None:
        """A freshly fitted model: its calibration set, for a quantile model."""
        if predictor.levels is not None:
            from cryptocast.evaluate.conformal import calibration_set

            # the validation tail: outcomes known at the fold's first forecast, never a test row
            H = self.cfg.features.horizon
            self.cal_sets.append(calibration_set(predictor, X, self.close, val_ends, H))

    def forecast(self, fold: Any, predictor: Any, X: np.ndarray) -> tuple[Any, Any, Any]:
        """Forecast every origin of ``fold`` -> (origin rows, points, quantiles or None)."""
        from cryptocast.features.windows import window_ends

        f = self.cfg.features
        L, H = f.lookback, f.horizon
        # origins of this fold; their targets may lie past the fold (they are only scored)
        n = len(self.df)
        ends = window_ends(
            n, fold.test[0], fold.test[1] + H, L, H, self.gaps, f.gap_tolerance, False
        )
        pred, q = predictor.predict_distribution(X, self.close, ends)
        self.ends.append(ends)
        self.folds.append(np.full(len(ends), fold.fold))
        self.preds.append(pred)
        self.quants.append((q, len(self.cal_sets) - 1))
        self.levels = predictor.levels
        return ends, pred, q

    def record(self, fold: Any, warm: bool, max_seen: int, **extra: Any) -> dict[str, Any]:
        """The fold's ``fold_info`` record (after :meth:`forecast`)."""
        rec = {
            "fold": fold.fold,
            "retrained": fold.retrain,
            "warm_start": warm,
            "first_origin": int(fold.test[0]),
            "max_row_fit": max_seen,
            "n_origins": int(len(self.ends[-1])),
            **extra,
        }
        self.info.append(rec)
        return rec

    def result(self, symbol: str, timeframe: str, model: str, seconds: float) -> JobResult:
        """Every fold's forecasts as one ``JobResult``, calibrated per ``backtest.calibration``."""
        from cryptocast.features.targets import get_target

        df, c = self.df, self.cfg
        target = get_target(c.features.target)
        ends = np.concatenate(self.ends)
        ts = df["timestamp"].to_numpy()
        y_true = target.realised(df, ends, c.features.horizon)  # closes, or annualised RV
        levels = self.levels
        raw = cal_of = None
        if levels is not None:
            raw = np.concatenate([q for q, _ in self.quants])
            cal_of = np.concatenate([np.full(len(q), k) for q, k in self.quants])
        result = JobResult(
            symbol=symbol,
            timeframe=timeframe,
            model=model,
            timestamps=ts[ends],
            folds=np.concatenate(self.folds),
            last_close=self.close[ends],
            y_true=y_true,
            y_pred=np.concatenate(self.preds),
            raw_quantiles=raw,
            origin_rows=ends,
            calibration_sets=self.cal_sets,
            calibration_of=cal_of,
            quantile_levels=levels,
            fold_info=self.info,
            aux=target.aux(df, ends),
            seconds=seconds,
            data_range=(str(df["timestamp"].iloc[0]), str(df["timestamp"].iloc[-1])),
        )
        return recalibrate(result, c.backtest.calibration, c.backtest.aci_gamma)


def recalibrate(result: JobResult, method: str, gamma: float = 0.005) -> JobResult:
    """``result`` with its quantiles calibrated by ``method`` (none | cqr | aci) from the raw
    quantiles and calibration sets it carries; point forecasts are untouched."""
    from dataclasses import replace

    from cryptocast.evaluate.conformal import calibrate

    if result.raw_quantiles is None:
        return result
    if method == "none":
        return replace(result, y_quantiles=result.raw_quantiles)
    lc = result.last_close
    with np.errstate(divide="ignore", invalid="ignore"):
        zq = np.log(result.raw_quantiles / lc[:, None, None])
        zy = np.log(result.y_true / lc[:, None])
    zq = calibrate(
        method, zq, zy, result.origin_rows, result.calibration_sets, result.calibration_of,
        result.quantile_levels, gamma,
    )  # fmt: skip
    return replace(result, y_quantiles=lc[:, None, None] * np.exp(zq))
