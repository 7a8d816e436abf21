"""Time-ordered splits, train-only scaling and sliding windows over a feature table.

Conventions (see the contracts): a window is identified by its forecast origin ``e``, the last
input row. Its inputs are rows ``e-L+1 .. e`` and its targets are the ``target_1..target_H``
columns of row ``e``, i.e. closes up to row ``e+H``. Windows are never materialised: a batch is
gathered from the (N, F) table by index arithmetic, so hourly data with L=168 costs one table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.dates import to_timestamp
from cryptocast.config.schema import FeaturesConfig, SplitConfig
from cryptocast.errors import CheckpointError, DataError
from cryptocast.features.table import feature_columns, target_columns

SCALE_FLOOR = 1e-8  # a constant feature gets scale 1 (not 1/0) and transforms to 0
SEGMENTS = ("train", "val", "test")


@dataclass
class Scaler:
    """Per-column affine scaling ``(x - center) / scale``; fitted statistics are plain data."""

    kind: str
    center: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)

    @classmethod
    def fit(cls, X: np.ndarray, kind: str = "standard") -> Scaler:
        """Fit on ``X`` (n, F), ignoring NaNs. ``standard``: mean/std; ``robust``: median/IQR."""
        # C order: the float summation order (and so the last bit) must not depend on how the
        # caller's frame happened to be laid out in memory.
        X = np.ascontiguousarray(X, dtype="float64")
        if X.ndim != 2 or X.shape[0] == 0:
            raise DataError(f"cannot fit a scaler on an array of shape {X.shape}; need (rows>0, F)")
        if kind == "standard":
            center, scale = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
        elif kind == "robust":
            q25, center, q75 = np.nanpercentile(X, [25, 50, 75], axis=0)
            scale = q75 - q25
            # Binary-ish columns can have IQR 0: fall back to their std rather than blow up.
            scale = np.where(scale > SCALE_FLOOR, scale, np.nanstd(X, axis=0))
        else:
            raise DataError(f"unknown scaler kind {kind!r}; use standard or robust")
        center = np.nan_to_num(center)
        scale = np.where(np.isfinite(scale) & (scale > SCALE_FLOOR), scale, 1.0)
        return cls(kind, center, scale)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype="float64") - self.center) / self.scale

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype="float64") * self.scale + self.center

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        try:
            return cls(
                str(d["kind"]),
                np.asarray(d["center"], dtype="float64"),
                np.asarray(d["scale"], dtype="float64"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"scaler statistics are malformed ({err}); retrain") from None


def split_bounds(
    df: pd.DataFrame, split_cfg: SplitConfig, lookback: int, horizon: int
) -> dict[str, tuple[int, int]]:
    """Row ranges ``[lo, hi)`` of the train / val / test segments, in time order.

    ``fraction``: the first ``train`` share of rows, then ``val``, then the rest. ``date``: rows
    before ``val_start``, then before ``test_start``, then the rest. Raises DataError when the
    train or test segment cannot hold one window (lookback + horizon rows).
    """
    n = len(df)
    if split_cfg.method == "fraction":
        a = int(n * split_cfg.train)
        b = int(n * (split_cfg.train + split_cfg.val))
    else:
        ts = pd.DatetimeIndex(df["timestamp"])
        a = int(ts.searchsorted(to_timestamp(split_cfg.val_start, "split.val_start")))
        b = int(ts.searchsorted(to_timestamp(split_cfg.test_start, "split.test_start")))
        if b < a:
            raise DataError(
                f"split.test_start {split_cfg.test_start} is before split.val_start "
                f"{split_cfg.val_start}; put the test segment last"
            )
    bounds = {"train": (0, a), "val": (a, b), "test": (b, n)}
    need = lookback + horizon
    for seg in ("train", "test"):
        lo, hi = bounds[seg]
        if hi - lo < need:
            raise DataError(
                f"the {seg} segment has {hi - lo} rows but one window needs lookback {lookback} "
                f"+ horizon {horizon} = {need}; fetch more history or change split"
            )
    return bounds


def window_ends(
    n_rows: int,
    lo: int,
    hi: int,
    lookback: int,
    horizon: int,
    gap_before: np.ndarray,
    gap_tolerance: int,
    embargo: bool,
) -> np.ndarray:
    """Forecast origins ``e`` of the windows that fit in segment ``[lo, hi)``.

    Kept when ``e-L+1 >= 0``, ``lo <= e``, ``e+H < hi`` (targets stay inside the segment), with
    ``embargo`` also ``e-L+1 >= lo`` (inputs stay inside too), and no row in ``(e-L+1, e+H]``
    follows a gap of more than ``gap_tolerance`` missing candles.
    """
    hi = min(hi, n_rows)
    first = max(lo, lookback - 1, lo + lookback - 1 if embargo else 0)
    last = hi - horizon - 1
    if last < first:
        return np.empty(0, dtype="int64")
    ends = np.arange(first, last + 1, dtype="int64")
    bad = np.asarray(gap_before, dtype="int64")[:n_rows] > gap_tolerance
    # count of bad rows in (e-L+1, e+H] = cs[e+H] - cs[e-L+1]
    cs = np.cumsum(bad)
    n_bad = cs[ends + horizon] - cs[ends - lookback + 1]
    return ends[n_bad == 0]


@dataclass
class PreparedData:
    """Everything the training loop needs, scaled, as arrays (windows are index ``ends``)."""

    feature_names: list[str]
    X: np.ndarray  # (N, F) float32, scaled with x_scaler
    Y: np.ndarray  # (N, H) float32, scaled with y_scaler; NaN where the future is unknown
    close: np.ndarray  # (N,) float64
    timestamps: np.ndarray  # (N,) datetime64[ns]
    ends: dict[str, np.ndarray]  # segment -> (n_windows,) int64 forecast origins
    x_scaler: Scaler
    y_scaler: Scaler
    lookback: int
    horizon: int
    target: str
    dropped_gap_windows: int = 0
    segments: dict[str, tuple[int, int]] = field(default_factory=dict)


def apply_scalers(df: pd.DataFrame, feature_names: list[str], x_scaler: Scaler) -> np.ndarray:
    """Scaled (n, F) float32 features of ``df`` in ``feature_names`` order (forecast time)."""
    missing = [c for c in feature_names if c not in df.columns]
    if missing:
        raise DataError(
            f"feature table lacks {len(missing)} column(s) the model needs (e.g. {missing[0]}); "
            "rebuild features with the model's features config"
        )
    if len(feature_names) != len(x_scaler.center):
        raise CheckpointError(
            f"scaler has {len(x_scaler.center)} features but {len(feature_names)} names were given"
        )
    return x_scaler.transform(df[feature_names].to_numpy("float64")).astype("float32")


def prepare(
    df: pd.DataFrame,
    features_cfg: FeaturesConfig,
    segments: dict[str, tuple[int, int]],
    embargo: bool,
) -> PreparedData:
    """Scale a feature table on its training rows and list each segment's windows.

    ``x_scaler`` is fit on the feature rows ``[lo, hi)`` of ``segments["train"]`` only and
    ``y_scaler`` on the targets of the training windows only, so nothing from validation or test
    leaks into the statistics.
    """
    L, H = features_cfg.lookback, features_cfg.horizon
    names = feature_columns(df)
    tcols = target_columns(H)
    missing = [c for c in tcols if c not in df.columns]
    if missing:
        raise DataError(
            f"feature table has no {missing[0]} column; rebuild features with horizon={H}"
        )
    if "train" not in segments:
        raise DataError("prepare needs a 'train' segment to fit the scalers on")
    n = len(df)
    gaps = df["gap_before"].to_numpy("int64")
    ends: dict[str, np.ndarray] = {}
    dropped = 0
    for seg, (lo, hi) in segments.items():
        ends[seg] = window_ends(n, lo, hi, L, H, gaps, features_cfg.gap_tolerance, embargo)
        all_ends = window_ends(n, lo, hi, L, H, gaps, np.iinfo("int64").max, embargo)
        dropped += len(all_ends) - len(ends[seg])
    # A label can be missing inside the data (a volatility target's day without enough hourly
    # candles): such windows are neither trained nor validated on.
    targets = df[tcols].to_numpy("float64")
    for seg in ends:
        ends[seg] = ends[seg][np.isfinite(targets[ends[seg]]).all(axis=1)]
    if len(ends["train"]) == 0:
        lo, hi = segments["train"]
        raise DataError(
            f"no training window fits: train rows [{lo}, {hi}) with lookback {L} + horizon {H} "
            f"and gap_tolerance {features_cfg.gap_tolerance}; fetch more history or raise "
            "features.gap_tolerance"
        )
    lo, hi = segments["train"]
    feats = df[names].to_numpy("float64")
    x_scaler = Scaler.fit(feats[lo:hi], features_cfg.scaler)
    y_scaler = Scaler.fit(targets[ends["train"]], features_cfg.scaler)
    return PreparedData(
        feature_names=names,
        X=x_scaler.transform(feats).astype("float32"),
        Y=y_scaler.transform(targets).astype("float32"),
        close=df["close"].to_numpy("float64"),
        timestamps=df["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(),
        ends=ends,
        x_scaler=x_scaler,
        y_scaler=y_scaler,
        lookback=L,
        horizon=H,
        target=features_cfg.target,
        dropped_gap_windows=dropped,
        segments=dict(segments),
    )


def realised_closes(close: np.ndarray, ends: np.ndarray, horizon: int) -> np.ndarray:
    """Realised closes (n, H) after origins ``ends``: rows ``e+1 .. e+H`` (row shift, as targets)."""
    steps = np.arange(1, horizon + 1)
    return np.asarray(close)[np.asarray(ends)[:, None] + steps[None, :]]


def gather_windows(X: Any, ends: Any, lookback: int) -> Any:
    """Input windows (B, L, F) for origins ``ends`` (B,) from the table ``X`` (N, F).

    Index arithmetic: ``ends[:, None] + arange(-L+1, 1)`` -> (B, L) row indices, one gather.
    """
    import torch

    offsets = torch.arange(-lookback + 1, 1, device=ends.device)  # (L,)
    return X[ends[:, None] + offsets]  # (B, L, F)


class WindowDataset:
    """Map-style torch Dataset over one segment's windows; shares ``data.X``, copies nothing.

    (Duck-typed rather than subclassing torch.utils.data.Dataset so importing this module does
    not import torch; DataLoader only needs ``__len__`` and ``__getitem__``.)
    """

    def __init__(self, data: PreparedData, segment: str):
        import torch

        self.X = torch.from_numpy(data.X)  # (N, F)
        self.Y = torch.from_numpy(data.Y)  # (N, H)
        self.ends = torch.from_numpy(data.ends[segment])  # (n,)
        self.lookback = data.lookback

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        e = int(self.ends[i])
        return self.X[e - self.lookback + 1 : e + 1], self.Y[e]
