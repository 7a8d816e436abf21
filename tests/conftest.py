"""Shared fixtures: a seeded synthetic OHLCV generator, the reference candles, a tiny config."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_OHLCV = Path(
    os.environ.get("CRYPTOCAST_SHARED_DATA", REPO.parent / "shared" / "data" / "ohlcv" / "binance")
)
TINY_CONFIG = REPO / "configs" / "tiny.yaml"

# small and quick: one indicator, a tiny LSTM/GRU, one epoch, single-threaded (deterministic, and
# the same thread count whether a job runs here or in a worker process)
TINY_NET = [
    "features.indicators=[{name: rsi, params: {window: 14}}]",
    "features.lookback=8",
    "model.hidden_size=8",
    "model.num_layers=1",
    "train.epochs=1",
    "train.device=cpu",
    "train.num_threads=1",
]

_FREQ = {"1h": "1h", "1d": "1D", "4h": "4h", "15m": "15min", "1m": "1min"}


def make_ohlcv(
    n: int = 500,
    timeframe: str = "1d",
    start: str = "2020-01-01",
    seed: int = 0,
    price: float = 100.0,
    drop: list[int] | None = None,
) -> pd.DataFrame:
    """Seeded geometric-random-walk candles in the project's schema.

    ``drop`` removes rows by position, to make gaps.
    """
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=_FREQ[timeframe], tz="UTC")
    ret = rng.normal(0.0002, 0.02, n)
    close = price * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[price], close[:-1]])
    spread = np.abs(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    volume = rng.lognormal(3, 0.5, n)
    df = pd.DataFrame(
        {"timestamp": ts, "open": open_, "high": high, "low": low, "close": close, "volume": volume}
    )
    df["timestamp"] = df["timestamp"].astype("datetime64[ns, UTC]")
    if drop:
        df = df.drop(index=drop).reset_index(drop=True)
    return df


def modules_loaded_by(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    import subprocess
    import sys

    probe = f"import sys\n{code}\nprint(','.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def scramble_after(candles: pd.DataFrame, p: int, volume: float = 1.0) -> pd.DataFrame:
    """``candles`` with every price from row ``p`` on rescaled at random (highs and lows kept
    consistent) and the volume multiplied: a different future behind the same past."""
    future = candles.copy()
    scale = np.random.default_rng(9).uniform(0.5, 2.0, len(candles) - p)
    for col in ("open", "high", "low", "close"):
        future.loc[p:, col] = future.loc[p:, col].to_numpy() * scale
    future.loc[p:, "high"] = future.loc[p:, ["open", "high", "low", "close"]].max(axis=1)
    future.loc[p:, "low"] = future.loc[p:, ["open", "high", "low", "close"]].min(axis=1)
    future.loc[p:, "volume"] *= volume
    return future


@pytest.fixture
def ohlcv() -> pd.DataFrame:
    return make_ohlcv()


@pytest.fixture(scope="session")
def shared_ohlcv() -> Path:
    """Folder of the real reference candles; skips the test when it is absent."""
    if not (SHARED_OHLCV / "BTC-USDT_1d.parquet").is_file():
        pytest.skip(
            f"reference candles not found at {SHARED_OHLCV} (the shared/ folder beside the repo)"
        )
    return SHARED_OHLCV


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


# ---- forecast: one tiny model trained once per test session (tests/test_*forecast*.py) ----
FORECAST_CANDLES = make_ohlcv(400, "1d", start="2020-01-01", seed=3)
FORECAST_DAY_D = 398  # row of the last candle served on "day D"; the run is trained up to it


@pytest.fixture(scope="session")
def forecast_run(tmp_path_factory) -> Path:
    """Run folder of configs/tiny.yaml (1 epoch, CPU) trained on FORECAST_CANDLES[: D + 1]."""
    from cryptocast.config.schema import load_config
    from cryptocast.data.store import series_path, write_parquet_atomic
    from cryptocast.evaluate.holdout import train_run

    root = tmp_path_factory.mktemp("forecast_run")
    data = root / "data"
    candles = FORECAST_CANDLES.iloc[: FORECAST_DAY_D + 1]
    write_parquet_atomic(candles, series_path(data, "binance", "BTC/USDT", "1d"))
    overrides = ["train.epochs=1", "train.device=cpu", f"output.runs_dir={root / 'runs'}"]
    return train_run(load_config(TINY_CONFIG, overrides), data).run_dir


@pytest.fixture
def restore_torch_threads() -> Iterator[None]:
    """fit() sets torch's process-wide thread count; give later test modules theirs back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: one thread is fastest, and robust to other processes using the cores
    (OpenMP threads spinning against each other)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@contextmanager
def data_lock_held_elsewhere(data_dir: Path) -> Iterator[None]:
    """Hold ``data_lock(data_dir)`` from another thread for the duration of the block."""
    from cryptocast.data.store import data_lock

    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with data_lock(data_dir):
            held.set()
            release.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    try:
        assert held.wait(5)
        yield
    finally:
        release.set()
        t.join(5)


@contextmanager
def ray_cluster(*nodes: dict, **head: object) -> Iterator[object]:
    """A simulated Ray cluster (``ray.cluster_utils.Cluster``): a head with one CPU (``head``
    overrides its node args) and one node per ``nodes`` entry, this process connected to it."""
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, **head}
    )
    for node in nodes:
        c.add_node(**node)
    if nodes:
        c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, logging_level="ERROR")
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


@contextmanager
def local_ray(**init: object) -> Iterator[None]:
    """A new local Ray instance (``ray.init`` with ``init``), shut down after the block."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", **init)
    try:
        yield
    finally:
        ray.shutdown()
