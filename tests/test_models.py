"""Every registered model: shape, gradients, overfitting one batch; baselines; registry errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryptocast.config.schema import ModelConfig
from cryptocast.errors import ConfigError
from cryptocast.models import build_model, is_trainable, model_names
from cryptocast.models.distribution import levels_of

B, L, F, H = 16, 16, 8, 3
SMALL = dict(
    d_model=32,
    n_heads=4,
    n_layers=1,
    lstm_hidden=32,
    dim_feedforward=64,
    hidden_size=32,
    num_layers=2,
    dropout=0.0,
)
TRAINABLE = [n for n in model_names() if is_trainable(n)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _build(name: str, **overrides):
    torch.manual_seed(0)
    return build_model(ModelConfig(name=name, **{**SMALL, **overrides}), F, H, L)


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, L, F, generator=g), torch.randn(B, H, generator=g)


def test_registry_lists_the_paper_models():
    from cryptocast.config.sections import BacktestConfig

    paper = {"performer_bilstm", "lstm", "gru", "transformer", "persistence", "drift"}
    assert set(model_names()) >= paper | set(BacktestConfig().models)
    assert not is_trainable("persistence") and is_trainable("performer_bilstm")


def test_unknown_model_is_a_config_error_listing_names():
    with pytest.raises(ConfigError, match="performer_bilstm"):
        build_model(ModelConfig(name="nope"), F, H, L)
    with pytest.raises(ConfigError, match="lookback"):
        build_model(ModelConfig(name="lstm"), F, H, 0)


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_output_shape(name, pooling):
    x, _ = _batch()
    model = _build(name, pooling=pooling).eval()
    out = model(x)
    levels = levels_of(model)  # the random-walk baselines predict quantiles (B, H, Q)
    shape = (B, H) if levels is None else (B, H, len(levels))
    assert out.shape == shape and torch.isfinite(out).all()


@pytest.mark.parametrize("name", TRAINABLE)
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_gradients_reach_every_parameter(name, pooling):
    model = _build(name, n_layers=2, pooling=pooling).train()
    x, y = _batch()
    torch.nn.functional.mse_loss(model(x), y).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    if name == "performer_bilstm" and pooling == "last":
        # Intrinsic, not a bug: read at the last position, the final BiLSTM's reverse direction
        # has seen one step from a zero state, so its recurrent weights get no gradient.
        assert missing == ["blocks.1.lstm.weight_hh_l0_reverse"], missing
    else:
        assert not missing, missing


@pytest.mark.parametrize("name", TRAINABLE)
def test_overfits_one_batch(name):
    model = _build(name).train()
    x, y = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(250):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    final = torch.nn.functional.mse_loss(model.eval()(x), y).item()
    assert final <= 0.1 * first, (first, final)


def test_eval_predictions_are_deterministic_after_state_dict_load():
    model = _build("performer_bilstm", redraw_interval=1).train()
    x, _ = _batch()
    for _ in range(3):
        model(x)  # training calls redraw the projections
    clone = _build("performer_bilstm")
    clone.load_state_dict(model.state_dict())
    model.eval()
    clone.eval()
    assert torch.equal(model(x), model(x))
    assert torch.equal(model(x), clone(x))


def test_persistence_predicts_identity_and_drift_the_training_mean():
    y_train = np.array([[0.1, 0.2, 0.3], [0.3, np.nan, 0.5], [0.2, 0.4, 0.4]])
    identity = np.array([-0.5, -0.6, -0.7])
    x, _ = _batch()
    pers = _build("persistence")
    pers.fit_naive(y_train, identity)
    np.testing.assert_allclose(pers(x).numpy(), np.tile(identity, (B, 1)), rtol=1e-6)
    drift = _build("drift")
    drift.fit_naive(y_train, identity)
    np.testing.assert_allclose(drift(x).numpy()[0], [0.2, 0.3, 0.4], rtol=1e-6)
    assert drift(x).shape == (B, H)
    assert "value" in drift.state_dict()
    assert not list(drift.parameters())


def test_drift_is_an_oracle_on_a_straight_line():
    # A constant-return series (a straight line in log price): drift's error is zero.
    y_train = np.full((50, H), 0.01) * np.arange(1, H + 1)
    drift = _build("drift")
    drift.fit_naive(y_train, np.zeros(H))
    np.testing.assert_allclose(drift(torch.zeros(4, L, F)).numpy(), y_train[:4], rtol=1e-6)


def test_cpu_dropout_keeps_the_expectation_and_is_identity_in_eval():
    from cryptocast.models.common import Dropout

    torch.manual_seed(0)
    d = Dropout(0.25).train()
    x = torch.ones(400, 500, requires_grad=True)
    y = d(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.25) < 0.005, dropped
    assert abs(y.mean().item() - 1.0) < 0.01
    assert torch.all((y == 0) | torch.isclose(y, torch.tensor(1 / 0.75)))
    y.sum().backward()  # the gradient is the mask itself
    torch.testing.assert_close(x.grad, y.detach())
    d.eval()
    assert d(x) is x
    assert Dropout(0.0).train()(x) is x


def test_builtin_catalogue_matches_what_the_modules_register():
    """``registry.BUILTIN`` lets names be checked without importing torch; keep it true."""
    import importlib

    from cryptocast.models import registry

    for module, names in registry.BUILTIN.items():
        importlib.import_module(f"cryptocast.models.{module}")
        for n in names:
            assert n in registry._BUILDERS, f"{n} listed under {module} but not registered"
    listed = {n for names in registry.BUILTIN.values() for n in names}
    builtins = {
        n for n, fn in registry._BUILDERS.items() if fn.__module__.startswith("cryptocast.")
    }
    assert builtins <= listed, f"registered but not in registry.BUILTIN: {builtins - listed}"
