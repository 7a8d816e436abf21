"""Checkpoints: save -> load gives identical predictions; bad files are refused, never executed."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cryptocast.errors import CheckpointError
from cryptocast.models.registry import build_model, model_names
from cryptocast.training.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from cryptocast.training.inference import Predictor
from cryptocast.training.loop import fit, predict_scaled, seed_everything
from tests.test_train import tiny_config

N_FEATURES, HORIZON, LOOKBACK = 5, 2, 8


pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _meta(cfg, data=None) -> dict:
    meta = {
        "model_config": cfg.model.model_dump(mode="json"),
        "n_features": N_FEATURES,
        "horizon": HORIZON,
        "lookback": LOOKBACK,
    }
    if data is not None:
        meta.update(
            n_features=len(data.feature_names),
            horizon=data.horizon,
            lookback=data.lookback,
            feature_names=list(data.feature_names),
            x_scaler=data.x_scaler.to_dict(),
            y_scaler=data.y_scaler.to_dict(),
            target=data.target,
        )
    return meta


def _saved_model(tmp_path: Path, name: str = "lstm") -> tuple[Path, torch.nn.Module]:
    cfg = tiny_config(model={"name": name})
    seed_everything(0)
    model = build_model(cfg.model, N_FEATURES, HORIZON, LOOKBACK)
    if hasattr(model, "fit_naive"):
        rng = np.random.default_rng(0)
        model.fit_naive(rng.normal(size=(50, HORIZON)), np.full(HORIZON, -0.3))
    if hasattr(model, "fit_series"):  # random-walk quantile baselines: fitted on closes
        model.fit_series(100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.02, 80))))
    path = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint(path, model, _meta(cfg))
    return path, model


@pytest.mark.parametrize("name", model_names())
def test_save_load_gives_identical_predictions(name, tmp_path):
    path, model = _saved_model(tmp_path, name)
    model.train()  # a training-mode redraw or dropout must not leak into the saved copy
    model.eval()
    X = np.random.default_rng(1).normal(size=(60, N_FEATURES)).astype("float32")
    ends = np.arange(LOOKBACK - 1, 60)
    before = predict_scaled(model, X, ends, LOOKBACK)
    loaded, meta = load_checkpoint(path)
    assert not loaded.training and meta["lookback"] == LOOKBACK
    after = predict_scaled(loaded, X, ends, LOOKBACK)
    assert before.shape[:2] == (len(ends), HORIZON)
    np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(after, predict_scaled(loaded, X, ends, LOOKBACK))
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no temp file left


def test_predictor_from_checkpoint_equals_the_trained_one(tmp_path):
    from cryptocast.features.table import compute_features
    from cryptocast.features.windows import prepare, split_bounds
    from tests.conftest import make_ohlcv

    cfg = tiny_config(model={"name": "performer_bilstm"}, train={"epochs": 1})
    df = compute_features(make_ohlcv(300), cfg.features, "1d")
    data = prepare(df, cfg.features, split_bounds(df, cfg.split, 8, 1), True)
    seed_everything(0)
    model = build_model(cfg.model, len(data.feature_names), 1, 8)
    fit(model, data, cfg.train)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, _meta(cfg, data))
    ends = data.ends["test"]
    trained = Predictor.from_prepared(model, data).predict_frame(df, ends)
    restored = Predictor.from_checkpoint(path).predict_frame(df, ends)
    assert np.isfinite(trained).all()
    np.testing.assert_array_equal(trained, restored)


class _Exploit:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _assert_one_line(err: pytest.ExceptionInfo, path: Path) -> None:
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and len(msg) < 300
    assert "weights_only=False" not in msg  # never advise loading an untrusted file unsafely


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_exploit_is_refused_not_executed(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.pt"
    payload = {"format": "cryptocast-checkpoint", "version": 1, "meta": _Exploit(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    assert not marker.exists()
    for loader in (read_checkpoint, load_checkpoint, Predictor.from_checkpoint):
        with pytest.raises(CheckpointError) as err:
            loader(path)
        _assert_one_line(err, path)
    assert not marker.exists()


def test_a_real_checkpoint_with_its_pickle_swapped_is_refused(tmp_path):
    """The realistic attack: a valid checkpoint zip whose data.pkl was replaced by an exploit."""
    import zipfile

    path, _ = _saved_model(tmp_path, "gru")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("/data.pkl"):
                data = pickle.dumps({"format": "cryptocast-checkpoint", "x": _Exploit(marker)}, 2)
            dst.writestr(item, data)
    with pytest.raises(CheckpointError, match="refused") as err:
        load_checkpoint(evil)
    _assert_one_line(err, evil)
    assert not marker.exists()


def _truncated(tmp_path: Path) -> bytes:
    path, _ = _saved_model(tmp_path, "lstm")
    blob = path.read_bytes()
    return blob[: len(blob) // 2]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(lambda tmp: np.random.default_rng(0).bytes(4096), id="random-bytes"),
        pytest.param(lambda tmp: b"", id="empty"),
        pytest.param(lambda tmp: b"model: lstm\nweights: [1, 2]\n", id="yaml-text"),
        pytest.param(_truncated, id="truncated"),
    ],
)
def test_unreadable_files_are_one_line_checkpoint_errors(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content(tmp_path))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    _assert_one_line(err, path)


def test_wrong_format_version_or_shapes_are_checkpoint_errors(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(CheckpointError, match="not a cryptocast checkpoint"):
        load_checkpoint(other)

    path, _ = _saved_model(tmp_path, "gru")
    payload = read_checkpoint(path)
    torch.save({**payload, "version": 99}, path)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(path)

    payload["meta"] = {**payload["meta"], "n_features": N_FEATURES + 1}  # weights no longer fit
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="does not match its model") as err:
        load_checkpoint(path)
    _assert_one_line(err, path)

    del payload["meta"]
    torch.save(payload, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(CheckpointError, match="cryptocast train"):
        load_checkpoint(tmp_path / "nope.pt")
