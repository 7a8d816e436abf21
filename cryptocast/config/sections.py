"""The config's sections: one pydantic model each, with the checks that need only that section.

Every section forbids unknown keys and bool-as-number values, and names the dotted key in its
errors; cross-section checks live on the root (:mod:`cryptocast.config.schema`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cryptocast.config.fields import (  # noqa: F401  (IsoDate, _Section: part of this module's API)
    MAX_FEEDFORWARD,
    MAX_HEADS,
    MAX_LAYERS,
    MAX_WIDTH,
    IsoDate,
    Seed,
    TorchFloat,
    _name_check,
    _Section,
)

DEFAULT_SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT"]
DEFAULT_TIMEFRAMES = ["1h", "1d"]


class DataConfig(_Section):
    exchange: str = "binance"
    symbol: str = "BTC/USDT"
    timeframe: str = "1d"
    start: IsoDate = None  # ISO date; first candle used (inclusive)
    end: IsoDate = None  # ISO date; last candle used (exclusive)

    @field_validator("exchange", "symbol", "timeframe")
    @classmethod
    def _safe(cls, value: str, info: ValidationInfo) -> str:
        from cryptocast.config.names import check_exchange_name, symbol_slug
        from cryptocast.config.timeframes import validate_timeframe

        check = {"exchange": check_exchange_name, "symbol": symbol_slug}.get(
            info.field_name or "", validate_timeframe
        )
        return _name_check(check, value)


class IndicatorSpec(_Section):
    """One ``ta`` indicator output: ``name`` from the indicator catalogue, ``params`` for it."""

    name: str
    params: dict[str, int | float | str | bool] = Field(default_factory=dict)


class FeaturesConfig(_Section):
    # None = the default indicator set (see cryptocast.features.table.DEFAULT_INDICATORS)
    indicators: list[IndicatorSpec] | None = None
    log_returns: bool = True
    range_features: bool = True
    calendar: bool = True
    lookback: int = Field(30, gt=0)
    horizon: int = Field(1, gt=0)
    # log_return: log(close[t+h] / close[t]); price: close[t+h] / close[t] (price normalised
    # by the last close of the window, so it is scale free across 2018-2023); realized_vol:
    # log RV of day t+h from rv_source candles (cryptocast.features.targets, docs/volatility.md)
    target: Literal["log_return", "price", "realized_vol"] = "log_return"
    # candles the daily realized measures are summed from (features/volatility.py)
    rv_source: Literal["1m", "5m", "15m", "1h"] = "1h"
    # a day with fewer returns than this fraction of 24 gets no measure (fewer but enough: scaled
    # by expected/observed count, flagged); 20 = 20 of 24 hourly, 240 of 288 5-minute returns
    rv_min_hours: int = Field(20, ge=1, le=24)
    # another symbol whose HAR components become features (x_log_rv_*, read by har_x); "auto":
    # BTC/USDT, or ETH/USDT for BTC/USDT itself; None: no cross features
    rv_cross: str | None = Field(None, min_length=1, max_length=40)
    scaler: Literal["standard", "robust"] = "standard"
    # windows spanning a gap of more than this many missing candles are dropped
    gap_tolerance: int = Field(0, ge=0)


class SplitConfig(_Section):
    method: Literal["fraction", "date"] = "fraction"
    train: float = Field(0.7, gt=0, lt=1)
    val: float = Field(0.15, ge=0, lt=1)
    val_start: IsoDate = None
    test_start: IsoDate = None
    # drop lookback + horizon rows between segments so no window or target straddles a boundary
    embargo: bool = True

    @model_validator(mode="after")
    def _check(self) -> SplitConfig:
        if self.method == "fraction" and self.train + self.val >= 1:
            raise ValueError("split.train + split.val must be < 1 to leave a test segment")
        if self.method == "date" and not (self.val_start and self.test_start):
            raise ValueError("split.method=date needs split.val_start and split.test_start")
        return self


class ModelConfig(_Section):
    name: str = "performer_bilstm"
    d_model: int = Field(64, gt=0, le=MAX_WIDTH)
    n_heads: int = Field(4, gt=0, le=MAX_HEADS)
    n_layers: int = Field(2, gt=0, le=MAX_LAYERS)
    dropout: float = Field(0.1, ge=0, lt=1)
    # performer_bilstm
    nb_features: int | None = Field(None, gt=0, le=MAX_WIDTH)  # None: about d_head * ln(d_head)
    redraw_interval: int = Field(1000, ge=0)  # 0: never redraw
    lstm_hidden: int = Field(
        64, gt=0, le=MAX_WIDTH
    )  # BiLSTM feed-forward hidden size (per direction)
    # transformer
    dim_feedforward: int = Field(128, gt=0, le=MAX_FEEDFORWARD)
    # lstm / gru
    hidden_size: int = Field(64, gt=0, le=MAX_WIDTH)
    num_layers: int = Field(2, gt=0, le=MAX_LAYERS)
    pooling: Literal["last", "mean"] = "last"
    # forecast distribution (cryptocast.models.distribution): None = a point forecast; a list of levels
    # = one model predicting those quantiles of every horizon step (needs train.loss=pinball)
    quantiles: list[float] | None = None
    # probabilistic random-walk baselines (models/random_walk.py)
    ewma_lambda: float = Field(0.94, gt=0, lt=1)  # RiskMetrics decay of rw_ewma
    rw_window: int = Field(250, ge=10)  # candles of past h-step returns behind rw_empirical
    # HAR family (models/har.py): None = fit on every day before the fold, N = the last N only
    har_window: int | None = Field(None, ge=10, le=100_000)
    # gbm_vol (models/gbm.py): boosting rounds at most (early stopping on the validation rows)
    gbm_rounds: int = Field(500, ge=1, le=100_000)
    # combinations (models/combo.py: vol_combo, vol_select): the registry models they combine,
    # and vol_combo's weights (equal, or inverse validation QLIKE)
    members: list[str] = Field(default_factory=lambda: ["har", "ewma_vol", "garch"])
    combo_weights: Literal["equal", "inverse_qlike"] = "equal"
    # pooled models (evaluate/pooled.py): a learned per-series vector added to every input step;
    # off, a pooled model can forecast a series it never trained on (docs/global.md)
    series_embedding: bool = False

    @field_validator("quantiles")
    @classmethod
    def _levels(cls, v: list[float] | None) -> list[float] | None:
        return None if v is None else check_levels(v)

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        if self.d_model % self.n_heads:
            raise ValueError(
                f"model.d_model ({self.d_model}) must be divisible by model.n_heads ({self.n_heads})"
            )
        return self


class TrainConfig(_Section):
    epochs: int = Field(30, gt=0)
    batch_size: int = Field(256, gt=0)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: TorchFloat = Field(1e-3, gt=0)
    schedule: Literal["none", "cosine", "plateau"] = "cosine"
    weight_decay: TorchFloat = Field(1e-4, ge=0)
    grad_clip: TorchFloat = Field(1.0, ge=0)  # 0: off
    patience: int = Field(5, ge=0)  # 0: no early stopping
    loss: Literal["mse", "huber", "pinball"] = "mse"  # pinball: for model.quantiles
    seed: Seed = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # auto: mixed (bf16 autocast) on a bf16-capable GPU, fp32 elsewhere; see cryptocast/training/precision.py
    precision: Literal["auto", "fp32", "mixed"] = "auto"
    num_threads: int | None = Field(None, gt=0)
    # every epoch trains on every k-th training window, the phase rotating so k epochs see each
    # window once: k times cheaper epochs for dense (hourly) data, at the cost of fewer steps per
    # epoch (docs/performance.md); validation always scores every window
    window_stride: int = Field(1, gt=0)
    # after the validated run, retrain on every stored row for the best epoch count; the
    # checkpoint then holds those weights (metrics.json keeps the validated run's figures)
    refit_all: bool = True
    # training-only series of pooled models (backtest.pooled, docs/global.md): symbols whose
    # windows join the evaluated symbols' in one training set, read from the same data folder
    universe: list[str] = Field(default_factory=list)

    @field_validator("universe")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        from cryptocast.config.names import symbol_slug

        for s in value:
            _name_check(symbol_slug, s)
        twice = sorted({s for s in value if value.count(s) > 1})
        if twice:
            raise ValueError(f"lists {twice[0]} twice; name each symbol once")
        return value


class OutputConfig(_Section):
    runs_dir: str = Field("runs", min_length=1)
    name: str | None = None  # default: model name

    @field_validator("name")
    @classmethod
    def _safe(cls, value: str | None) -> str | None:
        from cryptocast.config.names import check_run_name

        return None if value is None else _name_check(check_run_name, value)


#: what ``backtest.timeframe_overrides`` may set: training, and whether refits warm-start
TIMEFRAME_KEYS = ("train.", "backtest.warm_start", "backtest.warm_epochs")


class BacktestConfig(_Section):
    models: list[str] = Field(
        default_factory=lambda: [
            "performer_bilstm",
            "lstm",
            "gru",
            "transformer",
            "persistence",
            "drift",
        ]
    )
    symbols: list[str] = Field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    timeframes: list[str] = Field(default_factory=lambda: list(DEFAULT_TIMEFRAMES))
    test_start: IsoDate = None
    test_end: IsoDate = None
    test_fraction: float = Field(0.2, gt=0, lt=1)  # used when test_start is not given
    fold_length: int = Field(90, gt=0)  # candles per fold
    # fold length as a duration ("30D", "12h"): overrides fold_length so one config fits 1h and 1d
    fold_period: str | None = None
    window: Literal["expanding", "rolling"] = "expanding"
    train_length: int | None = Field(None, gt=0)  # rolling window length (candles)
    retrain_every: int = Field(1, gt=0)  # folds between retrains
    # retrains after the first continue from the previous retrain's weights (scalers refit on the
    # new training rows) for warm_epochs epochs with train.patience early stopping; the previous
    # model only saw earlier rows, so this is leak-free (tests/test_backtest.py)
    warm_start: bool = False
    warm_epochs: int = Field(5, gt=0)
    # settings for the jobs of one timeframe, in --set form: the fast hourly grid is
    # {1h: [backtest.warm_start=true, train.window_stride=4]} (docs/performance.md); only the
    # TIMEFRAME_KEYS may differ, the rest shapes the whole grid
    timeframe_overrides: dict[str, list[str]] = Field(default_factory=dict)
    val_fraction: float = Field(0.15, gt=0, lt=1)  # validation tail of each training window
    fee_bps: float = Field(10.0, ge=0)
    slippage_bps: float = Field(5.0, ge=0)
    long_short: bool = False
    # volatility targets: the use test holds min(max_position, vol_target / forecast vol), long
    vol_target: float = Field(0.5, gt=0)  # annualised, as a fraction (0.5 = 50 % a year)
    max_position: float = Field(2.0, gt=0)
    metrics: list[str] | None = None  # None: all
    workers: int = Field(1, gt=0)
    report_dir: str = "reports/latest"
    # conformal calibration of quantile forecasts (evaluate/conformal.py): per-fold CQR on the
    # validation tail, or adaptive conformal inference online over the test period
    calibration: Literal["none", "cqr", "aci"] = "none"
    aci_gamma: float = Field(0.005, gt=0, lt=1)  # ACI step size (Gibbs & Candes 2021)
    # also run every neural model and gbm_vol as one pooled model per (timeframe, fold) over the
    # evaluated symbols and train.universe, reported per symbol as `<model>@pooled` (docs/global.md);
    # "only": the pooled models instead of their per-series jobs (the baselines still run per series)
    pooled: bool | Literal["only"] = False

    @model_validator(mode="after")
    def _check(self) -> BacktestConfig:
        if self.window == "rolling" and self.train_length is None:
            raise ValueError("backtest.window=rolling needs backtest.train_length")
        for tf, items in self.timeframe_overrides.items():
            for item in items:
                key = item.split("=", 1)[0].strip()
                if "=" not in item or not key.startswith(TIMEFRAME_KEYS):
                    raise ValueError(
                        f"backtest.timeframe_overrides.{tf}: {item!r}: expected key=value with a "
                        f"key under {', '.join(TIMEFRAME_KEYS)} (the rest applies to every "
                        "timeframe)"
                    )
        return self


class TuneConfig(_Section):
    """``cryptocast tune``: the search space and the tuning period (see docs/tune.md)."""

    # dotted config key -> [choices] | {log_uniform: [a, b]} | {uniform: [a, b]} | {int: [a, b]}
    space: dict[str, Any] = Field(default_factory=dict)
    # tuning period: forecast origins in [start, end); end defaults to backtest.test_start and may
    # not lie after it (tuning on the test period is the leak `tune` refuses)
    start: IsoDate = None  # default: `folds` folds of backtest.fold_length before end
    end: IsoDate = None
    folds: int = Field(3, gt=0)
    metric: str = "rmse"  # cryptocast.tune.trial.SCORES
    trials: int = Field(20, gt=0)  # total finished trials the study should hold
    timeout: float | None = Field(None, gt=0)  # seconds; stop starting trials after it
    seed: Seed = 0  # TPE sampler seed
    pruner: Literal["median", "none"] = "median"
    study_name: str | None = None  # default: model-symbol-timeframe; a folder name, no path
    storage: str | None = None  # SQLAlchemy URL; default sqlite under runs_dir/tune/<study>/
    # trials running at once: the rest wait so TPE and the pruner learn from the finished ones;
    # default --workers locally, max(2, cluster CPUs // 4) with --executor ray
    max_in_flight: int | None = Field(None, gt=0)

    @field_validator("study_name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        from cryptocast.config.names import check_run_name

        check = lambda v: check_run_name(v, "tune.study_name")  # noqa: E731
        return None if value is None else _name_check(check, value)

    @model_validator(mode="after")
    def _check(self) -> TuneConfig:
        from cryptocast.config.space import parse_space

        parse_space(self.space, searchable_fields())  # ValueError naming tune.space.<key>
        return self


class ForecastConfig(_Section):
    # refuse a model trained on candles older than this (e.g. "14D", "72h"); None: 14 candles,
    # at least 3 days (14 days for 1d, 3 days for 1h)
    max_model_age: str | None = None

    @field_validator("max_model_age")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        import pandas as pd

        if value is None:
            return value
        try:
            ok = pd.Timedelta(value) > pd.Timedelta(0)
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise ValueError(f"{value!r} is not a positive duration; use e.g. 14D, 72h")
        return value


def check_levels(levels: Sequence[float]) -> list[float]:
    """Validate quantile levels: strictly increasing, inside (0, 1), containing the median 0.5.

    Raises:
        ValueError: with the reason (pydantic reports it under the dotted key).
    """
    out = [float(q) for q in levels]
    if not out:
        raise ValueError("needs at least one level, e.g. [0.1, 0.5, 0.9]")
    if any(not 0.0 < q < 1.0 for q in out):
        raise ValueError(f"levels must lie strictly between 0 and 1, got {out}")
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise ValueError(f"levels must be strictly increasing, got {out}")
    if 0.5 not in out:
        raise ValueError(f"levels must include the median 0.5 (the point forecast), got {out}")
    return out


def searchable_fields() -> dict[str, list[str]]:
    """The keys ``tune.space`` may name, per searchable section."""
    from cryptocast.config.space import SEARCHABLE

    sections = {"model": ModelConfig, "train": TrainConfig, "features": FeaturesConfig}
    return {name: list(sections[name].model_fields) for name in SEARCHABLE}
