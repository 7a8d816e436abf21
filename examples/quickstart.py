"""cryptocast quickstart: candles -> features -> train -> backtest -> load the run -> forecast.

A notebook-style script (``# %%`` cells: VS Code, PyCharm, Jupytext) over the public API
(docs/api.md), on the reference candles in a temporary folder, in well under a minute on two
cores:

    python examples/quickstart.py

The reference candles are read from ``$CRYPTOCAST_SHARED_DATA`` or ``../shared/data/ohlcv/binance``
beside the repository; ``$QUICKSTART_DIR`` keeps the outputs in a folder of your choice.
"""

# %% Setup: where the candles are, where the outputs go
import os
import sys
import tempfile
import time
from pathlib import Path

from cryptocast import backtest, build_features, fetch, forecast, load_config, load_run, train

try:
    REPO = Path(__file__).resolve().parent.parent
except NameError:  # a notebook: started from the repository root or from examples/
    REPO = Path.cwd() if (Path.cwd() / "configs").is_dir() else Path.cwd().parent
SHARED = Path(
    os.environ.get("CRYPTOCAST_SHARED_DATA", REPO.parent / "shared" / "data" / "ohlcv" / "binance")
)
if not (SHARED / "BTC-USDT_1d.parquet").is_file():
    sys.exit(f"the quickstart needs the reference candles at {SHARED} (or $CRYPTOCAST_SHARED_DATA)")
WORK = Path(os.environ.get("QUICKSTART_DIR") or tempfile.mkdtemp(prefix="cryptocast-quickstart-"))
DATA = WORK / "data"
START = time.perf_counter()


def done(step: str) -> None:
    print(f"[{time.perf_counter() - START:5.1f}s] {step}\n")


print(f"reference candles: {SHARED}\noutputs: {WORK}\n")

# %% 1. Candles: import daily BTC from the reference files into the Parquet store
candles = fetch("BTC/USDT", "1d", import_from=SHARED, data_dir=DATA)
print(candles[["symbol", "timeframe", "rows", "first", "last", "gaps"]].to_string(index=False))
done("candles")

# %% 2. A small, fast config: configs/tiny.yaml, one epoch on the CPU, from 2021
cfg = load_config(
    REPO / "configs" / "tiny.yaml",
    [
        "data.start=2021-01-01",
        "train.epochs=1",
        "train.device=cpu",
        "train.num_threads=1",
        f"output.runs_dir={WORK / 'runs'}",
    ],
)
print(f"{cfg.model.name} on {cfg.data.symbol} {cfg.data.timeframe}, config {cfg.hash()}")

# %% 3. Features: the causal feature table (cached as Parquet in the data folder)
table = build_features(cfg, data_dir=DATA)
print(f"{len(table)} rows x {table.shape[1]} columns ({table.attrs['warmup_dropped']} warm-up)")
done("features")

# %% 4. Train: fit, score the held-out test segment, write a run folder
result = train(
    cfg, data_dir=DATA, on_epoch=lambda r: print(f"  epoch {r['epoch']}: val {r['val_loss']:.4f}")
)
test = result.metrics["test"]
print(f"run {result.run_dir}: test RMSE {test['rmse']:.1f}, skill {test['skill_rmse']:+.3f}")
done("train")

# %% 5. Backtest: an LSTM beside persistence, two 60-day walk-forward folds in 2023
bt = backtest(
    cfg,
    data_dir=DATA,
    models=["lstm", "persistence"],
    symbols="BTC/USDT",
    timeframes="1d",
    test_start="2023-03-01",
    test_end="2023-06-30",
    fold_length=60,
    workers=1,
    report_dir=WORK / "report",
)
columns = ["model", "n", "rmse", "mae", "skill_rmse", "directional_accuracy"]
print(bt.records[columns].to_string(index=False))
print(f"report: {bt.report_dir / 'report.md'}")
done("backtest")

# %% 6. The trained run: config, metrics and its Predictor
run = load_run(result.run_dir)
print(f"{run.name}: {run.config.model.name}, best epoch {run.metrics['best_epoch']}")
print(run.history[["epoch", "train_loss", "val_loss"]].to_string(index=False))

# %% 7. Forecast the next candle. The reference candles end 2023-06-30: replay the morning
# after without fetching; allow_stale/allow_old_model (--allow-stale --allow-old-model) are what
# any later clock needs.
fc = forecast(
    run,
    data_dir=DATA,
    fetch=False,
    allow_stale=True,
    allow_old_model=True,
    now="2023-07-01 06:00",
)
print(f"{fc.series}: last close {fc.last_close:.2f} on {fc.last_candle:%Y-%m-%d}")
for row in fc.rows.itertuples():
    print(f"  {row.target_time:%Y-%m-%d}: {row.predicted_close:.2f} ({row.predicted_return:+.2%})")
print(f"logged to {fc.log_path} ({fc.added} new row(s))")
done("forecast")
