"""Values no run can use are refused at load, as one line naming the key (issue 25, point 16):
seeds outside what numpy and torch accept, rates that overflow the float32 torch trains in,
model sizes that would ask for terabytes."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.config.schema import load_config
from cryptocast.errors import ConfigError
from tests.conftest import TINY_CONFIG


def _refused(override: str, *needles: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(TINY_CONFIG, [override])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"--set {override}:"), msg
    for needle in needles:
        assert needle in msg, msg


@pytest.mark.parametrize("key", ["train.seed", "tune.seed"])
def test_seeds_outside_numpys_range_are_refused(key):
    _refused(f"{key}={2**70}", "4294967295")
    _refused(f"{key}=-1", "0")
    assert load_config(TINY_CONFIG, [f"{key}={2**32 - 1}"])  # the largest numpy seed


@pytest.mark.parametrize("key", ["train.lr", "train.weight_decay", "train.grad_clip"])
def test_rates_that_overflow_float32_are_refused(key):
    _refused(f"{key}=1e308", key, "float32")


@pytest.mark.parametrize(
    "key",
    [
        "model.d_model",
        "model.n_heads",
        "model.n_layers",
        "model.nb_features",
        "model.lstm_hidden",
        "model.dim_feedforward",
        "model.hidden_size",
        "model.num_layers",
    ],
)
def test_model_sizes_are_bounded(key):
    _refused(f"{key}=1000000", "less than or equal")


def test_a_huge_model_is_an_exit_2_line_not_an_allocation(tmp_path):
    args = ["train", "-c", str(TINY_CONFIG), "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--set", "model.d_model=1000000"])
    assert result.exit_code == 2, result.output
    assert "model.d_model" in result.output and "Traceback" not in result.output


def test_sizes_within_bounds_but_too_big_together_are_refused_before_allocation():
    from cryptocast.models.registry import _memory_available, build_model, check_memory

    big = [
        "model.hidden_size=4096",
        "model.num_layers=32",
        "model.d_model=4096",
        "model.n_layers=32",
    ]
    cfg = load_config(TINY_CONFIG, ["model.name=lstm", *big, "model.lstm_hidden=4096"])
    with pytest.raises(ConfigError) as err:  # 4.2 G parameters: ~68 GB of training state
        check_memory(cfg.model, 40, 1, 30, available=16 * 10**9)
    msg = str(err.value)
    assert "\n" not in msg and "67.7 GB" in msg and "16.0 GB" in msg and "model.d_model" in msg
    check_memory(
        cfg.model.model_copy(update={"hidden_size": 64, "num_layers": 2}), 40, 1, 30, 16 * 10**9
    )
    # build_model checks before it allocates (here: 68 GB wanted)
    if (_memory_available() or 0) > 100 * 10**9:
        pytest.skip("this machine has the memory for it: build_model would allocate")
    with pytest.raises(ConfigError, match="GB of memory is available"):
        build_model(cfg.model, 40, 1, 30)
