"""The target seam: what a row's label is, how a prediction maps back, which scores apply.

A ``Target`` is looked up by ``features.target``; everything else (windows, scalers, walk-forward,
the models and the training loop) is shared by all targets.

- ``log_return`` / ``price`` (kind ``price``): the label of origin ``t`` is
  ``log(close[t+h] / close[t])`` (or the ratio); predictions map back to prices; scored by the
  price metrics, DM vs persistence and the long/flat trading simulation.
- ``realized_vol`` (kind ``vol``): the label is ``log RV(t+h)``, the log of the daily realized
  volatility of the h-th next day, from ``features.rv_source`` candles (see ``features/volatility.py``).
  Models learn log RV; predictions map back to **annualised volatility as a fraction**
  (``daily RV * sqrt(365)``; 0.50 = 50 % a year), the one unit every vol output, score and report
  uses. Scored by RMSE/MAE of volatility, QLIKE, Mincer-Zarnowitz R^2, the bias ratio, skill and
  DM vs ``har`` and ``vol_persistence``, and the volatility-targeted buy-and-hold; the price scores
  do not apply.

Mapping a log forecast back. A model of log RV forecasts ``E[log RV]``, and ``exp`` of it is the
conditional *median* of RV (the geometric mean), biased low for the expected variance that QLIKE
and the volatility-targeted position need: with a residual ``e`` of log vol, ``E[RV^2] =
exp(2 yhat) E[exp(2 e)]``. The target multiplies each forecast variance by ``E[exp(2 e)]``
estimated per step from the residuals of the windows the model was fit on (the fold's training
and validation windows, all before its first origin; never a test row). The default
(``correction="normal"``) is the lognormal ``exp(2 mean(e) + 2 var(e))``, i.e. ``exp(s^2 / 2)``
with ``s^2`` the variance of the log-variance residual ``2 e``; Duan (1983)'s distribution-free
smearing ``mean(exp(2 e))`` (``"smearing"``) is the alternative, but a few crash days in the
training history dominate it: on the reference test year it over-corrected HAR (docs/volatility.md).
Models that forecast the variance itself (``vol_persistence``, ``ewma_vol``, ``garch``:
``forecasts_variance = True``) and quantile models (a quantile maps through ``exp`` exactly) are
mapped back unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.errors import ConfigError

ANNUALISE = math.sqrt(365.0)  # crypto trades every day of the year
# forecast a price (or its quantiles); meaningless for a volatility target
PRICE_BASELINES = (
    "persistence", "rw_ewma", "rw_empirical",
    # volatility-driven return quantiles (models/vol_quantile.py)
    "fhs_ewma", "fhs_garch", "fhs_har", "t_ewma", "garch_t", "garch_skewt",
)  # fmt: skip
VOL_BASELINES = (
    "vol_persistence", "har", "ewma_vol", "garch",
    # the HAR family (models/har.py) and LightGBM (models/gbm.py) on the realized measures
    "harq", "har_semi", "har_cj", "har_x", "gbm_vol",
    # forecast combinations and selection (models/combo.py)
    "vol_combo", "vol_select",
)  # fmt: skip


def smearing_factor(resid: np.ndarray) -> np.ndarray:
    """Duan (1983)'s smearing estimate of ``E[exp(2 e)]`` per step: log-vol residuals (n, H) ->
    variance factors (H,). A step with fewer than 2 finite residuals is left uncorrected (1)."""
    r = np.asarray(resid, dtype=np.float64).reshape(len(resid), -1)
    out = np.ones(r.shape[1])
    for h in range(r.shape[1]):
        e = r[np.isfinite(r[:, h]), h]
        if e.size >= 2:
            out[h] = float(np.mean(np.exp(2.0 * e)))
    return out


def normal_factor(resid: np.ndarray) -> np.ndarray:
    """The lognormal ``E[exp(2 e)] = exp(2 m + 2 s^2)`` per step, ``m``, ``s^2`` the mean and
    variance of the log-vol residuals (n, H) -> (H,); 1 for a step with fewer than 2 residuals."""
    r = np.asarray(resid, dtype=np.float64).reshape(len(resid), -1)
    out = np.ones(r.shape[1])
    for h in range(r.shape[1]):
        e = r[np.isfinite(r[:, h]), h]
        if e.size >= 2:
            out[h] = math.exp(2.0 * e.mean() + 2.0 * e.var(ddof=1))
    return out


CORRECTIONS = {"normal": normal_factor, "smearing": smearing_factor}


def target_columns(horizon: int) -> list[str]:
    """``target_1 .. target_H``."""
    return [f"target_{h}" for h in range(1, horizon + 1)]


@dataclass(frozen=True)
class Target:
    """One kind of label. ``name`` is the ``features.target`` value; ``kind`` picks the scores."""

    name: str
    kind: str  # "price" | "vol"
    unit: str  # what y_true / y_pred hold after mapping back
    correction: str = "normal"  # vol: the CORRECTIONS estimator of the mapping back

    @property
    def needs_fine_candles(self) -> bool:
        return self.kind == "vol"

    @property
    def point_only(self) -> bool:
        """Backtested as points only: quantile scores and conformal sets are built on closes."""
        return self.kind == "vol"

    def naive_anchor(self, y_scaler: Any, horizon: int, model_kind: str | None) -> np.ndarray:
        """The scaled label the naive baselines start from, (H,).

        Price targets: the "no change" label (persistence forecasts it, drift adds the mean
        training change to it). Volatility: drift on log RV is the mean training label, which is
        0 after scaling; persistence has no "no change" label there (the ConfigError naming
        vol_persistence).
        """
        if self.kind == "vol":
            if model_kind == "persistence":
                self.identity()
            return np.zeros(horizon)
        identity = np.full((1, horizon), self.identity(), dtype=np.float64)
        return y_scaler.transform(identity)[0]

    def check_timeframe(self, timeframe: str) -> None:
        """Volatility targets are daily RV: a ConfigError for any other candle size."""
        if self.kind == "vol" and timeframe != "1d":
            raise ConfigError(
                f"features.target={self.name} forecasts daily realized volatility; use the 1d "
                f"timeframe (got {timeframe}), e.g. --timeframe 1d"
            )

    def check_models(self, models: list[str]) -> None:
        """A baseline of the other kind is a ConfigError naming the one to use instead."""
        wrong = VOL_BASELINES if self.kind == "price" else PRICE_BASELINES
        for m in models:
            if m in wrong:
                hint = "vol_persistence" if self.kind == "vol" else "features.target=realized_vol"
                raise ConfigError(
                    f"model {m!r} does not forecast features.target={self.name}; use {hint}"
                )

    def identity(self) -> float:
        """The label meaning "no change" (price targets only)."""
        if self.name == "log_return":
            return 0.0
        if self.name == "price":
            return 1.0
        raise ConfigError(
            f"features.target={self.name} has no 'no change' label; "
            "use the vol_persistence baseline instead of persistence"
        )

    def labels(self, close: np.ndarray, horizon: int, rv: np.ndarray | None = None) -> dict:
        """Label columns (n,) per step: the h-th next stored row (row shift), NaN past the end."""
        n = len(close)
        out = {}
        for h, col in enumerate(target_columns(horizon), start=1):
            y = np.full(n, np.nan)
            if self.kind == "vol":
                with np.errstate(divide="ignore", invalid="ignore"):
                    y[:-h] = np.log(np.asarray(rv, dtype="float64")[h:])
                y[~np.isfinite(y)] = np.nan
            else:
                ratio = close[h:] / close[:-h]
                y[:-h] = np.log(ratio) if self.name == "log_return" else ratio
            out[col] = y
        return out

    def corrects(self, model: Any) -> bool:
        """Whether ``model``'s forecasts map back through a variance factor: the log models of a
        vol target, not those forecasting the variance itself (``forecasts_variance``)."""
        return self.kind == "vol" and not getattr(model, "forecasts_variance", False)

    def variance_factor(self, fitted: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
        """The factor (H,) ``to_output`` multiplies forecast variances by, from unscaled model
        outputs and labels (n, H) of rows the model was fit on; None for a price target."""
        if self.kind != "vol":
            return None
        resid = np.asarray(labels, dtype=np.float64) - np.asarray(fitted, dtype=np.float64)
        return CORRECTIONS[self.correction](resid)

    def to_output(
        self, raw: np.ndarray, last_close: np.ndarray, variance_factor: np.ndarray | None = None
    ) -> np.ndarray:
        """Unscaled model outputs (n, H) -> prices (price kind) or annualised volatility (vol),
        the latter's variance times ``variance_factor`` (H,) when given (see the module doc)."""
        raw = np.asarray(raw, dtype="float64")
        if self.kind == "vol":
            vol = np.exp(raw) * ANNUALISE
            if variance_factor is None:
                return vol
            return vol * np.sqrt(np.asarray(variance_factor, dtype="float64"))[None, :]
        base = np.asarray(last_close, dtype="float64")[:, None]
        return base * np.exp(raw) if self.name == "log_return" else base * raw

    def realised(self, df: pd.DataFrame, ends: np.ndarray, horizon: int) -> np.ndarray:
        """Realised values (n, H) after origins ``ends``, in ``to_output``'s unit."""
        ends = np.asarray(ends, dtype="int64")
        if self.kind == "vol":
            y = df[target_columns(horizon)].to_numpy("float64")[ends]
            return np.exp(y) * ANNUALISE
        steps = np.arange(1, horizon + 1)
        return df["close"].to_numpy("float64")[ends[:, None] + steps[None, :]]

    def aux(self, df: pd.DataFrame, ends: np.ndarray) -> dict[str, np.ndarray]:
        """What the scores need beyond y_true/y_pred: for vol, the origin's RV (the persistence
        forecast, annualised) and the next close (the volatility-targeting test's return)."""
        if self.kind != "vol":
            return {}
        ends = np.asarray(ends, dtype="int64")
        close = df["close"].to_numpy("float64")
        nxt = np.full(len(ends), np.nan)
        ok = ends + 1 < len(close)
        nxt[ok] = close[ends[ok] + 1]
        return {
            "rv_origin": np.exp(df["log_rv_d"].to_numpy("float64")[ends]) * ANNUALISE,
            "next_close": nxt,
        }


TARGETS: dict[str, Target] = {
    "log_return": Target("log_return", "price", "price"),
    "price": Target("price", "price", "price"),
    "realized_vol": Target("realized_vol", "vol", "annualised volatility (fraction)"),
}


def get_target(name: str) -> Target:
    """The registered target ``name``; ConfigError listing the valid ones otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown features.target {name!r}; use one of {', '.join(TARGETS)}"
        ) from None
