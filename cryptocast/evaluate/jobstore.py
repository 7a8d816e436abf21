"""Finished backtest jobs kept on disk, so a rerun after a failure redoes only the failed jobs.

Each finished job is written as soon as it ends to ``<report parent>/.<report name>.jobs/`` as
one ``<key>.npz`` (numpy arrays plus one JSON string; no pickle, read with
``allow_pickle=False``), written to a temporary file and renamed into place. The key
(:func:`job_key`) is a hash of everything the job's result depends on:

- the job's resolved config (``job_config``), less the keys that only pick the grid or the
  output (``backtest.models/symbols/timeframes/workers/metrics/report_dir``);
- the content of the series' feature table (a fetch that changes a candle changes the key), and
  for a pooled job's result the content and order of every table it trained on;
- the torch thread count (it changes a result's last bits);
- the versions of cryptocast, torch, numpy and pandas, and a hash of cryptocast's own source.

A stored job is reused only under the same key, so a reused result is the one a fresh run would
compute. An unreadable entry is ignored (the job runs again). The folder is removed once a
complete report is written; it lives beside the report, not in it, because the report folder is
replaced as a whole on every write.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.config.schema import Config

# keys that choose which jobs run or where the report goes, never what one job computes
NOT_JOB_KEYS = ("models", "symbols", "timeframes", "workers", "metrics", "report_dir")
# settings only pooled jobs read (evaluate/pooled.py)
POOLED_KEYS = (("backtest", "pooled"), ("train", "universe"), ("model", "series_embedding"))
_ARRAYS = ("timestamps", "folds", "last_close", "y_true", "y_pred", "y_quantiles")
_ARRAYS += ("raw_quantiles", "origin_rows", "calibration_of")


def jobs_folder(report_dir: str | Path) -> Path:
    """Where the finished jobs of the report at ``report_dir`` are kept until it is complete."""
    report_dir = Path(report_dir)
    return report_dir.parent / f".{report_dir.name}.jobs"


@cache
def code_hash() -> str:
    """Hash of cryptocast's source files: a code change invalidates every stored job."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def table_hash(df: pd.DataFrame) -> str:
    """Hash of a feature table's columns, index and values."""
    h = hashlib.sha256(json.dumps([str(c) for c in df.columns]).encode())
    h.update(pd.util.hash_pandas_object(df, index=True).to_numpy().tobytes())
    return h.hexdigest()


def job_key(
    job_cfg: Config, table_digest: str, threads: int, pool: list[tuple[str, str]] | None = None
) -> str:
    """The key of one job: its config (``job_config``), its table's hash and its thread count.

    ``pool``: a pooled job's result for ``job_cfg.data.symbol``: every (symbol, table hash) it
    trained on, in stacking order. A per-series job's key leaves out the pooled-only settings
    (``backtest.pooled``, ``train.universe``, ``model.series_embedding``), which it never reads.
    """
    from cryptocast.training.runs import package_versions

    d = job_cfg.to_dict()
    d["backtest"] = {k: v for k, v in d["backtest"].items() if k not in NOT_JOB_KEYS}
    if pool is None:
        for section, key in POOLED_KEYS:
            d[section].pop(key, None)
    versions = {k: v for k, v in package_versions().items() if k in ("cryptocast", "torch")}
    versions |= {"numpy": np.__version__, "pandas": pd.__version__, "code": code_hash()}
    blob = {"config": d, "table": table_digest, "threads": threads, "versions": versions}
    if pool is not None:
        blob["pool"] = [list(p) for p in pool]
    text = json.dumps(blob, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class JobStore:
    """Finished ``JobResult``s by key in one folder (created on the first write)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def get(self, key: str) -> Any:
        """The stored ``JobResult`` under ``key``, or None (absent or unreadable: run it again)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return _from_arrays({k: z[k] for k in z.files})
        except Exception:  # a torn or foreign file is not an error: the job simply runs again
            return None

    def put(self, key: str, result: Any) -> None:
        """Store ``result`` under ``key`` atomically (a crash leaves the old entry or none)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{uuid.uuid4().hex[:8]}.tmp.npz"
        try:
            np.savez(tmp, **_to_arrays(result))
            os.replace(tmp, self.path(key))
        finally:
            tmp.unlink(missing_ok=True)

    def clear(self) -> None:
        """Remove the folder and everything in it."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _times(a: np.ndarray) -> tuple[np.ndarray, list | None]:
    """Origin times as int64 ticks plus (unit, zone): an object array of Timestamps would need
    pickle."""
    if a.dtype != object:
        return a, None
    idx = pd.DatetimeIndex(a)
    return idx.asi8, [idx.unit, str(idx.tz) if idx.tz is not None else None]


def _untimes(a: np.ndarray, how: list | None) -> np.ndarray:
    if how is None:
        return a
    unit, tz = how
    idx = pd.DatetimeIndex(a.view(f"datetime64[{unit}]"))
    return (idx.tz_localize("UTC").tz_convert(tz) if tz else idx).to_numpy(object)


def _to_arrays(r: Any) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {}
    for f in fields(r):
        v = getattr(r, f.name)
        if f.name == "timestamps":
            out["a_timestamps"], meta["times"] = _times(np.asarray(v))
        elif f.name in _ARRAYS:
            if v is not None:
                out[f"a_{f.name}"] = np.asarray(v)
        elif f.name == "aux":
            out |= {f"x_{k}": np.asarray(a) for k, a in v.items()}
        elif f.name == "calibration_sets":
            meta["n_cal"] = len(v)
            for i, (zq, zy) in enumerate(v):
                out[f"c_{i}_q"], out[f"c_{i}_y"] = np.asarray(zq), np.asarray(zy)
        else:  # symbol, timeframe, model, fold_info, seconds, data_range, quantile_levels
            meta[f.name] = v
    out["meta"] = np.array(json.dumps(meta, default=_jsonable))
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot store {type(v).__name__} in a job entry")


def _from_arrays(z: dict[str, np.ndarray]) -> Any:
    from cryptocast.evaluate.walkforward import JobResult

    meta = json.loads(str(z["meta"]))
    kw: dict[str, Any] = {k: z.get(f"a_{k}") for k in _ARRAYS}
    kw["timestamps"] = _untimes(z["a_timestamps"], meta.pop("times"))
    kw["aux"] = {k[2:]: v for k, v in z.items() if k.startswith("x_")}
    kw["calibration_sets"] = [(z[f"c_{i}_q"], z[f"c_{i}_y"]) for i in range(meta.pop("n_cal"))]
    kw["data_range"] = tuple(meta.pop("data_range"))
    levels = meta.pop("quantile_levels")
    kw["quantile_levels"] = tuple(levels) if levels is not None else None
    return JobResult(**kw, **meta)
