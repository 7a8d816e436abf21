"""What one series' forecast did: ``ForecastResult``, returned by ``forecast.forecast_series``
and printed by the CLI (a table, or ``--json`` through ``to_dict``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.timeframes import human_duration


@dataclass
class ForecastResult:
    """What one series' forecast did. ``rows`` holds this run's forecast (one row per step)."""

    exchange: str
    symbol: str
    timeframe: str
    run_id: str
    model: str
    log_path: Path
    last_candle: pd.Timestamp
    last_close: float
    rows: pd.DataFrame
    added: int
    stale: bool
    stale_reason: str | None = None
    made_at: pd.Timestamp | None = None
    trained_until: pd.Timestamp | None = None
    gap_reason: str | None = None
    new_candles: int | None = None  # None: no fetch
    scored: int = 0
    live: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the job repaired on its way, said once
    # a quantile run's calibration (forecasting.calibration): {"method": cqr|aci|none, ...}
    calibration: dict[str, Any] | None = None

    @property
    def series(self) -> str:
        return f"{self.exchange} {self.symbol} {self.timeframe}"

    @property
    def model_age(self) -> pd.Timedelta | None:
        """``made_at - trained_until``: how far the model's newest training candle lies back."""
        if self.made_at is None or self.trained_until is None:
            return None
        return self.made_at - self.trained_until

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (timestamps as ISO strings, NaN as None)."""

        def num(x: Any) -> Any:
            return None if x is None or (isinstance(x, float) and not np.isfinite(x)) else x

        return {
            "series": self.series,
            "exchange": self.exchange,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "run_id": self.run_id,
            "model": self.model,
            "log": str(self.log_path),
            "last_candle": self.last_candle.isoformat(),
            "last_close": self.last_close,
            "added": self.added,
            "stale": self.stale,
            "stale_reason": self.stale_reason,
            "gap": self.gap_reason is not None,
            "gap_reason": self.gap_reason,
            "made_at": None if self.made_at is None else self.made_at.isoformat(),
            "trained_until": None if self.trained_until is None else self.trained_until.isoformat(),
            "model_age": None if self.model_age is None else human_duration(self.model_age),
            "new_candles": self.new_candles,
            "forecast": [
                {
                    "step": int(r.step),
                    "target_time": r.target_time.isoformat(),
                    **(
                        {"predicted_vol": float(r.predicted_vol)}  # annualised, a fraction
                        if "predicted_vol" in self.rows.columns
                        else {
                            "predicted_close": float(r.predicted_close),
                            "predicted_return": float(r.predicted_return),
                            # quantile models: {level: predicted close}
                            **(
                                {"quantiles": json.loads(r.quantiles)}
                                if getattr(r, "quantiles", "")
                                else {}
                            ),
                            **(
                                {"calibrated_quantiles": json.loads(r.calibrated_quantiles)}
                                if getattr(r, "calibrated_quantiles", "")
                                else {}
                            ),
                        }
                    ),
                }
                for r in self.rows.itertuples()
            ],
            "scored": self.scored,
            "live": {m: {k: num(v) for k, v in d.items()} for m, d in self.live.items()},
            "notes": list(self.notes),
            "calibration": self.calibration,
        }
