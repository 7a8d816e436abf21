"""Replay a year of the daily job on the reference candles and report live coverage and CRPS of
the raw and the calibrated quantiles (issue 24, part 3).

Per coin: the run is trained on the candles up to ``--start`` (a closed-form quantile model by
default), then ``forecast_series`` runs once a day with the clock (``now``) just after each daily
close and the store holding only the candles of that day, exactly as cron would have; the last
day scores the whole log. Usage::

    .venv/bin/python scripts/replay_calibration.py                     # BTC ETH LTC, rw_ewma, aci
    .venv/bin/python scripts/replay_calibration.py --model t_ewma --calibration cqr --days 90

Needs ../shared/data (the reference candles); writes only under a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LEVELS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]


def replay(coin: str, args: argparse.Namespace, root: Path) -> dict:
    from cryptocast.config.schema import load_config
    from cryptocast.data.store import read_ohlcv, series_path, write_parquet_atomic
    from cryptocast.evaluate.holdout import train_run
    from cryptocast.forecasting.job import forecast_series

    src = SHARED / "ohlcv" / "binance" / f"{coin}-USDT_1d.parquet"
    candles = read_ohlcv(src)
    data = root / coin / "data"
    path = series_path(data, "binance", f"{coin}/USDT", "1d")
    first = int(candles["timestamp"].searchsorted(pd.Timestamp(args.start, tz="UTC")))
    write_parquet_atomic(candles.iloc[:first], path)  # the run learns candles before --start
    cfg = load_config(
        REPO / "configs" / "tiny.yaml",
        [
            f"data.symbol={coin}/USDT", f"model.name={args.model}", f"model.quantiles={LEVELS}",
            "train.loss=pinball", "train.device=cpu", "train.num_threads=1",
            f"backtest.calibration={args.calibration}", f"backtest.aci_gamma={args.gamma}",
            f"output.runs_dir={root / coin / 'runs'}",
        ],
    )  # fmt: skip
    run = train_run(cfg, data).run_dir
    t0 = time.perf_counter()
    last = min(first + args.days, len(candles) - 1)
    for row in range(first, last + 1):  # the forecast made after candle `row` closed
        write_parquet_atomic(candles.iloc[: row + 1], path)
        now = candles["timestamp"].iloc[row] + pd.Timedelta("1D5min")
        res = forecast_series(
            run, data, fetch=False, now=now, allow_old_model=True, score=row == last
        )
    live = res.live.get(args.model, {})
    return {
        "coin": coin,
        "origins": last - first + 1,
        "scored": live.get("n_calibrated"),
        "raw_coverage_90": live.get("raw_coverage_90"),
        "calibrated_coverage_90": live.get("calibrated_coverage_90"),
        "raw_coverage_80": live.get("raw_coverage_80"),
        "calibrated_coverage_80": live.get("calibrated_coverage_80"),
        "raw_crps": live.get("raw_crps"),
        "calibrated_crps": live.get("calibrated_crps"),
        "aci_alpha_90_last": (res.calibration or {}).get("alpha", {}).get("0.9"),
        "replay_seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coins", default="BTC,ETH,LTC")
    ap.add_argument("--model", default="rw_ewma")
    ap.add_argument("--calibration", default="aci", choices=["none", "cqr", "aci"])
    ap.add_argument("--gamma", type=float, default=0.005)
    ap.add_argument("--start", default="2022-07-01", help="first forecast origin (UTC date)")
    ap.add_argument("--days", type=int, default=364, help="forecasts after the first")
    args = ap.parse_args()
    if not (SHARED / "ohlcv").is_dir():
        print(f"skipped: the reference candles are not in {SHARED}", file=sys.stderr)
        return 0
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        for coin in args.coins.split(","):
            print(json.dumps(replay(coin, args, Path(tmp))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
