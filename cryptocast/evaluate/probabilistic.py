"""Scores of quantile forecasts: pinball, CRPS, interval coverage/width/score, PIT, reliability.

Inputs are what a backtest produces for one (symbol, timeframe, model) with a quantile forecast:
``y_true`` (n, H) realised prices, ``quantiles`` (n, H, Q) predicted price quantiles at ``levels``
(Q,), ``last_close`` (n,). Every score is computed on log returns relative to the origin close,
``log(price / last_close)``, so numbers compare across coins and years (a CRPS of 0.02 is about
2% of the price); coverage and PIT do not depend on that choice. Headline numbers are those of
the last step h = H, as for the point metrics.

References: Koenker & Bassett (1978) for the pinball loss; Gneiting & Raftery (2007), "Strictly
proper scoring rules", for CRPS = 2 * integral over tau of the pinball loss (eq. 18 there),
the interval score (sec. 6.2, "Winkler score") and the Gaussian CRPS closed form (eq. 21).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cryptocast.models.distribution import INTERVALS, interval_indices

#: score names this module adds to a backtest record (``metrics.METRICS`` lists them too)
PROB_METRICS = (
    "pinball", "crps", "crps_skill", "coverage_50", "coverage_80", "coverage_90", "coverage_98",
    "width_50", "width_80", "width_90", "width_98", "interval_score_80", "interval_score_90",
    "interval_score_98", "dm_pvalue_crps_vs_rw_ewma", "dm_pvalue_pinball_vs_rw_ewma",
)  # fmt: skip


def pinball_matrix(q: np.ndarray, y: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Pinball loss per row and level (n, Q) of quantiles ``q`` (n, Q) at outcomes ``y`` (n,)."""
    tau = np.asarray(levels, dtype=np.float64)[None, :]
    u = np.asarray(y, dtype=np.float64)[:, None] - np.asarray(q, dtype=np.float64)
    return np.maximum(tau * u, (tau - 1.0) * u)


def crps_weights(levels: Sequence[float]) -> np.ndarray:
    """Quadrature weights (Q,) summing to 1: each level stands for the tau between the midpoints
    to its neighbours, the outermost ones for the tails down to 0 and up to 1."""
    t = np.asarray(levels, dtype=np.float64)
    edges = np.concatenate([[0.0], (t[1:] + t[:-1]) / 2.0, [1.0]])
    return np.diff(edges)


def crps_from_quantiles(q: np.ndarray, y: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """CRPS per row (n,) approximated from Q quantiles: ``2 * sum_i w_i * pinball_i``.

    Exact in the limit of a dense grid of levels (CRPS = 2 * integral_0^1 QS_tau dtau).
    """
    return 2.0 * pinball_matrix(q, y, levels) @ crps_weights(levels)


def gaussian_crps(mu, sigma, y) -> np.ndarray:
    """Closed-form CRPS of N(mu, sigma^2) at ``y``: the independent check of the approximation."""
    from scipy.stats import norm

    z = (np.asarray(y, dtype=np.float64) - mu) / sigma
    return sigma * (z * (2.0 * norm.cdf(z) - 1.0) + 2.0 * norm.pdf(z) - 1.0 / math.sqrt(math.pi))


def interval_score(lo: np.ndarray, hi: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Interval (Winkler) score per row of the central (1 - alpha) interval [lo, hi]: its width
    plus 2/alpha times the distance by which ``y`` falls outside it. Lower is better."""
    below = np.maximum(lo - y, 0.0)
    above = np.maximum(y - hi, 0.0)
    return (hi - lo) + (2.0 / alpha) * (below + above)


def reliability(q: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Empirical share of outcomes at or below each quantile (Q,): equals the level if calibrated."""
    return np.mean(np.asarray(y)[:, None] <= np.asarray(q), axis=0)


def pit_histogram(q: np.ndarray, y: np.ndarray, levels: Sequence[float]) -> dict[str, list]:
    """PIT histogram on the bins the levels define: [0, t1), [t1, t2), ..., [tQ, 1].

    ``density`` is the share of outcomes in each bin divided by its width: 1 everywhere for a
    calibrated forecast; a U shape means intervals too narrow, a hump too wide.
    """
    t = np.asarray(levels, dtype=np.float64)
    below = np.asarray(y)[:, None] <= np.asarray(q)  # (n, Q): y at or below q_i
    counts = np.bincount(below.shape[1] - below.sum(axis=1), minlength=t.size + 1)
    edges = np.concatenate([[0.0], t, [1.0]])
    share = counts / max(len(y), 1)
    return {"edges": edges.tolist(), "density": (share / np.diff(edges)).tolist()}


def _log_space(y_true, quantiles, last_close) -> tuple[np.ndarray, np.ndarray]:
    lc = np.asarray(last_close, dtype=np.float64).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        zy = np.log(np.asarray(y_true, dtype=np.float64).reshape(len(lc), -1) / lc[:, None])
        zq = np.log(np.asarray(quantiles, dtype=np.float64) / lc[:, None, None])
    return zy, zq


def per_origin_losses(y_true, quantiles, last_close, levels, step: int | None = None):
    """``(crps (n,), pinball (n,))`` at step ``step`` (1-based, default H); NaN where unrealised.

    The loss series the Diebold-Mariano test compares between two models.
    """
    zy, zq = _log_space(y_true, quantiles, last_close)
    col = (step or zy.shape[1]) - 1
    y, q = zy[:, col], zq[:, col, :]
    ok = np.isfinite(y) & np.isfinite(q).all(axis=1)
    crps = np.full(len(y), np.nan)
    pin = np.full(len(y), np.nan)
    crps[ok] = crps_from_quantiles(q[ok], y[ok], levels)
    pin[ok] = pinball_matrix(q[ok], y[ok], levels).mean(axis=1)
    return crps, pin


def _step_scores(y: np.ndarray, q: np.ndarray, levels: Sequence[float]) -> dict:
    out: dict = {
        "pinball": float(pinball_matrix(q, y, levels).mean()) if len(y) else math.nan,
        "crps": float(crps_from_quantiles(q, y, levels).mean()) if len(y) else math.nan,
    }
    for cov in INTERVALS:
        idx = interval_indices(levels, cov)
        if idx is None:
            continue
        lo, hi = q[:, idx[0]], q[:, idx[1]]
        inside = (lo <= y) & (y <= hi)
        out[f"coverage_{cov}"] = float(inside.mean()) if len(y) else math.nan
        out[f"width_{cov}"] = float(np.mean(hi - lo)) if len(y) else math.nan
        if cov != 50:
            score = interval_score(lo, hi, y, 1.0 - cov / 100.0)
            out[f"interval_score_{cov}"] = float(score.mean()) if len(y) else math.nan
    return out


def prob_scores(y_true, quantiles, last_close, levels: Sequence[float]) -> dict:
    """Scores of one model's quantile forecasts, headline at step H.

    Returns:
        ``{pinball, crps, coverage_50/80/90, width_50/80/90, interval_score_80/90}`` (only the
        intervals whose two levels are predicted), plus ``quantile_levels``,
        ``reliability`` (empirical P(y <= q_tau) per level), ``pit`` (``pit_histogram``) and
        ``per_step`` (each score for every step).
    """
    zy, zq = _log_space(y_true, quantiles, last_close)
    steps = []
    for h in range(zy.shape[1]):
        ok = np.isfinite(zy[:, h]) & np.isfinite(zq[:, h]).all(axis=1)
        steps.append(_step_scores(zy[ok, h], zq[ok, h], levels))
    H = zy.shape[1]
    ok = np.isfinite(zy[:, H - 1]) & np.isfinite(zq[:, H - 1]).all(axis=1)
    out = dict(steps[-1])
    out["quantile_levels"] = [float(t) for t in levels]
    out["reliability"] = reliability(zq[ok, H - 1], zy[ok, H - 1]).tolist()
    out["pit"] = pit_histogram(zq[ok, H - 1], zy[ok, H - 1], levels)
    out["per_step"] = {k: [s.get(k) for s in steps] for k in steps[-1]}
    return out


BASELINE = "rw_ewma"


def add_prob_scores(recs: dict[str, dict], jobs: Sequence) -> None:
    """Score every quantile job of one series into its record (``recs[model]``, in place).

    Adds ``prob_scores`` and, when ``rw_ewma`` is among the jobs, ``crps_skill`` (1 - CRPS /
    CRPS of rw_ewma on the same origins) and DM tests on the per-origin CRPS and pinball loss
    against it (``dm_stat_crps_vs_rw_ewma``, ``dm_pvalue_crps_vs_rw_ewma``, and the same for
    pinball; negative statistic = the model's loss is smaller).
    """
    from cryptocast.evaluate.significance import dm_from_losses

    prob = [j for j in jobs if j.y_quantiles is not None]
    base = next((j for j in prob if j.model == BASELINE), None)
    base_losses = None
    if base is not None:
        base_losses = per_origin_losses(
            base.y_true, base.y_quantiles, base.last_close, base.quantile_levels
        )
    for j in prob:
        rec = recs[j.model]
        scores = prob_scores(j.y_true, j.y_quantiles, j.last_close, j.quantile_levels)
        per_step = scores.pop("per_step")
        rec.update(scores)
        rec.setdefault("per_step", {}).update(per_step)
        if base_losses is None:
            continue
        crps, pin = per_origin_losses(j.y_true, j.y_quantiles, j.last_close, j.quantile_levels)
        both = np.isfinite(crps) & np.isfinite(base_losses[0])
        base_crps = float(np.mean(base_losses[0][both])) if both.any() else math.nan
        mine = float(np.mean(crps[both])) if both.any() else math.nan
        rec["crps_skill"] = 1.0 - mine / base_crps if base_crps > 0 else math.nan
        H = np.shape(j.y_true)[1] if np.ndim(j.y_true) == 2 else 1
        for name, mine_l, base_l in (
            ("crps", crps, base_losses[0]),
            ("pinball", pin, base_losses[1]),
        ):
            stat, p = dm_from_losses(mine_l, base_l, h=H)
            rec[f"dm_stat_{name}_vs_{BASELINE}"], rec[f"dm_pvalue_{name}_vs_{BASELINE}"] = stat, p
