"""The golden run: a fixed-seed backtest on the reference candles whose results must not move.

A restructure, a clean-up or a dependency bump that claims "behaviour unchanged" proves it here:
three backtests through the real CLI on the reference candles (point forecasts over neural and
naive models, quantiles with CQR calibration, and the realized-volatility target beside HAR/EWMA),
each reduced to a canonical digest of what a user reads: every record of ``summary.json`` (less
the wall-clock ``seconds``) and every row of ``forecasts.parquet``.

    python scripts/golden_run.py              # compare with tests/golden/golden.json (exit 1 on drift)
    python scripts/golden_run.py --update     # record the current code's digests

Only the CLI is called, so the same script runs on the code before and after a move of modules.
tests/test_golden.py runs it in the default suite (~50 s on 2 cores).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "golden.json"
SHARED = Path(
    os.environ.get("CRYPTOCAST_SHARED_DATA", REPO.parent / "shared" / "data" / "ohlcv" / "binance")
)
# The CPU changes float results (ATen's kernels, oneDNN's RNNs and MKL each pick a code path by
# what the CPU offers: an AVX-512 machine and an AVX2 one disagree in the last bits, and after two
# epochs of training in the digest; numpy's and scipy's OpenBLAS pick a kernel per CPU model, so
# an Intel AVX-512 machine (SkylakeX) and an AMD one (Haswell) disagree on HAR's least squares and
# the metrics' BLAS calls). Every run pins all four to a path every x86-64-v2 CPU runs (numpy 2.4's
# own baseline), so the digests are the same on every machine with the same package versions.
PORTABLE_KERNELS = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_CBWR": "COMPATIBLE",
    "OPENBLAS_CORETYPE": "Nehalem",
}
# small networks, one thread: identical floats on every run of the same build
_COMMON = [
    "data.start=2021-01-01",
    "features.lookback=16",
    "model.d_model=16",
    "model.n_heads=2",
    "model.n_layers=1",
    "model.lstm_hidden=8",
    "model.nb_features=16",
    "model.dim_feedforward=32",
    "model.hidden_size=16",
    "model.num_layers=1",
    "train.epochs=2",
    "train.batch_size=64",
    "train.patience=0",
    "train.seed=0",
    "train.device=cpu",
    "train.num_threads=1",
    "backtest.symbols=[BTC/USDT, ETH/USDT]",
    "backtest.timeframes=[1d]",
    "backtest.test_start=2023-03-01",
    "backtest.test_end=2023-06-30",
    "backtest.fold_length=60",
    "backtest.workers=1",
]
CASES: dict[str, list[str]] = {
    "price": [
        "backtest.models=[performer_bilstm, lstm, transformer, persistence, drift]",
    ],
    "quantiles": [
        "model.quantiles=[0.05, 0.25, 0.5, 0.75, 0.95]",
        "train.loss=pinball",
        "backtest.models=[lstm, rw_ewma, rw_empirical]",
        "backtest.calibration=cqr",
    ],
    "volatility": [
        "features.target=realized_vol",
        "backtest.models=[gru, vol_persistence, har, ewma_vol, garch]",
    ],
}


def _canonical(obj: object) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


def digest(report: Path) -> dict[str, str]:
    """sha256 of the summary's results (less timings) and of every forecast row, in full precision."""
    import pandas as pd

    summary = json.loads((report / "summary.json").read_text())
    results = [{k: v for k, v in r.items() if k != "seconds"} for r in summary["results"]]
    forecasts = pd.read_parquet(report / "forecasts.parquet")
    rows = forecasts.astype(str).to_csv(index=False)  # str(float) round-trips exactly
    return {
        "results": hashlib.sha256(_canonical(results).encode()).hexdigest(),
        "forecasts": hashlib.sha256(rows.encode()).hexdigest(),
        "columns": ",".join(map(str, forecasts.columns)),
        "rows": str(len(forecasts)),
    }


def run(work: Path) -> dict[str, dict[str, str]]:
    data = work / "data"
    cli = [sys.executable, "-m", "cryptocast"]
    env = {**os.environ, **PORTABLE_KERNELS}
    subprocess.run([*cli, "fetch", "--import", str(SHARED), "--data-dir", str(data)], check=True,
                   stdout=subprocess.DEVNULL, env=env)  # fmt: skip
    out = {}
    for name, extra in CASES.items():
        report = work / name
        sets = [a for item in [*_COMMON, *extra] for a in ("--set", item)]
        cmd = [*cli, "backtest", "--data-dir", str(data), "--report", str(report), *sets]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
        out[name] = digest(report)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update", action="store_true", help="record the digests instead of comparing")
    args = ap.parse_args(argv)
    if not (SHARED / "BTC-USDT_1d.parquet").exists():
        print(f"golden run needs the reference candles at {SHARED}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        got = run(Path(tmp))
    if args.update:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
        print(f"recorded {GOLDEN.relative_to(REPO)}")
        return 0
    want = json.loads(GOLDEN.read_text())
    drift = [f"{c}.{k}" for c in want for k in want[c] if got.get(c, {}).get(k) != want[c][k]]
    for item in drift:
        print(f"golden drift: {item}", file=sys.stderr)
    print("golden run: identical" if not drift else f"golden run: {len(drift)} digest(s) moved")
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
