"""Scores of volatility forecasts, and the volatility-targeted buy-and-hold use test.

Inputs are in one unit, annualised volatility as a fraction (``targets.ANNUALISE``): ``y_true``
(n, H) is the realised RV of each step's day, ``y_pred`` (n, H) the forecast. Headline numbers are
those of the last step (h = H), as for prices.

- ``rmse_vol``, ``mae_vol``: on volatility.
- ``qlike``: Patton (2011)'s QLIKE on variances, ``mean(s2/f2 - log(s2/f2) - 1)`` with
  ``s2 = y_true^2`` and ``f2 = y_pred^2``; 0 for a perfect forecast, and (unlike MSE) it ranks
  forecasts the same with a noisy but unbiased proxy of the true variance such as RV.
- ``mz_alpha``, ``mz_beta``, ``mz_r2``: the Mincer-Zarnowitz regression ``s2 = a + b f2`` (OLS on
  variances; an unbiased forecast has a = 0, b = 1).
- ``bias_ratio``: ``mean(s2) / mean(f2)``, mean realised over mean forecast variance; 1 for an
  unbiased forecast, > 1 when the forecasts are too low (as ``exp`` of a log forecast is).
- ``skill_qlike``: ``1 - QLIKE / QLIKE(har)``; ``skill_qlike_persistence``: the same against
  ``vol_persistence``'s forecast (the origin's RV, always available). > 0 beats the baseline.
- ``dm_*_vs_har`` / ``dm_*_vs_vol_persistence``: Diebold-Mariano (HLN) on the QLIKE losses of
  the same points; a negative statistic means this model's QLIKE is smaller.
- ``vt_*``: volatility-targeted buy-and-hold, step-1 forecasts. At the close of day t the
  position for day t+1 is ``min(max_position, vol_target / forecast)``, long only, costs
  ``fee + slippage`` per unit of position change (``trading.simulate_positions``). Reported:
  the strategy's realised annualised volatility ``vt_annual_vol`` against ``vol_target``,
  ``vt_vol_error`` = RMSE of its 30-day rolling realised volatility around the target, Sharpe,
  max drawdown, total return and mean position.
- ``mcs_qlike_90``, ``mcs_pvalue_qlike``, ``spa_p_vs_har``: the 90% Model Confidence Set over
  the series' models and Hansen's SPA test against ``har``, on the same QLIKE losses
  (``evaluate/vol_confidence.py``).
"""

from __future__ import annotations

import math

import numpy as np

from cryptocast.evaluate.metrics import as_2d

ROLLING_DAYS = 30


def qlike_losses(y_true, y_pred) -> np.ndarray:
    """Per-point QLIKE ``s2/f2 - log(s2/f2) - 1`` of volatilities (squared here); NaN if invalid."""
    s2 = np.asarray(y_true, dtype=np.float64) ** 2
    f2 = np.asarray(y_pred, dtype=np.float64) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = s2 / f2
        out = ratio - np.log(ratio) - 1.0
    return np.where(np.isfinite(out) & (s2 > 0) & (f2 > 0), out, np.nan)


def mincer_zarnowitz(true_var, pred_var) -> tuple[float, float, float]:
    """(alpha, beta, R^2) of OLS ``true_var = alpha + beta * pred_var``; NaNs if degenerate."""
    y = np.asarray(true_var, dtype=np.float64)
    x = np.asarray(pred_var, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    nan = float("nan")
    if x.size < 3 or np.ptp(x) == 0:
        return nan, nan, nan
    beta, alpha = np.polyfit(x, y, 1)
    resid = y - (alpha + beta * x)
    tss = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(resid**2)) / tss if tss > 0 else nan
    return float(alpha), float(beta), r2


def bias_ratio(true_var, pred_var) -> float:
    """Mean realised over mean forecast variance on the points where both are finite; NaN if none."""
    y = np.asarray(true_var, dtype=np.float64)
    x = np.asarray(pred_var, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any() or np.mean(x[ok]) <= 0:
        return float("nan")
    return float(np.mean(y[ok]) / np.mean(x[ok]))


def vol_metrics(y_true, y_pred) -> dict:
    """RMSE/MAE of volatility, QLIKE, Mincer-Zarnowitz and the bias ratio at step H, QLIKE and
    the bias ratio per step."""
    yt, yp, _ = as_2d(y_true, y_pred, np.zeros(np.shape(y_true)[0]))
    per_step = []
    for h in range(yt.shape[1]):
        ok = np.isfinite(yt[:, h]) & np.isfinite(yp[:, h])
        t, p = yt[ok, h], yp[ok, h]
        e = t - p
        a, b, r2 = mincer_zarnowitz(t**2, p**2)
        per_step.append(
            {
                "rmse_vol": float(np.sqrt(np.mean(e**2))) if e.size else float("nan"),
                "mae_vol": float(np.mean(np.abs(e))) if e.size else float("nan"),
                "qlike": float(np.nanmean(qlike_losses(t, p))) if e.size else float("nan"),
                "mz_alpha": a,
                "mz_beta": b,
                "mz_r2": r2,
                "bias_ratio": bias_ratio(t**2, p**2),
                "n": int(e.size),
            }
        )
    out = dict(per_step[-1])
    out["horizon"] = yt.shape[1]
    out["per_step"] = {
        k: [s[k] for s in per_step] for k in ("rmse_vol", "qlike", "bias_ratio", "n")
    }
    return out


def vol_target_sim(
    last_close,
    next_close,
    forecast_vol,
    timeframe: str,
    vol_target: float,
    max_position: float,
    fee_bps: float,
    slippage_bps: float,
) -> tuple[dict, np.ndarray]:
    """The volatility-targeted buy-and-hold (see the module docstring): (``vt_*`` record, equity)."""
    from cryptocast.config.timeframes import periods_per_year
    from cryptocast.evaluate.trading import simulate_positions

    f = np.asarray(forecast_vol, dtype=np.float64)
    pos = np.where(np.isfinite(f) & (f > 0), np.minimum(max_position, vol_target / f), 0.0)
    equity, returns, stats = simulate_positions(
        last_close, next_close, pos, timeframe, fee_bps, slippage_bps
    )
    ppy = periods_per_year(timeframe)
    roll = np.array(
        [
            np.std(returns[i - ROLLING_DAYS : i], ddof=1)
            for i in range(ROLLING_DAYS, len(returns) + 1)
        ]
    ) * math.sqrt(ppy)
    rec = {
        "vt_annual_vol": stats.annual_vol,
        "vt_vol_error": float(np.sqrt(np.mean((roll - vol_target) ** 2))) if roll.size else None,
        "vt_sharpe": stats.sharpe,
        "vt_max_drawdown": stats.max_drawdown,
        "vt_total_return": stats.total_return,
        "vt_mean_position": float(np.mean(pos)),
        "vt_turnover": stats.turnover,
    }
    return rec, equity


def score_vol_group(results: list, bt) -> tuple[list[dict], dict[str, np.ndarray], np.ndarray]:
    """Every model of one series: records, volatility-targeting equity curves, and the mask of
    origins those curves cover (those with a next close).

    ``results`` are ``JobResult``s of one (symbol, timeframe) on the same origins.
    """
    from cryptocast.evaluate.significance import dm_from_losses

    preds = {r.model: r.y_pred for r in results}
    first = results[0]
    y_true = first.y_true
    H = y_true.shape[1]
    col = H - 1
    losses = {m: qlike_losses(y_true[:, col], p[:, col]) for m, p in preds.items()}
    # vol_persistence's own forecasts when it ran (so it scores exactly 0 against itself), else
    # the origin's RV: the same forecast up to the float32 round trip through the scaler
    pers = (
        preds["vol_persistence"][:, col] if "vol_persistence" in preds else first.aux["rv_origin"]
    )
    pers_loss = qlike_losses(y_true[:, col], pers)
    ok = np.isfinite(first.aux["next_close"]) & np.isfinite(first.last_close)
    records, curves = [], {}
    for r in results:
        rec: dict = {"symbol": r.symbol, "timeframe": r.timeframe, "model": r.model}
        rec.update(vol_metrics(y_true, r.y_pred))
        q = rec["qlike"]
        mine = losses[r.model]
        for ref, ref_loss in (("har", losses.get("har")), ("vol_persistence", pers_loss)):
            stat = p = skill = float("nan")
            if ref_loss is not None:
                ref_q = float(np.nanmean(ref_loss))
                skill = 1.0 - q / ref_q if ref_q > 0 else float("nan")
                stat, p = dm_from_losses(mine, ref_loss, h=H)
            suffix = "" if ref == "har" else "_persistence"
            rec[f"skill_qlike{suffix}"] = skill
            rec[f"dm_stat_vs_{ref}"], rec[f"dm_pvalue_vs_{ref}"] = stat, p
        vt, equity = vol_target_sim(
            r.last_close[ok], r.aux["next_close"][ok], r.y_pred[ok, 0], r.timeframe,
            bt.vol_target, bt.max_position, bt.fee_bps, bt.slippage_bps,
        )  # fmt: skip
        rec.update(vt)
        records.append(rec)
        curves[r.model] = equity
    from cryptocast.evaluate.vol_confidence import add_vol_confidence

    # the 90% MCS over the series' models and SPA vs har, on the losses the DM tests use
    add_vol_confidence({rec["model"]: rec for rec in records}, losses)
    return records, curves, ok
