"""Conformal calibration of quantile forecasts: per-fold CQR and online ACI.

Works on log returns relative to the origin close (``z = log(price / last_close)``), arrays
``(n, H, Q)`` of quantiles and ``(n, H)`` of outcomes, one interval per symmetric pair of levels
``(tau, 1 - tau)`` with miscoverage ``alpha = 2 * tau``. The median is never moved, so the point
forecast is the same before and after calibration, and ``distribution.enforce_order`` keeps the
adjusted quantiles non-crossing.

- ``cqr``: conformalized quantile regression (Romano, Patterson & Candes 2019). Conformity score
  ``E = max(q_lo - y, y - q_hi)`` on the fold's calibration windows (the validation tail of its
  training range, whose outcomes are all known at the fold's first forecast, never a test row);
  each interval widens (or narrows, E < 0) by the ``ceil((m + 1)(1 - alpha)) / m`` empirical
  quantile of the scores.
- ``aci``: adaptive conformal inference (Gibbs & Candes 2021, "Adaptive conformal inference
  under distribution shift"): the same scores, but the level used at origin t is ``alpha_t``,
  updated ``alpha_{t+1} = alpha_t + gamma * (alpha - err_t)`` with ``err_t = 1`` when origin t's
  outcome fell outside its interval. An h-step outcome is known only h candles after its origin,
  so the update for origin s is applied at the first origin t with ``row_t >= row_s + h``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cryptocast.models.distribution import enforce_order, median_index


def symmetric_pairs(levels: Sequence[float]) -> list[tuple[int, int, float]]:
    """``(i_lo, i_hi, alpha)`` for each pair of levels ``tau < 0.5`` and ``1 - tau``."""
    rounded = [round(t, 9) for t in levels]
    out = []
    for i, t in enumerate(rounded):
        if t < 0.5 and round(1.0 - t, 9) in rounded:
            out.append((i, rounded.index(round(1.0 - t, 9)), 2.0 * float(levels[i])))
    return out


def conformity_scores(zq: np.ndarray, zy: np.ndarray, i_lo: int, i_hi: int) -> np.ndarray:
    """``max(q_lo - y, y - q_hi)`` (m, H): negative inside the interval, positive outside."""
    return np.maximum(zq[..., i_lo] - zy, zy - zq[..., i_hi])


def conformal_quantile(sorted_scores: np.ndarray, alpha: float) -> float:
    """The ``ceil((m + 1)(1 - alpha))``-th smallest of m sorted scores, clipped to the sample
    (the finite-sample-valid level; beyond the largest score the largest is used, below the
    smallest the smallest, rather than an infinite or empty interval)."""
    m = sorted_scores.size
    if m == 0:
        return 0.0
    k = math.ceil((m + 1) * (1.0 - alpha))
    return float(sorted_scores[min(max(k, 1), m) - 1])


def calibration_set(
    predictor: Any, X: np.ndarray, close: np.ndarray, ends: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles and outcomes ``(zq (m, H, Q), zy (m, H))`` of the calibration windows ``ends``.

    The caller passes the fold's validation windows: their outcomes, rows ``e + 1 .. e + H``,
    are known at the fold's first forecast. Only rows ``<= max(ends) + H`` of ``close`` are read.
    """
    from cryptocast.features.windows import realised_closes

    ends = np.asarray(ends, dtype=np.int64)
    if ends.size == 0:
        return np.empty((0, horizon, len(predictor.levels))), np.empty((0, horizon))
    _, q = predictor.predict_distribution(X, close, ends)
    lc = np.asarray(close, dtype=np.float64)[ends]
    zq = np.log(q / lc[:, None, None])
    zy = np.log(realised_closes(close, ends, horizon) / lc[:, None])
    return zq, zy


def pair_scores(cal_q: np.ndarray, cal_y: np.ndarray, levels: Sequence[float]) -> list[np.ndarray]:
    """The conformity scores (m, H) of one calibration set, one array per ``symmetric_pairs``
    entry, over its windows whose quantiles and outcomes are all finite."""
    ok = np.isfinite(cal_y).all(axis=1) & np.isfinite(cal_q).all(axis=(1, 2))
    return [
        conformity_scores(cal_q[ok], cal_y[ok], lo, hi) for lo, hi, _ in symmetric_pairs(levels)
    ]


def cqr(zq: np.ndarray, cal_q: np.ndarray, cal_y: np.ndarray, levels: Sequence[float]):
    """Adjust test quantiles ``zq`` (n, H, Q) by the conformity scores of one calibration set."""
    return cqr_scores(zq, pair_scores(cal_q, cal_y, levels), levels)


def cqr_scores(zq: np.ndarray, scores: list[np.ndarray], levels: Sequence[float]) -> np.ndarray:
    """``cqr`` from the calibration set's ``pair_scores`` (what a trained run stores)."""
    out = np.array(zq, dtype=np.float64, copy=True)
    for (i_lo, i_hi, alpha), pair in zip(symmetric_pairs(levels), scores, strict=True):
        for h in range(out.shape[1]):
            qhat = conformal_quantile(np.sort(np.asarray(pair)[:, h]), alpha)
            out[:, h, i_lo] -= qhat
            out[:, h, i_hi] += qhat
    return enforce_order(out, median_index(levels))


def aci_update(a_t: float, alpha: float, gamma: float, missed: bool) -> float:
    """One ACI step: ``alpha_{t+1} = alpha_t + gamma * (alpha - err_t)``, ``err_t = missed``."""
    return a_t + gamma * (alpha - float(missed))


def aci(
    zq: np.ndarray,
    zy: np.ndarray,
    rows: np.ndarray,
    cal: list[tuple[np.ndarray, np.ndarray]],
    cal_of: np.ndarray,
    levels: Sequence[float],
    gamma: float,
) -> np.ndarray:
    """Adaptive conformal inference over a test period, in time order.

    The scores behind the level-``1 - alpha_t`` quantile are those of the fold's calibration set
    plus the score of every test origin whose outcome is already known (Gibbs & Candes 2021 use
    the recent realised scores in their time-series study), so the interval can follow a
    volatility regime the calibration rows never saw.

    Args:
        zq: test quantiles (n, H, Q), origins in time order.
        zy: test outcomes (n, H); entry (s, h) is read only once ``rows[t] >= rows[s] + h + 1``.
        rows: origin row numbers (n,), increasing.
        cal: calibration sets ``(cal_q, cal_y)``, one per trained model.
        cal_of: index into ``cal`` for each test origin (n,).
        levels: quantile levels (Q,).
        gamma: step size of the miscoverage update.

    Returns:
        Adjusted quantiles (n, H, Q).
    """
    return aci_scores(zq, zy, rows, [pair_scores(cq, cy, levels) for cq, cy in cal], cal_of,
                      levels, gamma)[0]  # fmt: skip


def aci_scores(
    zq: np.ndarray,
    zy: np.ndarray,
    rows: np.ndarray,
    scores: list[list[np.ndarray]],
    cal_of: np.ndarray,
    levels: Sequence[float],
    gamma: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``aci`` from each calibration set's ``pair_scores``: (adjusted quantiles (n, H, Q), the
    level ``alpha_t`` used at each origin (n, P, H), P = ``len(symmetric_pairs(levels))``).

    The daily job (``cryptocast.forecasting.calibration``) replays its logged origins through
    this same function, so its level after N logged outcomes is the backtest's."""
    import bisect

    out = np.array(zq, dtype=np.float64, copy=True)
    n, H, _ = zq.shape
    pairs = symmetric_pairs(levels)
    used = np.full((n, len(pairs), H), np.nan)
    rows = np.asarray(rows, dtype=np.int64)
    cal_of = np.asarray(cal_of, dtype=np.int64)
    for p, (i_lo, i_hi, alpha) in enumerate(pairs):
        cal_scores = [np.asarray(s[p], dtype=np.float64).reshape(-1, H) for s in scores]
        for h in range(H):
            a_t, done = alpha, 0  # done: origins whose outcome has been fed back
            realised: list[float] = []  # sorted scores of test origins already known
            for t in range(n):
                # feed back every earlier origin whose (h+1)-step outcome is known by row t
                while done < t and rows[done] + h + 1 <= rows[t]:
                    y = zy[done, h]
                    if np.isfinite(y):
                        lo, hi = out[done, h, i_lo], out[done, h, i_hi]
                        a_t = aci_update(a_t, alpha, gamma, bool(y < lo or y > hi))
                        # the score against the model's own (unadjusted) interval
                        score = max(zq[done, h, i_lo] - y, y - zq[done, h, i_hi])
                        bisect.insort(realised, float(score))
                    done += 1
                pool = np.sort(np.concatenate([cal_scores[cal_of[t]][:, h], realised]))
                used[t, p, h] = a_t
                qhat = conformal_quantile(pool, a_t)
                out[t, h, i_lo] -= qhat
                out[t, h, i_hi] += qhat
    return enforce_order(out, median_index(levels)), used


def calibrate(method: str, zq: np.ndarray, *rest: Any) -> np.ndarray:
    """``backtest.calibration``: ``none`` returns ``zq``; ``cqr`` adjusts each origin with its own
    fold's calibration set; ``aci`` runs ``aci`` over the whole test period. ``rest`` are the
    arguments of :func:`aci` after ``zq``: ``zy, rows, cal, cal_of, levels, gamma``."""
    if method == "none":
        return zq
    if method == "aci":
        return aci(zq, *rest)
    zy, rows, cal, cal_of, levels, gamma = rest
    out = np.array(zq, dtype=np.float64, copy=True)
    for k, (cq, cy) in enumerate(cal):
        sel = np.asarray(cal_of) == k
        if sel.any():
            out[sel] = cqr(zq[sel], cq, cy, levels)
    return out


def calibration_record(
    method: str,
    gamma: float,
    predictor: Any,
    X: np.ndarray,
    close: np.ndarray,
    ends: np.ndarray,
    horizon: int,
    timestamps: Any,
) -> dict[str, Any] | None:
    """What a run trained with ``backtest.calibration`` stores for the daily job (JSON-safe).

    ``ends`` are the validated run's validation windows, the rows the backtest's CQR calibrates
    a fold on; ``predictor`` is the validated model (never the refit, which learnt from them).
    Only rows up to ``max(ends) + horizon``, all before the first test origin, are read. None for
    ``none`` or a point model.
    """
    levels = predictor.levels
    if method == "none" or levels is None:
        return None
    ends = np.asarray(ends, dtype=np.int64)
    cal_q, cal_y = calibration_set(predictor, X, close, ends, horizon)
    scores = pair_scores(cal_q, cal_y, levels)
    ts = np.asarray(timestamps)
    return {
        "method": method,
        "gamma": float(gamma),
        "levels": [float(t) for t in levels],
        "pairs": [[int(lo), int(hi), float(a)] for lo, hi, a in symmetric_pairs(levels)],
        "scores": [s.tolist() for s in scores],  # per pair (m, H)
        "n_scores": int(scores[0].shape[0]) if scores else 0,
        "last_row_read": str(ts[int(ends.max()) + horizon]) if ends.size else None,
    }
