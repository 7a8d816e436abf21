"""Diebold-Mariano test of equal predictive accuracy, with the HLN small-sample correction.

References:
    Diebold, F. X. and Mariano, R. S. (1995). Comparing predictive accuracy. JBES 13(3), 253-263.
    Harvey, D., Leybourne, S. and Newbold, P. (1997). Testing the equality of prediction mean
    squared errors. IJF 13(2), 281-291.

The statistic follows R's ``forecast::dm.test``: the long-run variance of the loss differential
uses the rectangular (truncated, unweighted) kernel with autocovariances up to lag ``h - 1``, as in
DM (1995), because h-step forecast errors are at most MA(h-1). That estimate can be negative for
h > 1; then the lag-0 variance is used instead (as ``dm.test`` does).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from cryptocast.errors import ConfigError
from cryptocast.evaluate.metrics import as_2d

_LOSSES = ("squared", "absolute")


def _loss(e: np.ndarray, loss: str) -> np.ndarray:
    if loss == "squared":
        return e**2
    if loss == "absolute":
        return np.abs(e)
    raise ConfigError(f"unknown Diebold-Mariano loss {loss!r}; use one of {', '.join(_LOSSES)}")


def _autocov(d: np.ndarray, k: int) -> float:
    """gamma_k = (1/n) * sum_{t=k}^{n-1} (d_t - mean)(d_{t-k} - mean), the DM (1995) estimator."""
    n = d.size
    c = d - d.mean()
    return float(np.dot(c[k:], c[: n - k]) / n)


def diebold_mariano(e1, e2, h: int = 1, loss: str = "squared") -> tuple[float, float]:
    """Test H0: forecasts 1 and 2 are equally accurate, from their errors.

    ``d_t = L(e1_t) - L(e2_t)``; ``DM = mean(d) / sqrt(V / n)`` with
    ``V = gamma_0 + 2 * sum_{k=1}^{h-1} gamma_k``; the HLN-corrected statistic is
    ``DM * sqrt((n + 1 - 2h + h(h-1)/n) / n)`` and the two-sided p-value comes from Student's t with
    ``n - 1`` degrees of freedom. A NEGATIVE statistic means forecast 1 has the smaller loss.

    Pairs where either error is not finite are dropped first.

    Degenerate cases (documented, no exception):
        - identical losses (``d`` all zero, e.g. the same forecasts): ``(0.0, 1.0)``;
        - ``d`` constant but non-zero (zero variance, one forecast always better by the same
          amount, e.g. drift vs persistence on a straight line): ``(+-inf, 0.0)``, the limit of the
          statistic as the variance goes to zero;
        - fewer than 3 usable pairs: ``(nan, nan)``.

    Args:
        e1: forecast errors of model 1, shape (n,).
        e2: forecast errors of model 2, shape (n,).
        h: forecast horizon of these errors (step h of an h-step forecast), >= 1.
        loss: ``"squared"`` or ``"absolute"``.

    Returns:
        ``(statistic, p_value)``.
    """
    a, b, ok = _paired(e1, e2, h, "errors")
    return _dm_statistic(_loss(a[ok], loss) - _loss(b[ok], loss), h)


def dm_from_losses(l1, l2, h: int = 1) -> tuple[float, float]:
    """The same test on two per-forecast loss series (e.g. CRPS or pinball of quantile
    forecasts); pairs with a non-finite loss are dropped. Negative: series 1 has smaller loss."""
    a, b, ok = _paired(l1, l2, h, "losses")
    return _dm_statistic(a[ok] - b[ok], h)


def _paired(x, y, h: int, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both series as flat float64 arrays and the mask of pairs where both are finite;
    ConfigError for h < 1 or series of different lengths."""
    if h < 1:
        raise ConfigError(f"Diebold-Mariano horizon h must be >= 1, got {h}")
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    b = np.asarray(y, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ConfigError(
            f"Diebold-Mariano needs {what} of equal length, got {a.size} and {b.size}"
        )
    return a, b, np.isfinite(a) & np.isfinite(b)


def _dm_statistic(d: np.ndarray, h: int) -> tuple[float, float]:
    """HLN-corrected DM statistic and two-sided p-value of a loss differential ``d`` (n,)."""
    n = d.size
    if n < 3:
        return float("nan"), float("nan")
    dbar = float(d.mean())
    # Relative tolerance: losses are often ~1e6 (squared BTC prices), so compare with their scale.
    scale = max(float(np.max(np.abs(d))), 1e-300)
    if np.all(np.abs(d - dbar) <= 1e-12 * scale):
        if dbar == 0.0:
            return 0.0, 1.0
        return math.copysign(math.inf, dbar), 0.0
    gamma0 = _autocov(d, 0)
    var = gamma0 + 2.0 * sum(_autocov(d, k) for k in range(1, min(h, n)))
    if var <= 0:
        var = gamma0  # rectangular kernel went negative: fall back to lag 0 (as dm.test does)
    dm = dbar / math.sqrt(var / n)
    hln = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    stat = dm * hln
    from scipy import stats  # heavy import kept out of module import time

    p = float(2.0 * stats.t.sf(abs(stat), df=n - 1))
    return float(stat), p


def dm_vs_persistence(
    y_true, y_pred, last_close, step: int | None = None, loss: str = "squared"
) -> tuple[float, float]:
    """DM test of a model against persistence at horizon step ``step`` (1-based; default H).

    Negative statistic = the model's loss is smaller than persistence's. The errors of step h
    overlap across consecutive origins, so the test uses ``h = step``.
    """
    yt, yp, lc = as_2d(y_true, y_pred, last_close)
    step = step or yt.shape[1]
    col = step - 1
    return diebold_mariano(yt[:, col] - yp[:, col], yt[:, col] - lc, h=step, loss=loss)


def dm_between(
    y_true, y_pred_1, y_pred_2, step: int | None = None, loss: str = "squared"
) -> tuple[float, float]:
    """DM test of model 1 against model 2 on the same points (e.g. vs the best other model)."""
    yt, yp1, _ = as_2d(y_true, y_pred_1, np.zeros(np.shape(y_true)[0]))
    _, yp2, _ = as_2d(y_true, y_pred_2, np.zeros(np.shape(y_true)[0]))
    step = step or yt.shape[1]
    col = step - 1
    return diebold_mariano(yt[:, col] - yp1[:, col], yt[:, col] - yp2[:, col], h=step, loss=loss)


def dm_vs_best_other(
    y_true,
    preds: Mapping[str, np.ndarray],
    rmse: Mapping[str, float],
    candidates: Iterable[str],
    step: int | None = None,
    loss: str = "squared",
) -> dict[str, tuple[str | None, float, float]]:
    """DM test of every model against the best OTHER candidate (lowest RMSE) on the same points.

    Args:
        y_true: realised prices (n, H), shared by all models (same origins).
        preds: model name -> predicted prices (n, H).
        rmse: model name -> headline RMSE, to pick the best other candidate.
        candidates: models eligible as the comparison (e.g. the neural ones).
        step: horizon step (1-based; default H).
        loss: ``"squared"`` or ``"absolute"``.

    Returns:
        model -> ``(best_other_name, statistic, p_value)``; ``(None, nan, nan)`` when no other
        candidate exists. Negative statistic = the model beats that candidate. Store them in the
        records as ``dm_best_other``, ``dm_stat_vs_best``, ``dm_pvalue_vs_best`` (a table column).
    """
    pool = [c for c in candidates if c in preds and np.isfinite(rmse.get(c, np.nan))]
    out: dict[str, tuple[str | None, float, float]] = {}
    for model, pred in preds.items():
        others = [c for c in pool if c != model]
        if not others:
            out[model] = (None, float("nan"), float("nan"))
            continue
        best = min(others, key=lambda c: rmse[c])
        stat, p = dm_between(y_true, pred, preds[best], step=step, loss=loss)
        out[model] = (best, stat, p)
    return out
