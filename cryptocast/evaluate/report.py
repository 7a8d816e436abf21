"""Backtest report: tidy forecasts, summary.json, PNG plots, report.md, and the rich results table.

``write_report`` builds the whole folder in a hidden temporary sibling and renames it into place
at the end, so a run that fails part-way leaves either the previous report or nothing, never a
half-written folder that looks complete.

Inputs are tidy, so the runner can concatenate them across jobs:

- forecasts: one row per (origin, step), columns ``FORECAST_COLUMNS`` (see ``forecasts_frame``);
- summary: a JSON-able dict whose ``results`` list has one record per symbol x timeframe x model
  with at least ``Scoring.required_fields`` (evaluate/scoring.py);
- equity: optional rows (timestamp, symbol, timeframe, model, equity), buy-and-hold as model
  ``BUY_HOLD`` (see ``equity_frame``).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import symbol_slug
from cryptocast.errors import ConfigError, DataError
from cryptocast.evaluate.frames import (  # noqa: F401  (part of this module's API)
    FORECAST_COLUMNS,
    equity_frame,
    forecasts_frame,
    quantile_column,
    series_arrays,
    to_jsonable,
)
from cryptocast.evaluate.metrics import METRICS
from cryptocast.evaluate.plots import (  # noqa: F401  (BUY_HOLD is part of this module's API)
    BUY_HOLD,
    plot_actual_vs_pred,
    plot_equity,
    plot_fold_errors,
    price_unit,
)
from cryptocast.evaluate.report_prob import prob_plots, risk_table
from cryptocast.evaluate.scoring import scoring_for, scoring_of_records
from cryptocast.evaluate.vol_confidence import confidence_lines

# The terminal's default when the full table does not fit (80 columns): the columns that answer
# "does it beat persistence?"; --metrics (backtest.metrics) picks any others.
COMPACT_COLUMNS = [
    "rmse", "mape", "skill_rmse", "dm_pvalue_vs_persistence", "directional_accuracy", "sharpe",
    "crps_skill", "coverage_90",  # quantile models
    "rmse_vol", "qlike", "mz_r2", "skill_qlike", "dm_pvalue_vs_har", "vt_sharpe",  # volatility
]  # fmt: skip
# Short, distinct headers for terminal tables (summary.json and report.md keep the full names).
SHORT_HEADERS = {
    "rmse": "RMSE", "mae": "MAE", "mse": "MSE", "mape": "MAPE %", "rmse_ret": "RMSE ret",
    "mae_ret": "MAE ret", "directional_accuracy": "dir acc", "skill_rmse": "skill", "mase": "MASE",
    "dm_pvalue_vs_persistence": "DM p pers", "dm_pvalue_vs_best": "DM p vs NN",
    "sharpe": "Sharpe", "max_drawdown": "max DD", "crps": "CRPS", "crps_skill": "CRPS skill",
    "coverage_80": "cov 80", "coverage_90": "cov 90", "width_90": "width 90",
    "dm_pvalue_crps_vs_rw_ewma": "DM p CRPS",
    "rmse_vol": "RMSE vol", "mae_vol": "MAE vol", "qlike": "QLIKE", "mz_r2": "MZ R2",
    "bias_ratio": "bias ratio",
    "skill_qlike": "skill QLIKE", "dm_pvalue_vs_har": "DM p HAR",
    "spa_p_vs_har": "SPA p HAR", "mcs_qlike_90": "MCS 90",
    "skill_qlike_persistence": "skill QL pers", "dm_pvalue_vs_vol_persistence": "DM p vol pers",
    "vt_annual_vol": "VT vol", "vt_vol_error": "VT vol err", "vt_sharpe": "VT Sharpe",
}  # fmt: skip


def _scoring(summary: Mapping):
    """The scores, columns and wording of the summary's target kind (price when unstated)."""
    return scoring_for((summary.get("target") or {}).get("kind", "price"))


def _check_inputs(forecasts: pd.DataFrame, summary: Mapping) -> None:
    missing = [c for c in FORECAST_COLUMNS if c not in forecasts.columns]
    if missing:
        raise DataError(f"forecasts table lacks columns {', '.join(missing)}")
    results = summary.get("results")
    if not isinstance(results, list):
        raise DataError("summary needs a 'results' list (one record per symbol/timeframe/model)")
    required = _scoring(summary).required_fields
    for rec in results:
        lack = [f for f in required if f not in rec]
        if lack:
            raise DataError(f"result record {rec.get('model', '?')} lacks {', '.join(lack)}")


def write_report(
    report_dir: Path | str,
    forecasts: pd.DataFrame,
    summary: Mapping,
    equity: pd.DataFrame | None = None,
    *,
    plot_days: float = 90.0,
) -> Path:
    """Write forecasts.parquet, equity.parquet, summary.json, PNG plots and report.md atomically.

    Args:
        report_dir: target folder; replaced if it holds a previous report (has summary.json).
        forecasts: tidy forecasts, ``FORECAST_COLUMNS``.
        summary: JSON-able dict with ``results`` records (``Scoring.required_fields`` (evaluate/scoring.py)) and any
            metadata (config hash, data ranges, package versions); NaN is written as null.
        equity: optional tidy equity curves (``equity_frame``), for the equity plot.
        plot_days: actual-vs-predicted plots show the last ``plot_days`` days of the test period.

    Returns:
        The report folder.

    Raises:
        DataError: inputs lack required columns/fields.
        ConfigError: ``report_dir`` exists and is not a cryptocast report.
    """
    _check_inputs(forecasts, summary)
    report_dir = Path(report_dir)
    if report_dir.exists() and not (
        report_dir.is_dir()
        and (not any(report_dir.iterdir()) or (report_dir / "summary.json").exists())
    ):
        raise ConfigError(
            f"report folder {report_dir} exists and is not a cryptocast report; pick another --report"
        )
    report_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{report_dir.name}.tmp-", dir=report_dir.parent))
    try:
        forecasts.to_parquet(tmp / "forecasts.parquet", index=False)
        if equity is not None:
            equity.to_parquet(tmp / "equity.parquet", index=False)
        images: dict[tuple[str, str], list[str]] = {}
        for (symbol, tf), part in forecasts.groupby(["symbol", "timeframe"], sort=True):
            stem = f"{symbol_slug(symbol)}_{tf}"
            unit = _scoring(summary).plot_unit
            names = [plot_actual_vs_pred(part, tmp / f"actual_vs_pred_{stem}.png", plot_days, unit)]
            names.append(plot_fold_errors(part, tmp / f"fold_error_{stem}.png", unit))
            if equity is not None:
                eq = equity[(equity["symbol"] == symbol) & (equity["timeframe"] == tf)]
                if len(eq):
                    names.append(plot_equity(eq, tmp / f"equity_{stem}.png"))
            recs = [r for r in summary["results"] if (r["symbol"], r["timeframe"]) == (symbol, tf)]
            names += prob_plots(part, recs, tmp, stem, plot_days)  # quantile models only
            images[(symbol, tf)] = names
        text = json.dumps(to_jsonable(summary), indent=2, allow_nan=False)
        (tmp / "summary.json").write_text(text + "\n", encoding="utf-8")
        from cryptocast.evaluate.report_text import fold_dates

        md = _markdown(summary, images, fold_dates(forecasts))
        (tmp / "report.md").write_text(md, encoding="utf-8")
        _swap_into_place(tmp, report_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report_dir


def _swap_into_place(tmp: Path, report_dir: Path) -> None:
    old = None
    if report_dir.exists():
        old = report_dir.parent / f".{report_dir.name}.old-{uuid.uuid4().hex[:8]}"
        report_dir.rename(old)
    tmp.rename(report_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, (bool, np.bool_)):  # membership (mcs_qlike_90): not the integer 1
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def _md_header(column: str, symbol: str) -> str:
    """report.md's header of ``column``: its name, with its unit where it has one; the DM test
    against the best other neural model says so (its cells name that model)."""
    if column == "dm_pvalue_vs_best":
        return "dm_pvalue vs best other neural (model)"
    quote = price_unit(symbol)
    unit = {"rmse": quote, "mae": quote, "mse": f"{quote}²", "mape": "%"}.get(column)
    return f"{column} ({unit})" if unit else column


def _cell(record: Mapping, column: str) -> str:
    """A table cell: the value, and for ``dm_pvalue_vs_best`` the model it is against."""
    text = _fmt(record.get(column))
    other = record.get("dm_best_other") if column == "dm_pvalue_vs_best" else None
    return f"{text} ({other})" if other and text != "–" else text


def best_rows(records: Sequence[Mapping], column: str) -> set[int]:
    """Indices of the best value of ``column`` (by ``METRICS`` direction); none if not ranked."""
    info = METRICS.get(column)
    if info is None or info.kind == "significance" or info.higher_is_better is None:
        # a small p-value can mean significantly WORSE: not a "best"; coverage has no direction
        return set()
    vals = [r.get(column) for r in records]
    if info.kind == "trading":  # a model that never trades has drawdown 0: no achievement
        vals = [None if r.get("n_trades") == 0 else v for r, v in zip(records, vals, strict=True)]
    ok = [(i, float(v)) for i, v in enumerate(vals) if v is not None and math.isfinite(float(v))]
    if len(ok) < 2:
        return set()
    best = (max if info.higher_is_better else min)(v for _, v in ok)
    return {i for i, v in ok if v == best}


def table_columns(records: Sequence[Mapping], columns: Iterable[str] | None = None) -> list[str]:
    """The metric columns a table of ``records`` shows: ``columns`` (default: the scoring's table
    columns) that any record holds."""
    cols = list(columns) if columns is not None else scoring_of_records(records).table_columns
    return [c for c in cols if any(c in r for r in records)]


def record_columns(records: Sequence[Mapping], columns: Iterable[str] | None = None) -> list[str]:
    """The fields of ``--format csv|json`` rows: the series, the model and the table's metric
    columns, with the name of the model ``dm_pvalue_vs_best`` was computed against beside it."""
    cols = ["symbol", "timeframe", "model", *table_columns(records, columns)]
    if "dm_pvalue_vs_best" in cols:
        cols.insert(cols.index("dm_pvalue_vs_best") + 1, "dm_best_other")
    return cols


def _groups(records: Sequence[Mapping]) -> dict[tuple[str, str], list[Mapping]]:
    out: dict[tuple[str, str], list[Mapping]] = {}
    for r in records:
        out.setdefault((r["symbol"], r["timeframe"]), []).append(r)
    return out


def _markdown(
    summary: Mapping,
    images: Mapping[tuple[str, str], list[str]],
    folds: Mapping[tuple[str, str], pd.DataFrame] | None = None,
) -> str:
    from cryptocast.evaluate.report_text import (
        calibration_warning,
        column_legend,
        costs_line,
        failed_jobs_section,
        fold_table,
        pooled_line,
        summary_paragraph,
        trading_table,
    )

    lines = ["# Backtest report", ""]
    for key in ("config_hash", "created_utc", "models", "test_start", "test_end"):
        if key in summary:
            lines.append(f"- {key}: `{summary[key]}`")
    if costs := costs_line(summary):
        lines.append(costs)
    if pooled := pooled_line(summary):
        lines.append(pooled)
    lines += ["", *failed_jobs_section(summary)]  # a partial report says so first
    if warning := calibration_warning(summary):
        lines += [f"**warning:** {warning}", ""]
    lines += [
        "Headline metrics at the last horizon step; **bold** = best in column. "
        + _scoring(summary).note,
        "",
    ]
    lines += column_legend(summary["results"])
    if any("crps" in r for r in summary["results"]):
        lines += [
            "Quantile models: crps (from the quantiles) and interval widths are in log-return "
            "units (0.01 ~ 1% of the price); crps_skill > 0 beats rw_ewma, the Gaussian random "
            "walk with EWMA volatility; coverage_80/90 should be near 0.80/0.90.",
            "",
        ]
    groups = _groups(summary["results"])
    for key in sorted(set(groups) | set(images)):
        recs = groups.get(key, [])
        lines += [f"## {key[0]} {key[1]}", ""]
        if recs and _scoring(summary).who_wins:
            lines += [summary_paragraph(key[0], key[1], recs), ""]
        if recs:
            cols = table_columns(recs)
            best = {c: best_rows(recs, c) for c in cols}
            lines.append("| model | " + " | ".join(_md_header(c, key[0]) for c in cols) + " |")
            lines.append("|---|" + "---:|" * len(cols))
            for i, r in enumerate(recs):
                cells = [f"**{_cell(r, c)}**" if i in best[c] else _cell(r, c) for c in cols]
                lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
            lines.append("")
            lines += risk_table(recs)  # quantile models: VaR backtests, FZ0, tail losses, MCS
            lines += confidence_lines(recs)  # volatility: the 90% MCS on QLIKE, SPA vs har
            if trading := trading_table(recs):
                lines += ["Trading simulation after costs, beside buy-and-hold:", "", *trading, ""]
        if folds and key in folds:
            lines += ["Walk-forward folds (forecast origins):", "", *fold_table(folds[key]), ""]
        for name in images.get(key, []):
            lines += [f"![{name}]({name})", ""]
    return "\n".join(lines)


def results_table(
    records: Sequence[Mapping], columns: Iterable[str] | None = None, title=None, compact=False
):
    """A rich Table of the records (one series), best value per column in bold green.

    ``compact`` drops the rules and edge padding for narrow terminals.
    """
    from rich import box
    from rich.table import Table

    recs = list(records)
    cols = table_columns(recs, columns)
    if title is None and recs:
        title = f"{recs[0]['symbol']} {recs[0]['timeframe']}"
        if "rmse" in cols or "mae" in cols:
            title += f": errors in {price_unit(recs[0]['symbol'])}"
    if compact:
        table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    else:
        table = Table(title=title)
    table.add_column("model", no_wrap=True)
    for c in cols:
        table.add_column(SHORT_HEADERS.get(c, c), justify="right", no_wrap=True)
    best = {c: best_rows(recs, c) for c in cols}
    for i, r in enumerate(recs):
        cells = [f"[bold green]{_cell(r, c)}[/]" if i in best[c] else _cell(r, c) for c in cols]
        table.add_row(str(r["model"]), *cells)
    return table


def results_tables(
    records: Sequence[Mapping], columns: Iterable[str] | None = None, compact: bool = False
) -> list:
    """One ``results_table`` per (symbol, timeframe), in first-seen order."""
    return [results_table(recs, columns, compact=compact) for recs in _groups(records).values()]
