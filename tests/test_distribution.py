"""The forecast-distribution seam: levels, non-crossing heads, pinball loss, mapping to prices,
and a quantile model that recovers known noise quantiles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryptocast.config.schema import ModelConfig, load_config
from cryptocast.errors import ConfigError
from cryptocast.models.distribution import (
    DEFAULT_QUANTILES,
    check_levels,
    enforce_order,
    interval_indices,
    levels_of,
    monotone_quantiles,
    pinball_loss,
    quantiles_to_prices,
)
from cryptocast.models.registry import build_model, is_trainable, model_names
from tests.conftest import TINY_CONFIG

TRAINABLE = [n for n in model_names() if is_trainable(n)]
LEVELS = list(DEFAULT_QUANTILES)


def test_pinball_loss_by_hand():
    # y = 1; q = (0, 1, 3) at (0.1, 0.5, 0.9): u = (1, 0, -2) -> (0.1, 0, 0.2), mean 0.1
    pred = torch.tensor([[[0.0, 1.0, 3.0]]])
    y = torch.tensor([[1.0]])
    assert pinball_loss(pred, y, [0.1, 0.5, 0.9]).item() == pytest.approx(0.1)
    # a second row: y = -1 against the same quantiles: u = (-1, -2, -4) -> (0.9, 1.0, 0.4)
    pred2 = pred.repeat(2, 1, 1)
    y2 = torch.tensor([[1.0], [-1.0]])
    assert pinball_loss(pred2, y2, [0.1, 0.5, 0.9]).item() == pytest.approx((0.3 + 2.3) / 6)


@pytest.mark.parametrize("seed", range(5))
def test_monotone_quantiles_never_cross_for_random_inputs(seed):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(64, 3, 7, generator=g) * 10.0 ** (seed - 2)  # tiny to huge magnitudes
    for mid in (0, 3, 6):
        q = monotone_quantiles(raw, mid)
        assert q.shape == raw.shape
        assert (q.diff(dim=-1) >= 0).all()
        assert torch.equal(q[..., mid], raw[..., mid])  # the median is the raw median output


@pytest.mark.parametrize("name", TRAINABLE)
def test_every_neural_model_predicts_non_crossing_quantiles(name):
    cfg = ModelConfig(
        name=name, d_model=8, n_heads=2, n_layers=1, lstm_hidden=4, nb_features=8,
        dim_feedforward=8, hidden_size=8, num_layers=1, quantiles=LEVELS,
    )  # fmt: skip
    torch.manual_seed(0)
    model = build_model(cfg, 5, 3, 12).eval()
    x = torch.randn(32, 12, 5) * 5
    out = model(x)
    assert out.shape == (32, 3, len(LEVELS)) and torch.isfinite(out).all()
    assert (out.diff(dim=-1) >= 0).all()
    assert levels_of(model) == tuple(LEVELS)
    # and gradients reach the head through the softplus increments
    out.sum().backward()
    assert model.head.proj.weight.grad.abs().sum() > 0


def test_point_models_keep_the_point_head():
    model = build_model(ModelConfig(name="lstm", hidden_size=8, num_layers=1), 5, 2, 12)
    assert levels_of(model) is None
    assert model(torch.randn(4, 12, 5)).shape == (4, 2)


def test_enforce_order_keeps_the_median_and_fixes_crossings():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(100, 2, 7))
    out = enforce_order(q, 3)
    assert (np.diff(out, axis=-1) >= 0).all()
    np.testing.assert_array_equal(out[..., 3], q[..., 3])
    ordered = np.sort(q, axis=-1)
    np.testing.assert_array_equal(enforce_order(ordered, 3), ordered)  # no-op when ordered


def test_quantiles_map_to_prices_like_points():
    raw = np.log(np.array([[[0.9, 1.0, 1.2]], [[0.5, 1.0, 2.0]]]))  # (2, 1, 3) log returns
    prices = quantiles_to_prices(raw, np.array([100.0, 10.0]), "log_return")
    np.testing.assert_allclose(prices[:, 0], [[90.0, 100.0, 120.0], [5.0, 10.0, 20.0]])


@pytest.mark.parametrize(
    "levels, why",
    [([0.1, 0.9], "median"), ([0.5, 0.4], "increasing"), ([0.0, 0.5], "between"), ([], "least")],
)
def test_bad_levels_are_refused(levels, why):
    with pytest.raises(ValueError, match=why):
        check_levels(levels)


def test_config_ties_quantiles_to_the_pinball_loss():
    with pytest.raises(ConfigError, match=r"model.quantiles needs train.loss=pinball"):
        load_config(TINY_CONFIG, ["model.quantiles=[0.1, 0.5, 0.9]"])
    with pytest.raises(ConfigError, match=r"train.loss=pinball needs model.quantiles"):
        load_config(TINY_CONFIG, ["train.loss=pinball"])
    with pytest.raises(ConfigError, match=r"model.quantiles.*median"):
        load_config(TINY_CONFIG, ["model.quantiles=[0.1, 0.9]", "train.loss=pinball"])
    with pytest.raises(ConfigError, match=r"model.quantiles is for price targets"):
        load_config(
            TINY_CONFIG,
            [
                "model.quantiles=[0.1, 0.5, 0.9]",
                "train.loss=pinball",
                "features.target=realized_vol",
            ],
        )
    cfg = load_config(TINY_CONFIG, ["model.quantiles=[0.1, 0.5, 0.9]", "train.loss=pinball"])
    assert cfg.model.quantiles == [0.1, 0.5, 0.9]


def test_interval_indices():
    assert interval_indices(LEVELS, 80) == (1, 5)
    assert interval_indices(LEVELS, 90) == (0, 6)
    assert interval_indices([0.1, 0.5, 0.9], 50) is None


def test_a_quantile_model_recovers_known_noise_quantiles(restore_torch_threads):
    """y = x_last + sigma * eps with Gaussian eps: the trained quantiles must sit at
    x_last + sigma * z_tau (within 0.2 sigma on average) and cover held-out data near nominal."""
    from scipy.stats import norm

    from cryptocast.config.schema import TrainConfig
    from cryptocast.features.windows import PreparedData, Scaler
    from cryptocast.training.loop import fit, predict_scaled

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    N, F, L, sigma = 3000, 2, 4, 0.5
    X = rng.normal(size=(N, F)).astype("float32")
    Y = (X[:, :1] + sigma * rng.normal(size=(N, 1))).astype("float32")  # target of origin e
    ends = np.arange(L - 1, N)
    data = PreparedData(
        feature_names=["a", "b"], X=X, Y=Y, close=np.ones(N), timestamps=np.arange(N),
        ends={"train": ends[:2000], "val": ends[2000:2400], "test": ends[2400:]},
        x_scaler=Scaler("standard", np.zeros(F), np.ones(F)),
        y_scaler=Scaler("standard", np.zeros(1), np.ones(1)), lookback=L, horizon=1,
        target="log_return",
    )  # fmt: skip
    torch.manual_seed(0)
    cfg = ModelConfig(name="lstm", hidden_size=16, num_layers=1, quantiles=LEVELS)
    model = build_model(cfg, F, 1, L)
    tcfg = TrainConfig(epochs=10, batch_size=128, lr=5e-3, loss="pinball", device="cpu", patience=0)
    fit(model, data, tcfg)
    test = data.ends["test"]
    q = predict_scaled(model, X, test, L)[:, 0, :]  # (n, Q)
    offset = (q - X[test, :1]).mean(axis=0) / sigma
    np.testing.assert_allclose(offset, norm.ppf(LEVELS), atol=0.2)
    y = Y[test, 0]
    cover80 = np.mean((q[:, 1] <= y) & (y <= q[:, 5]))
    assert abs(cover80 - 0.8) < 0.06, cover80
