"""Training a run, and loading a trained run back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptocast.api.common import _overrides, _source, load_config
from cryptocast.api.tracking import check_tracking, log_train

if TYPE_CHECKING:
    import pandas as pd

    from cryptocast.api.common import ConfigLike, Overrides, PathLike
    from cryptocast.config.schema import Config
    from cryptocast.training.inference import Predictor


@dataclass(frozen=True)
class TrainResult:
    """A trained run: its folder (``runs/{name}-{timestamp}``), metrics.json and config.

    ``metrics["test"]`` holds the held-out test scores; ``load()`` opens the run for prediction.
    ``tracking_run`` is the MLflow run id when ``tracking.enabled`` (docs/tracking.md).
    """

    run_dir: Path
    metrics: dict[str, Any]
    config: Config
    tracking_run: str | None = None

    def load(self) -> Run:
        """The run as :func:`load_run` returns it (config, metrics and a ``Predictor``)."""
        return load_run(self.run_dir)


def train(
    config: ConfigLike = None,
    overrides: Overrides = None,
    *,
    data_dir: PathLike = "data",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> TrainResult:
    """Train ``model.name`` on ``data``'s series and write a run folder (``cryptocast train``).

    The validated run fits on the train segment, picks the epoch on validation and scores the
    test segment; with ``train.refit_all`` (default) the checkpoint then holds a refit on every
    stored row. With ``backtest.pooled`` it trains one model over ``backtest.symbols`` and
    ``train.universe``, scored per evaluated symbol (docs/global.md). Like the CLI, this sets torch's thread count for the process
    (``train.num_threads``, or what the machine's thread plan picks).

    Args:
        config: a ``Config``, a YAML path or None for the defaults.
        overrides: ``section.key=value`` strings (``--set``), e.g. ``["train.epochs=1"]``.
        data_dir: the data folder holding the candles.
        on_epoch: called with each epoch's history row (epoch, train_loss, val_loss, lr, ...).
        on_batch: called as ``on_batch(epoch, batch, batches)`` after each training step.

    Returns:
        A ``TrainResult``: the run folder (under ``output.runs_dir``), its metrics and config.

    Raises:
        ConfigError: an invalid config, unknown model or device.
        DataError: no candles or feature rows for the series.
        StorageError: ``output.runs_dir`` is not writable (checked before the fit).
        CryptocastError: ``tracking.enabled`` and MLflow refused the run (the run folder stays).
    """
    from cryptocast.config.schema import override_sources
    from cryptocast.models.registry import check_model_name

    cfg = load_config(config, overrides)  # dates, types, keys: before data or torch
    blame = override_sources(_overrides(overrides))
    source = blame.get("model.name", f"{_source(config)}: model.name")
    check_model_name(cfg.model.name, source)  # lists the registered names; imports no torch
    check_tracking(cfg)

    from cryptocast.evaluate.holdout import train_run
    from cryptocast.training.threads import apply_thread_plan

    plan = apply_thread_plan(1, cfg.train.num_threads)  # before anything below loads torch
    import torch

    torch.set_num_threads(plan.threads)
    result = train_run(cfg, Path(data_dir), on_epoch, on_batch)
    tracked = log_train(cfg, result.run_dir, result.metrics)
    return TrainResult(result.run_dir, result.metrics, cfg, tracked)


# ---- backtest ----


def _latest_run(config: ConfigLike, overrides: Overrides) -> tuple[Path, Config]:
    """(run folder, Config): the newest completed run trained from ``config`` + ``overrides``."""
    from cryptocast.config.schema import Config
    from cryptocast.forecasting.job import run_from_config
    from cryptocast.training.runs import latest_run

    items = _overrides(overrides)
    if not isinstance(config, Config):  # a path: the CLI's code path and wording
        return run_from_config(Path(config), items)  # type: ignore[arg-type]
    cfg = load_config(config, items)
    name = cfg.output.name or cfg.model.name
    source = f"the given config (hash {cfg.hash()})"
    return latest_run(Path(cfg.output.runs_dir), name, cfg.training_hash(), source), cfg


# ---- runs ----
@dataclass(frozen=True)
class Run:
    """A completed training run, opened for inspection and prediction.

    Attributes:
        path: the run folder (``runs/{name}-{timestamp}``).
        config: the resolved config it was trained from (config.yaml).
        metrics: metrics.json: loss history, best epoch, held-out ``test`` scores, ``deployed``.
        predictor: the checkpoint as a ``Predictor`` (model, scalers, feature list), the same
            prediction path the backtest and the forecast job use; of a pooled run
            (``backtest.pooled``), its first evaluated symbol's.
        predictors: one ``Predictor`` per series the run forecasts, by symbol: a pooled run's
            evaluated symbols (one model, each with its own scalers), else the run's series.
    """

    path: Path
    config: Config
    metrics: dict[str, Any]
    predictor: Predictor
    predictors: dict[str, Predictor] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The run id, e.g. ``tiny-20240101-120000``."""
        return self.path.name

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch of the validated fit (train_loss, val_loss, lr, seconds, ...)."""
        import pandas as pd

        return pd.DataFrame(self.metrics.get("history") or [])


def load_run(
    run: PathLike | None = None, *, config: ConfigLike = None, overrides: Overrides = None
) -> Run:
    """Open a trained run folder: its config, metrics and a ``Predictor`` for its checkpoint.

    Args:
        run: the run folder written by :func:`train` (or its checkpoint.pt).
        config: instead of ``run``: the newest completed run trained from this config (YAML
            path or ``Config``) plus ``overrides``, the run ``forecast --config`` would use.
        overrides: ``section.key=value`` strings for ``config``.

    Returns:
        A :class:`Run` (path, config, metrics, predictor, and ``predictors`` by symbol).

    Raises:
        ConfigError: neither or both of ``run`` and ``config``.
        CheckpointError: no such run, an unfinished run (no checkpoint) or a corrupt checkpoint.
    """
    import json

    from cryptocast.config.schema import config_from_dict
    from cryptocast.errors import CheckpointError, ConfigError
    from cryptocast.forecasting.job import checkpoint_file
    from cryptocast.training.checkpoint import load_checkpoint
    from cryptocast.training.inference import Predictor
    from cryptocast.training.pooled import served_symbols

    if (run is None) == (config is None):
        raise ConfigError("pass run=runs/NAME-TIMESTAMP or config=configs/X.yaml (one of them)")
    if config is not None:
        run, _ = _latest_run(config, overrides)
    ckpt = checkpoint_file(Path(run))  # type: ignore[arg-type]
    run_dir = ckpt.parent
    model, raw = load_checkpoint(ckpt)
    predictors = {}
    for symbol in served_symbols(raw) or [None]:  # a pooled run: one model, each its scalers
        one = Predictor.from_loaded(model, raw, ckpt, symbol)
        predictors[symbol or str((one.meta.get("data") or {}).get("symbol", ""))] = one
    predictor = next(iter(predictors.values()))
    meta = predictor.meta or {}
    cfg_file = run_dir / "config.yaml"
    cfg = load_config(cfg_file) if cfg_file.is_file() else config_from_dict(meta.get("config", {}))
    metrics: dict[str, Any] = {}
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        try:
            metrics = json.loads(metrics_file.read_text())
        except ValueError as err:
            raise CheckpointError(f"{metrics_file}: not valid JSON ({err})") from None
    return Run(run_dir, cfg, metrics, predictor, predictors)
