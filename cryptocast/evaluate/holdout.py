"""``cryptocast train``: one model fitted, scored on its held-out test split, written as a run.

The validated run fits on the train segment, picks the epoch on validation and scores the test
segment with the target's scores (:mod:`cryptocast.evaluate.scoring`). With ``train.refit_all``
the checkpoint then holds a refit on every stored row (:func:`cryptocast.training.runs.refit_all`).
The run folder layout is :mod:`cryptocast.training.runs`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cryptocast.config.names import check_writable_dir
from cryptocast.config.schema import Config
from cryptocast.training.runs import (
    RunResult,
    checkpoint_meta,
    load_feature_table,
    refit_all,
)


def train_run(
    cfg: Config,
    data_dir: Path,
    progress_cb: Callable[[dict[str, float]], None] | None = None,
    batch_cb: Callable[[int, int, int], None] | None = None,
) -> RunResult:
    """Train ``cfg.model`` on ``cfg.data`` and write a complete run directory.

    With ``backtest.pooled`` one model is trained over the pool instead
    (:func:`cryptocast.evaluate.pooled_train.train_pooled`).
    ``progress_cb`` sees each epoch's history row, ``batch_cb`` (epoch, batch, batches) each step.
    """
    from cryptocast.evaluate.pooled import check_pooled_keys
    from cryptocast.evaluate.run_files import (
        calibration_for,
        calibration_summary,
        run_metrics,
        write_run,
    )
    from cryptocast.evaluate.scoring import scoring_for
    from cryptocast.features.targets import get_target
    from cryptocast.features.windows import prepare, split_bounds
    from cryptocast.models.registry import build_model, is_trainable
    from cryptocast.training.inference import predict_prices
    from cryptocast.training.loop import fit, resolve_device, seed_everything

    if check_pooled_keys(cfg):
        from cryptocast.evaluate.pooled_train import train_pooled

        return train_pooled(cfg, data_dir, progress_cb, batch_cb)
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
    calibration = calibration_for(cfg, model, data, df)  # the validated model, before any refit
    deployed = (model, data, df, result, None)
    if cfg.train.refit_all:
        deployed = refit_all(cfg, data_dir, result)
    meta = checkpoint_meta(cfg, *deployed)
    if calibration is not None:  # what the daily job calibrates with (forecasting.calibration)
        meta["calibration"] = calibration
    summary = calibration_summary(calibration)
    metrics = run_metrics(cfg, result, data, test_metrics, summary, meta)
    return write_run(cfg, metrics, meta, deployed[0], calibration)
