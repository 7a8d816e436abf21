"""Fetch the hourly history of three symbols from the fake exchange, and import it from Parquet.

Figures: fetch candles/s and request count (dominated by HTTP round trips through ccxt), and
import seconds and candles/s (pandas/pyarrow only). Quick mode serves daily candles (or synthetic
ones when ../shared is absent) so it finishes in a few seconds.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.candles import candles_dir
from bench.common import main, median_time

NAME = "fetch"
SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT"]


def _source(quick: bool, tmp: Path) -> tuple[Path, str, str]:
    """A folder of BASE-QUOTE_tf.parquet files to serve/import, its timeframe and a label."""
    tf = "1d" if quick else "1h"

    def synthetic(i: int, tf: str):
        from tests.conftest import make_ohlcv

        return make_ohlcv(2000 if quick else 48_000, tf, start="2018-01-01", seed=i)

    ref = candles_dir(tmp / "src", SYMBOLS, [tf], synthetic)
    return tmp / "src", tf, "reference" if ref else "synthetic"


def run(quick: bool) -> list[dict]:
    from cryptocast.data.fetch import fetch_many
    from cryptocast.data.importers import import_path
    from tests.fake_exchange import FakeExchange

    records = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src, tf, kind = _source(quick, tmp)
        params = {"timeframe": tf, "symbols": SYMBOLS, "data": kind}
        with FakeExchange(src) as fx:
            t0 = time.perf_counter()
            reports = fetch_many(tmp / "fetched", "binance", SYMBOLS, [tf], exchange_url=fx.url)
            elapsed = time.perf_counter() - t0
            requests = sum(fx.counts.values())
        assert all(r.error is None for r in reports), [r.error for r in reports]
        candles = sum(r.new_candles for r in reports)
        records += [
            {"figure": "fetch candles/s", "value": round(candles / elapsed), "unit": "candles/s",
             "params": params, "candles": candles, "seconds": round(elapsed, 3)},
            {"figure": "fetch requests", "value": requests, "unit": "requests", "params": params,
             "candles": candles},
        ]  # fmt: skip

        counter = iter(range(100))

        def do_import() -> None:
            import_path(tmp / f"imported{next(counter)}", src)

        med, times = median_time(do_import, repeats=1 if quick else 3, warmup=0 if quick else 1)
        records += [
            {"figure": "import seconds", "value": round(med, 4), "unit": "s", "params": params,
             "candles": candles, "times": [round(t, 4) for t in times]},
            {"figure": "import candles/s", "value": round(candles / med), "unit": "candles/s",
             "params": params},
        ]  # fmt: skip
    return records


if __name__ == "__main__":
    main(NAME, run, __doc__, "daily candles: a few seconds")
