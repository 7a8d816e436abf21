"""Issue 22 point 6: forecast combinations and selection as models (``vol_combo``, ``vol_select``).

The members are any registry models; the combination is the weighted mean of their variance
forecasts (each mapped back as its own forecast is), and the weights (inverse validation QLIKE, or
a one-hot selection of the best validation QLIKE) read the fold's validation windows only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryptocast.errors import ConfigError
from tests.test_vol_bias import _scramble_after
from tests.test_volatility import config, make_hourly, store_both

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

MEMBERS = ["har", "ewma_vol", "garch", "vol_persistence", "gru"]


@pytest.fixture(scope="module")
def vol_data():
    from cryptocast.config.schema import FeaturesConfig
    from cryptocast.features.windows import prepare
    from tests.test_volatility import _table

    df = _table(make_hourly(260, seed=4))
    f = FeaturesConfig(target="realized_vol", indicators=[], horizon=2, lookback=10)
    n = len(df)
    return prepare(df, f, {"train": (0, int(n * 0.7)), "val": (int(n * 0.7), n)}, True)


def _fitted(name: str, data, members=MEMBERS, weights: str = "equal"):
    from cryptocast.config.schema import ModelConfig, TrainConfig
    from cryptocast.models.registry import build_model
    from cryptocast.training.loop import fit, seed_everything

    seed_everything(0)
    cfg = ModelConfig(
        name=name, members=members, combo_weights=weights, hidden_size=8, num_layers=1
    )
    model = build_model(cfg, len(data.feature_names), data.horizon, data.lookback)
    fit(model, data, TrainConfig(device="cpu", epochs=2, num_threads=1))
    return model


def test_equal_weights_are_the_mean_of_the_members_variance_forecasts(vol_data):
    from cryptocast.training.inference import Predictor

    data = vol_data
    combo = _fitted("vol_combo", data)
    assert combo.member_names == tuple(MEMBERS)
    np.testing.assert_array_equal(combo.weights.numpy(), np.full(5, 0.2))
    ends = data.ends["val"]
    combined = Predictor.from_prepared(combo, data)
    assert combined.variance_factor is None  # a variance forecast: mapped back unchanged
    vol = combined.predict_rows(data.X, data.close, ends)
    # each member's own forecast, mapped back as that model's backtest maps it (its bias factor)
    members = [Predictor.from_prepared(m, data).predict_rows(data.X, data.close, ends)
               for m in combo.members]  # fmt: skip
    assert Predictor.from_prepared(combo.members[0], data).variance_factor is not None  # har: log
    np.testing.assert_allclose(vol**2, np.mean([m**2 for m in members], axis=0), rtol=1e-5)
    # the mean of variances, not of log vol: above the geometric mean wherever members differ
    assert np.all(vol >= np.exp(np.mean(np.log(members), axis=0)) * (1 - 1e-9))


def test_selection_and_inverse_qlike_weights_follow_the_validation_qlike(vol_data):
    from cryptocast.models.combo import qlike, score_rows
    from cryptocast.training.loop import predict_scaled

    data = vol_data
    members = ["har", "ewma_vol", "vol_persistence"]
    sel = _fitted("vol_select", data, members)
    q = sel.val_qlike.numpy()
    assert np.all(np.isfinite(q)) and len(set(q)) == 3
    np.testing.assert_array_equal(sel.weights.numpy(), np.eye(3)[int(np.argmin(q))])
    inv = _fitted("vol_combo", data, members, "inverse_qlike")

    def predict(member, rows):
        return predict_scaled(member, data.X, rows, data.lookback)

    member_var, true_var = score_rows(inv, data, data.ends["val"], predict)
    by_hand = np.array([1.0 / qlike(true_var, v) for v in member_var])
    np.testing.assert_allclose(inv.weights.numpy(), by_hand / by_hand.sum(), rtol=1e-12)


def test_a_combination_without_members_is_a_one_line_config_error(vol_data):
    with pytest.raises(ConfigError, match="model.members"):
        _fitted("vol_combo", vol_data, [])
    with pytest.raises(ConfigError, match="model.members: unknown model 'hra'"):
        _fitted("vol_combo", vol_data, ["har", "hra"])
    with pytest.raises(ConfigError, match="itself a combination"):
        _fitted("vol_select", vol_data, ["har", "vol_combo"])


@pytest.mark.parametrize("name,weights", [("vol_combo", "inverse_qlike"), ("vol_select", "equal")])
def test_the_weights_read_only_validation_rows_before_the_fold_origin(
    name, weights, tmp_path, monkeypatch
):
    """A spy on ``score_rows``, the one read of forecasts and realised RV behind the weights,
    through a real walk-forward: each refit's rows are its fold's validation windows, whose last
    realised day is no later than the fold's first forecast origin (known when it forecasts)."""
    from cryptocast.evaluate.walkforward import run_job
    from cryptocast.models import combo

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = combo.score_rows

    def spy(model, data, rows, predict):
        seen.append((np.asarray(rows).copy(), np.asarray(data.ends["val"]).copy()))
        return real(model, data, rows, predict)

    monkeypatch.setattr(combo, "score_rows", spy)
    cfg = config(
        f"backtest.models=[{name}]", "model.members=[har, ewma_vol, gru]",
        f"model.combo_weights={weights}", "backtest.test_start=2021-06-01",
        "backtest.fold_length=30", "features.horizon=2",
    )  # fmt: skip
    data_dir = store_both(tmp_path, make_hourly(240, seed=12))
    res = run_job(cfg, data_dir, cfg.backtest.symbols[0], "1d", name)
    refits = [f for f in res.fold_info if f["retrained"]]
    assert len(refits) >= 2 and len(seen) == len(refits)
    for (rows, val), fold in zip(seen, refits, strict=True):
        np.testing.assert_array_equal(rows, val)  # the validation windows, nothing else
        # the last realised day read is at most the origin's own day, an input of its forecast
        assert rows.max() + cfg.features.horizon <= fold["first_origin"]


def _fold_weights(cfg, data_dir, name: str) -> list[np.ndarray]:
    """Each fold's combination weights, the model built and fit as run_job does."""
    from cryptocast.evaluate.walkforward import job_config, job_folds
    from cryptocast.features.windows import prepare
    from cryptocast.models.registry import build_model
    from cryptocast.training.loop import fit, seed_everything
    from cryptocast.training.runs import load_feature_table

    c = job_config(cfg, cfg.backtest.symbols[0], "1d", name)
    df = load_feature_table(c, data_dir)
    f = c.features
    out = []
    for fold in job_folds(df, c):
        data = prepare(df, f, {"train": fold.train, "val": fold.val}, embargo=False)
        seed_everything(c.train.seed + fold.fold)
        model = build_model(c.model, len(data.feature_names), f.horizon, f.lookback)
        fit(model, data, c.train)
        out.append((df["timestamp"].iloc[fold.test[0]], model.weights.numpy().copy(),
                    model.val_qlike.numpy().copy()))  # fmt: skip
    return out


def test_scrambling_the_test_period_leaves_the_first_folds_weights_bit_identical(tmp_path):
    cfg = config(
        "backtest.models=[vol_combo]", "model.members=[har, ewma_vol, garch, gru]",
        "model.combo_weights=inverse_qlike", "backtest.test_start=2021-06-01",
        "backtest.fold_length=30",
    )  # fmt: skip
    hourly = make_hourly(240, seed=12)
    before = _fold_weights(cfg, store_both(tmp_path / "a", hourly), "vol_combo")
    assert len(before) >= 2
    first_day = before[0][0]
    scrambled = _scramble_after(hourly, first_day + pd.Timedelta("1D"), seed=3)
    after = _fold_weights(cfg, store_both(tmp_path / "b", scrambled), "vol_combo")
    assert [a[0] for a in after] == [b[0] for b in before]
    np.testing.assert_array_equal(after[0][1], before[0][1])  # not changed by a bit
    np.testing.assert_array_equal(after[0][2], before[0][2])
    # the control: fold 1 validates on rows of the scrambled period, so its weights move
    assert not np.array_equal(after[1][2], before[1][2])


def test_a_combination_checkpoint_forecasts_what_the_trained_model_did(data_dir, tmp_path):
    """``cryptocast train`` of ``vol_select`` (refit on every row: the weights then come from the
    latest fit windows) writes a checkpoint that restores members, factors and weights."""
    from cryptocast.evaluate.holdout import train_run
    from cryptocast.training.checkpoint import load_checkpoint
    from cryptocast.training.inference import Predictor
    from cryptocast.training.runs import CHECKPOINT

    store_both(data_dir, make_hourly(140, seed=7))
    cfg = config(
        "model.name=vol_select", "model.members=[har, ewma_vol, gru]", f"output.runs_dir={tmp_path}"
    )
    run = train_run(cfg, data_dir).run_dir
    model, _ = load_checkpoint(run / CHECKPOINT)
    assert model.member_names == ("har", "ewma_vol", "gru")
    assert model.weights.sum().item() == 1.0 and sorted(model.weights.tolist())[-1] == 1.0
    assert Predictor.from_checkpoint(run / CHECKPOINT).variance_factor is None
