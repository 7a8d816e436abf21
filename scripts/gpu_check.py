"""``make gpu-check``: the CUDA path trained, compared with the CPU, and measured, in one command.

On a CUDA machine (``--device cuda``, the default when a GPU is present) it

1. checks the precision policy on the GPU: for every registered neural model, the dtype each
   module kind computes in under fp32 and mixed (``precision.observe_dtypes``) against
   ``PrecisionPolicy.module_dtypes`` (cuDNN RNNs under autocast would show float16 here);
2. trains every registered model for a few epochs on the reference daily and hourly BTC/USDT
   candles in fp32 and mixed precision, on the CPU and on CUDA (dropout 0, same seed, same
   batches), and asserts that no loss is NaN and that validation losses agree: CUDA fp32 vs CPU
   fp32 within ``TOL_DEVICE``, mixed vs fp32 on the same device within ``TOL_PRECISION``
   (relative);
3. times FAVOR+ against ``scaled_dot_product_attention`` (FlashAttention / memory-efficient
   kernels on CUDA) from L=256 upwards, forward and forward+backward, float32 and bf16 inputs,
   with peak memory, until a call runs out of memory, would take longer than ``max_call_s``, or L
   reaches ``max_L``; the crossover and the speed-up at the longest common L are summary records;
4. measures training throughput (windows/s, through ``train.fit``) per model at batch 256 and 1024
   on CUDA (mixed and fp32) and on the CPU (fp32), on the hourly BTC feature table;
5. times ``make compare`` (scripts/compare_published.py) with ``train.device=cuda``.

Every section stops early, recording what it skipped, when the time budget (``--budget-s``) runs
out, so the whole check fits a fixed slot. Results: ``gpu.json`` in the bench schema
(``bench/schema.py``) with the GPU name and torch/CUDA versions in ``machine``; a failed assertion
is recorded and makes the exit code 1 after the results are written.

``--device cpu`` is the dry run: the same code paths at tiny sizes, with the CPU standing in for
the accelerator (results ``gpu.quick.json``); tests/test_gpu_check.py runs it in CI.

Usage::

    python scripts/gpu_check.py                       # CUDA: results in bench/results/gpu.json
    python scripts/gpu_check.py --device cpu --out /tmp/gpu   # dry run, ~30 s
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a plain script from any directory
# before torch loads OpenMP: the CLI's plan (PASSIVE only when other processes keep the cores busy)
from cryptocast.threads import apply_thread_plan  # noqa: E402  (needs the path above)

apply_thread_plan(1)

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


def _legs(acc: str, modes: tuple[str, ...] = ("fp32", "mixed")) -> list[tuple[str, str]]:
    """(device, precision) legs: the CPU and the accelerator (once when they are the same)."""
    return list(dict.fromkeys((dev, mode) for dev in ("cpu", acc) for mode in modes))


def _config(name: str, timeframe: str, sets: list[str] | None = None) -> Any:
    """configs/<name>.yaml (configs/default.yaml for the naive baselines) on BTC/USDT, with the
    check's split: the candles are cut to a short range first, so fractions, not dates."""
    from cryptocast.config import load_config

    path = REPO / "configs" / f"{name}.yaml"
    base = [] if path.is_file() else [f"model.name={name}"]
    common = [f"data.timeframe={timeframe}", "split.method=fraction", "train.device=cpu"]
    return load_config(
        path if path.is_file() else REPO / "configs" / "default.yaml",
        [*base, *common, *(sets or [])],
    )


def _rec(figure: str, value: Any, unit: str, **params: Any) -> dict[str, Any]:
    return {"figure": figure, "value": value, "unit": unit, "params": params}


def check_policy(acc: str, size: dict) -> tuple[list[dict], list[str]]:
    """Observed vs declared module dtypes on the accelerator, every neural model, both modes."""
    import torch

    from cryptocast.models.registry import build_model, is_trainable, model_names
    from cryptocast.precision import observe_dtypes, precision_policy

    records, failures = [], []
    for name in [n for n in model_names() if is_trainable(n)]:
        cfg = _config(name, "1d")
        torch.manual_seed(0)
        model = build_model(cfg.model, 7, 1, cfg.features.lookback).to(acc).eval()
        x = torch.randn(size["policy_batch"], cfg.features.lookback, 7, device=acc)
        for mode in ("fp32", "mixed"):
            policy = precision_policy(mode, acc)
            seen = observe_dtypes(model, x, policy)
            declared = policy.module_dtypes()
            bad = {k: sorted(map(str, v)) for k, v in seen.items() if v != {declared[k]}}
            for kind, dtypes in bad.items():
                failures.append(f"precision {name} {mode} on {acc}: {kind} ran in {dtypes}")
            records.append(
                _rec(
                    "precision_policy_mismatches",
                    len(bad),
                    "module kinds",
                    model=name,
                    mode=mode,
                    device=acc,
                    observed={k: sorted(str(d) for d in v) for k, v in seen.items()},
                )
            )
    return records, failures


def _features(timeframe: str, start: str | None) -> Any:
    """Feature table of the reference BTC/USDT candles under the default feature config."""
    import pandas as pd

    from bench.common import SHARED_OHLCV
    from cryptocast.features import compute_features

    path = SHARED_OHLCV / f"BTC-USDT_{timeframe}.parquet"
    if not path.is_file():
        raise SystemExit(f"error: reference candles {path} not found; set CRYPTOCAST_SHARED_DATA")
    candles = pd.read_parquet(path)
    if start is not None:
        candles = candles[candles["timestamp"] >= pd.Timestamp(start, tz="UTC")]
        candles = candles.reset_index(drop=True)
    cfg = _config("lstm", timeframe)
    return compute_features(candles, cfg.features, timeframe), cfg


def _prepared(timeframe: str, size: dict) -> Any:
    from cryptocast.windows import prepare, split_bounds

    df, cfg = _features(timeframe, size["start"][timeframe])
    f = cfg.features
    return prepare(df, f, split_bounds(df, cfg.split, f.lookback, f.horizon), cfg.split.embargo)


def train_agreement(
    acc: str, size: dict, budget: Budget, data: dict
) -> tuple[list[dict], list[str]]:
    """Every registered model, daily and hourly, {cpu, acc} x {fp32, mixed}: val losses agree."""
    import numpy as np
    import torch

    from cryptocast.distribution import levels_of
    from cryptocast.models.registry import build_model, model_names
    from cryptocast.precision import precision_policy
    from cryptocast.targets import VOL_BASELINES
    from cryptocast.train import _to_device, evaluate_loss, fit, seed_everything

    records, failures = [], []
    for timeframe in ("1d", "1h"):
        prepared = data[timeframe]
        # the check trains on the price target; volatility baselines belong to realized_vol
        for name in (n for n in model_names() if n not in VOL_BASELINES):
            if budget.left("training") < 0:
                records.append(_rec("val_loss_skipped", 1, "runs", model=name, tf=timeframe))
                continue
            losses: dict[tuple[str, str], float] = {}
            for device, mode in _legs(acc):
                cfg = _config(
                    name,
                    timeframe,
                    [
                        *size["model_sets"],
                        f"train.device={device}",
                        f"train.precision={mode}",
                        f"train.epochs={size['epochs']}",
                        "train.batch_size=256",
                        "train.patience=0",
                        "model.dropout=0.0",
                        "train.num_threads=null",
                    ],
                )
                seed_everything(0)
                model = build_model(
                    cfg.model, len(prepared.feature_names), prepared.horizon, prepared.lookback
                )
                t0 = time.perf_counter()
                result = fit(model, prepared, cfg.train)
                seconds = time.perf_counter() - t0
                dev = torch.device(device)
                X, Y = _to_device(prepared, dev)
                levels = levels_of(model)
                val = evaluate_loss(
                    model,
                    X,
                    Y,
                    prepared.ends["val"],
                    prepared.lookback,
                    cfg.train.batch_size,
                    cfg.train.loss if levels is None else "pinball",  # rw_* predict quantiles
                    dev,
                    levels,
                    precision_policy(mode, dev),
                )
                history = [r["train_loss"] for r in result.history]
                finite = bool(np.isfinite(val)) and all(np.isfinite(history))
                if not finite:
                    failures.append(f"{name} {timeframe} {device} {mode}: non-finite loss")
                losses[(device, mode)] = val
                records.append(
                    _rec(
                        "val_loss",
                        val if finite else None,
                        "loss",
                        model=name,
                        timeframe=timeframe,
                        device=device,
                        precision=mode,
                        epochs=size["epochs"],
                        train_windows=len(prepared.ends["train"]),
                        train_losses=history,
                        seconds=round(seconds, 2),
                    )
                )
            pairs = [
                (("cpu", "mixed"), ("cpu", "fp32"), TOL_PRECISION),
                ((acc, "fp32"), ("cpu", "fp32"), TOL_DEVICE),
                ((acc, "mixed"), (acc, "fp32"), TOL_PRECISION),
            ][: 1 if acc == "cpu" else 3]
            for a, b, tol in pairs:
                la, lb = losses[a], losses[b]
                rel = abs(la - lb) / abs(lb) if math.isfinite(la) and math.isfinite(lb) else None
                ok = rel is not None and rel <= tol
                if not ok:
                    failures.append(
                        f"{name} {timeframe}: val loss {a[0]} {a[1]} {la:.6g} vs "
                        f"{b[0]} {b[1]} {lb:.6g} (relative {rel}) beyond {tol}"
                    )
                records.append(
                    _rec(
                        "val_loss_agreement",
                        rel,
                        "relative",
                        model=name,
                        timeframe=timeframe,
                        a="/".join(a),
                        b="/".join(b),
                        tolerance=tol,
                        ok=ok,
                    )
                )
    return records, failures


def attention_sweep(acc: str, size: dict, budget: Budget) -> list[dict]:
    """FAVOR+ vs SDPA on ``acc``: L doubling from 256, fwd and fwd+bwd, float32 and bf16."""
    import torch

    from bench.bench_attention import _measure
    from cryptocast.models.favor import orthogonal_gaussian_matrix

    d, m = 64, 256
    proj = orthogonal_gaussian_matrix(m, d, generator=torch.Generator().manual_seed(0)).to(acc)
    stop_at = time.perf_counter() + budget.left("attention")
    rows, notes = [], []
    lo, hi = size["L"]
    for dtype in ("float32", "bfloat16"):
        for pass_ in ("fwd", "fwd_bwd"):
            for impl in ("favor", "sdpa"):
                L, last = lo, None
                while hi >= L:
                    grow = 4.0 if impl == "sdpa" else 2.0  # quadratic vs linear per doubling
                    if last is not None and last * grow > size["max_call_s"]:
                        notes.append(_stop(impl, dtype, pass_, L, acc, "time cap"))
                        break
                    if time.perf_counter() > stop_at:
                        notes.append(_stop(impl, dtype, pass_, L, acc, "section budget"))
                        break
                    try:
                        r = _measure(
                            impl,
                            L,
                            d,
                            m if impl == "favor" else None,
                            pass_,
                            acc,
                            3,
                            1,
                            proj if impl == "favor" else None,
                            dtype,
                        )
                    except torch.OutOfMemoryError:
                        torch.cuda.empty_cache()
                        notes.append(_stop(impl, dtype, pass_, L, acc, "out of memory"))
                        break
                    rows.append(r)
                    last, L = r["seconds"], L * 2
    return rows + notes + _attention_summary(rows, acc)


def _stop(impl: str, dtype: str, pass_: str, L: int, device: str, why: str) -> dict:
    return {
        **_rec("attention_stopped_at_L", L, "L", impl=impl, dtype=dtype, why=why),
        "impl": impl,
        "pass": pass_,
        "device": device,
    }


def _attention_summary(rows: list[dict], device: str) -> list[dict]:
    """Crossover (smallest L from which FAVOR+ is faster at every common L) and the speed-up and
    memory ratio at the longest L both were measured at, per dtype and pass."""
    out = []
    for dtype in ("float32", "bfloat16"):
        for pass_ in ("fwd", "fwd_bwd"):
            sel = [r for r in rows if r["dtype"] == dtype and r["pass"] == pass_]
            fav = {r["L"]: r for r in sel if r["impl"] == "favor"}
            sdp = {r["L"]: r for r in sel if r["impl"] == "sdpa"}
            common = sorted(set(fav) & set(sdp))
            cross = None
            for L in reversed(common):
                if fav[L]["seconds"] < sdp[L]["seconds"]:
                    cross = L
                else:
                    break
            base = {"dtype": dtype, "pass": pass_, "device": device, "impl": "favor"}
            out.append({**_rec("attention_crossover_L", cross, "L", **base), **base})
            if common:
                L = common[-1]
                speed = sdp[L]["seconds"] / fav[L]["seconds"]
                out.append({**_rec("attention_speedup_longest_L", speed, "x", L=L, **base), **base})
            out.append(
                {
                    **_rec("attention_longest_L", max(fav, default=None), "L", **base),
                    **base,
                    "sdpa_longest_L": max(sdp, default=None),
                }
            )
    return out


def throughput_sweep(acc: str, size: dict, budget: Budget, data: Any) -> list[dict]:
    """windows/s per model at batch 256 and 1024: acc mixed, acc fp32, CPU fp32."""
    from bench.bench_train import MODELS, throughput

    records = []
    stop_at = time.perf_counter() + budget.left("throughput")
    legs = list(dict.fromkeys([(acc, "mixed"), (acc, "fp32"), ("cpu", "fp32")]))
    for name in MODELS:
        for bs in size["batch_sizes"]:
            for device, mode in legs:
                params = dict(model=name, batch_size=bs, device=device, precision=mode)
                if time.perf_counter() > stop_at:
                    records.append(_rec("train throughput skipped", None, "windows/s", **params))
                    continue
                sets = [
                    *size["model_sets"],
                    f"train.device={device}",
                    f"train.precision={mode}",
                    f"train.batch_size={bs}",
                    "train.num_threads=null",
                ]
                cfg = _config(name, "1h", sets)
                r = throughput(cfg, data, size["throughput_s"])
                records.append(
                    _rec(
                        f"train throughput {name} bs{bs} {device} {mode}",
                        r["windows_per_s"],
                        "windows/s",
                        **params,
                        **r,
                    )
                )
    return records


def time_compare(acc: str, size: dict, budget: Budget, dry: bool) -> list[dict]:
    """Wall seconds of ``make compare`` (scripts/compare_published.py) with train.device=acc.

    A non-zero exit is raised (a failure); running out of the slot is recorded as value null.
    """
    timeout = max(budget.left(), 10.0)
    with tempfile.TemporaryDirectory(prefix="gpu-check-compare-") as tmp:
        cmd = [
            sys.executable,
            str(REPO / "scripts" / "compare_published.py"),
            "--report",
            f"{tmp}/report",
            "--set",
            f"train.device={acc}",
            "--set",
            "train.num_threads=null",
        ]
        for item in size["compare_sets"]:  # the dry run: one coin, one fold, tiny models
            cmd += ["--set", item]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
            seconds, rc = time.perf_counter() - t0, proc.returncode
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        except subprocess.TimeoutExpired:
            seconds, rc, tail = None, None, [f"timed out after {timeout:.0f} s"]
    if rc not in (0, None):
        raise RuntimeError(f"compare_published.py exited {rc}: {' | '.join(tail)}")
    return [
        _rec(
            "make compare seconds",
            seconds if rc == 0 else None,
            "s",
            device=acc,
            exit_code=rc,
            dry_run=dry,
            tail=tail,
        )
    ]


def machine(acc: str) -> dict[str, Any]:
    import torch

    from bench.common import machine_info

    info = machine_info()
    info["device"] = acc
    info["gpu"] = torch.cuda.get_device_name(0) if acc == "cuda" else None
    info["cuda_version"] = torch.version.cuda
    info["cudnn_version"] = torch.backends.cudnn.version() if acc == "cuda" else None
    return info


def main(argv: list[str] | None = None) -> int:
    import torch

    from bench.schema import validate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--device",
        choices=["cuda", "cpu"],
        default=None,
        help="cuda (default when a GPU is present) or cpu (the dry run, tiny sizes)",
    )
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--budget-s", type=float, default=None, help="time slot in seconds")
    args = p.parse_args(argv)
    acc = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if acc == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA GPU; use --device cpu for the dry run")
        return 2
    dry = acc == "cpu"
    size = SIZES[acc]
    budget = Budget(args.budget_s or size["budget_s"], size["done_by"])
    t_start = time.perf_counter()
    records: list[dict] = []
    failures: list[str] = []

    def section(title: str, fn, *a) -> Any:
        t0 = time.perf_counter()
        print(f"gpu-check: {title} ...", flush=True)
        try:
            out = fn(*a)
        except Exception as err:  # record and go on: one broken section must not hide the rest
            failures.append(f"{title}: {type(err).__name__}: {err}")
            traceback.print_exc()
            out = []
        print(f"gpu-check: {title} done in {time.perf_counter() - t0:.1f} s", flush=True)
        partial = out[0] if isinstance(out, tuple) else out if isinstance(out, list) else []
        # what is done so far, in case the slot is cut short (the final write replaces it)
        write(args.out, document([*records, *partial], dry, acc))
        return out

    recs, fails = section("precision policy", check_policy, acc, size) or ([], [])
    records += recs
    failures += fails
    data = section("reference features", lambda: {tf: _prepared(tf, size) for tf in ("1d", "1h")})
    if data:
        recs, fails = section("training agreement", train_agreement, acc, size, budget, data) or (
            [],
            [],
        )
        records += recs
        failures += fails
    records += section("attention sweep", attention_sweep, acc, size, budget)
    if data:
        records += section("throughput", throughput_sweep, acc, size, budget, data["1h"])
    records += section("make compare", time_compare, acc, size, budget, dry)
    total = time.perf_counter() - t_start
    records.append(_rec("gpu-check seconds", round(total, 1), "s", device=acc, dry_run=dry))
    doc = document(records, dry, acc)
    # A renamed or malformed figure fails the check too (bench/schema.py, benchmark "gpu").
    failures += validate({**doc, "records": [*records, _rec("gpu-check failures", 0, "")]})
    records.append(_rec("gpu-check failures", len(failures), "count", failures=failures))
    path = write(args.out, doc)
    print(f"gpu-check: {len(records)} records in {path}; {total:.0f} s; {len(failures)} failure(s)")
    for f in failures:
        print(f"  FAIL {f}")
    return 1 if failures else 0


def document(records: list[dict], quick: bool, acc: str) -> dict[str, Any]:
    """The bench-schema document of benchmark ``gpu`` (``records`` is shared, not copied)."""
    from bench.common import git_commit

    return {
        "benchmark": "gpu",
        "quick": quick,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": git_commit(),
        "machine": machine(acc),
        "records": records,
    }


def write(out: Path, doc: dict[str, Any]) -> Path:
    """Write ``gpu.json`` (``gpu.quick.json`` for the dry run) into ``out`` atomically."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("gpu.quick.json" if doc["quick"] else "gpu.json")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    sys.exit(main())
