"""Config errors that lead somewhere (issue 26, point 7; ``--debug`` from point 8): the YAML
problem's reason, "did you mean" for keys and sections, list values through ``--set``, the
``--set`` named as the culprit of a cross-field check, and exit codes ``--debug`` keeps."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.config.schema import load_config
from cryptocast.errors import ConfigError
from tests.conftest import TINY_CONFIG


def _load_error(path, overrides=()) -> str:
    with pytest.raises(ConfigError) as err:
        load_config(path, list(overrides))
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_yaml_error_gives_the_reason_with_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epochs: 3\n   lr: 0.1\n")
    msg = _load_error(bad)
    assert "line 3" in msg
    assert "mapping values are not allowed here" in msg  # yaml's own problem text


@pytest.mark.parametrize(
    ("text", "override", "needles"),
    [
        ("train:\n  epoch: 5\n", None, ["train.epoch", "did you mean train.epochs?"]),
        ("trian:\n  epochs: 5\n", None, ["trian", "did you mean train?"]),
        ("{}\n", "train.epoch=5", ["--set train.epoch=5", "did you mean train.epochs?"]),
        ("{}\n", "trian.epochs=5", ["--set trian.epochs=5", "did you mean train?"]),
        (
            "features:\n  indicators: [{name: rsi, parms: {}}]\n",
            None,
            ["did you mean features.indicators.0.params?"],
        ),
    ],
)
def test_unknown_keys_and_sections_get_did_you_mean(tmp_path, text, override, needles):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    msg = _load_error(cfg, [override] if override else [])
    for needle in needles:
        assert needle in msg, msg
    if override:
        assert str(cfg) not in msg  # the option set it, not the file


def test_unknown_key_without_a_close_match_lists_no_guess(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  zzzz: 1\n")
    assert "did you mean" not in _load_error(cfg)


def test_a_comma_list_through_set_is_a_list():
    items = [
        "backtest.models=lstm,persistence",
        "model.quantiles=0.1,0.5,0.9",
        "train.loss=pinball",
    ]
    cfg = load_config(TINY_CONFIG, items)
    assert cfg.backtest.models == ["lstm", "persistence"]
    assert cfg.model.quantiles == [0.1, 0.5, 0.9]
    assert load_config(None, ["backtest.models=[lstm, gru]"]).backtest.models == ["lstm", "gru"]


def test_a_value_that_is_no_list_shows_the_list_form():
    msg = _load_error(None, ["backtest.models={a: 1}"])
    assert msg.startswith("--set backtest.models={a: 1}:")
    assert "[a, b]" in msg


def test_cross_field_error_names_the_set_that_caused_it():
    msg = _load_error(TINY_CONFIG, ["train.loss=pinball"])
    assert msg.startswith("--set train.loss=pinball:"), msg
    assert str(TINY_CONFIG) not in msg


@pytest.mark.parametrize(
    ("setup", "code"),
    [("config", 2), ("data", 3)],
)
def test_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path, setup, code):
    args = ["train", "--data-dir", str(tmp_path)]
    if setup == "config":
        args += ["--config", str(tmp_path / "missing.yaml")]
    else:  # no candles stored: a DataError
        args += ["--config", str(TINY_CONFIG), "--set", f"output.runs_dir={tmp_path / 'runs'}"]
    plain = CliRunner().invoke(app, args)
    debug = CliRunner().invoke(app, ["--debug", *args])
    assert plain.exit_code == code
    assert debug.exit_code == code, debug.output
    assert "Traceback" in debug.output and "Traceback" not in plain.output
