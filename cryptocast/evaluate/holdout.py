"""``cryptocast train``: one model fitted, scored on its held-out test split, written as a run.

The validated run fits on the train segment, picks the epoch on validation and scores the test
segment with the target's scores (:mod:`cryptocast.evaluate.scoring`). With ``train.refit_all``
the checkpoint then holds a refit on every stored row (:func:`cryptocast.training.runs.refit_all`).
The run folder layout is :mod:`cryptocast.training.runs`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cryptocast.config.names import check_writable_dir
from cryptocast.config.schema import Config
from cryptocast.training.runs import (
    CHECKPOINT,
    RunResult,
    checkpoint_meta,
    load_feature_table,
    new_run_dir,
    refit_all,
)


def train_run(
    cfg: Config,
    data_dir: Path,
    progress_cb: Callable[[dict[str, float]], None] | None = None,
    batch_cb: Callable[[int, int, int], None] | None = None,
) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data`` and write a complete run directory.

    ``progress_cb`` sees each epoch's history row, ``batch_cb`` (epoch, batch, batches) each step.
    """
    from cryptocast.evaluate.frames import to_jsonable
    from cryptocast.evaluate.scoring import scoring_for
    from cryptocast.features.targets import get_target
    from cryptocast.features.windows import prepare, split_bounds
    from cryptocast.models.registry import build_model, is_trainable
    from cryptocast.training.checkpoint import save_checkpoint
    from cryptocast.training.inference import predict_prices
    from cryptocast.training.loop import fit, resolve_device, seed_everything

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
        test_metrics = scoring_for(target).holdout(target, df, data, test_ends, pred)
    calibration = _calibration(cfg, model, data, df)  # the validated model, before any refit
    deployed = (model, data, df, result, None)
    if cfg.train.refit_all:
        deployed = refit_all(cfg, data_dir, result)
    run_dir = new_run_dir(cfg)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    meta = checkpoint_meta(cfg, *deployed)
    if calibration is not None:  # what the daily job calibrates with (forecasting.calibration)
        meta["calibration"] = calibration
    metrics = {
        "model": cfg.model.name,
        "config_hash": cfg.hash(),
        "training_hash": cfg.training_hash(),
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
        "calibration": None
        if calibration is None
        else {k: calibration[k] for k in ("method", "gamma", "n_scores", "last_row_read")},
        # the figures above are the validated run's; the checkpoint may hold the refit's weights
        "deployed": {
            "weights": meta["weights"],
            "trained_until": meta["trained_until"],
            "refit": meta["refit"],
            "note": (
                "checkpoint.pt holds a refit on every stored row for best_epoch epochs; the "
                "validation and test figures above are the validated run's (the refit saw the "
                "test segment, so it has no test score of its own)"
                if meta["refit"]
                else "checkpoint.pt holds the validated run's weights (train.refit_all: false)"
            ),
        },
    }
    # strict JSON: NaN (e.g. no validation loss) is written as null
    text = json.dumps(to_jsonable(metrics), indent=2, allow_nan=False)
    (run_dir / "metrics.json").write_text(text)
    if calibration is not None:  # read by later runs' daily ACI replays (forecasting.calibration)
        (run_dir / "calibration.json").write_text(json.dumps(calibration))
    save_checkpoint(run_dir / CHECKPOINT, deployed[0], meta)
    return RunResult(run_dir=run_dir, metrics=metrics)


def _calibration(cfg: Config, model: Any, data: Any, df: Any) -> dict[str, Any] | None:
    """``backtest.calibration``'s record for the daily job: the conformity scores of the
    validated model on its validation windows (see ``conformal.calibration_record``)."""
    from cryptocast.evaluate.conformal import calibration_record
    from cryptocast.training.inference import Predictor

    if cfg.backtest.calibration == "none":
        return None
    return calibration_record(
        cfg.backtest.calibration, cfg.backtest.aci_gamma, Predictor.from_prepared(model, data),
        data.X, df["close"].to_numpy("float64"), data.ends.get("val", np.empty(0, np.int64)),
        cfg.features.horizon, df["timestamp"],
    )  # fmt: skip
