"""``gbm_vol`` (issue 22 part 5): LightGBM on the HAR and realized-measure features, early stopping
on the validation rows only, the bias correction, and its checkpoint."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from cryptocast.config.schema import FeaturesConfig

pytest.importorskip("lightgbm", reason="gbm_vol needs lightgbm (pip install 'cryptocast[vol]')")

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _prepared(seed: int = 4):
    """A prepared table with train, val AND test segments (the test rows must stay unread)."""
    from cryptocast.features.table import compute_features
    from cryptocast.features.windows import prepare
    from tests.test_volatility import daily_from, make_hourly

    hourly = make_hourly(300, seed=seed)
    f = FeaturesConfig(target="realized_vol", indicators=[], horizon=2, lookback=10)
    df = compute_features(daily_from(hourly), f, "1d", fine=hourly)
    n = len(df)
    a, b = int(n * 0.6), int(n * 0.8)
    return prepare(df, f, {"train": (0, a), "val": (a, b), "test": (b, n)}, True)


def _fit(data, **model):
    from cryptocast.config.schema import ModelConfig, TrainConfig
    from cryptocast.models.registry import build_model
    from cryptocast.training.loop import fit

    m = build_model(ModelConfig(name="gbm_vol", **model), len(data.feature_names), 2, 10)
    assert fit(m, data, TrainConfig(device="cpu")).trained is False
    return m


def _forecast(model, data, ends):
    from cryptocast.training.loop import predict_scaled

    return data.y_scaler.inverse_transform(predict_scaled(model, data.X, ends, 10))


def test_early_stopping_reads_the_validation_rows_and_never_the_test_rows(monkeypatch):
    import lightgbm

    data = _prepared()
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real_train = lightgbm.train

    def spy(params, train_set, *args, valid_sets=(), **kw):
        for v in valid_sets:
            seen.append((np.asarray(v.data), np.asarray(v.get_label())))
        seen.append((np.asarray(train_set.data), np.asarray(train_set.get_label())))
        return real_train(params, train_set, *args, valid_sets=valid_sets, **kw)

    monkeypatch.setattr(lightgbm, "train", spy)
    model = _fit(data)
    y = data.y_scaler.inverse_transform(data.Y.astype("float64"))
    val, train = data.ends["val"], data.ends["train"]
    (val_x, val_y), (train_x, train_y) = seen[0], seen[1]  # step 1's validation and fit sets
    ok_val, ok_train = np.isfinite(y[val, 0]), np.isfinite(y[train, 0])
    np.testing.assert_allclose(val_y, y[val, 0][ok_val], rtol=1e-6)
    np.testing.assert_allclose(val_x, model.unscaled_rows(data, val)[ok_val], rtol=1e-6)
    np.testing.assert_allclose(train_y, y[train, 0][ok_train], rtol=1e-6)
    np.testing.assert_allclose(train_x, model.unscaled_rows(data, train)[ok_train], rtol=1e-6)
    assert len(seen) == 4  # two steps, one validation set each
    best = model.best_iterations.numpy()
    assert np.all((best >= 1) & (best <= 500))
    monkeypatch.setattr(lightgbm, "train", real_train)

    # scrambling the test period (features and labels) changes nothing fitted
    test = data.ends["test"]
    base = _forecast(model, data, val)
    rng = np.random.default_rng(0)
    lo = int(test.min()) - data.lookback + 1
    data.X[lo:] = rng.permutation(data.X[lo:])
    data.Y[test] = rng.permutation(data.Y[test])
    again = _fit(data)
    np.testing.assert_array_equal(again.blob.numpy(), model.blob.numpy())
    np.testing.assert_array_equal(_forecast(again, data, val), base)


def test_the_validation_rows_choose_the_number_of_trees():
    data = _prepared(seed=5)
    model = _fit(data)
    rng = np.random.default_rng(1)
    val = data.ends["val"]
    data.Y[val] = rng.permutation(data.Y[val])  # validation labels unrelated to the features
    noisy = _fit(data)
    assert not np.array_equal(noisy.best_iterations.numpy(), model.best_iterations.numpy())
    assert noisy.best_iterations.sum() < model.best_iterations.sum()  # stops earlier on noise


def test_gbm_vol_is_bias_corrected_and_survives_its_checkpoint():
    from cryptocast.config.schema import ModelConfig
    from cryptocast.features.targets import get_target
    from cryptocast.models.registry import build_model
    from cryptocast.training.inference import Predictor

    data = _prepared(seed=6)
    model = _fit(data)
    assert get_target("realized_vol").corrects(model)
    assert Predictor.from_prepared(model, data).variance_factor is not None
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    fresh = build_model(ModelConfig(name="gbm_vol"), len(data.feature_names), 2, 10)
    fresh.load_state_dict(state)
    ends = data.ends["test"]
    np.testing.assert_array_equal(_forecast(fresh, data, ends), _forecast(model, data, ends))
