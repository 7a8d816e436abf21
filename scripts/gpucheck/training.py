"""The precision policy on the accelerator, and training agreement between devices and precisions
on the reference BTC/USDT candles."""

from __future__ import annotations

import math
import time
from typing import Any

from scripts.gpucheck.sizes import TOL_DEVICE, TOL_PRECISION, Budget, config, legs, rec


def check_policy(acc: str, size: dict) -> tuple[list[dict], list[str]]:
    """Observed vs declared module dtypes on the accelerator, every neural model, both modes."""
    import torch

    from cryptocast.models.registry import build_model, is_trainable, model_names
    from cryptocast.training.precision import observe_dtypes, precision_policy

    records, failures = [], []
    for name in [n for n in model_names() if is_trainable(n)]:
        cfg = config(name, "1d")
        torch.manual_seed(0)
        model = build_model(cfg.model, 7, 1, cfg.features.lookback).to(acc).eval()
        x = torch.randn(size["policy_batch"], cfg.features.lookback, 7, device=acc)
        for mode in ("fp32", "mixed"):
            policy = precision_policy(mode, acc)
            seen = observe_dtypes(model, x, policy)
            declared = policy.module_dtypes()
            bad = {k: sorted(map(str, v)) for k, v in seen.items() if v != {declared[k]}}
            for kind, dtypes in bad.items():
                failures.append(f"precision {name} {mode} on {acc}: {kind} ran in {dtypes}")
            records.append(
                rec(
                    "precision_policy_mismatches",
                    len(bad),
                    "module kinds",
                    model=name,
                    mode=mode,
                    device=acc,
                    observed={k: sorted(str(d) for d in v) for k, v in seen.items()},
                )
            )
    return records, failures


def _features(timeframe: str, start: str | None) -> Any:
    """Feature table of the reference BTC/USDT candles under the default feature config."""
    import pandas as pd

    from bench.common import SHARED_OHLCV
    from cryptocast.features.table import compute_features

    path = SHARED_OHLCV / f"BTC-USDT_{timeframe}.parquet"
    if not path.is_file():
        raise SystemExit(f"error: reference candles {path} not found; set CRYPTOCAST_SHARED_DATA")
    candles = pd.read_parquet(path)
    if start is not None:
        candles = candles[candles["timestamp"] >= pd.Timestamp(start, tz="UTC")]
        candles = candles.reset_index(drop=True)
    cfg = config("lstm", timeframe)
    return compute_features(candles, cfg.features, timeframe), cfg


def prepared(timeframe: str, size: dict) -> Any:
    """The windows of the reference feature table for ``timeframe`` (the check's candle range)."""
    from cryptocast.features.windows import prepare, split_bounds

    df, cfg = _features(timeframe, size["start"][timeframe])
    f = cfg.features
    return prepare(df, f, split_bounds(df, cfg.split, f.lookback, f.horizon), cfg.split.embargo)


def _val_loss(name: str, timeframe: str, device: str, mode: str, size: dict, data: Any) -> dict:
    """Train ``name`` on one (device, precision) leg; its validation loss and the losses seen."""
    import numpy as np
    import torch

    from cryptocast.models.distribution import levels_of
    from cryptocast.models.registry import build_model
    from cryptocast.training.loop import _to_device, evaluate_loss, fit, seed_everything
    from cryptocast.training.precision import precision_policy

    cfg = config(
        name,
        timeframe,
        [
            *size["model_sets"],
            f"train.device={device}",
            f"train.precision={mode}",
            f"train.epochs={size['epochs']}",
            "train.batch_size=256",
            "train.patience=0",
            "model.dropout=0.0",
            "train.num_threads=null",
        ],
    )
    seed_everything(0)
    model = build_model(cfg.model, len(data.feature_names), data.horizon, data.lookback)
    t0 = time.perf_counter()
    result = fit(model, data, cfg.train)
    seconds = time.perf_counter() - t0
    dev = torch.device(device)
    X, Y = _to_device(data, dev)
    levels = levels_of(model)
    val = evaluate_loss(
        model,
        X,
        Y,
        data.ends["val"],
        data.lookback,
        cfg.train.batch_size,
        cfg.train.loss if levels is None else "pinball",  # rw_* predict quantiles
        dev,
        levels,
        precision_policy(mode, dev),
    )
    history = [r["train_loss"] for r in result.history]
    finite = bool(np.isfinite(val)) and all(np.isfinite(history))
    return {"val": val, "finite": finite, "history": history, "seconds": seconds}


def train_agreement(
    acc: str, size: dict, budget: Budget, data: dict
) -> tuple[list[dict], list[str]]:
    """Every registered model, daily and hourly, {cpu, acc} x {fp32, mixed}: val losses agree."""
    from cryptocast.features.targets import VOL_BASELINES
    from cryptocast.models.registry import model_names

    records, failures = [], []
    for timeframe in ("1d", "1h"):
        windows = data[timeframe]
        # the check trains on the price target; volatility baselines belong to realized_vol
        for name in (n for n in model_names() if n not in VOL_BASELINES):
            if budget.left("training") < 0:
                records.append(rec("val_loss_skipped", 1, "runs", model=name, tf=timeframe))
                continue
            losses: dict[tuple[str, str], float] = {}
            for device, mode in legs(acc):
                run = _val_loss(name, timeframe, device, mode, size, windows)
                if not run["finite"]:
                    failures.append(f"{name} {timeframe} {device} {mode}: non-finite loss")
                losses[(device, mode)] = run["val"]
                records.append(
                    rec(
                        "val_loss",
                        run["val"] if run["finite"] else None,
                        "loss",
                        model=name,
                        timeframe=timeframe,
                        device=device,
                        precision=mode,
                        epochs=size["epochs"],
                        train_windows=len(windows.ends["train"]),
                        train_losses=run["history"],
                        seconds=round(run["seconds"], 2),
                    )
                )
            pairs = [
                (("cpu", "mixed"), ("cpu", "fp32"), TOL_PRECISION),
                ((acc, "fp32"), ("cpu", "fp32"), TOL_DEVICE),
                ((acc, "mixed"), (acc, "fp32"), TOL_PRECISION),
            ][: 1 if acc == "cpu" else 3]
            for a, b, tol in pairs:
                la, lb = losses[a], losses[b]
                rel = abs(la - lb) / abs(lb) if math.isfinite(la) and math.isfinite(lb) else None
                ok = rel is not None and rel <= tol
                if not ok:
                    failures.append(
                        f"{name} {timeframe}: val loss {a[0]} {a[1]} {la:.6g} vs "
                        f"{b[0]} {b[1]} {lb:.6g} (relative {rel}) beyond {tol}"
                    )
                records.append(
                    rec(
                        "val_loss_agreement",
                        rel,
                        "relative",
                        model=name,
                        timeframe=timeframe,
                        a="/".join(a),
                        b="/".join(b),
                        tolerance=tol,
                        ok=ok,
                    )
                )
    return records, failures
