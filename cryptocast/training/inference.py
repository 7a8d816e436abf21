"""One prediction path for backtest and forecast: model + scalers + feature list -> prices.

``Predictor`` bundles what turns a feature table into price forecasts. The backtest builds it
from a freshly trained fold (``from_prepared``); the daily forecast job builds it from a checkpoint
(``from_checkpoint``). Both call ``predict_rows``, so a forecast equals what the backtest harness
would have predicted for the same window. For a volatility target it also carries the target's
bias correction of log forecasts (``variance_factor``, see ``features/targets.py``), estimated
once when the model is fitted, from the rows it was fit on, and stored in the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.errors import CheckpointError, DataError


@dataclass
class Predictor:
    model: Any
    feature_names: list[str]
    x_scaler: Any
    y_scaler: Any
    lookback: int
    horizon: int
    target: str
    meta: dict[str, Any] | None = None
    variance_factor: np.ndarray | None = None  # (H,) vol targets' mapping back; None: none
    # a pooled model with a series embedding: the series' index, appended to its scaled rows
    series_index: int | None = None

    @classmethod
    def from_prepared(cls, model: Any, data: Any) -> Predictor:
        return cls(
            model,
            list(data.feature_names),
            data.x_scaler,
            data.y_scaler,
            data.lookback,
            data.horizon,
            data.target,
            variance_factor=fit_variance_factor(model, data),
        )

    @classmethod
    def from_checkpoint(cls, path: Path, symbol: str | None = None) -> Predictor:
        """The checkpoint's predictor; of a pooled run, ``symbol``'s (see ``pooled.series_meta``:
        a series outside the pool comes back without scalers, for ``outside_predictor``)."""
        from cryptocast.training.checkpoint import load_checkpoint

        model, meta = load_checkpoint(path)
        return cls.from_loaded(model, meta, Path(path), symbol)

    @classmethod
    def from_loaded(
        cls, model: Any, meta: dict[str, Any], path: Path, symbol: str | None = None
    ) -> Predictor:
        """The predictor of a loaded checkpoint (``load_checkpoint``'s model and meta)."""
        from cryptocast.features.windows import Scaler
        from cryptocast.training.pooled import series_meta

        meta = series_meta(meta, symbol, Path(path).parent.name)
        try:
            target = str(meta["target"])
            factor = meta["variance_factor"] if target == "realized_vol" else None
            x, y = meta["x_scaler"], meta["y_scaler"]
            return cls(
                model,
                list(meta["feature_names"]),
                None if x is None else Scaler.from_dict(x),
                None if y is None else Scaler.from_dict(y),
                int(meta["lookback"]),
                int(meta["horizon"]),
                target,
                meta,
                None if factor is None else np.asarray(factor, dtype=np.float64),
                meta.get("series_index"),
            )
        except KeyError as err:
            raise CheckpointError(f"{path}: checkpoint lacks {err.args[0]!r}; retrain") from None

    def scaled_table(self, df: pd.DataFrame) -> np.ndarray:
        """Feature table -> (N, F) float32 scaled with this predictor's training statistics
        (N, F + 1 with a pooled model's series index)."""
        from cryptocast.features.pooled import append_series_id
        from cryptocast.features.windows import apply_scalers

        X = apply_scalers(df, self.feature_names, self.x_scaler)
        return X if self.series_index is None else append_series_id(X, self.series_index)

    @property
    def levels(self) -> tuple[float, ...] | None:
        """Quantile levels the model predicts; None for a point model."""
        from cryptocast.models.distribution import levels_of

        return levels_of(self.model)

    def predict_rows(
        self, X: np.ndarray, close: np.ndarray, ends: np.ndarray, device: str = "cpu"
    ) -> np.ndarray:
        """Price forecasts (n, H) for the windows whose last input row is ``ends``; the median
        of a quantile model."""
        return self.predict_distribution(X, close, ends, device)[0]

    def predict_distribution(
        self, X: np.ndarray, close: np.ndarray, ends: np.ndarray, device: str = "cpu"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(point prices (n, H), quantile prices (n, H, Q) or None for a point model)``.

        Quantiles map to prices through the same target -> price map as points (monotone, so
        they stay ordered); the point forecast of a quantile model is its median.
        """
        from cryptocast.features.table import target_to_price
        from cryptocast.models.distribution import median_index, quantiles_to_prices
        from cryptocast.training.loop import predict_scaled

        ends = np.asarray(ends, dtype=np.int64)
        if len(ends) and (ends.min() < self.lookback - 1 or ends.max() >= len(X)):
            raise DataError(
                f"window ends {ends.min()}..{ends.max()} need rows outside the table "
                f"(lookback {self.lookback}, {len(X)} rows)"
            )
        close = np.asarray(close, dtype=np.float64)
        levels = self.levels
        if hasattr(self.model, "predict_series"):  # random-walk baselines: log-return quantiles
            q = quantiles_to_prices(
                self.model.predict_series(close, ends), close[ends], "log_return"
            )
            return q[..., median_index(levels)], q
        scaled = predict_scaled(self.model, X, ends, self.lookback, device=device)
        if levels is None:
            raw = self.y_scaler.inverse_transform(scaled)
            return target_to_price(raw, close[ends], self.target, self.variance_factor), None
        # (n, H, Q): the per-step target scaler applies to every level alike
        raw = self.y_scaler.inverse_transform(scaled.transpose(0, 2, 1)).transpose(0, 2, 1)
        q = quantiles_to_prices(raw, close[ends], self.target)
        return q[..., median_index(levels)], q

    def predict_frame(self, df: pd.DataFrame, ends: np.ndarray) -> np.ndarray:
        """Price forecasts (n, H) for rows ``ends`` of an unscaled feature table."""
        return self.predict_rows(self.scaled_table(df), df["close"].to_numpy("float64"), ends)


def fit_variance_factor(model: Any, data: Any) -> np.ndarray | None:
    """The target's mapping-back factor (H,) of a fitted log model of volatility, from its
    residuals on the prepared training and validation windows (never the test segment: every one
    ends before the first origin it forecasts); None for a price target, a model forecasting the
    variance itself, or a quantile model (a quantile maps back through ``exp`` exactly)."""
    from cryptocast.features.targets import get_target
    from cryptocast.models.distribution import levels_of
    from cryptocast.training.loop import predict_scaled

    target = get_target(data.target)
    if not target.corrects(model) or levels_of(model) is not None:
        return None
    rows = np.concatenate([data.ends[s] for s in ("train", "val") if s in data.ends])
    if len(rows) == 0:
        return None
    fitted = data.y_scaler.inverse_transform(predict_scaled(model, data.X, rows, data.lookback))
    labels = data.y_scaler.inverse_transform(data.Y[rows].astype("float64"))
    return target.variance_factor(fitted, labels)


def predict_prices(model: Any, data: Any, ends: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Price forecasts (n, H) for windows ending at ``ends``, through the one ``Predictor`` path."""
    return Predictor.from_prepared(model, data).predict_rows(data.X, data.close, ends, device)
