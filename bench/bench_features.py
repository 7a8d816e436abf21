"""The default feature set on the hourly reference history of BTC, ETH and LTC (~48k rows each).

Figures: seconds and rows/s per coin for ``compute_features`` (default config, targets and gap
counts included), the total for all three coins (aim: < 10 s on 2 cores), and the anchor:
``ta.add_all_ta_features`` on the same frame (fillna=False). Quick mode uses 2,000 synthetic
hourly candles per coin so it runs without ../shared in a few seconds.
"""

from __future__ import annotations

import warnings

import pandas as pd

from bench.candles import synthetic_candles
from bench.common import SHARED_OHLCV, main, median_time, record, timed

NAME = "features"
COINS = ["BTC", "ETH", "LTC"]


def _frames(quick: bool) -> tuple[dict[str, pd.DataFrame], str]:
    if not quick and (SHARED_OHLCV / "BTC-USDT_1h.parquet").is_file():
        return {
            c: pd.read_parquet(SHARED_OHLCV / f"{c}-USDT_1h.parquet") for c in COINS
        }, "reference"
    frames = {
        c: synthetic_candles(2000, i, "1h", drift=0.0, vol=0.01, spread=0.005)
        for i, c in enumerate(COINS)
    }
    return frames, "synthetic"


def run(quick: bool) -> list[dict]:
    import ta

    from cryptocast.config.schema import FeaturesConfig
    from cryptocast.features.table import compute_features, feature_columns

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
        rate = round(len(df) / secs)  # an int, as recorded
        records.append(record("default features seconds", secs, "s", params, features=n_feat))
        records.append(
            record("default features rows/s", rate, "rows/s", params, None, features=n_feat)
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ta divides by zero on flat candles
            a_secs, anchor = timed(
                lambda df=df: ta.add_all_ta_features(
                    df.copy(), "open", "high", "low", "close", "volume", fillna=False
                )
            )
        records.append(
            record(
                "ta.add_all_ta_features seconds (anchor)",
                a_secs,
                "s",
                params,
                features=anchor.shape[1] - df.shape[1],
                speedup_vs_anchor=round(a_secs / secs, 1),
            )
        )
    params = {"coins": list(frames), "data": kind, "aim_s": 10}
    records.append(record("default features seconds, all three coins", total, "s", params))
    return records


if __name__ == "__main__":
    main(NAME, run, __doc__, "2k synthetic rows per coin", echo="records")
