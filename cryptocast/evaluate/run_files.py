"""What ``cryptocast train`` writes, per-series or pooled: metrics.json's record, the calibration
record of a quantile run and the run folder itself (layout: :mod:`cryptocast.training.runs`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cryptocast.config.schema import Config
from cryptocast.training.runs import CHECKPOINT, RunResult, new_run_dir

#: the calibration record's fields metrics.json shows (the scores stay in calibration.json)
CALIBRATION_SUMMARY = ("method", "gamma", "n_scores", "last_row_read")


def calibration_for(cfg: Config, model: Any, data: Any, df: Any) -> dict[str, Any] | None:
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


def calibration_summary(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """metrics.json's view of a calibration record (None: no calibration)."""
    return None if record is None else {k: record[k] for k in CALIBRATION_SUMMARY}


def run_metrics(
    cfg: Config,
    result: Any,
    data: Any,
    test: dict[str, Any],
    calibration: Any,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json: the validated fit (``result`` on ``data``), its test scores and calibration
    summary, and which weights the checkpoint (``meta``) deploys."""
    return {
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
        "test": test,
        "calibration": calibration,
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


def write_run(
    cfg: Config,
    metrics: dict[str, Any],
    meta: dict[str, Any],
    model: Any,
    calibration: dict[str, Any] | None = None,
) -> RunResult:
    """A new run folder: config.yaml, metrics.json, calibration.json (a calibrated quantile
    run, read by later runs' daily ACI replays) and, last and atomically, checkpoint.pt."""
    from cryptocast.evaluate.frames import to_jsonable
    from cryptocast.training.checkpoint import save_checkpoint

    run_dir = new_run_dir(cfg)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    # strict JSON: NaN (e.g. no validation loss) is written as null
    text = json.dumps(to_jsonable(metrics), indent=2, allow_nan=False)
    (run_dir / "metrics.json").write_text(text)
    if calibration is not None:
        (run_dir / "calibration.json").write_text(json.dumps(calibration))
    save_checkpoint(Path(run_dir) / CHECKPOINT, model, meta)
    return RunResult(run_dir=run_dir, metrics=metrics)
