"""The two sides of ``bench.bench_darts``, each served in its own worker process.

:func:`serve` fixes the side's threading before torch loads (ours: the CLI's thread plan; darts:
torch's defaults), reports it, then runs the tasks the parent sends until it sends ``None``.
Tasks: ``train_setup`` / ``train`` (one timed epoch -> windows/s) and ``refit_setup`` / ``refit``
(one walk-forward run -> seconds per refit); each ``*_setup`` builds the model and data and runs a
warm-up that no timing includes. Both sides train on the same seeded array.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from bench.candles import last_candle, walk_period
from bench.common import backtest_seconds
from bench.settings import ANCHOR_COMMON, ANCHOR_MODELS, DARTS, without_threads
from bench.throughput import paper_config

LOOKBACK = 48
PL_KWARGS = {"enable_progress_bar": False, "logger": False, "enable_checkpointing": False,
             "enable_model_summary": False, "accelerator": "cpu"}  # fmt: skip


def shared_array(n_windows: int) -> np.ndarray:
    """(n_windows + 48, 5) float32: column 0 the target, 1..4 covariates; the same on both sides."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((n_windows + LOOKBACK, 5), dtype=np.float32)


def _n_params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


# ---------------------------------------------------------------- ours


def _prepared(arr: np.ndarray) -> Any:
    """PreparedData over ``arr``: windows end at rows 47..N-2, label the next row's column 0."""
    from cryptocast.features.windows import PreparedData, Scaler

    n = len(arr)
    y = np.full((n, 1), np.nan, np.float32)
    y[:-1, 0] = arr[1:, 0]
    return PreparedData(
        feature_names=[f"f{i}" for i in range(5)], X=arr, Y=y, close=np.full(n, 100.0),
        timestamps=np.zeros(n, "datetime64[ns]"),
        ends={"train": np.arange(LOOKBACK - 1, n - 1, dtype=np.int64), "val": np.empty(0, np.int64)},
        x_scaler=Scaler("standard", np.zeros(5), np.ones(5)),
        y_scaler=Scaler("standard", np.zeros(1), np.ones(1)),
        lookback=LOOKBACK, horizon=1, target="log_return",
    )  # fmt: skip


def _ours_flops(model: Any) -> float | None:
    """Training FLOPs per window (forward + backward) of one batch of 256, counted by torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    xb = torch.randn(256, LOOKBACK, 5)
    with FlopCounterMode(display=False) as fc:
        model(xb).float().pow(2).mean().backward()
    model.zero_grad(set_to_none=True)
    return round(fc.get_total_flops() / 256) or None


class _SideBase:
    """Common state of a side: the sizes of each comparison (``bench_darts.sizes``), the data."""

    def __init__(self, quick: bool, sz: dict[str, Any], data_dir: str) -> None:
        self.sz, self.quick, self.data_dir = sz, quick, Path(data_dir)
        self.state: dict[str, Any] = {}


class Ours(_SideBase):
    def train_setup(self, model: str) -> dict[str, Any]:
        from cryptocast.models.registry import build_model
        from cryptocast.training.loop import fit, seed_everything

        cfg = paper_config("lstm", "1h", ANCHOR_COMMON + ANCHOR_MODELS[model])
        seed_everything(0)
        net = build_model(cfg.model, 5, 1, LOOKBACK)
        one = cfg.train.model_copy(update={"epochs": 1, "patience": 0})
        fit(net, _prepared(shared_array(self.sz["warm"])), one)  # warm-up
        self.state[model] = (net, _prepared(shared_array(self.sz[model])), one)
        flops = _ours_flops(net) if model == "transformer" else None
        return {"n_params": _n_params(net), "flops": flops}

    def train(self, model: str) -> float:
        from cryptocast.training.loop import fit

        net, data, one = self.state[model]
        seconds = fit(net, data, one).history[0]["seconds"]
        return len(data.ends["train"]) / seconds

    def _overrides(self, refits: int, epochs: int) -> list[str]:
        return [*without_threads(DARTS), f"train.epochs={epochs}", "backtest.fold_length=30",
                *walk_period(last_candle(self.data_dir), refits, 30)]  # fmt: skip

    def refit_setup(self) -> dict[str, Any]:
        self._refit(1)  # warm-up: feature cache, imports
        label = "synthetic 1d" if self.quick else "reference BTC/USDT 1d"
        return {"data": label, "refits": self.sz["refits"]}

    def _refit(self, refits: int) -> float:
        sets = self._overrides(refits, self.sz["refit_epochs"])
        seconds, _, results = backtest_seconds(self.data_dir, sets)
        n = sum(f["retrained"] for f in results[0].fold_info)
        if n != refits:
            raise RuntimeError(f"ours refitted {n} times, expected {refits}")
        return seconds / n

    def refit(self) -> float:
        return self._refit(self.sz["refits"])


# ---------------------------------------------------------------- darts


def _clock() -> Any:
    """A Lightning Callback timing each training epoch and counting the windows it saw."""
    import pytorch_lightning as pl

    class EpochClock(pl.Callback):
        def __init__(self) -> None:
            self.seconds: list[float] = []
            self.windows: list[int] = []
            self.count_flops = False
            self.flops: float | None = None
            self._fc: Any = None

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._n, self._t0 = 0, time.perf_counter()

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
            if self.count_flops and batch_idx == 0:
                from torch.utils.flop_counter import FlopCounterMode

                self._fc = FlopCounterMode(display=False)
                self._fc.__enter__()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
            n = len(batch.past_target)  # (B, L, 1)
            self._n += n
            if self._fc is not None:
                self._fc.__exit__(None, None, None)
                self.flops = round(self._fc.get_total_flops() / n) or None
                self._fc, self.count_flops = None, False

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self.seconds.append(time.perf_counter() - self._t0)
            self.windows.append(self._n)

    return EpochClock()


def _series(arr: np.ndarray) -> tuple[Any, Any]:
    from darts import TimeSeries

    return TimeSeries.from_values(arr[:, :1]), TimeSeries.from_values(arr[:, 1:])


class Darts(_SideBase):
    def train_setup(self, model: str) -> dict[str, Any]:
        from darts.models import BlockRNNModel, TransformerModel

        clock = _clock()
        common = {"input_chunk_length": LOOKBACK, "output_chunk_length": 1, "batch_size": 256,
                  "n_epochs": 1, "random_state": 0,
                  "pl_trainer_kwargs": {**PL_KWARGS, "callbacks": [clock]}}  # fmt: skip
        if model == "lstm":
            net = BlockRNNModel(model="LSTM", hidden_dim=64, n_rnn_layers=1, **common)
        else:
            net = TransformerModel(d_model=64, nhead=4, num_encoder_layers=2,
                                   num_decoder_layers=2, dim_feedforward=128, **common)  # fmt: skip
        clock.count_flops = model == "transformer"
        target, cov = _series(shared_array(self.sz["warm"]))
        net.fit(target, past_covariates=cov, verbose=False)  # warm-up
        if not clock.seconds:
            raise RuntimeError("the epoch clock saw no epoch: darts did not pass the callback")
        self.state[model] = (net, clock, *_series(shared_array(self.sz[model])))
        return {"n_params": _n_params(net.model), "flops": clock.flops}

    def train(self, model: str) -> float:
        net, clock, target, cov = self.state[model]
        net.fit(target, past_covariates=cov, epochs=1, verbose=False)
        return clock.windows[-1] / clock.seconds[-1]

    def refit_setup(self) -> dict[str, Any]:
        import pandas as pd
        from darts import TimeSeries

        close = pd.read_parquet(self.data_dir / "ohlcv/binance/BTC-USDT_1d.parquet")["close"]
        returns = np.diff(np.log(close.to_numpy(np.float64))).astype(np.float32)
        self.returns = TimeSeries.from_values(returns)
        self._refit(1)  # warm-up
        return {"refits": self.sz["refits"]}

    def _refit(self, refits: int) -> float:
        from darts.models import BlockRNNModel

        model = BlockRNNModel(model="LSTM", hidden_dim=25, n_rnn_layers=1, input_chunk_length=30,
                              output_chunk_length=1, batch_size=32,
                              n_epochs=self.sz["refit_epochs"], random_state=0,
                              pl_trainer_kwargs=PL_KWARGS)  # fmt: skip
        t0 = time.perf_counter()
        out = model.historical_forecasts(
            self.returns, start=len(self.returns) - refits * 30, start_format="position",
            forecast_horizon=1, stride=30, retrain=True, last_points_only=True, verbose=False,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        if len(out) != refits:
            raise RuntimeError(f"darts refitted {len(out)} times, expected {refits}")
        return seconds / refits

    def refit(self) -> float:
        return self._refit(self.sz["refits"])


def serve(
    side: str,
    conn: Any,
    quick: bool,
    sz: dict[str, Any],
    data_dir: str,
    policy: str | None = None,
) -> None:
    """Worker main loop: set threads, report them, then run tasks until ``None`` arrives.

    ``sz``: the sizes of each comparison (``bench_darts.sizes``, passed in so this module needs
    nothing from its parent's); ``policy``: the OpenMP wait policy for the darts side (ours'
    plan's choice; None: default).
    """
    try:
        if side == "ours":  # what the CLI does before torch loads
            from cryptocast.training.threads import apply_thread_plan

            plan = apply_thread_plan(1)
            import torch

            torch.set_num_threads(plan.threads)
            why, impl = plan.reason, Ours(quick, sz, data_dir)
        else:  # darts at its own defaults: torch picks the thread count
            import logging
            import warnings

            if policy:
                os.environ["OMP_WAIT_POLICY"] = policy  # read once, when torch loads
            warnings.filterwarnings("ignore")
            import torch

            why, impl = "torch default", Darts(quick, sz, data_dir)
            import darts.models  # noqa: F401  (an import failure is reported as a skip)
            import pytorch_lightning  # noqa: F401  (sets its loggers' levels on import)

            for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "darts"):
                logging.getLogger(name).setLevel(logging.ERROR)
        info = {"threads": torch.get_num_threads(), "why": why,
                "policy": os.environ.get("OMP_WAIT_POLICY", "default")}  # fmt: skip
        conn.send(("ok", info))
    except Exception:  # reported to the parent, which decides (skip or fail)
        conn.send(("error", traceback.format_exc(limit=3)))
        return
    while (msg := conn.recv()) is not None:
        task, kwargs = msg
        try:
            conn.send(("ok", getattr(impl, task)(**kwargs)))
        except Exception:
            conn.send(("error", traceback.format_exc()))
