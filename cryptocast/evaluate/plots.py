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
_MARKERS = ["o", "D", "v", "P", "X", "*"]
_COLORS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:pink", "tab:olive"]
# The naive baselines: persistence wide and pale underneath, drift dashed on top of it, so drift
# stays visible where the two forecasts coincide (they differ by one candle's mean move).
_BASELINE_STYLES = {
    "persistence": dict(color="0.6", ls="-", lw=3.0, marker="s", zorder=2),
    "drift": dict(color="tab:brown", ls="--", lw=1.2, marker="^", zorder=3),
}


def model_styles(models) -> dict[str, dict]:
    """Line style per model, in drawing order (baselines first): no two models share colour,
    line style and marker, and the neural models are drawn above the baselines."""
    models = list(dict.fromkeys(models))
    base = [m for m in _BASELINE_STYLES if m in models]
    rest = [m for m in models if m not in _BASELINE_STYLES]
    styles = {m: dict(_BASELINE_STYLES[m]) for m in base}
    for i, m in enumerate(rest):
        styles[m] = dict(
            color=_COLORS[i % len(_COLORS)], ls=_STYLES[i % len(_STYLES)],
            lw=1.0, marker=_MARKERS[i % len(_MARKERS)], zorder=4,
        )  # fmt: skip
    return styles


def price_unit(symbol: str, unit: str = "close") -> str:
    """What a price error is measured in: the quote currency (``BTC/USDT`` -> ``USDT``); other
    targets keep their own unit (``annualised volatility``)."""
    if unit != "close":
        return unit
    return symbol.split("/", 1)[1].split(":", 1)[0] if "/" in symbol else "price"


def _pad_dates(ax, first, last, timeframe: str) -> None:
    """x axis over [first, last] plus one candle each side: one fold or one origin would leave
    matplotlib a zero-width date range, which it widens to years and cannot tick (a UserWarning
    on stderr, mailed by cron)."""
    pad = timeframe_delta(timeframe)
    ax.set_xlim(pd.Timestamp(first) - pad, pd.Timestamp(last) + pad)


def _span(t: pd.Series, days: float, timeframe: str) -> str:
    """``last 90 of 181 days`` or, when the test period is shorter, its real span (the candles
    forecast, first to last, counted inclusively)."""
    first, last = t.min(), t.max()
    total = (last - first + timeframe_delta(timeframe)) / pd.Timedelta(days=1)
    if total > days:
        return f"last {days:g} of {total:.0f} days"
    return f"whole test period: {first:%Y-%m-%d} .. {last:%Y-%m-%d} ({total:.3g} days)"


def actual_vs_pred_figure(part: pd.DataFrame, days: float, unit: str = "close"):
    """Top: the last 30 candles, actual vs every model's step-1 forecast (markers, so the lines
    can be told apart). Bottom, over the last ``days`` days (or the whole shorter test period):
    each model's cumulative squared-error gain over persistence (Welch & Goyal 2008), rising
    where the model beats "tomorrow = today" -- where raw errors of near-identical forecasts would
    lie on top of each other. Without persistence, the raw errors (forecast - actual)."""
    from matplotlib.figure import Figure

    symbol, tf = part["symbol"].iloc[0], part["timeframe"].iloc[0]
    one = part[part["step"] == 1]
    one = one.assign(t=one["timestamp"] + timeframe_delta(tf))
    span = _span(one["t"], days, tf)
    one = one[one["t"] >= one["t"].max() - pd.Timedelta(days=days)]
    zoom_from = np.sort(one["t"].unique())[-min(30, one["t"].nunique())]
    fig = Figure(figsize=(10, 7), dpi=100, layout="constrained")
    top, bottom = fig.subplots(2, 1)
    top.set_title(f"{symbol} {tf}: actual vs 1-step forecast, last 30 candles")
    actual = one.drop_duplicates("t").sort_values("t")
    zoom = actual[actual["t"] >= zoom_from]
    top.plot(zoom["t"], zoom["y_true"], color="black", lw=2, label="actual", zorder=5)
    bottom.axhline(0, color="black", lw=1)
    by_model = {m: g.sort_values("t") for m, g in one.groupby("model", sort=True)}
    styles = model_styles(by_model)
    ref = by_model.get("persistence")
    if ref is not None and not all(
        np.array_equal(m["t"].to_numpy(), ref["t"].to_numpy()) for m in by_model.values()
    ):
        ref = None  # the gain needs every model on persistence's origins
    measure = price_unit(symbol, unit)
    for model, style in styles.items():
        m = by_model[model]
        z = m[m["t"] >= zoom_from]
        top.plot(z["t"], z["y_pred"], label=model, ms=3, **style)
        err2 = (m["y_pred"] - m["y_true"]).to_numpy() ** 2
        if ref is not None:
            gain = np.nancumsum((ref["y_pred"] - ref["y_true"]).to_numpy() ** 2 - err2)
        else:
            gain = (m["y_pred"] - m["y_true"]).to_numpy()
        every = max(1, len(m) // 15)  # a few markers: each line is identifiable in grey print
        bottom.plot(m["t"], gain, label=model, ms=3, markevery=every, **style)
    if ref is not None:
        bottom.set_title(f"cumulative squared-error gain over persistence, {span}", fontsize=11)
        bottom.set_ylabel(f"SE(persistence) - SE(model),\nsummed ({measure}²); rising = better")
    else:
        bottom.set_title(f"forecast error (forecast - actual), {span}", fontsize=11)
        bottom.set_ylabel(f"error ({measure})")
    top.set_ylabel(unit if unit != "close" else f"close ({measure})")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        _pad_dates(ax, (zoom if ax is top else one)["t"].min(), one["t"].max(), tf)
    top.legend(fontsize=8, ncol=4)
    return fig


def plot_actual_vs_pred(part: pd.DataFrame, path: Path, days: float, unit: str = "close") -> str:
    """``actual_vs_pred_figure`` saved as ``path``."""
    return _save(actual_vs_pred_figure(part, days, unit), path)


def fold_errors_figure(part: pd.DataFrame, unit: str = "close"):
    """RMSE at the last horizon step per fold, one line per model; with fewer than 3 folds,
    markers only (two points joined by a line read as a trend)."""
    symbol, tf = part["symbol"].iloc[0], part["timeframe"].iloc[0]
    last = part[part["step"] == part["step"].max()]
    err = (last["y_true"] - last["y_pred"]) ** 2
    rmse = np.sqrt(err.groupby([last["model"], last["fold"]]).mean()).unstack("model")
    starts = last.groupby("fold")["timestamp"].min()  # each fold labelled by its first origin
    fig, ax = _figure(f"{symbol} {tf}: RMSE per fold (step {int(part['step'].max())})")
    few = len(rmse.index) < 3
    for model, style in model_styles(rmse.columns).items():
        if few:
            style.update(ls="none", ms=8)
        else:
            style.setdefault("ms", 4)
        ax.plot(starts.loc[rmse.index], rmse[model], label=model, **style)
    _pad_dates(ax, starts.min(), starts.max(), tf)
    ax.set_xlabel("fold start (first forecast origin)")
    ax.set_ylabel(f"RMSE ({price_unit(symbol, unit)})")
    ax.legend(fontsize=8, ncol=4)
    return fig


def plot_fold_errors(part: pd.DataFrame, path: Path, unit: str = "close") -> str:
    """``fold_errors_figure`` saved as ``path``."""
    return _save(fold_errors_figure(part, unit), path)


def plot_equity(eq: pd.DataFrame, path: Path) -> str:
    """Equity curves of every model's strategy against buy-and-hold (dashed black)."""
    symbol, tf = eq["symbol"].iloc[0], eq["timeframe"].iloc[0]
    fig, ax = _figure(f"{symbol} {tf}: equity (start 1.0, after costs)")
    models = [m for m in sorted(eq["model"].unique()) if m != BUY_HOLD]
    for model, style in model_styles(models).items():
        m = eq[eq["model"] == model]
        every = max(1, len(m) // 15)
        ax.plot(m["timestamp"], m["equity"], label=model, ms=3, markevery=every, **style)
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
