"""Training throughput of every neural model, measured through the real ``train.fit`` loop.

windows/s = training windows through forward + backward + optimiser step (+ grad clip, schedule),
timed by ``fit`` itself (its per-epoch ``seconds``) on a time-boxed subset of the training
windows: one warm-up fit of a few batches, then a timed one-epoch fit of N batches, N chosen so
it lasts ~2.5 s. The validation set is left empty so no evaluation time is counted. The harness
(:func:`bench.throughput.throughput`) is shared with ``bench_quantile`` and ``bench_darts``.

Settings:
- ``paper``: configs/<model>.yaml as shipped (lookback 30, batch 64, the default indicator set)
  on the reference daily and hourly BTC/USDT feature tables.
- ``darts-anchor``: the shapes of the issue's darts 0.48.1 comparison on hourly BTC: ~48k
  windows, lookback 48, batch 256, 5 input features (synthetic standard-normal tensors of the
  same shape: throughput does not depend on the values), LSTM hidden 64 (1 layer, darts' RNNModel
  default), transformer d_model 64 / 4 heads / ff 128 with 2 encoder layers (darts: 2 encoder + 2
  decoder; 4 encoder layers also measured as the equal-layer-count variant), and performer_bilstm
  (d_model 64, 4 heads, 2 layers, lstm_hidden 32 as in the paper configs). Only our side: the
  ratio to darts is measured live, both sides in one run, by ``bench.bench_darts``.
- ``bilstm share``: share of a performer_bilstm training step spent in its BiLSTM feed-forward
  (nn.LSTM forward + backward), timed in isolation on the exact inputs captured during the step.

Each setting runs once per torch thread count (default 1 and 2, torch's default here; on a CPU
shared with other jobs 2 intra-op threads can be several times slower than 1, so both are
recorded). Each record carries ``threads``, the OpenMP wait policy and the 1-minute
load average. ``--omp-passive`` sets ``OMP_WAIT_POLICY=PASSIVE``: with other jobs on the cores,
spinning OpenMP workers of the default policy made 2 threads up to 40x slower than 1 here, while
passive waiting kept 2 threads at about the speed of 1.
Run: ``python -m bench.bench_train`` (full, ~2-4 min on 2 cores), ``--threads 2`` (one count), or
``--quick`` (synthetic, 1 thread, smoke test only, <20 s).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from bench.common import SHARED_OHLCV, cli, report
from bench.settings import ANCHOR_COMMON, ANCHOR_MODELS
from bench.throughput import paper_config, real_data, synthetic_data, threaded_record, throughput

NAME = "train"
MODELS = ("performer_bilstm", "lstm", "gru", "transformer")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def bilstm_share(cfg: Any, data: Any, steps: int) -> dict[str, Any]:
    """Share of a performer_bilstm step (fwd + bwd + AdamW) spent in its BiLSTM modules."""
    import torch

    from cryptocast.features.windows import gather_windows
    from cryptocast.models.registry import build_model

    torch.manual_seed(0)
    model = build_model(cfg.model, len(data.feature_names), data.horizon, data.lookback).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
    X, Y = torch.from_numpy(data.X), torch.from_numpy(np.nan_to_num(data.Y))
    ends = torch.from_numpy(data.ends["train"][: cfg.train.batch_size])
    xb, yb = gather_windows(X, ends, data.lookback), Y[ends]  # (B, L, F), (B, H)
    lstms = [m for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        m.register_forward_pre_hook(lambda mod, args, i=i: captured.__setitem__(i, args[0]))
        for i, m in enumerate(lstms)
    ]

    def step() -> None:  # the fit() step: forward, MSE, backward, clip, AdamW
        loss = torch.nn.functional.mse_loss(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()

    for _ in range(3):
        step()
    for h in hooks:
        h.remove()
    inputs = [captured[i].detach().clone().requires_grad_(True) for i in range(len(lstms))]

    def lstm_only() -> None:  # the same modules on the same inputs, forward + backward
        for m, x in zip(lstms, inputs, strict=True):
            out, _ = m(x)  # (B, L, 2*hidden)
            out.backward(torch.ones_like(out))

    def seconds(fn) -> float:
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        return (time.perf_counter() - t0) / steps

    lstm_only()
    # interleaved rounds, median ratio: a burst of load hits both sides of one round alike
    rounds = [(seconds(step), seconds(lstm_only)) for _ in range(5)]
    step_s = float(np.median([r[0] for r in rounds]))
    lstm_s = float(np.median([r[1] for r in rounds]))
    share = float(np.median([r[1] / r[0] for r in rounds]))
    return {"share": round(share, 3), "step_ms": step_s * 1e3, "lstm_ms": lstm_s * 1e3}


def _record(figure: str, value: float, unit: str, params: dict[str, Any], **extra: Any) -> dict:
    return threaded_record(
        figure,
        value,
        unit,
        params,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "default"),
        loadavg_1m=_load(),
        **extra,
    )


def _paper_records(
    quick: bool, budget: float, warm: int, base: dict[str, Any]
) -> list[dict[str, Any]]:
    real = (SHARED_OHLCV / "BTC-USDT_1h.parquet").is_file() and not quick
    timeframes = ("1d", "1h") if not quick else ("1d",)
    out = []
    for tf in timeframes:
        cfg0 = paper_config("lstm", tf)
        if tf in base:
            pass  # built for an earlier thread count
        elif real:
            t0 = time.perf_counter()
            base[tf] = real_data(cfg0)
            print(f"  features {tf}: {time.perf_counter() - t0:.1f}s, {base[tf].X.shape}")
        else:  # the default indicator set gives 37 features
            base[tf] = synthetic_data(2000, 37, cfg0.features.lookback)
        for model in MODELS:
            cfg = paper_config(model, tf)
            r = throughput(cfg, base[tf], budget, warm_batches=warm)
            params = {
                "setting": "paper",
                "model": model,
                "series": f"BTC/USDT {tf}" + ("" if real else " (synthetic)"),
                "lookback": cfg.features.lookback,
                "batch_size": cfg.train.batch_size,
                "n_features": len(base[tf].feature_names),
                "train_windows_available": int(len(base[tf].ends["train"])),
            }
            out.append(_record(f"train throughput {model} paper {tf}", **_wps(r), params=params))
            print(f"  {model:16s} paper {tf}: {r['windows_per_s']:>8} windows/s")
    if "1h" in base or quick:
        cfg = paper_config("performer_bilstm", timeframes[-1])
        s = bilstm_share(cfg, base[timeframes[-1]], steps=1 if quick else 5)
        out.append(
            _record(
                "performer_bilstm step share in BiLSTM feed-forward",
                s["share"],
                "fraction",
                {"setting": "paper", "timeframe": timeframes[-1], "batch_size": 64},
                step_ms=round(s["step_ms"], 2),
                bilstm_ms=round(s["lstm_ms"], 2),
                method="nn.LSTM fwd+bwd timed alone on the inputs captured in the step",
            )
        )
        print(f"  BiLSTM share of a performer_bilstm step: {s['share']:.1%}")
    return out


def _wps(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "value": r["windows_per_s"],
        "unit": "windows/s",
        "step_ms": r["step_ms"],
        "timed_windows": r["timed_windows"],
        "epoch_windows_per_s": r["epoch_windows_per_s"],
        "n_params": r["n_params"],
    }


def _anchor_records(quick: bool, budget: float, warm: int) -> list[dict[str, Any]]:
    data = synthetic_data(1200 if quick else 48046, 5, 48)
    out = []
    for label, sets in ANCHOR_MODELS.items():
        if quick and label == "transformer_4layers":
            continue
        cfg = paper_config("lstm", "1h", ANCHOR_COMMON + sets)
        r = throughput(cfg, data, budget, max_batches=40, warm_batches=warm)
        name = cfg.model.name
        params = {
            "setting": "darts-anchor",
            "model": label,
            "lookback": 48,
            "batch_size": 256,
            "n_features": 5,
            "windows": int(len(data.ends["train"])),
            "n_layers": cfg.model.n_layers if name != "lstm" else cfg.model.num_layers,
        }
        out.append(_record(f"train throughput {label} darts-anchor", **_wps(r), params=params))
        print(f"  {label:20s} darts-anchor: {r['windows_per_s']:>8} windows/s")
    return out


def run(quick: bool, threads: list[int] | None = None) -> list[dict[str, Any]]:
    """Every setting once per torch thread count (default: 1 and 2; quick: 1 only)."""
    import torch

    budget, warm = (0.2, 1) if quick else (2.5, 3)
    if not threads:
        threads = [1] if quick else sorted({1, min(2, os.cpu_count() or 1)})
    t0 = time.perf_counter()
    records: list[dict[str, Any]] = []
    base: dict[str, Any] = {}
    for n in threads:
        torch.set_num_threads(n)
        print(f"torch threads: {n}")
        records += _anchor_records(quick, budget, warm)
        records += _paper_records(quick, budget, warm, base)
    records.append(
        _record("bench wall time", round(time.perf_counter() - t0, 1), "s", {"quick": quick})
    )
    return records


if __name__ == "__main__":
    parser = cli(__doc__, "synthetic data, tiny time boxes")
    parser.add_argument(
        "--threads", type=int, nargs="+", help="torch thread counts (default: 1 2; quick: 1)"
    )
    parser.add_argument(
        "--omp-passive",
        action="store_true",
        help="OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning",
    )
    args = parser.parse_args()
    if args.omp_passive:  # read when torch loads OpenMP: must be set before the first import
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    report(NAME, run(args.quick, args.threads), args.quick, echo="records")
