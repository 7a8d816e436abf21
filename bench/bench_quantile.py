"""Cost of quantile forecasts: quantile vs point model speed, measured back to back in one run.

- training: windows/s of the real ``train.fit`` loop (``bench.throughput``) for each neural
  model in the paper 1d setting (configs/<model>.yaml: lookback 30, batch 64), point head + mse
  vs quantile head (7 levels) + pinball loss, on the same data. Point and quantile runs alternate
  (three times each) and the median of each is kept, so load bursts on the shared
  machine hit both alike. Figure: ``quantile/point train throughput ratio <model>`` (1.0 = same
  speed; the issue asks for >= 0.9).
- backtest: wall seconds of one walk-forward job (``run_job``, lstm, daily BTC 2023-01-01 ..
  2023-06-30, 91-day folds, 3 epochs) with a point model, a quantile model, and a quantile model
  with CQR calibration. Figures: ``quantile/point backtest time ratio`` (and ``... cqr``),
  quantile seconds / point seconds (1.0 = same; <= 1.1 is within 10%).

Run: ``python -m bench.bench_quantile`` (full, ~2-4 min on 2 cores) or ``--quick`` (synthetic,
tiny, < 30 s).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.candles import candles_dir
from bench.common import SHARED_OHLCV, config, main
from bench.throughput import paper_config, real_data, synthetic_data, throughput
from bench.throughput import threaded_record as _record

NAME = "quantile"
MODELS = ("lstm", "gru", "transformer", "performer_bilstm")
QUANTILE = ["model.quantiles=[0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]", "train.loss=pinball"]


def train_ratios(quick: bool) -> list[dict[str, Any]]:
    real = (SHARED_OHLCV / "BTC-USDT_1d.parquet").is_file() and not quick
    cfg0 = paper_config("lstm", "1d")
    data = real_data(cfg0) if real else synthetic_data(2000, 37, cfg0.features.lookback)
    budget, warm, reps = (0.2, 1, 1) if quick else (2.0, 3, 3)
    out = []
    for model in MODELS[:2] if quick else MODELS:  # quick: a smoke test, two models
        runs: dict[str, list[float]] = {"point": [], "quantile": []}
        for _ in range(reps):
            for kind, sets in (("point", []), ("quantile", QUANTILE)):
                cfg = paper_config(model, "1d", sets)
                runs[kind].append(throughput(cfg, data, budget, warm_batches=warm)["windows_per_s"])
        point, quant = float(np.median(runs["point"])), float(np.median(runs["quantile"]))
        ratio = round(quant / point, 3)
        params = {
            "model": model,
            "series": "BTC/USDT 1d" + ("" if real else " (synthetic)"),
            "levels": 7,
            "batch_size": cfg0.train.batch_size,
        }
        out.append(
            _record(
                f"quantile/point train throughput ratio {model}",
                ratio,
                "x",
                params,
                point_windows_per_s=round(point, 1),
                quantile_windows_per_s=round(quant, 1),
            )  # fmt: skip
        )
        print(f"  {model:16s} point {point:>8.1f}  quantile {quant:>8.1f} windows/s  x{ratio}")
    return out


def _backtest_data(quick: bool) -> tuple[Path, list[str]]:
    """A data folder with daily BTC (reference candles, or synthetic in quick mode)."""

    def synthetic(*_: object):
        from tests.conftest import make_ohlcv

        return make_ohlcv(400, "1d", start="2021-01-01", seed=1)

    tmp = Path(tempfile.mkdtemp(prefix="bench-quantile-"))
    ref = candles_dir(tmp / "ohlcv" / "binance", ["BTC/USDT"], ["1d"], synthetic, not quick)
    if ref:
        return tmp, ["backtest.test_start=2023-01-01", "backtest.test_end=2023-06-30"]
    return tmp, ["backtest.test_start=2021-11-01"]


def backtest_ratios(quick: bool) -> list[dict[str, Any]]:
    from cryptocast.evaluate.walkforward import run_job

    data_dir, sets = _backtest_data(quick)
    base = [
        *sets, "backtest.fold_length=91" if not quick else "backtest.fold_length=30",
        f"train.epochs={1 if quick else 3}", "train.patience=0", "train.device=cpu",
        "train.num_threads=1",
    ]  # fmt: skip
    variants = {
        "point": base,
        "quantile": [*base, *QUANTILE],
        "quantile cqr": [*base, *QUANTILE, "backtest.calibration=cqr"],
    }
    seconds: dict[str, list[float]] = {k: [] for k in variants}
    try:
        for _ in range(1 if quick else 2):
            for kind, s in variants.items():
                cfg = config("lstm", s)
                t0 = time.perf_counter()
                run_job(cfg, data_dir, "BTC/USDT", "1d", "lstm")
                seconds[kind].append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    best = {k: min(v) for k, v in seconds.items()}  # least disturbed run of each
    out = []
    for kind in ("quantile", "quantile cqr"):
        ratio = round(best[kind] / best["point"], 3)
        suffix = "" if kind == "quantile" else " cqr"
        out.append(
            _record(
                f"quantile/point backtest time ratio{suffix}",
                ratio,
                "x",
                {"model": "lstm", "series": "BTC/USDT 1d", "quick": quick},
                point_seconds=round(best["point"], 2),
                quantile_seconds=round(best[kind], 2),
            )  # fmt: skip
        )
        print(f"  backtest {kind:13s} {best[kind]:.2f} s vs point {best['point']:.2f} s  x{ratio}")
    return out


def run(quick: bool) -> list[dict[str, Any]]:
    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    records = train_ratios(quick) + backtest_ratios(quick)
    records.append(
        _record("bench wall time", round(time.perf_counter() - t0, 1), "s", {"quick": quick})
    )
    return records


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads, in run
    main(NAME, run, __doc__, "synthetic data, tiny time boxes", echo="records")
