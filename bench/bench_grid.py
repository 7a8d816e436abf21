"""The paper's whole experiment as one yardstick: a walk-forward grid, cold vs warm-started refits.

The grid (issue 16): BTC, ETH, LTC x 1h and 1d x lstm, gru, transformer, performer_bilstm (+
persistence, drift), walk-forward over 2022-07-01 .. 2023-06-30 with 30-day folds, a refit every
fold, the shipped paper-like sizes and training settings (``configs/lstm.yaml``: 64-unit models,
40 epochs, patience 8, batch 64; the four model configs share them), on the reference candles.
It runs twice back to back, once training every fold from scratch and once with
``backtest.warm_start`` (``backtest.warm_epochs`` epochs from the previous fold's weights), and
records:

- ``grid seconds`` per pass (wall time of ``run_backtest``) and ``grid speed-up, warm start``
  (cold / warm, same run);
- ``seconds per refit`` per model and pass (job seconds / refits, summed over the six series);
- every job's ``rmse`` and ``skill_rmse`` (vs persistence) per pass, so accuracy can be compared
  side by side.

Progress and an ETA over the whole grid print as plain lines while it runs. The full grid takes
hours on a 2-core machine: ``python -m bench.bench_grid --workers 2`` (one torch thread per job),
or a slice with ``--symbols``/``--timeframes``/``--models``. ``--quick`` (CI: ``make
bench-quick``): BTC 1d and 1h from 2022-11 only, lstm 16x1 + the baselines, one epoch, four folds;
synthetic candles when the reference data is absent. A smoke test, not a measurement.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import REPO, SHARED_OHLCV, write_results

NAME = "grid"
SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT"]
TIMEFRAMES = ["1h", "1d"]
MODELS = ["lstm", "gru", "transformer", "performer_bilstm", "persistence", "drift"]
PERIOD = ["backtest.test_start=2022-07-01", "backtest.test_end=2023-06-30"]
GRID = [
    *PERIOD,
    "backtest.fold_period=30D",
    "backtest.window=expanding",
    "backtest.retrain_every=1",
    "backtest.val_fraction=0.15",
    "train.device=cpu",
]
QUICK = [
    "data.start=2022-11-01",
    "backtest.test_start=2023-03-01",
    "backtest.test_end=2023-06-30",
    "backtest.fold_period=30D",
    "features.indicators=[{name: rsi, params: {window: 14}}]",
    "model.hidden_size=16",
    "model.num_layers=1",
    "train.epochs=1",
    "train.batch_size=256",
    "train.device=cpu",
    "backtest.warm_epochs=1",
]


def _data_dir(root: Path, quick: bool, symbols: list[str], timeframes: list[str]) -> str:
    """Candles under ``root`` (links to the reference files, or synthetic); returns a label."""
    import numpy as np
    import pandas as pd

    from bench.bench_backtest import _synthetic
    from cryptocast.data.store import series_path, write_parquet_atomic

    dest = root / "ohlcv" / "binance"
    dest.mkdir(parents=True)
    files = [
        SHARED_OHLCV / f"{s.replace('/', '-')}_{t}.parquet" for s in symbols for t in timeframes
    ]
    if all(p.is_file() for p in files):
        for p in files:
            shutil.copy(p, dest / p.name)
        return "reference Binance candles"
    for i, s in enumerate(symbols):
        for t in timeframes:
            df = _synthetic(12_000 if t == "1h" else 1_500, i)
            if t == "1h":  # hourly candles ending mid-2023, like the reference data
                end = pd.Timestamp("2023-06-30 23:00", tz="UTC")
                ts = pd.date_range(end=end, periods=len(df), freq="1h")
                df["timestamp"] = ts.astype("datetime64[ns, UTC]")
            else:
                ts = pd.date_range(end="2023-06-30", periods=len(df), freq="1D", tz="UTC")
                df["timestamp"] = ts.astype("datetime64[ns, UTC]")
            df["volume"] = np.maximum(df["volume"], 1e-6)
            write_parquet_atomic(df, series_path(root, "binance", s, t))
    return "synthetic candles"


def _pass(cfg, data_dir: Path, label: str) -> tuple[float, list, dict]:
    """One grid pass with plain-line progress; returns (wall seconds, results, summary)."""
    from cryptocast.backtest import run_backtest, summarise
    from cryptocast.cli.grid_progress import GridProgress

    grid = GridProgress()

    def on_event(ev: dict) -> None:
        if grid.update(ev) == "fold":
            print(f"  [{label}] {grid.line()}", flush=True)

    t0 = time.perf_counter()
    results = run_backtest(cfg, data_dir, on_event)
    seconds = time.perf_counter() - t0
    return seconds, results, summarise(cfg, results)[0]


def _rec(figure: str, value: float | None, unit: str, params: dict, **extra) -> dict:
    value = None if value is None else round(float(value), 6)
    return {"figure": figure, "value": value, "unit": unit, "params": params, **extra}


def run(
    quick: bool,
    workers: int = 1,
    symbols: list[str] | None = None,
    timeframes: list[str] | None = None,
    models: list[str] | None = None,
) -> list[dict]:
    from cryptocast.config import load_config
    from cryptocast.threads import machine_load

    symbols = symbols or (["BTC/USDT"] if quick else SYMBOLS)
    timeframes = timeframes or TIMEFRAMES
    models = models or (["lstm", "persistence", "drift"] if quick else MODELS)
    sets = [
        *(QUICK if quick else GRID),
        f"backtest.symbols=[{', '.join(symbols)}]",
        f"backtest.timeframes=[{', '.join(timeframes)}]",
        f"backtest.models=[{', '.join(models)}]",
        f"backtest.workers={workers}",
    ]
    records: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        data_dir = Path(d)
        label = _data_dir(data_dir, quick, symbols, timeframes)
        # warm-up outside the timings: imports torch and builds every series' feature cache
        warmup = [*sets, "backtest.models=[persistence]", "backtest.workers=1"]
        _pass(load_config(REPO / "configs" / "lstm.yaml", warmup), data_dir, "warm-up")
        import torch

        # the first optimiser a process builds imports torch._dynamo (seconds, once)
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
        load_before = machine_load()
        base = {"data": label, "series": len(symbols) * len(timeframes), "workers": workers}
        seconds = {}
        for warm in (False, True):
            cfg = load_config(
                REPO / "configs" / "lstm.yaml", [*sets, f"backtest.warm_start={str(warm).lower()}"]
            )
            tag = "warm" if warm else "cold"
            s, results, summary = _pass(cfg, data_dir, tag)
            seconds[warm] = s
            params = {**base, "warm_start": warm, "epochs": cfg.train.epochs,
                      "warm_epochs": cfg.backtest.warm_epochs if warm else None,
                      "jobs": len(results), "folds": sum(len(r.fold_info) for r in results)}  # fmt: skip
            records.append(_rec("grid seconds", s, "s", params))
            print(f"grid {tag}: {s:.1f} s", flush=True)
            for m in dict.fromkeys(r.model for r in results):
                mine = [r for r in results if r.model == m]
                refits = sum(f["retrained"] for r in mine for f in r.fold_info)
                per = sum(r.seconds for r in mine) / max(refits, 1)
                records.append(_rec("seconds per refit", per, "s",
                                    {**base, "model": m, "warm_start": warm, "refits": refits}))  # fmt: skip
            for rec in summary["results"]:
                p = {**base, "symbol": rec["symbol"], "timeframe": rec["timeframe"],
                     "model": rec["model"], "warm_start": warm, "folds": rec["folds"]}  # fmt: skip
                records.append(_rec("rmse", rec.get("rmse"), "price", p))
                records.append(_rec("skill_rmse", rec.get("skill_rmse"), "fraction", p))
        records.append(
            _rec("grid speed-up, warm start", seconds[False] / seconds[True], "x",
                 {**base, "load_before": load_before, "load_after": machine_load()})
        )  # fmt: skip
        print(f"warm start speed-up: {seconds[False] / seconds[True]:.2f}x "
              f"(load average {load_before} -> {machine_load()})")  # fmt: skip
    return records


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a tiny slice of the grid (CI smoke)")
    ap.add_argument("--workers", type=int, default=1, help="parallel jobs (backtest.workers)")
    ap.add_argument("--symbols", help="comma list (default: BTC/USDT,ETH/USDT,LTC/USDT)")
    ap.add_argument("--timeframes", help="comma list (default: 1h,1d)")
    ap.add_argument("--models", help="comma list (default: the four neural models + naive)")
    a = ap.parse_args()
    recs = run(a.quick, a.workers, _csv(a.symbols), _csv(a.timeframes), _csv(a.models))
    path = write_results(NAME, recs, a.quick)
    print(f"results in {path}")
