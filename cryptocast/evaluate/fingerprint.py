"""A cheap training fingerprint: do the committed comparison numbers still come from this code?

Regenerating docs/comparison.md takes minutes; a test cannot. Instead, ``make compare`` records
this fingerprint in the page, and a test recomputes it: the first forecasts of every neural model
of a config after a short seeded walk-forward training on synthetic candles, through the same
``run_job`` path the comparison uses (seeding, model construction, training loop, prediction).
A refactor that changes the order of seeded initialisation, a model, the features or the loop
changes these numbers, and the test then asks for ``make compare UPDATE_DOCS=1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.schema import Config

N_CANDLES = 260
N_VALUES = 4  # forecasts recorded per model
RTOL = 1e-5  # CPU float32 with one torch thread repeats exactly; leave room for libm differences


def synthetic_candles(n: int = N_CANDLES, seed: int = 7) -> pd.DataFrame:
    """Daily OHLCV of a seeded geometric random walk (no file, no network)."""
    rng = np.random.default_rng(seed)
    close = 20_000 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0, 0.01, n)) * close
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=n, freq="1D", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(100, 1_000, n),
        }
    )


def training_fingerprint(cfg: Config) -> dict[str, list[float]]:
    """First forecast log returns of each neural model in ``cfg.backtest.models`` after one short fold.

    The config's model, features and training settings are kept (so a change to any of them
    shows), except: 2 epochs, one fold of 20 candles, one torch thread.
    """
    import torch

    from cryptocast.evaluate.walkforward import run_job
    from cryptocast.features.table import compute_features
    from cryptocast.models.registry import is_trainable

    c = Config.model_validate(cfg.to_dict())
    test_start = synthetic_candles()["timestamp"].iloc[-25]
    c.train.epochs, c.train.num_threads, c.train.device = 2, 1, "cpu"
    c.backtest.test_start, c.backtest.test_end = f"{test_start:%Y-%m-%d}", None
    c.backtest.fold_length, c.backtest.fold_period, c.backtest.workers = 20, None, 1
    df = compute_features(synthetic_candles(), c.features, "1d")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out: dict[str, list[float]] = {}
        for name in c.backtest.models:
            if not is_trainable(name):
                continue
            res = run_job(c, None, "BTC/USDT", "1d", name, df=df)  # type: ignore[arg-type]
            # the predicted log return, not the price: the close would swamp a model's part
            ret = np.log(np.asarray(res.y_pred)[:N_VALUES, -1] / res.last_close[:N_VALUES])
            out[name] = [float(f"{v:.6g}") for v in ret]
        return out
    finally:
        torch.set_num_threads(threads)


def same_fingerprint(a: dict[str, Any], b: dict[str, Any], rtol: float = RTOL) -> bool:
    """Whether two fingerprints agree (same models, values within ``rtol``)."""
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=rtol, atol=0) for k in a)
