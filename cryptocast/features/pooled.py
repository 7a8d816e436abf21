"""One training set over many series: each scaled by its own training rows, then stacked.

A pooled ("global") model trains on the windows of several series at once (darts and
neuralforecast call it a global model). Every series is first prepared alone
(``windows.prepare``: its scalers fit on ITS training rows only, its validation tail its own),
then the scaled tables are stacked row-wise into one :class:`PooledData`, which the training
loop reads exactly like a ``PreparedData``: ``X`` (N, F), ``Y`` (N, H) and the window origins
``ends`` of each segment, shifted by the row offset of their series. A window never straddles two
series: its origin ``e`` keeps ``e-L+1`` and ``e+H`` inside its own series (``window_ends``).

With one series the stacked arrays are that series' arrays, so a pooled model on one series is
the per-series model, bit for bit (tests/test_pooled.py).

An optional learned series embedding (``model.series_embedding``, models/series.py) reads the
series' index from one extra column appended to ``X`` (:func:`with_series_id`); without it the
model never learns which series a window came from, so it can forecast a series it never saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from cryptocast.errors import DataError
from cryptocast.features.windows import PreparedData


@dataclass
class PooledData:
    """Stacked, per-series-scaled windows of several series; what ``training.loop.fit`` reads."""

    series: list[str]  # symbols, in stacking order
    parts: list[PreparedData]  # each series prepared alone: its scalers, segments, ends
    offsets: list[int]  # row of each series' first row in X
    X: np.ndarray  # (N, F) float32 (F + 1 with the series-id column)
    Y: np.ndarray  # (N, H) float32, each series scaled with its own y_scaler
    timestamps: np.ndarray  # (N,) datetime64[ns] candle open times, for leakage checks
    ends: dict[str, np.ndarray] = field(default_factory=dict)  # segment -> pooled origins
    lookback: int = 1
    horizon: int = 1
    target: str = "log_return"
    feature_names: list[str] = field(default_factory=list)

    def locate(self, rows: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """Pooled rows -> ``[(symbol, that series' own rows)]`` (rows of no series dropped)."""
        rows = np.asarray(rows, dtype=np.int64)
        bounds = [*self.offsets, len(self.X)]
        out = []
        for i, sym in enumerate(self.series):
            mine = rows[(rows >= bounds[i]) & (rows < bounds[i + 1])]
            out.append((sym, mine - bounds[i]))
        return out


def append_series_id(X: np.ndarray, index: int) -> np.ndarray:
    """``X`` (N, F) with the series index as one more, unscaled, last column (N, F + 1)."""
    ids = np.full((len(X), 1), float(index), dtype=np.float32)
    return np.concatenate([X, ids], axis=1)


def with_series_id(data: PreparedData, index: int) -> PreparedData:
    """``data`` whose ``X`` carries the series index as one more, unscaled, last column."""
    return replace(data, X=append_series_id(data.X, index))


def pool(
    series: list[str], parts: list[PreparedData], series_ids: list[int] | None = None
) -> PooledData:
    """Stack prepared series into one training set; ``series_ids``: each series' index for the
    series embedding, appended to its rows as one more column (None: no such column).

    Raises:
        DataError: no series, or series whose feature columns differ (another features config).
    """
    if not parts:
        raise DataError("a pooled model needs at least one series with training windows")
    first = parts[0]
    for sym, p in zip(series, parts, strict=True):
        if p.feature_names != first.feature_names:
            raise DataError(
                f"{sym}'s feature table has other columns than {series[0]}'s; rebuild its "
                "features with the same features config"
            )
    if series_ids is not None:
        parts = [with_series_id(p, i) for p, i in zip(parts, series_ids, strict=True)]
    offsets = np.cumsum([0] + [len(p.X) for p in parts[:-1]]).tolist()
    segments = list(dict.fromkeys(seg for p in parts for seg in p.ends))
    ends = {
        seg: np.concatenate([p.ends.get(seg, np.empty(0, np.int64)) + o
                             for p, o in zip(parts, offsets, strict=True)]).astype(np.int64)
        for seg in segments
    }  # fmt: skip
    # one series: its own arrays (no copy), so the fit is the per-series fit bit for bit
    stack = (lambda a: a[0]) if len(parts) == 1 else np.concatenate
    return PooledData(
        series=list(series),
        parts=list(parts),
        offsets=[int(o) for o in offsets],
        X=stack([p.X for p in parts]),
        Y=stack([p.Y for p in parts]),
        timestamps=stack([p.timestamps for p in parts]),
        ends=ends,
        lookback=first.lookback,
        horizon=first.horizon,
        target=first.target,
        feature_names=list(first.feature_names),
    )
