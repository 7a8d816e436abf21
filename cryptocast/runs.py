"""A training run end to end: config -> features -> windows -> model -> fit -> run directory.

A run directory ``runs/{name}-{YYYYmmdd-HHMMSS}/`` holds ``config.yaml`` (resolved),
``metrics.json`` (loss curves and test metrics) and ``checkpoint.pt`` (written last, atomically:
its presence marks the run complete).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from cryptocast.config import Config
from cryptocast.dates import to_timestamp
from cryptocast.errors import CheckpointError, ConfigError, DataError
from cryptocast.paths import check_writable_dir

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


def load_feature_table(cfg: Config, data_dir: Path) -> pd.DataFrame:
    """Feature table for ``cfg.data``'s series, restricted to ``data.start``/``data.end``."""
    from cryptocast.features import build_features

    d = cfg.data
    check_exchange_known(d.exchange, data_dir)
    full = build_features(Path(data_dir), d.exchange, d.symbol, d.timeframe, cfg.features)
    df = full
    if d.start:
        df = df[df["timestamp"] >= to_timestamp(d.start, "data.start")]
    if d.end:
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


def checkpoint_meta(cfg: Config, data: Any, df: pd.DataFrame, fit_result: Any) -> dict[str, Any]:
    """Everything inference needs besides the weights; JSON-safe containers only."""
    return {
        "model_config": cfg.model.model_dump(mode="json"),
        "n_features": len(data.feature_names),
        "feature_names": list(data.feature_names),
        "x_scaler": data.x_scaler.to_dict(),
        "y_scaler": data.y_scaler.to_dict(),
        "lookback": data.lookback,
        "horizon": data.horizon,
        "target": data.target,
        "features_config": cfg.features.model_dump(mode="json"),
        "data": {
            "exchange": cfg.data.exchange,
            "symbol": cfg.data.symbol,
            "timeframe": cfg.data.timeframe,
            "first": str(df["timestamp"].iloc[0]),
            "last": str(df["timestamp"].iloc[-1]),
            "rows": len(df),
            "train_rows": [int(x) for x in _segment_rows(data, "train")],
        },
        "config": cfg.to_dict(),
        "config_hash": cfg.hash(),
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


def train_run(
    cfg: Config,
    data_dir: Path,
    progress_cb: Callable[[dict[str, float]], None] | None = None,
    batch_cb: Callable[[int, int, int], None] | None = None,
) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data`` and write a complete run directory.

    ``progress_cb`` sees each epoch's history row, ``batch_cb`` (epoch, batch, batches) each step.
    """
    from cryptocast.checkpoint import save_checkpoint
    from cryptocast.evaluate.metrics import point_metrics
    from cryptocast.evaluate.report import to_jsonable
    from cryptocast.models.registry import build_model, is_trainable
    from cryptocast.targets import get_target
    from cryptocast.train import fit, predict_prices, resolve_device, seed_everything
    from cryptocast.windows import prepare, realised_closes, split_bounds

    resolve_device(cfg.train.device)  # fail fast, before any work
    is_trainable(cfg.model.name)  # unknown model name: ConfigError before features are built
    target = get_target(cfg.features.target)
    target.check_models([cfg.model.name])
    target.check_timeframe(cfg.data.timeframe)
    df = load_feature_table(cfg, data_dir)
    f = cfg.features
    segments = split_bounds(df, cfg.split, f.lookback, f.horizon)
    data = prepare(df, f, segments, cfg.split.embargo)
    check_writable_dir(Path(cfg.output.runs_dir), "output.runs_dir")  # not after an hour's fit
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, len(data.feature_names), f.horizon, f.lookback)
    result = fit(model, data, cfg.train, progress_cb, batch_cb)

    test_ends = data.ends.get("test", np.empty(0, np.int64))
    test_metrics: dict[str, Any] = {}
    if len(test_ends):
        pred = predict_prices(model, data, test_ends)  # prices, or annualised volatility
        if target.kind == "vol":
            from cryptocast.evaluate.volatility import vol_metrics

            test_metrics = vol_metrics(target.realised(df, test_ends, data.horizon), pred)
        else:
            true = realised_closes(data.close, test_ends, data.horizon)
            test_metrics = point_metrics(true, pred, data.close[test_ends])
    run_dir = new_run_dir(cfg)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    metrics = {
        "model": cfg.model.name,
        "config_hash": cfg.hash(),
        "device": result.device,
        "history": result.history,
        "best_epoch": result.best_epoch,
        "best_val_loss": result.best_val_loss,
        "best_epoch_selected_on": result.selected_on,
        "stopped_early": result.stopped_early,
        "train_seconds": result.seconds,
        "windows_per_s": result.windows_per_s,
        "n_windows": {k: int(len(v)) for k, v in data.ends.items()},
        "dropped_gap_windows": int(getattr(data, "dropped_gap_windows", 0)),
        "test": test_metrics,
    }
    # strict JSON: NaN (e.g. no validation loss) is written as null
    text = json.dumps(to_jsonable(metrics), indent=2, allow_nan=False)
    (run_dir / "metrics.json").write_text(text)
    save_checkpoint(run_dir / CHECKPOINT, model, checkpoint_meta(cfg, data, df, result))
    return RunResult(run_dir=run_dir, metrics=metrics)


def latest_run(runs_dir: Path, name: str) -> Path:
    """Newest complete run (has a checkpoint) named ``name-*`` under ``runs_dir``."""
    runs = sorted(
        (p for p in Path(runs_dir).glob(f"{name}-*") if (p / CHECKPOINT).is_file()),
        key=lambda p: p.stat().st_mtime,
    )
    if not runs:
        raise CheckpointError(
            f"no completed run named {name!r} in {runs_dir}; run `cryptocast train --config ...` first"
        )
    return runs[-1]
