"""Report plots (PNG): forecasts vs actual with their errors, RMSE per fold by date, equity.

matplotlib's object API (Figure, no pyplot): no global state, no GUI backend, safe in workers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import timeframe_delta

BUY_HOLD = "buy_and_hold"  # the equity rows' model name for buy-and-hold (report.BUY_HOLD)


def _figure(title: str):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig, ax


def _dates(ax) -> None:
    """Compact date ticks that do not run into each other."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _save(fig, path: Path) -> str:
    for ax in fig.axes:
        _dates(ax)
    fig.savefig(path)
    return path.name


_STYLES = ["-", "--", "-.", ":"]


def plot_actual_vs_pred(part: pd.DataFrame, path: Path, days: float, unit: str = "close") -> str:
    """Top: the last 30 candles, actual vs every model's step-1 forecast (markers, so the lines
    can be told apart). Bottom: forecast error (forecast - actual) over the last ``days`` days,
    where the models differ visibly even when their price lines overlap."""
    from matplotlib.figure import Figure

    symbol, tf = part["symbol"].iloc[0], part["timeframe"].iloc[0]
    one = part[part["step"] == 1]
    one = one.assign(t=one["timestamp"] + timeframe_delta(tf))
    one = one[one["t"] >= one["t"].max() - pd.Timedelta(days=days)]
    zoom_from = np.sort(one["t"].unique())[-min(30, one["t"].nunique())]
    fig = Figure(figsize=(10, 7), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1)
    top.set_title(f"{symbol} {tf}: actual vs 1-step forecast, last 30 candles")
    bottom.set_title(f"forecast error (forecast - actual), last {days:g} days")
    actual = one.drop_duplicates("t").sort_values("t")
    zoom = actual[actual["t"] >= zoom_from]
    top.plot(zoom["t"], zoom["y_true"], color="black", lw=2, label="actual")
    bottom.axhline(0, color="black", lw=1)
    for i, (model, m) in enumerate(one.groupby("model", sort=True)):
        m = m.sort_values("t")
        style = dict(ls=_STYLES[i % len(_STYLES)], lw=1, marker="o", ms=2.5)
        z = m[m["t"] >= zoom_from]
        top.plot(z["t"], z["y_pred"], label=model, **style)
        bottom.plot(m["t"], m["y_pred"] - m["y_true"], label=model, ls=style["ls"], lw=0.9)
    top.set_ylabel(unit)
    bottom.set_ylabel("error (price)" if unit == "close" else f"error ({unit})")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    top.legend(fontsize=8, ncol=4)
    return _save(fig, path)


def plot_fold_errors(part: pd.DataFrame, path: Path, unit: str = "close") -> str:
    """RMSE at the last horizon step per fold, one line per model."""
    symbol, tf = part["symbol"].iloc[0], part["timeframe"].iloc[0]
    last = part[part["step"] == part["step"].max()]
    err = (last["y_true"] - last["y_pred"]) ** 2
    rmse = np.sqrt(err.groupby([last["model"], last["fold"]]).mean()).unstack("model")
    starts = last.groupby("fold")["timestamp"].min()  # each fold labelled by its first origin
    fig, ax = _figure(f"{symbol} {tf}: RMSE per fold (step {int(part['step'].max())})")
    for i, model in enumerate(rmse.columns):
        ls = _STYLES[i % len(_STYLES)]
        ax.plot(starts.loc[rmse.index], rmse[model], marker="o", ms=3, lw=1, ls=ls, label=model)
    ax.set_xlabel("fold start (first forecast origin)")
    ax.set_ylabel("RMSE (price)" if unit == "close" else f"RMSE ({unit})")
    ax.legend(fontsize=8, ncol=4)
    return _save(fig, path)


def plot_equity(eq: pd.DataFrame, path: Path) -> str:
    """Equity curves of every model's strategy against buy-and-hold (dashed black)."""
    symbol, tf = eq["symbol"].iloc[0], eq["timeframe"].iloc[0]
    fig, ax = _figure(f"{symbol} {tf}: equity (start 1.0, after costs)")
    models = [m for m in sorted(eq["model"].unique()) if m != BUY_HOLD]
    for i, model in enumerate(models):
        m = eq[eq["model"] == model]
        ax.plot(m["timestamp"], m["equity"], label=model, lw=1, ls=_STYLES[i % len(_STYLES)])
    bh = eq[eq["model"] == BUY_HOLD]
    if len(bh):  # drawn last, wide and translucent: an always-long model (drift) cannot hide it
        ref = bh["equity"].to_numpy()
        same = [
            m for m in models
            if len(cur := eq.loc[eq["model"] == m, "equity"].to_numpy()) == len(ref)
            and np.allclose(cur, ref, rtol=1e-3)
        ]  # fmt: skip
        label = "buy and hold" + (f" (= {', '.join(same)}: always long)" if same else "")
        ax.plot(bh["timestamp"], ref, color="black", lw=3, alpha=0.35, zorder=10, label=label)
    ax.set_ylabel("equity")
    ax.legend(fontsize=8, ncol=4)
    return _save(fig, path)
