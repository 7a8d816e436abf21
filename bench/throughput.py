"""The training-throughput harness ``bench_train`` measures with, shared by ``bench_quantile``,
``bench_darts`` (ours' side) and ``scripts/gpu_check.py`` (through ``bench.bench_train``).

:func:`throughput` times the real ``train.fit`` loop on a time-boxed subset of the training
windows; :func:`paper_config` is configs/<model>.yaml as shipped on CPU; the data is either the
reference candles' feature table (:func:`real_data`) or standard-normal tensors of the same shape
(:func:`synthetic_data`: throughput does not depend on the values).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bench.common import SHARED_OHLCV, config, record


def paper_config(model: str, timeframe: str, overrides: list[str] | None = None) -> Any:
    """configs/<model>.yaml on ``timeframe``, on the CPU, with ``overrides``."""
    return config(model, [f"data.timeframe={timeframe}", "train.device=cpu", *(overrides or [])])


def synthetic_data(n_rows: int, n_features: int, lookback: int, horizon: int = 1) -> Any:
    """PreparedData of standard-normal features/targets; every row is a training window end."""
    from cryptocast.features.windows import PreparedData, Scaler

    rng = np.random.default_rng(0)
    one = Scaler("standard", np.zeros(horizon), np.ones(horizon))
    return PreparedData(
        feature_names=[f"f{i}" for i in range(n_features)],
        X=rng.standard_normal((n_rows, n_features), dtype=np.float32),
        Y=rng.standard_normal((n_rows, horizon), dtype=np.float32),
        close=np.full(n_rows, 100.0),
        timestamps=np.zeros(n_rows, "datetime64[ns]"),
        ends={"train": np.arange(lookback - 1, n_rows - horizon, dtype=np.int64)},
        x_scaler=Scaler("standard", np.zeros(n_features), np.ones(n_features)),
        y_scaler=one,
        lookback=lookback,
        horizon=horizon,
        target="log_return",
    )


def real_data(cfg: Any) -> Any:
    """PreparedData of the reference candles' feature table under ``cfg`` (date split as set)."""
    import pandas as pd

    from cryptocast.features.table import compute_features
    from cryptocast.features.windows import prepare, split_bounds

    d = cfg.data
    candles = pd.read_parquet(SHARED_OHLCV / f"{d.symbol.replace('/', '-')}_{d.timeframe}.parquet")
    df = compute_features(candles, cfg.features, d.timeframe)
    f = cfg.features
    return prepare(df, f, split_bounds(df, cfg.split, f.lookback, f.horizon), cfg.split.embargo)


def _subset(data: Any, n_windows: int, seed: int = 0) -> Any:
    from dataclasses import replace

    ends = data.ends["train"]
    pick = np.random.default_rng(seed).choice(len(ends), min(n_windows, len(ends)), replace=False)
    return replace(data, ends={"train": np.sort(ends[pick]), "val": np.empty(0, np.int64)})


def throughput(
    cfg: Any, data: Any, budget_s: float, max_batches: int = 200, warm_batches: int = 3
) -> dict[str, Any]:
    """windows/s of ``fit`` on ``data``: a warm-up fit of a few batches, then a timed fit of 3
    short epochs; the median epoch is reported (robust to bursts of load on a shared CPU)."""
    from cryptocast.models.registry import build_model
    from cryptocast.training.loop import fit, seed_everything

    bs = cfg.train.batch_size
    seed_everything(0)
    model = build_model(cfg.model, len(data.feature_names), data.horizon, data.lookback)
    warm_cfg = cfg.train.model_copy(update={"epochs": 1, "patience": 0})
    warm = fit(model, _subset(data, warm_batches * bs), warm_cfg)  # allocator, kernels
    per_batch = warm.history[0]["seconds"] / warm_batches
    n_batches = int(np.clip(budget_s / 3 / max(per_batch, 1e-6), 2, max_batches))
    timed_data = _subset(data, n_batches * bs, seed=1)
    n = len(timed_data.ends["train"])
    timed = fit(model, timed_data, cfg.train.model_copy(update={"epochs": 3, "patience": 0}))
    seconds = float(np.median([row["seconds"] for row in timed.history]))
    return {
        "windows_per_s": round(n / seconds, 1),
        "step_ms": round(1000 * seconds / math.ceil(n / bs), 2),
        "timed_windows": 3 * n,
        "epoch_windows_per_s": [round(n / row["seconds"], 1) for row in timed.history],
        "n_params": sum(p.numel() for p in model.parameters()),
    }


def threaded_record(
    figure: str, value: Any, unit: str, params: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A record (value as given) with the torch thread count it was measured at."""
    import torch

    return record(figure, value, unit, params, None, threads=torch.get_num_threads(), **extra)
