"""Our walk-forward results next to published figures -> ``docs/comparison.md``.

Runs (or, with ``--reuse``, reads) the backtest of ``configs/compare.yaml`` -- daily BTC, ETH and
LTC; lstm, gru, performer_bilstm and the naive baselines -- and writes a Markdown table that puts
the RMSE/MAPE published by Seabe et al. (2023) beside ours and beside persistence on OUR test
period. Every number of ours comes from the report's ``summary.json``; the published ones are the
citations below. Nothing is typed in by hand.

Usage::

    python scripts/compare_published.py                 # run the backtest, write the doc
    python scripts/compare_published.py --reuse         # reuse reports/compare (same config)
    python scripts/compare_published.py --data-dir data # candles from a data folder, not ../shared
    python scripts/compare_published.py --vol           # realized volatility -> docs/volatility.md

``--vol`` (``make compare-vol``) runs ``configs/compare_vol.yaml`` instead: the same period and folds
with ``features.target=realized_vol``, every model beside ``vol_persistence``, ``har``, ``ewma_vol``
and ``garch``, and rewrites the results section of ``docs/volatility.md`` (between its markers).

The periods differ: the paper has its own data range and train/test split; ours is the last year
of the reference candles, forecast one day ahead by models retrained every quarter on all earlier
days. Read the table as "the scale of errors on daily prices", not as a ranking.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a plain script from any directory

SHARED_OHLCV = Path(
    os.environ.get("CRYPTOCAST_SHARED_DATA", REPO.parent / "shared" / "data" / "ohlcv" / "binance")
)

REFERENCE = (
    "P. L. Seabe, C. R. B. Moutsinga, E. Pindza (2023). Forecasting Cryptocurrency Prices Using "
    "LSTM, GRU, and Bi-Directional LSTM: A Deep Learning Approach. *Fractal and Fractional* "
    "7(2):203. https://doi.org/10.3390/fractalfract7020203"
)
# (coin, model in the paper, RMSE in USD, MAPE in %): daily closes, as published (citations).
PUBLISHED = [
    ("BTC", "LSTM", 1031.34, 3.94),
    ("BTC", "BiLSTM", 1029.36, 3.56),
    ("BTC", "GRU", 1274.17, 5.72),
    ("ETH", "BiLSTM", 83.95, 12.43),
    ("LTC", "BiLSTM", 8.02, 4.11),
]
# Our closest model. The paper's BiLSTM is a plain bidirectional LSTM; ours adds Performer
# attention.
OURS = {"LSTM": "lstm", "GRU": "gru", "BiLSTM": "performer_bilstm"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vol", action="store_true", help="volatility target -> docs/volatility.md")
    p.add_argument("--config", default=None, help="default: configs/compare.yaml (compare_vol)")
    p.add_argument("--data-dir", type=Path, default=None, help="default: a copy of ../shared")
    p.add_argument("--report", type=Path, default=None, help="default: backtest.report_dir")
    p.add_argument("--out", type=Path, default=None, help="default: docs/comparison.md")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--reuse", action="store_true", help="read the report if its config matches")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    name = "compare_vol.yaml" if args.vol else "compare.yaml"
    args.config = args.config or str(REPO / "configs" / name)
    args.out = args.out or REPO / "docs" / ("volatility.md" if args.vol else "comparison.md")
    return args


def _shared_copy(symbols: list[str], timeframes: list[str]) -> Path:
    """A temporary data folder holding the reference candles (the shared folder is read-only)."""
    from cryptocast.timeframes import symbol_slug

    tmp = Path(tempfile.mkdtemp(prefix="cryptocast-compare-"))
    dest = tmp / "ohlcv" / "binance"
    dest.mkdir(parents=True)
    for s in symbols:
        for timeframe in timeframes:
            src = SHARED_OHLCV / f"{symbol_slug(s)}_{timeframe}.parquet"
            if not src.is_file():
                raise SystemExit(
                    f"error: reference candles {src} not found; pass --data-dir with fetched candles"
                )
            shutil.copy(src, dest / src.name)
    return tmp


def run_or_reuse(args: argparse.Namespace) -> tuple[dict, Path]:
    """The backtest summary (run now, or read back when ``--reuse`` and the config hash match)."""
    from cryptocast.config import load_config

    overrides = list(args.overrides)
    if args.workers:
        overrides.append(f"backtest.workers={args.workers}")
    cfg = load_config(args.config, overrides)
    report = args.report or REPO / cfg.backtest.report_dir
    summary_path = report / "summary.json"
    if args.reuse and summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if summary.get("config_hash") == cfg.hash():
            print(f"reusing {report} (config {cfg.hash()})")
            return summary, report
        print(f"{report} has another config ({summary.get('config_hash')}); running again")

    from cryptocast.backtest import run_backtest, summarise
    from cryptocast.evaluate.report import write_report

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        frames = ["1d", cfg.features.rv_source] if cfg.features.target == "realized_vol" else ["1d"]
        data_dir = tmp = _shared_copy(cfg.backtest.symbols, frames)
    t0 = time.perf_counter()

    def on_event(ev: dict) -> None:
        if ev.get("event") == "plan":
            print(f"{ev['jobs']} jobs, {ev['folds']} folds, {cfg.backtest.workers} worker(s)")
        elif ev.get("event") == "job":
            print(f"  done {' '.join(ev['job'])} ({time.perf_counter() - t0:.0f} s)", flush=True)

    try:
        results = run_backtest(cfg, data_dir, on_event)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    summary, forecasts, equity = summarise(cfg, results)
    summary["wall_seconds"] = round(time.perf_counter() - t0, 1)
    write_report(report, forecasts, summary, equity)
    print(f"backtest done in {summary['wall_seconds']} s; report {report}")
    return json.loads(summary_path.read_text()), report


def _f(v, digits: int = 2) -> str:
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def _p(v) -> str:
    if v is None:
        return "–"
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def _features_text(ft: dict) -> str:
    parts = ["the default indicator set" if ft["indicators"] is None else
             f"{len(ft['indicators'])} indicator(s)"]  # fmt: skip
    for key, text in (("log_returns", "log returns"), ("range_features", "candle range"),
                      ("calendar", "calendar")):  # fmt: skip
        if ft[key]:
            parts.append(text)
    return ", ".join(parts)


def _persistence_sentence(recs: dict) -> str:
    """Persistence's MAPE on our period beside the published MAPEs of the same coin."""
    parts = []
    for coin in dict.fromkeys(c for c, *_ in PUBLISHED):
        pers = recs.get((coin, "persistence"))
        if pers is None or pers.get("mape") is None:
            continue
        paper = [m for c, _, _, m in PUBLISHED if c == coin]
        rel = "below" if pers["mape"] < min(paper) else "not below"
        parts.append(
            f"{coin} {pers['mape']:.2f} % ({rel} every published MAPE for {coin}: "
            + ", ".join(f"{m:.2f} %" for m in paper)
            + ")"
        )
    if not parts:
        return ""
    return "On our period (not theirs) tomorrow = today scores MAPE " + "; ".join(parts) + "."


def render(summary: dict, report: Path) -> str:
    """The Markdown page, from a backtest summary alone."""
    recs = {(r["symbol"].split("/")[0], r["model"]): r for r in summary["results"]}
    cfg = summary["config"]
    bt, tr, ft = cfg["backtest"], cfg["train"], cfg["features"]
    ranges = summary["data_ranges"]
    firsts = sorted({v["test_first_origin"][:10] for v in ranges.values()})
    lasts = sorted({v["test_last_origin"][:10] for v in ranges.values()})
    period = f"{firsts[0]} .. {lasts[-1]}"
    k = bt["retrain_every"]
    every = "fold" if k == 1 else f"{k} folds"
    n = sorted({v["origins"] for v in ranges.values()})
    try:
        shown = report.resolve().relative_to(REPO)
    except ValueError:
        shown = report
    out = [
        "# Our backtest next to published figures",
        "",
        "<!-- generated by scripts/compare_published.py (make compare); do not edit by hand -->",
        "",
        f"Published: {REFERENCE}",
        "",
        "**The periods differ.** The paper's figures come from its own data range and train/test "
        "split. Ours are one-day-ahead forecasts on the test period "
        f"**{period}** ({'/'.join(map(str, n))} forecast days per coin, Binance spot daily "
        "closes), "
        f"walk-forward: {bt['fold_length']}-day folds, {bt['window']} training window, every model "
        f"retrained each {every} "
        "on all earlier days only. Price-level RMSE and MAPE depend on the price level of the "
        "period, so compare each model with persistence (tomorrow = today) on the same days, "
        "not across the two sources.",
        "",
        "| coin | model (paper) | paper RMSE | paper MAPE % | our model | our RMSE | our MAPE % "
        "| persistence RMSE (ours) | persistence MAPE % (ours) | our skill vs persistence |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for coin, model, rmse, mape in PUBLISHED:
        ours = recs.get((coin, OURS[model]), {})
        pers = recs.get((coin, "persistence"), {})
        out.append(
            f"| {coin} | {model} | {_f(rmse)} | {_f(mape)} | {OURS[model]} | "
            f"{_f(ours.get('rmse'))} | {_f(ours.get('mape'))} | {_f(pers.get('rmse'))} | "
            f"{_f(pers.get('mape'))} | {_f(ours.get('skill_rmse'), 3)} |"
        )
    out += ["", _persistence_sentence(recs)] if _persistence_sentence(recs) else []
    out += [
        "",
        "The paper's BiLSTM is a plain bidirectional LSTM; the closest model we have is "
        "`performer_bilstm` (Performer attention with BiLSTM feed-forward blocks).",
        "",
        "## All our results on this period",
        "",
        "skill = 1 − RMSE / RMSE(persistence) (> 0 beats persistence); DM p = Diebold–Mariano "
        "p-value against persistence (squared loss, HLN-corrected; small p with negative skill "
        "means significantly worse); Sharpe of the long/flat strategy on the forecast's sign, "
        f"after {bt['fee_bps']:g} bp fee + {bt['slippage_bps']:g} bp slippage per trade "
        "(buy-and-hold Sharpe beside it).",
        "",
        "| coin | model | n | RMSE | MAPE % | skill | DM p | directional acc. | Sharpe "
        "| buy-and-hold Sharpe |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["results"]:
        da = r.get("directional_accuracy")
        out.append(
            f"| {r['symbol'].split('/')[0]} | {r['model']} | {r['n']} | {_f(r['rmse'])} | "
            f"{_f(r['mape'])} | {_f(r.get('skill_rmse'), 3)} | "
            f"{_p(r.get('dm_pvalue_vs_persistence'))} | {_f(da, 3) if da is not None else '–'} | "
            f"{_f(r.get('sharpe'))} | {_f(r.get('bh_sharpe'))} |"
        )
    out += [
        "",
        "## How these numbers were made",
        "",
        f"- Command: `make compare` (`python scripts/compare_published.py`), config "
        f"`configs/compare.yaml` (hash `{summary['config_hash']}`), report folder `{shown}`.",
        f"- Features: {_features_text(ft)}; lookback {ft['lookback']} days, "
        f"horizon {ft['horizon']}, target {ft['target']}; scalers fit on each fold's training "
        "rows only.",
        f"- Training: up to {tr['epochs']} epochs, early stopping (patience {tr['patience']}) on "
        f"the last {bt['val_fraction']:.0%} of each fold's training days, seed {tr['seed']}, "
        "CPU.",
        f"- Run {summary['created']}"
        + (f" in {summary['wall_seconds']} s" if "wall_seconds" in summary else "")
        + f"; torch {summary['versions'].get('torch')}, cryptocast "
        f"{summary['versions'].get('cryptocast')}.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    from cryptocast.errors import CryptocastError

    args = parse_args(argv)
    try:
        summary, report = run_or_reuse(args)
    except CryptocastError as err:  # one line, as the CLI does
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.vol:
        from compare_vol import splice

        text = splice(args.out.read_text(encoding="utf-8"), summary, report, REPO)
        args.out.write_text(text, encoding="utf-8")
    else:
        args.out.write_text(render(summary, report), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
