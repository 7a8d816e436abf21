"""The check's sizes per device, its tolerances, its time slot, and the small shared helpers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# Relative validation-loss agreement. With dropout 0, the same seed and the same batch order, CPU
# and CUDA fp32 differ only by summation order (and cuDNN's algorithms); bf16 matmuls keep 8
# mantissa bits, so a few epochs of training drift further.
TOL_DEVICE = 0.02
TOL_PRECISION = 0.05

SIZES = {
    # epochs per training run; candles kept per timeframe (from this date); batch sizes of the
    # throughput legs; attention L range and per-call cap; throughput budget per measurement;
    # overall slot, and the share of it by which each section must be done (a section that ends
    # early leaves its time to the next).
    "cuda": {
        "epochs": 3,
        "start": {"1d": None, "1h": "2022-10-01"},
        "model_sets": [],
        "batch_sizes": (256, 1024),
        "L": (256, 1 << 22),
        "max_call_s": 0.5,
        "throughput_s": 1.5,
        "budget_s": 300.0,
        "done_by": {"training": 0.45, "attention": 0.65, "throughput": 0.85},
        "policy_batch": 8,
        "compare_sets": [],
    },
    "cpu": {  # the dry run: every code path, tiny sizes, the CPU standing in for the GPU
        "epochs": 1,
        "start": {"1d": "2022-09-01", "1h": "2023-06-01"},
        "model_sets": [
            "model.d_model=16",
            "model.n_layers=1",
            "model.nb_features=8",
            "model.lstm_hidden=8",
            "model.hidden_size=16",
            "model.num_layers=1",
            "model.dim_feedforward=32",
        ],
        "batch_sizes": (32, 64),
        "L": (256, 512),
        "max_call_s": 0.5,
        "throughput_s": 0.2,
        "budget_s": 90.0,
        "done_by": {"training": 0.5, "attention": 0.6, "throughput": 0.8},
        "policy_batch": 4,
        "compare_sets": [
            "backtest.symbols=[BTC/USDT]",
            "backtest.models=[lstm,persistence]",
            "backtest.test_start=2023-04-01",
            "backtest.fold_length=90",
            "backtest.workers=1",
            "train.epochs=1",
            "model.hidden_size=16",
            "model.num_layers=1",
        ],
    },
}


class Budget:
    """The check's time slot: seconds left overall, and per-section deadlines."""

    def __init__(self, seconds: float, done_by: dict[str, float]) -> None:
        self.start = time.perf_counter()
        self.seconds = seconds
        self.done_by = done_by

    def left(self, section: str | None = None) -> float:
        share = self.done_by.get(section, 1.0) if section else 1.0
        return self.start + share * self.seconds - time.perf_counter()

    def deadline(self, section: str) -> float:
        """The ``perf_counter`` time by which ``section`` must be done."""
        return time.perf_counter() + self.left(section)


def legs(acc: str, modes: tuple[str, ...] = ("fp32", "mixed")) -> list[tuple[str, str]]:
    """(device, precision) legs: the CPU and the accelerator (once when they are the same)."""
    return list(dict.fromkeys((dev, mode) for dev in ("cpu", acc) for mode in modes))


def config(name: str, timeframe: str, sets: list[str] | None = None) -> Any:
    """configs/<name>.yaml (configs/default.yaml for the naive baselines) on BTC/USDT, with the
    check's split: the candles are cut to a short range first, so fractions, not dates."""
    from cryptocast.config.schema import load_config

    path = REPO / "configs" / f"{name}.yaml"
    base = [] if path.is_file() else [f"model.name={name}"]
    common = [f"data.timeframe={timeframe}", "split.method=fraction", "train.device=cpu"]
    return load_config(
        path if path.is_file() else REPO / "configs" / "default.yaml",
        [*base, *common, *(sets or [])],
    )


def rec(figure: str, value: Any, unit: str, **params: Any) -> dict[str, Any]:
    """One record of the bench schema."""
    return {"figure": figure, "value": value, "unit": unit, "params": params}
