"""The forecast-distribution seam: a point forecast or quantiles of the target.

What varies between the two, and only here:

- the head: a point model outputs (B, H); a quantile model outputs (B, H, Q), one value per
  horizon step and quantile level, non-crossing by construction (``monotone_quantiles``);
- the loss: mse/huber for points, the mean pinball loss over the levels for quantiles
  (``pinball_loss``), as neuralforecast's ``MQLoss`` and darts' ``QuantileRegression`` do;
- the mapping to prices: every quantile goes through the same target -> price map as the point
  forecast (monotone, so quantiles of the target stay quantiles of the price), and the point
  forecast of a quantile model is its median, so everything that consumes points keeps working;
- the scores: ``evaluate/probabilistic.py`` (pinball, CRPS, coverage, ...) apply to quantiles only.

*What* is predicted (the target: price return, later realized volatility) is a separate seam
(``features``); this module never looks at it beyond calling ``target_to_price``.
Torch is imported lazily so that the config can import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from cryptocast.config.sections import check_levels  # noqa: F401  (validated at config load)

DEFAULT_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
#: central intervals scored (nominal coverage in %): (level_lo, level_hi) = ((1-c)/2, (1+c)/2);
#: 98 is scored when ``model.quantiles`` holds 0.01 and 0.99 (the 99% VaR levels)
INTERVALS = (50, 80, 90, 98)


def median_index(levels: Sequence[float]) -> int:
    """Position of 0.5 in ``levels``."""
    return list(levels).index(0.5)


def levels_of(model: Any) -> tuple[float, ...] | None:
    """The quantile levels a model predicts, or None for a point model.

    A quantile model (or one of its submodules, e.g. its head) carries ``quantile_levels``.
    """
    levels = getattr(model, "quantile_levels", None)
    if levels is None and hasattr(model, "modules"):
        for m in model.modules():
            levels = getattr(m, "quantile_levels", None)
            if levels is not None:
                break
    return tuple(levels) if levels is not None else None


def interval_indices(levels: Sequence[float], coverage: int) -> tuple[int, int] | None:
    """Indices of the levels bounding the central ``coverage``% interval, None if absent."""
    lo, hi = round((100 - coverage) / 200, 6), round((100 + coverage) / 200, 6)
    rounded = [round(q, 6) for q in levels]
    if lo in rounded and hi in rounded:
        return rounded.index(lo), rounded.index(hi)
    return None


# --- the head and the loss (torch) ------------------------------------------------------------
def monotone_quantiles(raw: Any, mid: int) -> Any:
    """Unconstrained outputs (..., Q) -> non-crossing quantiles (..., Q).

    The median is ``raw[..., mid]``; the levels above it add cumulative ``softplus`` increments
    of the raw values above it, the levels below subtract them, so q_1 <= ... <= q_Q for any input
    (softplus > 0; where it underflows the quantiles tie, they never cross).
    """
    import torch
    import torch.nn.functional as F

    med = raw[..., mid : mid + 1]  # (..., 1)
    up = med + torch.cumsum(F.softplus(raw[..., mid + 1 :]), dim=-1)  # (..., Q - mid - 1)
    # below: increments accumulate outward from the median, i.e. over the reversed lower part
    down = med - torch.cumsum(F.softplus(raw[..., :mid].flip(-1)), dim=-1).flip(-1)  # (..., mid)
    return torch.cat([down, med, up], dim=-1)


def pinball_loss(pred: Any, y: Any, levels: Sequence[float]) -> Any:
    """Mean pinball (quantile) loss of ``pred`` (B, H, Q) for targets ``y`` (B, H).

    ``rho_tau(u) = max(tau * u, (tau - 1) * u)`` with ``u = y - q_tau`` (Koenker & Bassett 1978),
    averaged over batch, steps and levels.
    """
    import torch

    tau = torch.as_tensor(list(levels), dtype=pred.dtype, device=pred.device)  # (Q,)
    u = y.unsqueeze(-1) - pred  # (B, H, Q)
    return torch.maximum(tau * u, (tau - 1.0) * u).mean()


def loss_fn(name: str, levels: Sequence[float] | None) -> Any:
    """The training loss: ``fn(pred, y)``; pinball for quantile models, mse/huber for points."""
    import torch

    from cryptocast.errors import ConfigError

    if name == "pinball":
        if levels is None:
            raise ConfigError("train.loss=pinball needs a quantile model: set model.quantiles")
        lv = tuple(levels)
        return lambda pred, y: pinball_loss(pred, y, lv)
    if levels is not None:
        raise ConfigError(f"a quantile model trains with train.loss=pinball, not {name}")
    return torch.nn.MSELoss() if name == "mse" else torch.nn.HuberLoss(delta=1.0)


# --- predictions -> prices (numpy) ------------------------------------------------------------
def point_of(raw: np.ndarray, levels: Sequence[float] | None) -> np.ndarray:
    """The point forecast (n, H) of model outputs: the outputs of a point model, the median of a
    quantile model's (n, H, Q)."""
    if levels is None:
        return raw
    return raw[..., median_index(levels)]


def quantiles_to_prices(raw: np.ndarray, last_close: np.ndarray, target: str) -> np.ndarray:
    """Target quantiles (n, H, Q) at origins with close ``last_close`` (n,) -> prices (n, H, Q)."""
    from cryptocast.features.table import target_to_price

    n, H, Q = raw.shape
    flat = raw.transpose(0, 2, 1).reshape(n * Q, H)  # (n*Q, H): every level like a point forecast
    prices = target_to_price(flat, np.repeat(np.asarray(last_close, dtype=np.float64), Q), target)
    return prices.reshape(n, Q, H).transpose(0, 2, 1)


def enforce_order(q: np.ndarray, mid: int) -> np.ndarray:
    """Re-impose non-crossing on adjusted quantiles (..., Q) keeping the median fixed.

    Above the median a running maximum, below it a running minimum outward from the median
    (the monotone rearrangement restricted to each side), so a conformal adjustment that moves
    one level past its neighbour cannot produce crossing quantiles.
    """
    q = np.array(q, dtype=np.float64, copy=True)
    q[..., mid:] = np.maximum.accumulate(q[..., mid:], axis=-1)
    q[..., : mid + 1] = np.minimum.accumulate(q[..., mid::-1], axis=-1)[..., ::-1]
    return q
