"""Self-describing checkpoints: weights plus everything ``forecast`` and ``backtest`` need.

Saved with ``torch.save`` of plain containers (tensors, dicts, lists, str, numbers) and loaded with
``torch.load(weights_only=True)``, so a tampered file cannot execute code: the unpickler refuses
anything but those types.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

from cryptocast.errors import CheckpointError, brief

FORMAT = "cryptocast-checkpoint"
VERSION = 1


def save_checkpoint(path: Path, model: Any, meta: dict[str, Any]) -> None:
    """Atomically write ``{format, version, state_dict, meta}`` to ``path``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    bad = _non_finite(state)
    if bad:
        raise CheckpointError(f"not saving {path}: weight {bad} holds nan/inf; retrain")
    payload = {"format": FORMAT, "version": VERSION, "state_dict": state, "meta": meta}
    fd, tmp = tempfile.mkstemp(prefix=".ckpt-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _non_finite(state: dict[str, Any]) -> str | None:
    """Name of the first floating-point tensor holding nan/inf, else None."""
    import torch

    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all():
            return name
    return None


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load the raw payload safely; any problem becomes a one-line CheckpointError."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found; train a model with `cryptocast train`")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise on stderr
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # refused unpickling (tampered), random bytes, truncated zips
        # torch's own text is long and suggests weights_only=False: never for untrusted files
        why = (
            "content other than tensors and plain containers was refused"
            if isinstance(err, pickle.UnpicklingError)
            else f"{type(err).__name__}: unreadable, truncated or another format"
        )
        raise CheckpointError(
            f"{path} is not a readable cryptocast checkpoint ({why}); retrain or restore it"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a cryptocast checkpoint; retrain with `cryptocast train`"
        )
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {payload.get('version')}, this cryptocast reads {VERSION}"
        )
    return payload


def load_checkpoint(path: Path) -> tuple[Any, dict[str, Any]]:
    """Rebuild the model from a checkpoint; returns ``(model in eval mode, meta)``."""
    from cryptocast.config.schema import ModelConfig
    from cryptocast.models.registry import build_model
    from cryptocast.models.series import build_pooled_model
    from cryptocast.training.pooled import POOLED, n_series

    payload = read_checkpoint(path)
    try:
        meta = payload["meta"]
        cfg = ModelConfig.model_validate(meta["model_config"])
        shape = (int(meta["n_features"]), int(meta["horizon"]), int(meta["lookback"]))
        if POOLED in meta:  # with model.series_embedding: its embedding table as well
            model = build_pooled_model(cfg, *shape, n_series(meta))
        else:
            model = build_model(cfg, *shape)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        first = brief(err)
        raise CheckpointError(f"{path}: checkpoint does not match its model ({first})") from None
    bad = _non_finite(payload["state_dict"])
    if bad:
        raise CheckpointError(
            f"{path}: weight {bad} holds nan/inf, the checkpoint is unusable; retrain the run"
        )
    check_run_pairing(path, meta)
    model.eval()
    return model, meta


def _what(model: Any, data: Any, training_hash: Any) -> str:
    """``lstm on binance ETH/USDT 1d (training hash ab12...)``: one side of a pairing message."""
    d = data if isinstance(data, dict) else {}
    series = " ".join(str(d.get(k, "?")) for k in ("exchange", "symbol", "timeframe"))
    return f"{model or '?'} on {series} (training hash {training_hash or '?'})"


def check_run_pairing(path: Path, meta: dict[str, Any]) -> None:
    """CheckpointError when ``path`` sits in a run folder whose record is of another training.

    ``train`` writes ``metrics.json`` (training and config hashes, model) and ``config.yaml``
    (series) beside ``checkpoint.pt``; the checkpoint carries the same hashes and series in its
    meta. A checkpoint copied in from another run (another series, model or config) would
    otherwise forecast under this run's id. A lone checkpoint file (no metrics.json beside it)
    describes only itself and is not checked.
    """
    import json

    import yaml

    path = Path(path)
    metrics_file = path.parent / "metrics.json"
    if not metrics_file.is_file():
        return
    try:
        recorded = json.loads(metrics_file.read_text())
        config_file = path.parent / "config.yaml"
        run_cfg = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise CheckpointError(
            f"{metrics_file.parent}: its metrics.json or config.yaml is unreadable "
            f"({type(err).__name__}), so {path.name} cannot be checked against the run; "
            "restore them or retrain"
        ) from None
    recorded = recorded if isinstance(recorded, dict) else {}
    run_cfg = run_cfg if isinstance(run_cfg, dict) else {}
    run_data = run_cfg.get("data") if isinstance(run_cfg.get("data"), dict) else {}
    ck_data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    differs = [
        key
        for key in ("training_hash", "config_hash")
        if recorded.get(key) and meta.get(key) and recorded[key] != meta[key]
    ]
    differs += [
        key
        for key in ("exchange", "symbol", "timeframe")
        if run_data.get(key) and ck_data.get(key) and run_data[key] != ck_data[key]
    ]
    if not differs:
        return
    ck_model = (meta.get("model_config") or {}).get("name")
    run_model = recorded.get("model") or (run_cfg.get("model") or {}).get("name")
    raise CheckpointError(
        f"{path} does not belong to run {path.parent.name}: the checkpoint holds "
        f"{_what(ck_model, ck_data, meta.get('training_hash'))} but the run's metrics.json "
        f"records {_what(run_model, run_data, recorded.get('training_hash'))}; put the run's "
        "own checkpoint back or retrain it (`cryptocast train --config "
        f"{path.parent / 'config.yaml'}`)"
    )
