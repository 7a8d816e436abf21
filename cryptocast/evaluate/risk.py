"""Risk scores of quantile forecasts: VaR backtests, the expected-shortfall loss, tail losses, MCS.

Everything is on the one-step log return ``log(close_{t+1} / close_t)`` (step 1: the
one-period risk number; h-step forecasts made every candle overlap, so their exceedances are
dependent by construction and the independence test would reject any model). Which quantile is
the VaR of which position:

- ``lo`` (a long position's loss): VaR at 95% / 99% is the 5% / 1% quantile of the return; an
  exceedance is a return below it;
- ``hi`` (a short position's loss): VaR at 95% / 99% is the 95% / 99% quantile; an exceedance is
  a return above it.

Each test runs only where the model predicts that level (``model.quantiles`` with 0.01 and 0.99
for the 99% tests). Scores per (VaR level, tail) key such as ``95_lo``:

- Kupiec (1995) unconditional coverage: ``LR_uc = -2 log[(1-p)^(n-x) p^x / ((1-x/n)^(n-x)
  (x/n)^x)]`` ~ chi2(1), with x exceedances in n origins and p = 1 - VaR level;
- Christoffersen (1998) independence: ``LR_ind`` from the first-order Markov chain of the
  exceedance indicators (transition counts n00, n01, n10, n11) ~ chi2(1), and conditional
  coverage ``LR_cc = LR_uc + LR_ind`` ~ chi2(2). A p-value above 0.05 passes;
- FZ0 loss (Patton, Ziegel & Chen 2019, "Dynamic semiparametric models for expected shortfall
  (and Value-at-Risk)", J. Econometrics 211; the 0-homogeneous member of the Fissler-Ziegel 2016
  class): ``L = -1{y <= v}(v - y) / (alpha e) + v / e + log(-e) - 1`` for VaR v, ES e < 0 at tail
  probability alpha, lower is better (the upper tail is scored on -y). ES, which no model
  predicts directly, is ``(1/alpha) * integral_0^alpha q_u du`` with q_u piecewise constant on the
  predicted levels at or below alpha, each standing for the u up to the midpoint to its neighbour
  (so with levels 0.01 and 0.05, ES_5% = 0.6 q_0.01 + 0.4 q_0.05; with only 0.01 below the 99% VaR,
  ES_1% = q_0.01, which understates the shortfall: compare models on the same levels);
- ``pinball_q01`` ... ``pinball_q99``: the mean pinball loss at the tail levels 1, 5, 95, 99%.

And per series, over its quantile models: the Model Confidence Set at 90% on the per-origin CRPS
at the last step (the losses the DM test uses; ``evaluate/confidence.py``): ``mcs_crps_90`` (in the
set) and ``mcs_pvalue_crps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: VaR confidence levels (%) -> tail probability; tails: lo = the p quantile, hi = the 1-p one
VAR_LEVELS = {95: 0.05, 99: 0.01}
TAIL_LEVELS = (0.01, 0.05, 0.95, 0.99)
MCS_SIZE = 0.10


def _chi2_p(lr: float, df: int) -> float:
    from scipy.stats import chi2

    return float(chi2.sf(lr, df)) if np.isfinite(lr) else math.nan


def _loglik(n_no: float, n_yes: float, p: float) -> float:
    """Bernoulli log-likelihood ``n_no log(1-p) + n_yes log p`` with 0 log 0 = 0."""
    from scipy.special import xlogy

    return float(xlogy(n_no, 1.0 - p) + xlogy(n_yes, p))


def kupiec(hits: np.ndarray, p: float) -> tuple[float, float]:
    """Kupiec's unconditional-coverage LR statistic and its chi2(1) p-value for exceedance
    indicators ``hits`` (n,) against the nominal exceedance probability ``p``."""
    hits = np.asarray(hits, dtype=bool)
    n, x = hits.size, int(hits.sum())
    if n == 0:
        return math.nan, math.nan
    lr = -2.0 * (_loglik(n - x, x, p) - _loglik(n - x, x, x / n))
    return lr, _chi2_p(max(lr, 0.0), 1)


def christoffersen(hits: np.ndarray, p: float) -> dict[str, float]:
    """Christoffersen's independence and conditional-coverage tests of ``hits`` (n,).

    Returns:
        ``lr_ind``, ``p_ind`` (chi2(1)), ``lr_cc = LR_uc + LR_ind``, ``p_cc`` (chi2(2)) and the
        transition counts ``n00, n01, n10, n11`` (n_ij: a state i followed by state j).
    """
    h = np.asarray(hits, dtype=bool).astype(int)
    prev, nxt = h[:-1], h[1:]
    n = {f"n{i}{j}": int(np.sum((prev == i) & (nxt == j))) for i in (0, 1) for j in (0, 1)}
    n00, n01, n10, n11 = n["n00"], n["n01"], n["n10"], n["n11"]
    if n00 + n01 + n10 + n11 == 0:
        return {"lr_ind": math.nan, "p_ind": math.nan, "lr_cc": math.nan, "p_cc": math.nan, **n}
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    restricted = _loglik(n00 + n10, n01 + n11, pi)
    markov = _loglik(n00, n01, pi01) + _loglik(n10, n11, pi11)
    lr_ind = max(-2.0 * (restricted - markov), 0.0)
    lr_cc = kupiec(h, p)[0] + lr_ind
    return {
        "lr_ind": lr_ind, "p_ind": _chi2_p(lr_ind, 1), "lr_cc": lr_cc, "p_cc": _chi2_p(lr_cc, 2), **n,
    }  # fmt: skip


def var_backtest(hits: np.ndarray, p: float) -> dict[str, float]:
    """Kupiec and Christoffersen on one exceedance series: counts, LR statistics, p-values."""
    hits = np.asarray(hits, dtype=bool)
    lr_uc, p_uc = kupiec(hits, p)
    out = {"n": int(hits.size), "exceedances": int(hits.sum()), "expected_rate": p}
    out["rate"] = float(hits.mean()) if hits.size else math.nan
    return {**out, "lr_uc": lr_uc, "p_uc": p_uc, **christoffersen(hits, p)}


def expected_shortfall(q: np.ndarray, levels: Sequence[float], alpha: float) -> np.ndarray:
    """Lower-tail ES at tail probability ``alpha`` (n,) from quantiles ``q`` (n, Q) at ``levels``:
    the piecewise-constant average of the quantiles at levels <= alpha (module docstring)."""
    t = np.asarray(levels, dtype=np.float64)
    below = np.flatnonzero(t <= alpha + 1e-12)
    edges = np.concatenate([[0.0], (t[below][1:] + t[below][:-1]) / 2.0, [alpha]])
    w = np.diff(edges) / alpha
    return np.asarray(q, dtype=np.float64)[:, below] @ w


def fz0_loss(y: np.ndarray, var: np.ndarray, es: np.ndarray, alpha: float) -> np.ndarray:
    """Per-origin FZ0 loss of a lower-tail (VaR, ES) forecast at outcomes ``y``; NaN where ES is
    not negative (the loss is defined for e < 0 only)."""
    y, v, e = (np.asarray(a, dtype=np.float64) for a in (y, var, es))
    out = np.full(y.shape, np.nan)
    ok = e < 0
    hit = (y[ok] <= v[ok]).astype(float)
    out[ok] = -hit * (v[ok] - y[ok]) / (alpha * e[ok]) + v[ok] / e[ok] + np.log(-e[ok]) - 1.0
    return out


def _index(levels: Sequence[float], level: float) -> int | None:
    rounded = [round(float(t), 6) for t in levels]
    return rounded.index(round(level, 6)) if round(level, 6) in rounded else None


def risk_scores(y: np.ndarray, q: np.ndarray, levels: Sequence[float]) -> dict:
    """Risk scores of one model's one-step return quantiles ``q`` (n, Q) at outcomes ``y`` (n,).

    Returns flat fields for tables (``var95_lo_p_uc``, ``var95_lo_p_ind``, ``var95_lo_p_cc``,
    ``var95_lo_rate``, ... ``fz0_95_lo`` ..., ``pinball_q01`` ...) and ``var_backtests``: the full
    ``var_backtest`` of each (level, tail) the model predicts. Origins must be consecutive: the
    independence test reads the exceedances in order.
    """
    from cryptocast.evaluate.probabilistic import pinball_matrix

    y, q = np.asarray(y, dtype=np.float64), np.asarray(q, dtype=np.float64)
    out: dict = {"var_backtests": {}}
    for conf, p in VAR_LEVELS.items():
        for tail, level in (("lo", p), ("hi", 1.0 - p)):
            i = _index(levels, level)
            if i is None:
                continue
            hits = y < q[:, i] if tail == "lo" else y > q[:, i]
            bt = var_backtest(hits, p)
            key = f"{conf}_{tail}"
            out["var_backtests"][key] = bt
            for field in ("rate", "p_uc", "p_ind", "p_cc"):
                out[f"var{key}_{field}"] = bt[field]
            if tail == "lo":
                es = expected_shortfall(q, levels, p)
                loss = fz0_loss(y, q[:, i], es, p)
            else:  # the upper tail of y is the lower tail of -y, at the mirrored levels
                mirrored = [1.0 - t for t in levels][::-1]
                es = expected_shortfall(-q[:, ::-1], mirrored, p)
                loss = fz0_loss(-y, -q[:, i], es, p)
            out[f"fz0_{key}"] = float(np.nanmean(loss)) if np.isfinite(loss).any() else math.nan
    for level in TAIL_LEVELS:
        i = _index(levels, level)
        if i is not None and len(y):
            out[f"pinball_q{round(level * 100):02d}"] = float(
                pinball_matrix(q[:, [i]], y, [level]).mean()
            )
    return out


def add_risk_scores(recs: dict[str, dict], jobs: Sequence) -> None:
    """Risk scores of every quantile job of one series into its record (in place), and the 90%
    Model Confidence Set on CRPS over those jobs (``mcs_crps_90``, ``mcs_pvalue_crps``)."""
    from cryptocast.evaluate.confidence import model_confidence_set
    from cryptocast.evaluate.probabilistic import _log_space, per_origin_losses

    prob = [j for j in jobs if j.y_quantiles is not None]
    crps = {}
    for j in prob:
        zy, zq = _log_space(j.y_true, j.y_quantiles, j.last_close)
        ok = np.isfinite(zy[:, 0]) & np.isfinite(zq[:, 0]).all(axis=1)
        recs[j.model].update(risk_scores(zy[ok, 0], zq[ok, 0], j.quantile_levels))
        crps[j.model] = per_origin_losses(j.y_true, j.y_quantiles, j.last_close, j.quantile_levels)[
            0
        ]
    if len(crps) < 2 or len({len(v) for v in crps.values()}) != 1:
        return  # one model, or models forecast on different origins: no common loss table
    mcs = model_confidence_set(pd.DataFrame(crps), size=MCS_SIZE)
    for model, row in mcs.iterrows():
        recs[model]["mcs_crps_90"] = bool(row["included"])
        recs[model]["mcs_pvalue_crps"] = float(row["pvalue"])
