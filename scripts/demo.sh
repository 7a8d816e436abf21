#!/usr/bin/env bash
# `make demo`: the main job end to end on CPU in a few minutes.
#   candles (reference files if present, else a live Binance fetch) -> data summary -> features
#   -> a small performer_bilstm training -> walk-forward backtest of every model on daily BTC
#   -> a forecast appended to the forecast log.
# DEMO_DIR (default demo/) holds the demo's data, runs and report; rerunning is safe.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED_DATA=${SHARED_DATA:-../shared/data/ohlcv/binance}
DEMO_DIR=${DEMO_DIR:-demo}
DATA="$DEMO_DIR/data"
mkdir -p "$DATA"
start=$(date +%s)
step() { printf '\n\033[1m== %s (%ss)\033[0m\n' "$1" "$(( $(date +%s) - start ))"; }

step "1/6 candles"
if [ -f "$SHARED_DATA/BTC-USDT_1d.parquet" ]; then
  echo "importing the reference candles from $SHARED_DATA"
  cryptocast fetch --import "$SHARED_DATA" --data-dir "$DATA"
  # the reference data ends 2023-06-30: the candles are stale and the model old by today
  stale=(--allow-stale --allow-old-model)
else
  echo "no reference candles at $SHARED_DATA: fetching daily BTC/USDT live from Binance"
  cryptocast fetch --symbol BTC/USDT --timeframe 1d --since 2018-01-01 --data-dir "$DATA"
  stale=()
fi

step "2/6 what is stored"
cryptocast data --data-dir "$DATA"

step "3/6 features"
cryptocast features --symbol BTC/USDT --timeframe 1d --data-dir "$DATA"

step "4/6 train a small performer_bilstm"
cryptocast train --config configs/demo.yaml --data-dir "$DATA" --set output.runs_dir="$DEMO_DIR/runs"

step "5/6 walk-forward backtest of every model on daily BTC"
cryptocast backtest --config configs/demo.yaml --data-dir "$DATA" --report "$DEMO_DIR/report"

step "6/6 forecast the next candle"
cryptocast forecast --config configs/demo.yaml --set output.runs_dir="$DEMO_DIR/runs" \
  --data-dir "$DATA" --no-fetch "${stale[@]}"

step "done"
echo "report: $DEMO_DIR/report/report.md   forecast log: $DATA/forecasts/binance/BTC-USDT_1d.parquet"
