"""Report plots for quantile forecasts: fan chart, reliability diagram, PIT histogram.

Only drawn for a series with at least one quantile model (forecast columns ``q<level>``, see
``frames.quantile_column``); point-only reports are unchanged. matplotlib's object API, as in
``report.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import timeframe_delta
from cryptocast.models.distribution import interval_indices

BASELINE = "rw_ewma"
# (coverage %, alpha of the fill); 98% is drawn when the levels hold 0.01 and 0.99
_BANDS = ((98, 0.08), (90, 0.15), (80, 0.25), (50, 0.4))


def _figure(title: str, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    fig.suptitle(title)
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig, axes


def best_quantile_model(records: Sequence[Mapping]) -> str | None:
    """The quantile model with the lowest CRPS other than the rw_ewma baseline (None if none)."""
    ranked = [
        r for r in records if r.get("crps") is not None and np.isfinite(r["crps"])
        and r["model"] != BASELINE
    ]  # fmt: skip
    return min(ranked, key=lambda r: r["crps"])["model"] if ranked else None


def prob_plots(
    part: pd.DataFrame, records: Sequence[Mapping], out_dir: Path, stem: str, days: float
) -> list[str]:
    """Draw the three plots of one series; returns the file names (none for point-only runs)."""
    quant = [r for r in records if r.get("quantile_levels")]
    if not quant:
        return []
    levels = quant[0]["quantile_levels"]
    names = []
    fan_models = [m for m in (best_quantile_model(quant), BASELINE) if m is not None]
    fan_models = [m for m in dict.fromkeys(fan_models) if m in set(part["model"])]
    if fan_models:
        names.append(_fan_chart(part, fan_models, levels, out_dir / f"fan_{stem}.png", days))
    names.append(_reliability(quant, out_dir / f"reliability_{stem}.png", part))
    names.append(_pit(quant, out_dir / f"pit_{stem}.png", part))
    return names


def _fan_chart(part: pd.DataFrame, models: list[str], levels, path: Path, days: float) -> str:
    """Realised close over the 50/80/90(/98)% bands (step 1) of each model, last ``days`` days."""
    fig = fan_figure(part, models, levels, days)
    fig.savefig(path)
    return path.name


def fan_figure(part: pd.DataFrame, models: list[str], levels, days: float):
    """The fan chart's figure: a band for every central interval the levels bound."""
    from cryptocast.evaluate.frames import quantile_column

    symbol, tf = part["symbol"].iloc[0], part["timeframe"].iloc[0]
    one = part[part["step"] == 1].assign(t=lambda d: d["timestamp"] + timeframe_delta(tf))
    one = one[one["t"] >= one["t"].max() - pd.Timedelta(days=days)]
    drawn = [c for c, _ in _BANDS if interval_indices(levels, c) is not None][::-1]
    what = "/".join(map(str, drawn))
    fig, axes = _figure(f"{symbol} {tf}: 1-step {what}% intervals (last {days:g} days)", 1)
    ax = axes[0]
    colors = ("tab:blue", "tab:orange")
    for model, color in zip(models, colors, strict=False):
        m = one[one["model"] == model].sort_values("t")
        for cov, alpha in _BANDS:
            idx = interval_indices(levels, cov)
            if idx is None:
                continue
            lo, hi = (quantile_column(levels[i]) for i in idx)
            label = f"{model} {cov}%" if cov in (90, 98) else None
            ax.fill_between(m["t"], m[lo], m[hi], color=color, alpha=alpha, lw=0, label=label)
        ax.plot(m["t"], m["y_pred"], color=color, lw=0.8, ls="--", label=f"{model} median")
    actual = one.drop_duplicates("t").sort_values("t")
    ax.plot(actual["t"], actual["y_true"], color="black", lw=1.2, label="actual")
    ax.set_ylabel("close")
    ax.legend(fontsize=8, ncol=3)
    return fig


def _series_panel(part: pd.DataFrame, what: str):
    """One titled panel for a whole series: ``(figure, axes)``."""
    symbol, tf = part["symbol"].iloc[0], part["timeframe"].iloc[0]
    fig, axes = _figure(f"{symbol} {tf}: {what}")
    return fig, axes[0]


def _save(fig, ax, path: Path, xlabel: str, ylabel: str) -> str:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    fig.savefig(path)
    return path.name


def _reliability(records: Sequence[Mapping], path: Path, part: pd.DataFrame) -> str:
    """Nominal level vs empirical share of outcomes below the quantile, one line per model."""
    fig, ax = _series_panel(part, "reliability (last step); on the diagonal = calibrated")
    ax.plot([0, 1], [0, 1], color="black", lw=1, ls=":", label="ideal")
    for r in records:
        ax.plot(r["quantile_levels"], r["reliability"], marker="o", ms=3, lw=1, label=r["model"])
    return _save(
        fig, ax, path, "nominal quantile level", "share of outcomes at or below the quantile"
    )


def _pit(records: Sequence[Mapping], path: Path, part: pd.DataFrame) -> str:
    """PIT histogram (density per bin between levels); flat at 1 = calibrated, U = too narrow."""
    fig, ax = _series_panel(part, "PIT histogram (last step); flat at 1 = calibrated")
    k = len(records)
    for i, r in enumerate(records):
        edges = np.asarray(r["pit"]["edges"])
        width = np.diff(edges) / (k + 1)
        ax.bar(edges[:-1] + width * (i + 0.5), r["pit"]["density"], width=width, label=r["model"])
    ax.axhline(1.0, color="black", lw=1, ls=":")
    return _save(fig, ax, path, "PIT (bins between the quantile levels)", "density")


# --- the risk table (evaluate/risk.py's fields) -------------------------------------------------
_VAR_KEYS = (("95_lo", "VaR 95% long"), ("95_hi", "VaR 95% short"), ("99_lo", "VaR 99% long"),
             ("99_hi", "VaR 99% short"))  # fmt: skip
_RISK_NUMBERS = ("coverage_98", "fz0_95_lo", "fz0_99_lo", "pinball_q01", "pinball_q99")
RISK_NOTE = (
    "Value-at-Risk backtests and risk scores of the one-step log return (evaluate/risk.py): cells are the exceedance rate "
    "(p of Kupiec's unconditional coverage / Christoffersen's conditional coverage; p > 0.05 "
    "passes); long = the 5%/1% quantile, short = the 95%/99% one. fz0 = the FZ0 loss of (VaR, ES), "
    "lower is better; pinball_q01/q99 = tail quantile losses; MCS = in the 90% Model Confidence "
    "Set on CRPS (its p-value)."
)


def _num(v) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def risk_table(records: Sequence[Mapping]) -> list[str]:
    """Markdown lines of the risk table of one series' quantile models (none without them)."""
    recs = [r for r in records if r.get("var_backtests") or "mcs_crps_90" in r]
    if not recs:
        return []
    var_keys = [(k, label) for k, label in _VAR_KEYS if any(f"var{k}_rate" in r for r in recs)]
    numbers = [c for c in _RISK_NUMBERS if any(c in r for r in recs)]
    head = ["model", *(label for _, label in var_keys), *numbers, "MCS 90% (p)"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in recs:
        cells = [r["model"]]
        for k, _ in var_keys:
            rate = r.get(f"var{k}_rate")
            ps = f"{_num(r.get(f'var{k}_p_uc'))} / {_num(r.get(f'var{k}_p_cc'))}"
            cells.append("–" if rate is None else f"{_num(rate)} ({ps})")
        cells += [_num(r.get(c)) for c in numbers]
        mcs = r.get("mcs_crps_90")
        cells.append(
            "–" if mcs is None else f"{'yes' if mcs else 'no'} ({_num(r['mcs_pvalue_crps'])})"
        )
        lines.append("| " + " | ".join(cells) + " |")
    return [RISK_NOTE, "", *lines, ""]
