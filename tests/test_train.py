"""The training loop: determinism, early stopping, and no leakage of validation/test rows.

Tiny models on synthetic candles, one or two epochs, one thread (the suite shares 2 cores).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from cryptocast.config.schema import config_from_dict
from cryptocast.errors import ConfigError
from cryptocast.features.targets import VOL_BASELINES
from cryptocast.models.registry import build_model, is_trainable, model_names
from cryptocast.training.inference import predict_prices
from cryptocast.training.loop import fit, resolve_device, seed_everything
from tests.conftest import make_ohlcv

TINY_MODEL = {
    "d_model": 8,
    "n_heads": 2,
    "n_layers": 1,
    "lstm_hidden": 4,
    "nb_features": 8,
    "redraw_interval": 3,  # redraws inside the fit, so determinism covers the FAVOR+ RNG too
    "dim_feedforward": 16,
    "hidden_size": 8,
    "num_layers": 1,
}
TRAINABLE = [n for n in model_names() if is_trainable(n)]


pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def tiny_config(**sections):
    raw = {
        "features": {
            "indicators": [{"name": "rsi", "params": {"window": 14}}],
            "lookback": 8,
            "calendar": False,
        },
        "model": dict(TINY_MODEL),
        "train": {"epochs": 2, "batch_size": 32, "device": "cpu", "num_threads": 1, "patience": 0},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return config_from_dict(raw)


@pytest.fixture(scope="module")
def prepared():
    """PreparedData over 300 synthetic daily candles (about 190 train / 35 val / 35 test)."""
    from cryptocast.features.table import compute_features
    from cryptocast.features.windows import prepare, split_bounds

    cfg = tiny_config()
    df = compute_features(make_ohlcv(300), cfg.features, "1d")
    segments = split_bounds(df, cfg.split, cfg.features.lookback, cfg.features.horizon)
    return prepare(df, cfg.features, segments, cfg.split.embargo)


def _fit(name: str, data, **train):
    cfg = tiny_config(model={"name": name}, train=train)
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, len(data.feature_names), data.horizon, data.lookback)
    return model, fit(model, data, cfg.train)


@pytest.mark.parametrize("name", TRAINABLE)
def test_same_seed_and_config_give_identical_validation_losses(name, prepared):
    _, first = _fit(name, prepared)
    _, second = _fit(name, prepared)
    losses = [row["val_loss"] for row in first.history]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert losses == [row["val_loss"] for row in second.history]
    assert [r["train_loss"] for r in first.history] == [r["train_loss"] for r in second.history]
    # and a different seed really changes something (the check above could not pass by accident)
    _, other = _fit(name, prepared, seed=1)
    assert [r["train_loss"] for r in other.history] != [r["train_loss"] for r in first.history]


PRICE_BASELINES = [n for n in model_names() if not is_trainable(n) and n not in VOL_BASELINES]


@pytest.mark.parametrize("name", PRICE_BASELINES)  # vol baselines: tests/test_volatility.py
def test_baselines_are_fitted_in_closed_form(name, prepared):
    model, result = _fit(name, prepared)
    assert result.trained is False and result.history == []
    pred = predict_prices(model, prepared, prepared.ends["test"])
    assert pred.shape == (len(prepared.ends["test"]), 1) and np.isfinite(pred).all()
    if name == "persistence":  # "no change": the last close carried forward
        np.testing.assert_allclose(pred[:, 0], prepared.close[prepared.ends["test"]], rtol=1e-5)


def test_early_stopping_restores_the_best_weights(prepared, monkeypatch):
    import cryptocast.training.loop as train_mod

    scripted = iter([1.0, 0.5, 0.9, 0.95, 0.1, 0.1])  # best at epoch 2, then 2 bad epochs
    monkeypatch.setattr(train_mod, "evaluate_loss", lambda *a, **k: next(scripted))
    snapshots: list[dict[str, torch.Tensor]] = []
    cfg = tiny_config(model={"name": "lstm"}, train={"epochs": 6, "patience": 2, "lr": 0.05})
    seed_everything(0)
    model = build_model(cfg.model, len(prepared.feature_names), 1, prepared.lookback)

    def snapshot(row):
        snapshots.append({k: v.detach().clone() for k, v in model.state_dict().items()})

    result = fit(model, prepared, cfg.train, progress_cb=snapshot)
    assert result.stopped_early and len(result.history) == 4
    assert result.best_epoch == 2 and result.best_val_loss == 0.5
    final = model.state_dict()
    assert all(torch.equal(final[k], snapshots[1][k]) for k in final)
    assert any(not torch.equal(final[k], snapshots[3][k]) for k in final)


def test_gradient_steps_only_see_training_windows(prepared, monkeypatch):
    """Every window gathered with gradients on ends in the train segment, inputs and targets."""
    import cryptocast.features.windows as windows

    real = windows.gather_windows
    grad_calls: list[np.ndarray] = []
    nograd_calls: list[np.ndarray] = []

    def spy(X, ends, lookback):
        (grad_calls if torch.is_grad_enabled() else nograd_calls).append(ends.cpu().numpy())
        return real(X, ends, lookback)

    monkeypatch.setattr(windows, "gather_windows", spy)
    _fit("gru", prepared)
    train_ends = prepared.ends["train"]
    used = np.concatenate(grad_calls)
    lo, hi = prepared.segments["train"]
    # each epoch visits each training window exactly once
    assert sorted(used.tolist()) == sorted(np.tile(train_ends, 2).tolist())
    assert used.min() - prepared.lookback + 1 >= lo and used.max() + prepared.horizon < hi
    # validation windows are only read without gradients (early stopping)
    assert set(np.concatenate(nograd_calls).tolist()) == set(prepared.ends["val"].tolist())


@pytest.mark.parametrize("stride", [3, 10_000])
def test_window_stride_sees_every_training_window_once_per_stride_epochs(
    prepared, monkeypatch, stride
):
    """``train.window_stride=k``: epoch e trains on the windows at positions (e - 1) % k, k + ...
    of the training ends, so k epochs see each training window exactly once and never a
    validation or test window; validation still scores every validation window. A stride above
    the window count falls back to one window per epoch, never an empty epoch."""
    import cryptocast.features.windows as windows

    real = windows.gather_windows
    epochs: list[list[np.ndarray]] = []
    nograd: list[np.ndarray] = []

    def spy(X, ends, lookback):
        if torch.is_grad_enabled():
            epochs[-1].append(ends.cpu().numpy())
        else:
            nograd.append(ends.cpu().numpy())
        return real(X, ends, lookback)

    monkeypatch.setattr(windows, "gather_windows", spy)
    train_ends = prepared.ends["train"]
    k = min(stride, len(train_ends))
    n_epochs = 3 if k == 3 else 2
    cfg = tiny_config(model={"name": "lstm"}, train={"epochs": n_epochs, "window_stride": stride})
    model = build_model(cfg.model, len(prepared.feature_names), prepared.horizon, prepared.lookback)

    def progress(row):  # a new list of gathered ends per epoch
        epochs.append([])

    epochs.append([])
    result = fit(model, prepared, cfg.train, progress_cb=progress)
    per_epoch = [np.sort(np.concatenate(e)) for e in epochs[:n_epochs]]
    for e, used in enumerate(per_epoch):
        assert used.tolist() == sorted(train_ends[e % k :: k].tolist())
    if k == 3:  # three epochs cover the training windows exactly once
        assert sorted(np.concatenate(per_epoch).tolist()) == sorted(train_ends.tolist())
    assert set(np.concatenate(nograd).tolist()) == set(prepared.ends["val"].tolist())
    assert result.history[0]["seconds"] > 0


def test_window_stride_one_keeps_the_hashes_of_older_configs():
    """A run trained before ``train.window_stride`` existed keeps its training hash (forecast
    --config still finds it); any other stride is another training, with another hash."""
    base = tiny_config()
    assert "window_stride" in base.to_dict()["train"]
    same = tiny_config(train={"window_stride": 1})
    other = tiny_config(train={"window_stride": 4})
    assert same.hash() == base.hash() and same.training_hash() == base.training_hash()
    import hashlib
    import json

    older = base.to_dict()  # the config as a version without these settings dumped it
    from cryptocast.config.schema import HASH_NEUTRAL, NOT_HASHED

    for section, key in HASH_NEUTRAL:  # every setting added since, at its neutral value
        del older[section][key]
    for section in NOT_HASHED:
        del older[section]
    blob = json.dumps(older, sort_keys=True, separators=(",", ":"))
    assert base.hash() == hashlib.sha256(blob.encode()).hexdigest()[:12]
    assert other.hash() != base.hash() and other.training_hash() != base.training_hash()


def test_poisoned_test_rows_do_not_change_the_fit(prepared):
    """NaN in every row after the validation segment: identical losses, so never read."""
    from dataclasses import replace

    test_lo = prepared.segments["test"][0]
    X, Y = prepared.X.copy(), prepared.Y.copy()
    X[test_lo:], Y[test_lo:] = np.nan, np.nan
    poisoned = replace(prepared, X=X, Y=Y)
    _, clean = _fit("transformer", prepared)
    _, dirty = _fit("transformer", poisoned)
    assert clean.history and [r["val_loss"] for r in clean.history] == [
        r["val_loss"] for r in dirty.history
    ]


def test_device_cuda_without_gpu_is_a_config_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(ConfigError, match="train.device=cuda"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_scaler_is_fit_on_training_rows_only(tmp_path: Path):
    """Changing the candles of the test segment leaves the checkpoint's scalers unchanged."""
    from cryptocast.data.store import series_path, write_parquet_atomic
    from cryptocast.evaluate.holdout import train_run
    from cryptocast.training.checkpoint import read_checkpoint

    candles = make_ohlcv(300)
    shocked = candles.copy()
    cols = ["open", "high", "low", "close"]
    shocked.loc[260:, cols] *= 3.0  # the last rows fall in the test segment (split 0.7 / 0.15)
    shocked.loc[260:, "volume"] *= 10.0
    metas = []
    for i, frame in enumerate((candles, shocked)):
        data_dir = tmp_path / f"data{i}"
        path = series_path(data_dir, "binance", "BTC/USDT", "1d")
        path.parent.mkdir(parents=True)
        write_parquet_atomic(frame, path)
        cfg = tiny_config(
            model={"name": "lstm"},
            train={"epochs": 1, "refit_all": False},  # the validated run's weights and scalers
            output={"runs_dir": str(tmp_path / f"runs{i}")},
        )
        run = train_run(cfg, data_dir)
        metas.append(read_checkpoint(run.run_dir / "checkpoint.pt")["meta"])
        metas[-1]["test"] = run.metrics["test"]
    assert metas[0]["x_scaler"] == metas[1]["x_scaler"]
    assert metas[0]["y_scaler"] == metas[1]["y_scaler"]
    # control: the shocked rows were used (in the test segment), so the test metrics moved
    assert metas[0]["test"]["rmse"] != metas[1]["test"]["rmse"]


def test_without_a_validation_segment_metrics_say_the_epoch_was_picked_on_training_loss(
    tmp_path: Path,
):
    import json

    from cryptocast.data.store import series_path, write_parquet_atomic
    from cryptocast.evaluate.holdout import train_run

    path = series_path(tmp_path / "data", "binance", "BTC/USDT", "1d")
    path.parent.mkdir(parents=True)
    write_parquet_atomic(make_ohlcv(300), path)
    cfg = tiny_config(
        model={"name": "lstm"},
        train={"refit_all": False},
        split={"train": 0.8, "val": 0.0},
        output={"runs_dir": str(tmp_path / "runs")},
    )
    run = train_run(cfg, tmp_path / "data")
    metrics = json.loads((run.run_dir / "metrics.json").read_text())  # strict JSON: no NaN
    assert metrics["best_val_loss"] is None
    assert metrics["best_epoch_selected_on"] == "train_loss"
    assert all(row["val_loss"] is None for row in metrics["history"])


def test_refit_all_trains_on_every_stored_row_for_the_validated_epoch_count(tmp_path: Path):
    """The checkpoint holds a refit on all rows (data.end ignored), trained_until = last candle."""
    import json

    from cryptocast.data.store import series_path, write_parquet_atomic
    from cryptocast.evaluate.holdout import train_run
    from cryptocast.training.checkpoint import read_checkpoint
    from cryptocast.training.runs import load_feature_table

    candles = make_ohlcv(300)
    path = series_path(tmp_path / "data", "binance", "BTC/USDT", "1d")
    path.parent.mkdir(parents=True)
    write_parquet_atomic(candles, path)
    end = str(candles["timestamp"].iloc[280].date())  # the validated run stops 20 candles early
    runs = {}
    for refit in (True, False):
        cfg = tiny_config(
            model={"name": "lstm"},
            data={"end": end},
            train={"epochs": 3, "patience": 1, "refit_all": refit},
            output={"runs_dir": str(tmp_path / f"runs-{refit}")},
        )
        run = train_run(cfg, tmp_path / "data")
        meta = read_checkpoint(run.run_dir / "checkpoint.pt")["meta"]
        runs[refit] = (run, meta, json.loads((run.run_dir / "metrics.json").read_text()))
    run, meta, metrics = runs[True]
    table = load_feature_table(cfg, tmp_path / "data", to_last=True)
    assert table["timestamp"].iloc[-1] == candles["timestamp"].iloc[-1]
    L, H = cfg.features.lookback, cfg.features.horizon
    assert meta["weights"] == "refit_all" and metrics["deployed"]["weights"] == "refit_all"
    assert meta["trained_until"] == str(candles["timestamp"].iloc[-1])
    assert meta["refit"]["rows"] == len(table) and meta["data"]["rows"] == len(table)
    assert meta["refit"]["windows"] == len(table) - L - H + 1  # every window with a target
    assert meta["refit"]["epochs"] == metrics["best_epoch"] >= 1
    assert "validated run's" in metrics["deployed"]["note"]
    # the validated figures are unchanged by the refit: same history and test metrics either way
    _, meta_v, metrics_v = runs[False]
    assert metrics["history"] == [
        {**row, "seconds": metrics["history"][i]["seconds"]}
        for i, row in enumerate(metrics_v["history"])
    ]
    assert metrics["test"] == metrics_v["test"]
    # without the refit the checkpoint holds the validated weights, trained up to the train
    # segment's last target candle (well before data.end)
    assert meta_v["weights"] == "validated" and meta_v["refit"] is None
    last_train = meta_v["data"]["train_rows"][1] - 1
    assert meta_v["trained_until"] == str(table["timestamp"].iloc[last_train])
    assert pd.Timestamp(meta_v["trained_until"]) < pd.Timestamp(end, tz="UTC")
    assert meta["x_scaler"] != meta_v["x_scaler"]  # the refit's scalers saw every row


def test_fit_with_fixed_epochs_keeps_the_last_weights(prepared):
    """``epochs=k`` runs k epochs of the full schedule, no early stopping, last weights kept."""
    cfg = tiny_config(train={"epochs": 5, "patience": 1}).train
    seed_everything(0)
    model = build_model(tiny_config(model={"name": "lstm"}).model, len(prepared.feature_names),
                        1, 8)  # fmt: skip
    res = fit(model, prepared, cfg, epochs=2)
    assert [r["epoch"] for r in res.history] == [1, 2] and res.best_epoch == 2
    assert res.selected_on == "fixed" and not res.stopped_early
    # the schedule is laid out for cfg.epochs: after 2 of 5 cosine epochs the lr is still high
    assert res.history[-1]["lr"] > 0.5 * cfg.lr
