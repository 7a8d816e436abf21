"""Walk-forward backtest cost: wall time vs folds, ``--workers 2`` over 1, the darts setting.

- ``backtest seconds`` for 2, 4 and 8 folds of 30 days (a small LSTM retrained every fold, daily
  BTC), with seconds per fold and a least-squares line ``seconds = a + b * folds``: the harness
  should add nothing that grows faster than the folds themselves.
- ``workers``: the fixed cost of ``--workers 2`` (spawning two processes that import torch; four
  untrained baseline jobs), and the speed-up of ``--workers 2`` over 1 on four trained jobs (lstm,
  gru x BTC, ETH; 64x2 units, 4 epochs, 2 folds; full mode only), one torch thread per job in
  both (``train.num_threads=1``), so the ratio is process parallelism, start-up included.

Every run uses one torch thread per job: on this shared 2-core machine two threads per job were
up to ~80x slower than one for these small recurrent models (OpenMP threads waiting for a core
another process holds), which would measure the neighbours rather than the harness.
- ``seconds per refit (darts anchor)``: our side of the issue's darts setting (darts
  ``historical_forecasts`` with retraining of a BlockRNNModel LSTM: hidden 25, 1 layer, 5 epochs,
  lookback 30, batch 32, daily BTC): the same LSTM on the lagged log returns, one refit per
  30-day fold, whole job time (features, scaling, training with a validation pass per epoch,
  forecasting) divided by the refits. No darts figure here: ``bench.bench_darts`` runs darts and
  ours side by side in one run (with the CLI's thread plan, not the one thread used here).

Quick mode (or no ../shared): synthetic candles, fewer/smaller folds; a smoke test only.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import REPO, SHARED_OHLCV, median_time, write_results

NAME = "backtest"
FOLD_DAYS = 30
SMALL = [
    "features.indicators=[{name: rsi, params: {window: 14}}, {name: macd}]",
    "features.lookback=30",
    "model.hidden_size=16",
    "model.num_layers=1",
    "train.epochs=2",
    "train.batch_size=64",
    "train.patience=0",
    "train.device=cpu",
    "train.num_threads=1",
    "backtest.timeframes=[1d]",
]
# The darts setting (bench.bench_darts drops train.num_threads=1 to run under the CLI's plan).
DARTS = [
    "features.indicators=[]",
    "features.range_features=false",
    "features.calendar=false",
    "features.lookback=30",
    "model.hidden_size=25",
    "model.num_layers=1",
    "model.dropout=0.0",
    "train.epochs=5",
    "train.batch_size=32",
    "train.patience=0",
    "train.schedule=none",
    "train.device=cpu",
    "train.num_threads=1",
    "backtest.timeframes=[1d]",
    "backtest.models=[lstm]",
    "backtest.symbols=[BTC/USDT]",
]


def _synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2020-01-01", periods=n, freq="1D", tz="UTC").astype("datetime64[ns, UTC]")
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.03, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0, 0.01, n))
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "close": close,
            "volume": rng.lognormal(3, 0.5, n),
        }
    )


def _data_dir(root: Path, quick: bool) -> tuple[Path, str, pd.Timestamp]:
    """Daily BTC and ETH candles in ``root``; returns (data dir, label, last candle time)."""
    from cryptocast.data.store import series_path, write_parquet_atomic

    dest = root / "ohlcv" / "binance"
    dest.mkdir(parents=True)
    shared = [SHARED_OHLCV / f"{c}-USDT_1d.parquet" for c in ("BTC", "ETH")]
    if not quick and all(p.is_file() for p in shared):
        for p in shared:
            shutil.copy(p, dest / p.name)
        label = "reference BTC/ETH 1d"
    else:
        for i, sym in enumerate(("BTC/USDT", "ETH/USDT")):
            write_parquet_atomic(_synthetic(500, i), series_path(root, "binance", sym, "1d"))
        label = "synthetic 1d"
    last = pd.read_parquet(dest / "BTC-USDT_1d.parquet")["timestamp"].iloc[-1]
    return root, label, last


def _backtest(data_dir: Path, overrides: list[str], repeats: int = 1) -> tuple[float, float, list]:
    """(median, fastest) wall time of ``run_backtest`` over ``repeats`` runs, and the last run's
    results. The fastest run is the least disturbed one on a shared machine."""
    from cryptocast.backtest import run_backtest
    from cryptocast.config import load_config

    cfg = load_config(REPO / "configs" / "tiny.yaml", overrides)
    out: dict = {}

    def once() -> None:
        out["results"] = run_backtest(cfg, data_dir)

    seconds, times = median_time(once, repeats=repeats, warmup=0)
    return seconds, min(times), out["results"]


def _period(last: pd.Timestamp, folds: int, fold_days: int) -> list[str]:
    """A test period of exactly ``folds`` folds ending one candle before the data does."""
    end = (last.normalize() - pd.Timedelta(days=1)).tz_localize(None)
    start = end - pd.Timedelta(days=folds * fold_days)
    return [f"backtest.test_start={start:%Y-%m-%d}", f"backtest.test_end={end:%Y-%m-%d}"]


def _rec(figure: str, value: float, unit: str, params: dict, **extra) -> dict:
    return {"figure": figure, "value": round(float(value), 3), "unit": unit, "params": params,
            **extra}  # fmt: skip


def run(quick: bool) -> list[dict]:
    records: list[dict] = []
    fold_days = 10 if quick else FOLD_DAYS
    repeats = 1 if quick else 3  # medians where a run is short; the workers runs are single
    with tempfile.TemporaryDirectory() as d:
        data_dir, label, last = _data_dir(Path(d), quick)
        small = [*SMALL, f"backtest.fold_length={fold_days}"]
        if quick:
            small.append("train.epochs=1")
        # warm-up: builds the feature caches and imports torch, outside every timing
        warm = ["backtest.models=[lstm, gru]", "backtest.symbols=[BTC/USDT, ETH/USDT]"]
        _backtest(data_dir, [*small, *warm, *_period(last, 1, fold_days)])

        # wall time vs number of folds
        counts = [1, 2, 4] if quick else [2, 4, 8]
        seconds = []
        for k in counts:
            s, fastest, results = _backtest(
                data_dir,
                [*small, "backtest.models=[lstm]", "backtest.symbols=[BTC/USDT]",
                 *_period(last, k, fold_days)], repeats,
            )  # fmt: skip
            assert len(results[0].fold_info) == k, results[0].fold_info
            seconds.append(s)
            params = {"data": label, "folds": k, "fold_days": fold_days, "model": "lstm 16x1",
                      "repeats": repeats}  # fmt: skip
            records.append(
                _rec("backtest seconds", s, "s", params, seconds_per_fold=round(s / k, 3))
            )
            print(f"  {k} folds: {s:.2f} s ({s / k:.2f} s/fold)", flush=True)
        slope, intercept = np.polyfit(counts, seconds, 1)
        fit = np.polyval([slope, intercept], counts)
        ss = float(np.sum((np.array(seconds) - np.mean(seconds)) ** 2))
        r2 = 1 - float(np.sum((np.array(seconds) - fit) ** 2)) / ss if ss > 0 else 1.0
        params = {"data": label, "folds": counts, "fold_days": fold_days}
        records.append(_rec("backtest seconds per extra fold (slope)", slope, "s", params,
                            intercept_s=round(float(intercept), 3), r2=round(r2, 4)))  # fmt: skip

        # --workers 2 over 1 on four independent jobs: the fixed cost of starting worker
        # processes (spawn + imports, measured with untrained baselines), then trained jobs
        pair = ["backtest.symbols=[BTC/USDT, ETH/USDT]", *_period(last, 2, fold_days)]
        naive = [*small, "backtest.models=[persistence, drift]", *pair]
        n1, _, _ = _backtest(data_dir, [*naive, "backtest.workers=1"])
        n2, _, _ = _backtest(data_dir, [*naive, "backtest.workers=2"])
        params = {"data": label, "jobs": 4, "models": "persistence, drift"}
        records.append(_rec("workers 2 start-up overhead", n2 - n1, "s", params))
        print(f"  worker start-up: {n2 - n1:.1f} s ({n1:.1f} s -> {n2:.1f} s)", flush=True)
        if not quick:
            # jobs the size of configs/compare.yaml's recurrent models, so start-up is amortised
            four = [*small, "model.hidden_size=64", "model.num_layers=2", "train.epochs=4",
                    "backtest.models=[lstm, gru]", *pair]  # fmt: skip
            t1, _, _ = _backtest(data_dir, [*four, "backtest.workers=1"])
            t2, _, _ = _backtest(data_dir, [*four, "backtest.workers=2"])
            params = {"data": label, "jobs": 4, "models": "lstm, gru 64x2, 4 epochs",
                      "folds_per_job": 2, "threads_per_job": 1}  # fmt: skip
            records.append(_rec("backtest 4 jobs seconds, --workers 1", t1, "s", params))
            records.append(_rec("backtest 4 jobs seconds, --workers 2", t2, "s", params))
            records.append(_rec("workers 2 speed-up over 1", t1 / t2, "x", params))
            print(f"  4 jobs: workers 1 {t1:.1f} s, workers 2 {t2:.1f} s ({t1 / t2:.2f}x)")

        # the darts anchor: LSTM 25x1, 5 epochs, lookback 30, a refit per fold
        refits = 2 if quick else 6
        darts = [*DARTS, "train.epochs=1"] if quick else DARTS
        s, fastest, results = _backtest(
            data_dir,
            [*darts, f"backtest.fold_length={FOLD_DAYS}", *_period(last, refits, FOLD_DAYS)],
            repeats,
        )
        n_fit = sum(f["retrained"] for f in results[0].fold_info)
        per = s / n_fit
        params = {"data": label, "model": "lstm hidden 25, 1 layer", "lookback": 30,
                  "epochs": 1 if quick else 5, "batch_size": 32, "refits": n_fit,
                  "repeats": repeats}  # fmt: skip
        records.append(
            _rec("seconds per refit (darts anchor)", per, "s", params,
                 value_min=round(fastest / n_fit, 3))
        )  # fmt: skip
        print(f"  darts setting: {per:.2f} s per refit, fastest run {fastest / n_fit:.2f} s")
    return records


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="synthetic candles, small and fast")
    quick = ap.parse_args().quick
    path = write_results(NAME, run(quick), quick)
    print(path.read_text())
