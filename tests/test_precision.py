"""Precision policy: which modules run in which dtype per mode; mixed-mode checkpoints on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cryptocast.errors import ConfigError
from cryptocast.models.registry import build_model, is_trainable, model_names
from cryptocast.training.checkpoint import load_checkpoint, save_checkpoint
from cryptocast.training.loop import fit, predict_scaled, seed_everything
from cryptocast.training.precision import observe_dtypes, precision_policy, run_recurrent
from tests.test_train import tiny_config

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

NEURAL = [n for n in model_names() if is_trainable(n)]
# The module kinds each model must show (so a kind silently missing from the check fails too).
KINDS = {
    "performer_bilstm": {"linear", "favor_attention", "recurrent", "layer_norm", "weights"},
    "transformer": {"linear", "softmax_attention", "layer_norm", "weights"},
    "lstm": {"linear", "recurrent", "weights"},
    "gru": {"linear", "recurrent", "weights"},
}


def test_policy_resolution():
    assert precision_policy("auto", "cpu").autocast_dtype is None  # CPUs: float32 by default
    assert precision_policy("fp32", torch.device("cpu")).mode == "fp32"
    mixed = precision_policy("mixed", "cpu")
    assert (mixed.mode, mixed.autocast_dtype) == ("mixed", torch.bfloat16)
    assert precision_policy("fp32", "cuda").autocast_dtype is None  # needs no GPU to decide
    if not torch.cuda.is_available():  # no bf16 GPU here: mixed on cuda is refused, auto is fp32
        assert precision_policy("auto", "cuda").mode == "fp32"
        with pytest.raises(ConfigError, match="train.precision=fp32"):
            precision_policy("mixed", "cuda")
    with pytest.raises(ConfigError, match="train.precision"):
        precision_policy("fp16", "cpu")
    declared = precision_policy("mixed", "cuda" if torch.cuda.is_available() else "cpu")
    assert declared.module_dtypes()["recurrent"] == torch.float32  # never cuDNN's fp16
    assert declared.module_dtypes()["favor_attention"] == torch.float32


def test_every_neural_model_is_covered():
    assert set(NEURAL) == set(KINDS), "add the new model's module kinds to KINDS"


@pytest.mark.parametrize("mode", ["fp32", "mixed"])
@pytest.mark.parametrize("name", NEURAL)
def test_modules_run_in_the_declared_dtype(name, mode):
    cfg = tiny_config(model={"name": name})
    seed_everything(0)
    model = build_model(cfg.model, 5, 2, 8).eval()
    policy = precision_policy(mode, "cpu")
    seen = observe_dtypes(model, torch.randn(3, 8, 5), policy)
    declared = policy.module_dtypes()
    assert set(seen) == KINDS[name], seen
    for kind, dtypes in seen.items():
        assert dtypes == {declared[kind]}, (kind, dtypes, declared[kind])
    if mode == "mixed":  # the mode really changes something: the matmuls run in bf16
        assert seen["linear"] == {torch.bfloat16}


def test_an_lstm_left_to_autocast_does_not_run_in_float32():
    """Why ``run_recurrent`` exists: autocast picks the RNN's dtype (fp16 under cuDNN; on a CPU
    without bf16 units oneDNN has no bf16 LSTM at all). Through ``run_recurrent`` it is float32."""
    lstm = torch.nn.LSTM(4, 8, batch_first=True)
    x = torch.randn(2, 6, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        try:
            raw_dtype = lstm(x)[0].dtype
        except RuntimeError:  # "could not create a primitive descriptor for the LSTM ..."
            raw_dtype = None
        out, _ = run_recurrent(lstm, x.bfloat16())
    assert raw_dtype != torch.float32
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, run_recurrent(lstm, x)[0], rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("name", ["performer_bilstm", "lstm"])
def test_mixed_precision_checkpoint_loads_on_cpu_and_predicts_the_same(name, tmp_path):
    """Stands in for "trained on CUDA, served on a CPU": trained under bf16 autocast, saved,
    loaded with map_location=cpu, predicting in float32."""
    from cryptocast.features.table import compute_features
    from cryptocast.features.windows import prepare, split_bounds
    from tests.conftest import make_ohlcv

    cfg = tiny_config(model={"name": name}, train={"epochs": 2, "precision": "mixed"})
    df = compute_features(make_ohlcv(300), cfg.features, "1d")
    data = prepare(df, cfg.features, split_bounds(df, cfg.split, 8, 1), True)
    seed_everything(0)
    model = build_model(cfg.model, len(data.feature_names), 1, 8)
    result = fit(model, data, cfg.train)
    assert all(np.isfinite([r["train_loss"], r["val_loss"]]).all() for r in result.history)
    assert {p.dtype for p in model.parameters()} == {torch.float32}  # weights never cast
    path = tmp_path / "checkpoint.pt"
    meta = {
        "model_config": cfg.model.model_dump(mode="json"),
        "n_features": len(data.feature_names),
        "horizon": 1,
        "lookback": 8,
    }
    save_checkpoint(path, model, meta)
    loaded, _ = load_checkpoint(path)
    ends = data.ends["test"]
    as_trained = predict_scaled(model, data.X, ends, 8, precision="mixed")
    fp32 = predict_scaled(model, data.X, ends, 8, precision="fp32")
    restored = predict_scaled(loaded, data.X, ends, 8)  # auto on CPU: float32
    np.testing.assert_array_equal(restored, fp32)
    # bf16 keeps 8 mantissa bits (relative rounding 2^-8 ≈ 0.4%) per matmul; a few layers deep
    # that is ~1-3% of the output's spread.
    spread = float(np.std(fp32))
    assert np.abs(restored - as_trained).max() < 0.05 * spread + 1e-3, (
        np.abs(restored - as_trained).max(),
        spread,
    )
