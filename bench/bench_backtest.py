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

import tempfile
from pathlib import Path

import numpy as np

from bench.candles import daily_candles, walk_period
from bench.common import backtest_seconds, main, record
from bench.settings import DARTS, SMALL

NAME = "backtest"
FOLD_DAYS = 30


def run(quick: bool) -> list[dict]:
    records: list[dict] = []
    fold_days = 10 if quick else FOLD_DAYS
    repeats = 1 if quick else 3  # medians where a run is short; the workers runs are single
    with tempfile.TemporaryDirectory() as d:
        data_dir, label, last = daily_candles(Path(d), quick)
        small = [*SMALL, f"backtest.fold_length={fold_days}"]
        if quick:
            small.append("train.epochs=1")
        # warm-up: builds the feature caches and imports torch, outside every timing
        warm = ["backtest.models=[lstm, gru]", "backtest.symbols=[BTC/USDT, ETH/USDT]"]
        backtest_seconds(data_dir, [*small, *warm, *walk_period(last, 1, fold_days)])

        # wall time vs number of folds
        counts = [1, 2, 4] if quick else [2, 4, 8]
        seconds = []
        for k in counts:
            s, fastest, results = backtest_seconds(
                data_dir,
                [*small, "backtest.models=[lstm]", "backtest.symbols=[BTC/USDT]",
                 *walk_period(last, k, fold_days)], repeats,
            )  # fmt: skip
            assert len(results[0].fold_info) == k, results[0].fold_info
            seconds.append(s)
            params = {"data": label, "folds": k, "fold_days": fold_days, "model": "lstm 16x1",
                      "repeats": repeats}  # fmt: skip
            records.append(
                record("backtest seconds", s, "s", params, seconds_per_fold=round(s / k, 3))
            )
            print(f"  {k} folds: {s:.2f} s ({s / k:.2f} s/fold)", flush=True)
        slope, intercept = np.polyfit(counts, seconds, 1)
        fit = np.polyval([slope, intercept], counts)
        ss = float(np.sum((np.array(seconds) - np.mean(seconds)) ** 2))
        r2 = 1 - float(np.sum((np.array(seconds) - fit) ** 2)) / ss if ss > 0 else 1.0
        params = {"data": label, "folds": counts, "fold_days": fold_days}
        records.append(record("backtest seconds per extra fold (slope)", slope, "s", params,
                              intercept_s=round(float(intercept), 3), r2=round(r2, 4)))  # fmt: skip

        # --workers 2 over 1 on four independent jobs: the fixed cost of starting worker
        # processes (spawn + imports, measured with untrained baselines), then trained jobs
        pair = ["backtest.symbols=[BTC/USDT, ETH/USDT]", *walk_period(last, 2, fold_days)]
        naive = [*small, "backtest.models=[persistence, drift]", *pair]
        n1, _, _ = backtest_seconds(data_dir, [*naive, "backtest.workers=1"])
        n2, _, _ = backtest_seconds(data_dir, [*naive, "backtest.workers=2"])
        params = {"data": label, "jobs": 4, "models": "persistence, drift"}
        records.append(record("workers 2 start-up overhead", n2 - n1, "s", params))
        print(f"  worker start-up: {n2 - n1:.1f} s ({n1:.1f} s -> {n2:.1f} s)", flush=True)
        if not quick:
            # jobs the size of configs/compare.yaml's recurrent models, so start-up is amortised
            four = [*small, "model.hidden_size=64", "model.num_layers=2", "train.epochs=4",
                    "backtest.models=[lstm, gru]", *pair]  # fmt: skip
            t1, _, _ = backtest_seconds(data_dir, [*four, "backtest.workers=1"])
            t2, _, _ = backtest_seconds(data_dir, [*four, "backtest.workers=2"])
            params = {"data": label, "jobs": 4, "models": "lstm, gru 64x2, 4 epochs",
                      "folds_per_job": 2, "threads_per_job": 1}  # fmt: skip
            records.append(record("backtest 4 jobs seconds, --workers 1", t1, "s", params))
            records.append(record("backtest 4 jobs seconds, --workers 2", t2, "s", params))
            records.append(record("workers 2 speed-up over 1", t1 / t2, "x", params))
            print(f"  4 jobs: workers 1 {t1:.1f} s, workers 2 {t2:.1f} s ({t1 / t2:.2f}x)")

        # the darts anchor: LSTM 25x1, 5 epochs, lookback 30, a refit per fold
        refits = 2 if quick else 6
        darts = [*DARTS, "train.epochs=1"] if quick else DARTS
        s, fastest, results = backtest_seconds(
            data_dir,
            [*darts, f"backtest.fold_length={FOLD_DAYS}", *walk_period(last, refits, FOLD_DAYS)],
            repeats,
        )
        n_fit = sum(f["retrained"] for f in results[0].fold_info)
        per = s / n_fit
        params = {"data": label, "model": "lstm hidden 25, 1 layer", "lookback": 30,
                  "epochs": 1 if quick else 5, "batch_size": 32, "refits": n_fit,
                  "repeats": repeats}  # fmt: skip
        records.append(
            record("seconds per refit (darts anchor)", per, "s", params,
                   value_min=round(fastest / n_fit, 3))
        )  # fmt: skip
        print(f"  darts setting: {per:.2f} s per refit, fastest run {fastest / n_fit:.2f} s")
    return records


if __name__ == "__main__":
    main(NAME, run, __doc__, "synthetic candles, small and fast", echo="json")
