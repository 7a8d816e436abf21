"""Run folders: what a trained run stores, how it is found again, and the refit on every row.

A run directory ``runs/{name}-{YYYYmmdd-HHMMSS}/`` holds ``config.yaml`` (resolved),
``metrics.json`` (loss curves and test metrics) and ``checkpoint.pt`` (written last, atomically:
its presence marks the run complete).

The validated run fits on the train segment, picks the epoch on validation and scores the test
segment. With ``train.refit_all`` (default) a second fit then starts from the same seed on every
stored row from ``data.start`` to the last stored candle (``data.end`` bounds the validated run
only), for the validated best epoch count, and those are the weights the checkpoint holds. Its
``trained_until`` is the open time of the newest candle the deployed weights learnt from.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.dates import to_timestamp
from cryptocast.config.schema import Config
from cryptocast.errors import CheckpointError, ConfigError, DataError

CHECKPOINT = "checkpoint.pt"


@dataclass
class RunResult:
    run_dir: Path
    metrics: dict[str, Any]


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("cryptocast", "torch", "pandas", "numpy", "ta", "ccxt", "pyarrow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def load_feature_table(cfg: Config, data_dir: Path, to_last: bool = False) -> pd.DataFrame:
    """Feature table for ``cfg.data``'s series, restricted to ``data.start``/``data.end``.

    ``to_last``: ignore ``data.end`` and keep every row up to the last stored candle (the refit).
    """
    from cryptocast.features.table import build_features

    d = cfg.data
    check_exchange_known(d.exchange, data_dir)
    full = build_features(Path(data_dir), d.exchange, d.symbol, d.timeframe, cfg.features)
    df = full
    if d.start:
        df = df[df["timestamp"] >= to_timestamp(d.start, "data.start")]
    if d.end and not to_last:
        df = df[df["timestamp"] < to_timestamp(d.end, "data.end")]
    df = df.reset_index(drop=True)
    if df.empty:
        have = (
            f"the feature rows run from {full['timestamp'].iloc[0]:%Y-%m-%d %H:%M} to "
            f"{full['timestamp'].iloc[-1]:%Y-%m-%d %H:%M}"
            if len(full)
            else "there are no feature rows at all"
        )
        raise DataError(
            f"no feature rows for {d.symbol} {d.timeframe} from data.start={d.start or '(first)'} "
            f"to data.end={d.end or '(last)'}: {have}; move data.start/data.end into that range "
            "or fetch more candles"
        )
    return df


def check_exchange_known(exchange: str, data_dir: Path) -> None:
    """``data.exchange`` must be a ccxt id or a folder of imported candles; else ConfigError."""
    if (Path(data_dir) / "ohlcv" / exchange).is_dir():
        return
    import ccxt

    if exchange not in ccxt.exchanges:
        raise ConfigError(
            f"data.exchange {exchange!r} is neither a ccxt exchange id nor a folder of imported "
            f"candles in {Path(data_dir) / 'ohlcv'}; use e.g. binance"
        )


def checkpoint_meta(
    cfg: Config,
    model: Any,
    data: Any,
    df: pd.DataFrame,
    fit_result: Any,
    refit: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything inference needs besides the weights; JSON-safe containers only.

    ``model`` holds the deployed weights; ``data``/``df`` are what they were fit on (the refit's
    when ``refit``), which also gives the target's mapping-back factor (``variance_factor``).
    """
    own = series_record(model, data, df)
    return {
        **model_record(cfg, data),
        "x_scaler": own["x_scaler"],
        "y_scaler": own["y_scaler"],
        "variance_factor": own["variance_factor"],
        "data": {
            "exchange": cfg.data.exchange,
            "symbol": cfg.data.symbol,
            "timeframe": cfg.data.timeframe,
            **own["data"],
        },
        "trained_until": own["trained_until"],
        **run_record(cfg, fit_result, refit),
    }


def pooled_meta(
    cfg: Config,
    model: Any,
    data: Any,
    tables: dict[str, pd.DataFrame],
    fit_result: Any,
    refit: dict[str, Any] | None,
    pool: dict[str, Any],
    calibration: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The checkpoint meta of a pooled model deployed on ``data`` (a ``PooledData``), laid out
    in :mod:`cryptocast.training.pooled`.

    ``pool``: ``evaluated`` and ``series`` (the embedding order) and ``scaled_before``;
    ``calibration``: each evaluated symbol's record (a calibrated quantile run).
    """
    from cryptocast.training.pooled import POOLED

    members = {}
    for symbol, part in zip(data.series, data.parts, strict=True):
        members[symbol] = series_record(model, part, tables[symbol])
        if calibration and symbol in calibration:
            members[symbol]["calibration"] = calibration[symbol]
    stamps = {k: [pd.Timestamp(m["data"][k]) for m in members.values()] for k in ("first", "last")}
    return {
        **model_record(cfg, data),
        "data": {
            "exchange": cfg.data.exchange,
            "timeframe": cfg.data.timeframe,
            "symbols": list(pool["evaluated"]),
            "universe": [s for s in pool["series"] if s not in pool["evaluated"]],
            "first": str(min(stamps["first"])),
            "last": str(max(stamps["last"])),
            "rows": sum(m["data"]["rows"] for m in members.values()),
        },
        "trained_until": str(max(pd.Timestamp(m["trained_until"]) for m in members.values())),
        POOLED: {
            "evaluated": list(pool["evaluated"]),
            "series": list(pool["series"]),
            "embedding": bool(cfg.model.series_embedding),
            "scaled_before": str(pool["scaled_before"]),
            "members": members,
        },
        **run_record(cfg, fit_result, refit),
    }


def model_record(cfg: Config, data: Any) -> dict[str, Any]:
    """The checkpoint's description of the network and its inputs (any series)."""
    return {
        "model_config": cfg.model.model_dump(mode="json"),
        "n_features": len(data.feature_names),
        "feature_names": list(data.feature_names),
        "lookback": data.lookback,
        "horizon": data.horizon,
        "target": data.target,
        "features_config": cfg.features.model_dump(mode="json"),
    }


def series_record(model: Any, data: Any, df: pd.DataFrame) -> dict[str, Any]:
    """What one series of a checkpoint needs: its scaler statistics, the target's mapping-back
    factor, the rows ``data`` covers and ``trained_until`` (its newest target candle learnt from)."""
    from cryptocast.training.inference import fit_variance_factor

    train_rows = _segment_rows(data, "train")
    factor = fit_variance_factor(model, data)
    return {
        "x_scaler": data.x_scaler.to_dict(),
        "y_scaler": data.y_scaler.to_dict(),
        "variance_factor": None if factor is None else [float(v) for v in factor],
        "data": {
            "first": str(df["timestamp"].iloc[0]),
            "last": str(df["timestamp"].iloc[-1]),
            "rows": len(df),
            "train_rows": [int(x) for x in train_rows],
        },
        "trained_until": str(df["timestamp"].iloc[train_rows[1] - 1]),
    }


def run_record(cfg: Config, fit_result: Any, refit: dict[str, Any] | None) -> dict[str, Any]:
    """Which weights the checkpoint holds, the config and its hashes, versions and time."""
    return {
        "weights": "refit_all" if refit else "validated",
        "refit": refit,
        "config": cfg.to_dict(),
        "config_hash": cfg.hash(),
        "training_hash": cfg.training_hash(),
        "versions": package_versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "best_epoch": fit_result.best_epoch,
    }


def _segment_rows(data: Any, name: str) -> tuple[int, int]:
    ends = data.ends.get(name, np.empty(0))
    if len(ends) == 0:
        return (0, 0)
    return (int(ends.min()) - data.lookback + 1, int(ends.max()) + data.horizon + 1)


def new_run_dir(cfg: Config) -> Path:
    root = Path(cfg.output.runs_dir)
    name = cfg.output.name or cfg.model.name
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run_dir = root / f"{name}-{stamp}"
    i = 1
    while run_dir.exists():
        run_dir = root / f"{name}-{stamp}-{i}"
        i += 1
    run_dir.mkdir(parents=True)
    return run_dir


def refit_data(cfg: Config, data_dir: Path) -> tuple[Any, pd.DataFrame]:
    """(prepared data, feature table) of the refit: one training segment over every row."""
    from cryptocast.features.windows import prepare

    df = load_feature_table(cfg, data_dir, to_last=True)
    return prepare(df, cfg.features, {"train": (0, len(df))}, cfg.split.embargo), df


def refit_all(cfg: Config, data_dir: Path, validated: Any) -> tuple[Any, Any, Any, Any, Any]:
    """Retrain from the seed on every stored row for the validated best epoch count.

    The epoch count is not scaled up for the larger table: an epoch over more rows already takes
    proportionally more optimiser steps, and the learning-rate schedule is the validated run's
    (laid out for ``train.epochs``), stopped after the same number of epochs. Scalers are fit on
    all rows; nothing is evaluated on them afterwards.

    Returns:
        (model, prepared data, feature table, fit result, refit summary for the checkpoint).
    """
    from functools import partial

    from cryptocast.models.registry import build_model

    data, df = refit_data(cfg, data_dir)
    f = cfg.features
    build = partial(build_model, cfg.model, len(data.feature_names), f.horizon, f.lookback)
    model, result, summary = refit_model(cfg, data, build, validated)
    first, last = df["timestamp"].iloc[0], df["timestamp"].iloc[-1]
    return model, data, df, result, refit_summary(summary, len(df), first, last)


def refit_model(cfg: Config, data: Any, build: Any, validated: Any) -> tuple[Any, Any, dict]:
    """``build()`` retrained from ``train.seed`` on ``data``'s training windows for the validated
    best epoch count (see :func:`refit_all`): (model, fit result, epochs/windows/seconds)."""
    from cryptocast.training.loop import fit, seed_everything

    seed_everything(cfg.train.seed)
    model = build()
    epochs = max(int(validated.best_epoch), 1)
    result = fit(model, data, cfg.train, epochs=epochs if validated.trained else None)
    done = {"epochs": epochs if validated.trained else 0, "windows": int(len(data.ends["train"]))}
    return model, result, {**done, "seconds": result.seconds}


def refit_summary(fit: dict, rows: int, first: Any, last: Any) -> dict[str, Any]:
    """The checkpoint's ``refit`` record: epochs, rows, windows, first and last row, seconds."""
    return {
        "epochs": fit["epochs"],
        "rows": rows,
        "windows": fit["windows"],
        "first": str(first),
        "last": str(last),
        "seconds": fit["seconds"],
    }


def run_hash(run_dir: Path) -> str | None:
    """The training hash a run recorded in its metrics.json (None: unreadable or older run)."""
    try:
        value = json.loads((Path(run_dir) / "metrics.json").read_text()).get("training_hash")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def latest_run(runs_dir: Path, name: str, training_hash: str, source: str = "the config") -> Path:
    """Newest complete run named ``name-*`` under ``runs_dir`` trained from ``training_hash``.

    "Newest" is by completion (the checkpoint's modification time). Runs of another config
    (another hash: other data, features, split, model or train settings) are never picked.

    Raises:
        CheckpointError: no such run; the message names the config and the train command.
    """
    runs = sorted(
        (p for p in Path(runs_dir).glob(f"{name}-*") if (p / CHECKPOINT).is_file()),
        key=lambda p: (p / CHECKPOINT).stat().st_mtime,
    )
    matching = [p for p in runs if run_hash(p) == training_hash]
    if not matching:
        others = f" ({len(runs)} run(s) named {name}-* came from other configs)" if runs else ""
        raise CheckpointError(
            f"no completed run of {source} (training hash {training_hash}) in {runs_dir}{others}; "
            f"train it with `cryptocast train --config {source}`"
        )
    return matching[-1]
