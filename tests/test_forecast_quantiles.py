"""The daily forecast of a quantile model: quantiles in the log, live coverage and CRPS beside
rw_ewma; older logs without the quantiles column still read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptocast.data.store import series_path, write_parquet_atomic
from cryptocast.forecasting.job import forecast_series
from cryptocast.forecasting.log import LOG_COLUMNS, read_log
from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D, TINY_CONFIG

D = FORECAST_DAY_D  # the last candle row is D + 1
DAY = pd.Timedelta("1D")
LEVELS = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _store(data_dir: Path, upto: int) -> None:
    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: upto + 1], series_path(data_dir, "binance", "BTC/USDT", "1d")
    )


def test_quantile_forecasts_are_logged_and_scored_beside_rw_ewma(data_dir, tmp_path):
    from cryptocast.config.schema import load_config
    from cryptocast.evaluate.holdout import train_run

    start = D - 8  # train on candles up to here, then one forecast a day for 8 days
    _store(data_dir, start)
    cfg = load_config(
        TINY_CONFIG,
        [
            "model.name=lstm", f"model.quantiles={LEVELS}", "train.loss=pinball",
            "train.epochs=1", "train.device=cpu", "train.num_threads=1",
            f"output.runs_dir={tmp_path / 'runs'}",
        ],
    )  # fmt: skip
    run = train_run(cfg, data_dir).run_dir
    for day in range(start, start + 8):
        _store(data_dir, day)
        now = FORECAST_CANDLES["timestamp"].iloc[day] + DAY + pd.Timedelta("5min")
        res = forecast_series(run, data_dir, fetch=False, now=now, score=True)
    log = read_log(res.log_path)
    assert list(log.columns) == LOG_COLUMNS and len(log) == 8
    q = np.array([list(json.loads(t).values()) for t in log["quantiles"]])
    assert list(json.loads(log["quantiles"].iloc[0])) == [f"{t:g}" for t in LEVELS]
    assert (np.diff(q, axis=1) > 0).all()
    np.testing.assert_allclose(q[:, 3], log["predicted_close"], rtol=1e-12)  # point = median
    live = res.live["lstm"]
    assert live["n"] == 7 and live["n_quantile"] == 7
    for key in ("coverage_80", "coverage_90", "crps", "rw_ewma_coverage_80", "rw_ewma_crps"):
        assert np.isfinite(live[key]), key
    # independent recomputation of the model's live CRPS (log-return units)
    from cryptocast.evaluate.probabilistic import crps_from_quantiles

    scored = log[log["realised_close"].notna()]
    lc = scored["last_close"].to_numpy()
    zq = np.log(q[log["realised_close"].notna().to_numpy()] / lc[:, None])
    zy = np.log(scored["realised_close"].to_numpy() / lc)
    assert live["crps"] == pytest.approx(crps_from_quantiles(zq, zy, LEVELS).mean())
    assert live["crps_skill"] == pytest.approx(1 - live["crps"] / live["rw_ewma_crps"])


def test_a_log_written_before_quantiles_existed_still_reads(tmp_path):
    path = tmp_path / "old.parquet"
    old = pd.DataFrame({c: [] for c in LOG_COLUMNS if c != "quantiles"})
    old.to_parquet(path)
    assert list(read_log(path).columns) == LOG_COLUMNS
