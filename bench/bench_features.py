"""The default feature set on the hourly reference history of BTC, ETH and LTC (~48k rows each).

Figures: seconds and rows/s per coin for ``compute_features`` (default config, targets and gap
counts included), the total for all three coins (aim: < 10 s on 2 cores), and the anchor:
``ta.add_all_ta_features`` on the same frame (fillna=False). Quick mode uses 2,000 synthetic
hourly candles per coin so it runs without ../shared in a few seconds.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from bench.common import SHARED_OHLCV, median_time, write_results

NAME = "features"
COINS = ["BTC", "ETH", "LTC"]


def _synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0, 0.005, n))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=n, freq="1h", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + spread),
            "low": np.minimum(open_, close) * (1 - spread),
            "close": close,
            "volume": rng.lognormal(3, 0.5, n),
        }
    )


def _frames(quick: bool) -> tuple[dict[str, pd.DataFrame], str]:
    if not quick and (SHARED_OHLCV / "BTC-USDT_1h.parquet").is_file():
        return {
            c: pd.read_parquet(SHARED_OHLCV / f"{c}-USDT_1h.parquet") for c in COINS
        }, "reference"
    return {c: _synthetic(2000, i) for i, c in enumerate(COINS)}, "synthetic"


def run(quick: bool) -> list[dict]:
    import ta

    from cryptocast.config import FeaturesConfig
    from cryptocast.features import compute_features, feature_columns

    cfg = FeaturesConfig()
    frames, kind = _frames(quick)
    repeats = 3 if not quick else 2
    records: list[dict] = []
    total = 0.0
    for coin, df in frames.items():
        out = compute_features(df, cfg, "1h")
        secs, _ = median_time(lambda df=df: compute_features(df, cfg, "1h"), repeats=repeats)
        total += secs
        params = {"coin": coin, "timeframe": "1h", "rows": len(df), "data": kind}
        n_feat = len(feature_columns(out))
        records.append(
            {
                "figure": "default features seconds",
                "value": round(secs, 3),
                "unit": "s",
                "params": params,
                "features": n_feat,
            }  # fmt: skip
        )
        records.append(
            {
                "figure": "default features rows/s",
                "value": round(len(df) / secs),
                "unit": "rows/s",
                "params": params,
                "features": n_feat,
            }  # fmt: skip
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ta divides by zero on flat candles
            t0 = time.perf_counter()
            anchor = ta.add_all_ta_features(
                df.copy(), "open", "high", "low", "close", "volume", fillna=False
            )
            a_secs = time.perf_counter() - t0
        records.append(
            {
                "figure": "ta.add_all_ta_features seconds (anchor)",
                "value": round(a_secs, 3),
                "unit": "s",
                "params": params,
                "features": anchor.shape[1] - df.shape[1],
                "speedup_vs_anchor": round(a_secs / secs, 1),
            }  # fmt: skip
        )
    records.append(
        {
            "figure": "default features seconds, all three coins",
            "value": round(total, 3),
            "unit": "s",
            "params": {"coins": list(frames), "data": kind, "aim_s": 10},
        }  # fmt: skip
    )
    return records


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2k synthetic rows per coin")
    args = parser.parse_args()
    results = run(args.quick)
    for r in results:
        print(f"{r['figure']:48s} {r['value']:>12} {r['unit']}  {r['params']}")
    print(write_results(NAME, results, args.quick))
