"""Forecast combinations and selection as models: ``vol_combo`` and ``vol_select``.

Both hold the registry models named in ``model.members`` (default ``[har, ewma_vol, garch]``; any
registered point model: the HAR family, the variance baselines, the neural models), built through
``build_model`` with the same ``model`` settings under the member's name. The training loop fits a combination by calling
``fit_members(data, fit_one, predict)`` with its own fit of one model (``training.loop.fit``:
gradient descent with early stopping on the validation windows, or the closed-form fit of a
baseline) and its prediction path, so every member is fit on the fold's prepared data exactly as
the walk-forward fits that model on its own. Each member's mapping back to variance is the one
its ``Predictor`` would estimate (``member_factor``, the rule of
``training.inference.fit_variance_factor``; tests/test_combo.py holds the two equal); then come
the combination weights:

- ``vol_combo`` with ``model.combo_weights: equal``: ``1 / M`` each;
  ``inverse_qlike``: ``w_i`` proportional to ``1 / QLIKE_i``, QLIKE of member i on the fold's
  validation windows (all before the fold's first origin; the mean over windows and horizon
  steps, on variances as ``evaluate/volatility.py`` scores), normalised to sum to 1;
- ``vol_select``: weight 1 on the member with the lowest validation QLIKE (the first in
  ``model.members`` on a tie), 0 elsewhere: a selection rule re-made every fold.

The weights read the validation windows only (``validation_rows``): their forecasts and their
realised RV, never a test row; the members' fits read the training and validation windows as
any model's does. Without validation windows (``cryptocast train``'s refit on every row) the
latest ``FALLBACK_SHARE`` of the fit windows stand in for them.

Combining space. The combination is a weighted mean of the members' *variance* forecasts, each
mapped back as its own forecast would be (a log model's variance times its bias factor of
``features/targets.py``): ``var = sum_i w_i var_i``; the output is ``0.5 log var`` on the vol
contract with ``forecasts_variance = True``, so it is mapped back unchanged. Variance space
because QLIKE and the volatility-targeted position score the expected variance: a mean of
unbiased variance forecasts is unbiased, while a mean of log forecasts is a geometric mean of
variances, biased low (Jensen) exactly as the uncorrected ``exp`` of a log model is; and QLIKE is
convex in the forecast variance, so the equal-weight combination is never worse than the members'
average QLIKE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from cryptocast.errors import ConfigError
from cryptocast.models.registry import build_model, check_members, register

#: the training loop's fit of one member (in place)
FitOne = Callable[[Any], Any]
#: the training loop's prediction of one member at window origins -> scaled outputs (n, H)
Predict = Callable[[Any, np.ndarray], np.ndarray]

#: without validation windows, the latest share of the fit windows the weights are estimated on
FALLBACK_SHARE = 0.2


def validation_rows(data: Any) -> np.ndarray:
    """The window origins the weights are estimated on: the fold's validation windows (all before
    the fold's first forecast origin), else the latest ``FALLBACK_SHARE`` of the training ones."""
    val = np.asarray(data.ends.get("val", np.empty(0, np.int64)), dtype=np.int64)
    if len(val):
        return val
    train = np.sort(np.asarray(data.ends["train"], dtype=np.int64))
    return train[-max(1, int(round(len(train) * FALLBACK_SHARE))) :]


def qlike(true_var: np.ndarray, pred_var: np.ndarray) -> float:
    """Mean QLIKE ``s/f - log(s/f) - 1`` over the finite positive pairs (n, H); NaN if none."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.asarray(true_var, dtype=np.float64) / np.asarray(pred_var, dtype=np.float64)
        loss = ratio - np.log(ratio) - 1.0
    ok = np.isfinite(loss)
    return float(loss[ok].mean()) if ok.any() else float("nan")


def combination_weights(rule: str, member_var: np.ndarray, true_var: np.ndarray) -> np.ndarray:
    """Weights (M,) of ``rule`` (equal | inverse_qlike | select) from the members' variance
    forecasts ``member_var`` (M, n, H) and the realised variance ``true_var`` (n, H) of the
    validation windows. A member without a finite QLIKE gets no weight (equal: all alike)."""
    m = member_var.shape[0]
    if rule == "equal":
        return np.full(m, 1.0 / m)
    losses = np.array([qlike(true_var, member_var[i]) for i in range(m)])
    ok = np.isfinite(losses)
    if not ok.any():
        raise ConfigError("no member has a finite validation QLIKE; widen the validation period")
    if rule == "select":
        w = np.zeros(m)
        w[int(np.nanargmin(np.where(ok, losses, np.nan)))] = 1.0
        return w
    inv = np.where(ok, 1.0 / np.maximum(losses, 1e-12), 0.0)
    return inv / inv.sum()


def score_rows(
    model: VolCombo, data: Any, rows: np.ndarray, predict: Predict
) -> tuple[np.ndarray, np.ndarray]:
    """(members' variance forecasts (M, n, H), realised variance (n, H)) of the windows ending at
    ``rows``: everything the weights read. ``predict(member, rows)``: scaled outputs (n, H)."""
    y_center, y_scale = data.y_scaler.center, data.y_scaler.scale
    var = []
    for i, member in enumerate(model.members):
        scaled = predict(member, rows)  # (n, H)
        var.append(np.exp(2.0 * (scaled * y_scale + y_center)) * model.factors[i].numpy())
    true = np.exp(2.0 * data.y_scaler.inverse_transform(data.Y[rows].astype("float64")))
    return np.stack(var), true


def member_factor(member: Any, data: Any, predict: Predict) -> np.ndarray | None:
    """A fitted member's variance factor (H,) from its residuals on the training and validation
    windows, as its ``Predictor`` estimates it; None for a model forecasting the variance."""
    from cryptocast.features.targets import get_target
    from cryptocast.models.distribution import levels_of

    target = get_target(data.target)
    if not target.corrects(member) or levels_of(member) is not None:
        return None
    rows = np.concatenate([data.ends[s] for s in ("train", "val") if s in data.ends])
    fitted = data.y_scaler.inverse_transform(predict(member, rows))
    labels = data.y_scaler.inverse_transform(data.Y[rows].astype("float64"))
    return target.variance_factor(fitted, labels)


class VolCombo(nn.Module):
    """A weighted mean of its members' variance forecasts: (B, L, F) -> (B, H) scaled log vol."""

    forecasts_variance = True  # the combination is a variance forecast, mapped back unchanged

    def __init__(self, cfg: Any, n_features: int, horizon: int, lookback: int, rule: str) -> None:
        super().__init__()
        names = check_members(cfg)
        self.member_names = names
        self.rule = rule
        self.horizon = horizon
        self.members = nn.ModuleList(
            build_model(cfg.model_copy(update={"name": m}), n_features, horizon, lookback)
            for m in names
        )
        f64, k = torch.float64, len(names)
        self.register_buffer("weights", torch.full((k,), 1.0 / k, dtype=f64))
        self.register_buffer("factors", torch.ones(k, horizon, dtype=f64))  # members' mapping back
        # members' validation QLIKE (a record of the weighting); zero until fitted, as a checkpoint
        # refuses a non-finite buffer
        self.register_buffer("val_qlike", torch.zeros(k, dtype=f64))
        self.register_buffer("y_center", torch.zeros(horizon, dtype=f64))
        self.register_buffer("y_scale", torch.ones(horizon, dtype=f64))

    def fit_members(self, data: Any, fit_one: FitOne, predict: Predict) -> None:
        """Fit every member on ``data`` with ``fit_one(member)`` (the training loop's fit of one
        model), then the weights on ``validation_rows(data)`` from ``predict(member, rows)``
        (scaled outputs (n, H))."""
        if data.target != "realized_vol":
            raise ConfigError(
                f"{'vol_select' if self.rule == 'select' else 'vol_combo'} combines volatility "
                "forecasts; set features.target=realized_vol"
            )
        self.y_center.copy_(torch.as_tensor(data.y_scaler.center, dtype=torch.float64))
        self.y_scale.copy_(torch.as_tensor(data.y_scaler.scale, dtype=torch.float64))
        for i, member in enumerate(self.members):
            fit_one(member)
            member.to("cpu")  # a neural member may have trained on a GPU
            factor = member_factor(member, data, predict)
            self.factors[i] = torch.as_tensor(1.0 if factor is None else factor)
        member_var, true_var = score_rows(self, data, validation_rows(data), predict)
        self.val_qlike.copy_(
            torch.as_tensor([qlike(true_var, v) for v in member_var], dtype=torch.float64)
        )
        self.weights.copy_(torch.as_tensor(combination_weights(self.rule, member_var, true_var)))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var = 0.0
        for i, member in enumerate(self.members):
            if float(self.weights[i]) == 0.0:
                continue  # a member the rule left out (vol_select) is not run
            log_vol = member(x).double() * self.y_scale + self.y_center  # (B, H)
            var = var + self.weights[i] * torch.exp(2.0 * log_vol) * self.factors[i]
        return (0.5 * torch.log(var) - self.y_center) / self.y_scale  # (B, H) scaled log vol


@register("vol_combo", trainable=False)
def _build_combo(cfg: Any, n_features: int, horizon: int, lookback: int) -> VolCombo:
    return VolCombo(cfg, n_features, horizon, lookback, cfg.combo_weights)


@register("vol_select", trainable=False)
def _build_select(cfg: Any, n_features: int, horizon: int, lookback: int) -> VolCombo:
    return VolCombo(cfg, n_features, horizon, lookback, "select")
