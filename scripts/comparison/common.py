"""What every comparison mode shares: the reference candles, the config with the command's
overrides, one backtest run, its report, and the small formatting helpers of the pages."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SHARED_OHLCV = Path(
    os.environ.get("CRYPTOCAST_SHARED_DATA", REPO.parent / "shared" / "data" / "ohlcv" / "binance")
)
SHARED_FINE = SHARED_OHLCV.parent.parent / "fine" / "binance"  # 5-minute candles from 2022
# training-only pairs of pooled models (train.universe, docs/global.md): ADA, AVAX, ... (1h, 1d)
SHARED_UNIVERSE = SHARED_OHLCV.parent.parent / "universe" / "binance"


def shared_copy(symbols: list[str], timeframes: list[str], universe: list[str] = ()) -> Path:
    """A temporary data folder holding the reference candles (the shared folder is read-only).

    Timeframes under 1h come from ``fine/binance`` beside ``ohlcv/binance`` and are imported
    (``cryptocast.data.importers``), since the store keeps them one file per month. ``universe``:
    training-only symbols, copied from ``universe/binance`` beside ``ohlcv/binance`` into the same
    store folder (where ``train.universe`` reads them)."""
    from cryptocast.config.timeframes import symbol_slug
    from cryptocast.data.importers import import_path
    from cryptocast.data.months import is_monthly

    tmp = Path(tempfile.mkdtemp(prefix="cryptocast-compare-"))
    dest = tmp / "ohlcv" / "binance"
    dest.mkdir(parents=True)
    for s in symbols:
        for timeframe in timeframes:
            folder = SHARED_FINE if is_monthly(timeframe) else SHARED_OHLCV
            src = folder / f"{symbol_slug(s)}_{timeframe}.parquet"
            if not src.is_file():
                raise SystemExit(
                    f"error: reference candles {src} not found; pass --data-dir with fetched candles"
                )
            if is_monthly(timeframe):
                import_path(tmp, src, symbols=[s], timeframes=[timeframe])
            else:
                shutil.copy(src, dest / src.name)
    for s in dict.fromkeys(u for u in universe if u not in symbols):
        for timeframe in timeframes:
            src = SHARED_UNIVERSE / f"{symbol_slug(s)}_{timeframe}.parquet"
            if not src.is_file():
                raise SystemExit(
                    f"error: training-only candles {src} not found; pass --data-dir with them"
                )
            shutil.copy(src, dest / src.name)
    return tmp


def load(args: argparse.Namespace, *extra: str) -> Any:
    """The mode's config with the command's ``--set`` / ``--workers`` overrides and ``extra``."""
    from cryptocast.config.schema import load_config

    overrides = list(args.overrides)
    if args.workers:
        overrides.append(f"backtest.workers={args.workers}")
    return load_config(args.config, [*overrides, *extra])


def report_root(args: argparse.Namespace, cfg: Any) -> Path:
    """``--report``, else the config's ``backtest.report_dir`` under the repository."""
    return args.report or REPO / cfg.backtest.report_dir


def reused(report: Path, cfg: Any) -> dict | None:
    """The summary in ``report`` when it was made from this very config (its hash), else None."""
    path = report / "summary.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    return summary if summary.get("config_hash") == cfg.hash() else None


def backtest(
    cfg: Any, data_dir: Path | None, label: str = "", jobs_dir: Path | None = None
) -> tuple[list, float]:
    """Run the walk-forward backtest of ``cfg`` (on a copy of the reference candles, and of its
    ``train.universe``, unless ``data_dir``), printing progress; returns the results and the wall
    seconds. ``jobs_dir``: a job store (``cryptocast.evaluate.jobstore``) whose finished jobs of
    the same key are reused and to which new ones are added; None runs every job."""
    from cryptocast.evaluate.backtest import run_backtest

    tmp = None
    if data_dir is None:
        frames = list(cfg.backtest.timeframes)
        if cfg.features.target == "realized_vol":
            frames = list(dict.fromkeys([*frames, cfg.features.rv_source]))
        data_dir = tmp = shared_copy(cfg.backtest.symbols, frames, cfg.train.universe)
    t0 = time.perf_counter()

    def on_event(ev: dict) -> None:
        if ev.get("event") == "plan":
            print(
                f"{label}{ev['jobs']} jobs, {ev['folds']} folds, {cfg.backtest.workers} worker(s)"
            )
        elif ev.get("event") == "job":
            kept = ", kept" if ev.get("reused") else ""
            print(
                f"  done {' '.join(ev['job'])} ({time.perf_counter() - t0:.0f} s{kept})", flush=True
            )

    try:
        results = run_backtest(cfg, data_dir, on_event, jobs_dir=jobs_dir)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return results, round(time.perf_counter() - t0, 1)


def write(report: Path, cfg: Any, results: list, wall_seconds: float) -> dict:
    """Summarise ``results`` under ``cfg``, write the report folder, return its ``summary.json``."""
    from cryptocast.evaluate.backtest import summarise
    from cryptocast.evaluate.report import write_report

    summary, forecasts, equity = summarise(cfg, results)
    summary["wall_seconds"] = wall_seconds
    write_report(report, forecasts, summary, equity)
    return json.loads((report / "summary.json").read_text())


def coin(rec: dict) -> str:
    """``BTC`` for a record of ``BTC/USDT``."""
    return rec["symbol"].split("/")[0]


def fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def fmt_p(v: float | None) -> str:
    """A p-value: three decimals, ``< 0.001`` below that."""
    if v is None:
        return "–"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def seed_cell(vals: list[float], digits: int = 3) -> str:
    """A figure over training seeds: one value when every seed agrees, else ``mean ± sd``."""
    if not vals:
        return "–"
    if len(set(vals)) == 1:
        return fmt(vals[0], digits)
    return f"{fmt(statistics.fmean(vals), digits)} ± {fmt(statistics.stdev(vals), digits)}"


def seed_p_cell(vals: list[float]) -> str:
    """A p-value over training seeds: one value when every seed agrees, else median [min, max]."""
    if not vals:
        return "–"
    if len(set(vals)) == 1:
        return fmt_p(vals[0])
    return f"{fmt_p(statistics.median(vals))} [{fmt_p(min(vals))}, {fmt_p(max(vals))}]"


def period(summary: dict) -> tuple[str, str, list[int]]:
    """First and last test origin (dates) over the summary's series, and their origin counts."""
    ranges = summary["data_ranges"].values()
    firsts = sorted({v["test_first_origin"][:10] for v in ranges})
    lasts = sorted({v["test_last_origin"][:10] for v in ranges})
    return firsts[0], lasts[-1], sorted({v["origins"] for v in ranges})


def shown(path: Path | str) -> Path:
    """``path`` relative to the repository when it lies inside it (as the pages print it)."""
    path = Path(path)
    try:
        return path.resolve().relative_to(REPO)
    except ValueError:
        return path


def git_commit() -> str:
    """The commit the numbers come from, marked when the working tree had changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    except OSError:
        return "unknown"
    return (head or "unknown") + (" (with uncommitted changes)" if dirty else "")
