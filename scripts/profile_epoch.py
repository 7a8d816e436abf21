"""Profile one training epoch of an hourly model with cProfile: where does an epoch's time go?

    python scripts/profile_epoch.py [--model lstm] [--start 2022-01-01] [--data-dir DIR]

Uses ``configs/<model>.yaml`` (the paper-like sizes) on hourly BTC from ``--start`` (a shorter
history keeps the epoch short; the cost per window is what matters), one epoch, and prints the
top functions by total and cumulative time plus windows per second. The reference candles are
read from ``../shared/data`` unless ``--data-dir`` points elsewhere.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lstm")
    ap.add_argument("--start", default="2022-01-01")
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from cryptocast.config.schema import load_config
    from cryptocast.features.windows import prepare, split_bounds
    from cryptocast.models.registry import build_model
    from cryptocast.training.loop import fit, seed_everything
    from cryptocast.training.runs import load_feature_table

    with tempfile.TemporaryDirectory() as d:
        data_dir = a.data_dir
        if data_dir is None:
            data_dir = Path(d)
            src = REPO.parent / "shared" / "data" / "ohlcv" / "binance" / "BTC-USDT_1h.parquet"
            (data_dir / "ohlcv" / "binance").mkdir(parents=True)
            shutil.copy(src, data_dir / "ohlcv" / "binance" / src.name)
        cfg = load_config(
            REPO / "configs" / f"{a.model}.yaml",
            ["data.timeframe=1h", f"data.start={a.start}", "train.epochs=1", "train.device=cpu",
             "split.method=fraction", "split.val_start=null", "split.test_start=null"],
        )  # fmt: skip
        df = load_feature_table(cfg, data_dir)
        f = cfg.features
        data = prepare(df, f, split_bounds(df, cfg.split, f.lookback, f.horizon), cfg.split.embargo)
        # torch imports torch._dynamo (and sympy) when the first optimiser is built: a one-time
        # cost per process, timed apart so the profile shows the epoch itself
        t_opt = time.perf_counter()
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
        first_optimizer = time.perf_counter() - t_opt
        seed_everything(0)
        model = build_model(cfg.model, len(data.feature_names), f.horizon, f.lookback)
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        res = fit(model, data, cfg.train)
        prof.disable()
        seconds = time.perf_counter() - t0
    n = len(data.ends["train"])
    print(
        f"first optimiser built (imports torch._dynamo): {first_optimizer:.2f} s, once per process"
    )
    print(f"{a.model}: {n} training windows, 1 epoch + validation in {seconds:.2f} s "
          f"({res.windows_per_s:,.0f} windows/s, {a.threads} thread(s))")  # fmt: skip
    stats = pstats.Stats(prof).strip_dirs()
    stats.sort_stats("tottime").print_stats(a.top)


if __name__ == "__main__":
    main()
