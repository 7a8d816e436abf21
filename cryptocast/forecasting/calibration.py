"""Conformal calibration of a quantile run's daily forecasts: the one seam between the daily job
and ``backtest.calibration``.

A run trained with ``backtest.calibration: cqr | aci`` stores in its checkpoint the conformity
scores of its validated model on its validation windows (``conformal.calibration_record``: rows
before the run's first test origin only). Each forecast logs the model's raw quantiles
(``quantiles``) and the calibrated ones (``calibrated_quantiles``, with the method in
``calibration``):

- ``cqr``: each interval widens by the stored scores' conformal quantile (``conformal.cqr_scores``,
  the backtest's CQR);
- ``aci``: the run's logged origins before this one are replayed, in time order, with their raw
  quantiles and realised closes, through ``conformal.aci_scores``, the function the backtest runs,
  so the level after N logged outcomes is the backtest's at the same origin (an h-step outcome
  counts once it is stored, as in the backtest);
- a quantile run without calibration logs ``calibration = "none"`` and the forecast says
  "uncalibrated".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.errors import CheckpointError

#: the log's value of ``calibration`` for a quantile run trained without one
NONE = "none"


def calibrate_rows(
    inp: Any, log: pd.DataFrame, rows: pd.DataFrame, run_dir: Path | None = None
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """(``rows`` with ``calibrated_quantiles`` and ``calibration`` set, what was done).

    ``inp``: the job's ``kinds.Inputs`` (the predictor's checkpoint meta, the stored candles);
    ``log``: the series' forecast log, read under its lock; ``run_dir``: the run's folder, whose
    siblings hold the earlier runs of the same config (their ``calibration.json``). Rows without
    quantiles (a point model, a volatility run) come back unchanged with None.
    """
    if "quantiles" not in rows.columns or (rows["quantiles"].astype(str) == "").all():
        return rows, None
    meta = inp.predictor.meta or {}
    rec = meta.get("calibration")
    rows = rows.copy()
    if not rec:
        rows["calibrated_quantiles"], rows["calibration"] = "", NONE
        return rows, {"method": NONE}
    from cryptocast.evaluate.conformal import aci_scores, cqr_scores
    from cryptocast.forecasting.log import quantiles_json

    levels = [float(t) for t in rec["levels"]]
    if list(map(float, inp.predictor.levels)) != levels:
        raise CheckpointError(
            f"{rows['run_id'].iloc[0]}: the checkpoint's calibration levels {levels} differ from "
            f"its model's {list(inp.predictor.levels)}; retrain the run"
        )
    scores = [np.asarray(s, dtype=np.float64) for s in rec["scores"]]
    lc = float(rows["last_close"].iloc[0])
    zq = np.log(_quantiles(rows["quantiles"]) / lc)[None]  # (1, H, Q)
    info: dict[str, Any] = {"method": rec["method"], "n_scores": int(rec.get("n_scores", 0))}
    if rec["method"] == "aci":
        ts = pd.DatetimeIndex(inp.candles["timestamp"])
        origin = rows["last_candle"].iloc[0]
        run_id = str(rows["run_id"].iloc[0])
        hq, hy, hrows, hruns = history(
            log, str(rows["config_hash"].iloc[0]), origin, inp.candles, zq.shape
        )
        # each origin's own run's scores, as the backtest pools each fold's own calibration set
        runs = sorted(set(hruns) - {run_id})
        symbol = (meta.get("data") or {}).get("symbol")
        sets = [scores] + [_run_scores(run_dir, r, levels, scores, symbol) for r in runs]
        cal_of = [0 if r == run_id else 1 + runs.index(r) for r in hruns] + [0]
        out, used = aci_scores(
            np.concatenate([hq, zq]), np.concatenate([hy, np.full(zq.shape[:2], np.nan)]),
            np.concatenate([hrows, [ts.get_loc(origin)]]), sets, np.asarray(cal_of, np.int64),
            levels, float(rec["gamma"]),
        )  # fmt: skip
        cal = out[-1]
        info["n_origins"] = int(len(hq))
        info["n_outcomes"] = int(np.isfinite(hy).sum())
        # the level alpha_t of each interval (by its nominal coverage) at each step
        info["alpha"] = {
            f"{1 - a:.4g}": [float(v) for v in used[-1, p]]
            for p, (_, _, a) in enumerate(rec["pairs"])
        }
    else:
        cal = cqr_scores(zq, scores, levels)[0]
    rows["calibrated_quantiles"] = [quantiles_json(levels, lc * np.exp(qh)) for qh in cal]
    rows["calibration"] = rec["method"]
    return rows, info


def _quantiles(texts: pd.Series) -> np.ndarray:
    """The log's JSON quantile texts -> prices (n, Q), in the levels' order."""
    return np.array([list(json.loads(t).values()) for t in texts], dtype=np.float64)


def _run_scores(
    run_dir: Path | None, run_id: str, levels: list[float], default: list, symbol: Any = None
) -> list:
    """The stored scores of an earlier run of the config (``calibration.json`` in its folder; a
    pooled run's holds one record per symbol under ``members``); ``default`` (the current run's)
    when that run is gone or calibrated other levels."""
    try:
        rec = json.loads((Path(run_dir).parent / run_id / "calibration.json").read_text())
        rec = rec["members"][symbol] if "members" in rec else rec
        if [float(t) for t in rec["levels"]] == levels:
            return [np.asarray(s, dtype=np.float64) for s in rec["scores"]]
    except (OSError, TypeError, ValueError, KeyError):
        pass
    return default


def history(
    log: pd.DataFrame, config_hash: str, origin: pd.Timestamp, candles: pd.DataFrame, shape: tuple
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The logged origins before ``origin`` of the runs of this config (``config_hash``: a weekly
    retrain continues the level, as the backtest's ACI runs on across its retrains), in time
    order: raw quantiles ``zq`` (n, H, Q) and outcomes ``zy`` (n, H) in log returns (NaN until
    the target candle is stored), each origin's row in ``candles`` and its run. An origin logged
    by two runs counts once (the first made); one missing a step, or not among the candles, is
    left out.
    """
    _, H, Q = shape
    none = (np.empty((0, H, Q)), np.empty((0, H)), np.empty(0, np.int64), [])
    sel = (
        (log["config_hash"].astype(str) == config_hash)
        & (log["quantiles"].astype(str) != "")
        & (log["last_candle"] < origin)
    )
    hist = log[sel].sort_values(["last_candle", "made_at", "step"], kind="stable")
    if hist.empty:
        return none
    first_run = hist.groupby("last_candle", sort=False)["run_id"].transform("first")
    hist = hist[hist["run_id"] == first_run]
    ts = pd.DatetimeIndex(candles["timestamp"])
    closes = pd.Series(candles["close"].to_numpy("float64"), index=ts)
    zq, zy, rows, runs = [], [], [], []
    for last, grp in hist.groupby("last_candle", sort=True):
        row = ts.get_indexer([last])[0]
        if row < 0 or list(grp["step"]) != list(range(1, H + 1)):
            continue
        q = _quantiles(grp["quantiles"])
        if q.shape != (H, Q):
            continue
        lc = float(grp["last_close"].iloc[0])
        real = grp["realised_close"].to_numpy("float64")
        stored = closes.reindex(pd.DatetimeIndex(grp["target_time"])).to_numpy()
        real = np.where(np.isfinite(real), real, stored)
        zq.append(np.log(q / lc))
        zy.append(np.log(real / lc))
        rows.append(row)
        runs.append(str(grp["run_id"].iloc[0]))
    if not rows:
        return none
    return np.stack(zq), np.stack(zy), np.asarray(rows, dtype=np.int64), runs


def live_calibrated(log: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Live coverage (80, 90 %) and CRPS (log-return units) per model over the scored rows with
    calibrated quantiles, of the calibrated and of the raw quantiles on the same rows:
    ``{model: {calibration, n_calibrated, calibrated_coverage_90, raw_coverage_90, ...,
    calibrated_crps, raw_crps}}``."""
    from cryptocast.evaluate.probabilistic import crps_from_quantiles
    from cryptocast.models.distribution import interval_indices

    if "calibrated_quantiles" not in log.columns:
        return {}
    scored = log[log["realised_close"].notna() & (log["calibrated_quantiles"].astype(str) != "")]
    out: dict[str, dict[str, Any]] = {}
    for model, grp in scored.groupby("model", sort=True):
        levels = [float(k) for k in json.loads(grp["calibrated_quantiles"].iloc[0])]
        keep = np.array([[float(k) for k in json.loads(t)] == levels for t in grp["quantiles"]])
        grp = grp[keep]
        if grp.empty:
            continue
        lc = grp["last_close"].to_numpy("float64")
        zy = np.log(grp["realised_close"].to_numpy("float64") / lc)
        rec: dict[str, Any] = {
            "calibration": ",".join(sorted(set(grp["calibration"].astype(str)))),
            "n_calibrated": int(len(grp)),
        }
        for name, col in (("calibrated", "calibrated_quantiles"), ("raw", "quantiles")):
            z = np.log(_quantiles(grp[col]) / lc[:, None])
            for cov in (80, 90):
                idx = interval_indices(levels, cov)
                if idx is not None:
                    inside = (z[:, idx[0]] <= zy) & (zy <= z[:, idx[1]])
                    rec[f"{name}_coverage_{cov}"] = float(inside.mean())
            rec[f"{name}_crps"] = float(crps_from_quantiles(z, zy, levels).mean())
        out[str(model)] = rec
    return out
