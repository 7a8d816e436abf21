"""The typed config: dotted-key errors, ``--set`` parsing, cross-field checks, a stable hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryptocast.config.schema import Config, apply_overrides, config_from_dict, load_config
from cryptocast.errors import ConfigError
from tests.conftest import REPO, TINY_CONFIG


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw, "c.yaml")
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    ("raw", "needles"),
    [
        ({"model": {"foo": 1}}, ["c.yaml: model.foo: unknown key"]),
        ({"modle": {"name": "lstm"}}, ["modle: unknown key"]),
        ({"train": {"epochs": "abc"}}, ["train.epochs:", "integer"]),
        ({"train": {"lr": -1}}, ["train.lr:", "greater than 0"]),
        ({"features": {"lookback": 0}}, ["features.lookback:", "greater than 0"]),
        ({"features": {"target": "returns"}}, ["features.target:", "log_return", "price"]),
        ({"train": {"device": "tpu"}}, ["train.device:", "cuda"]),
        ({"features": {"indicators": [{"name": "rsi", "x": 1}]}}, ["features.indicators.0.x"]),
        ({"train": {"epochs": 0, "lr": 0}}, ["train.epochs", "(+1 more)"]),
        ({"data": "BTC"}, ["data:"]),
        ({"forecast": {"max_model_age": "soon"}}, ["forecast.max_model_age", "soon", "14D"]),
        ({"forecast": {"max_model_age": "-1D"}}, ["forecast.max_model_age", "positive"]),
    ],
)
def test_errors_name_the_dotted_key(raw, needles):
    msg = _error(raw)
    assert all(n in msg for n in needles), msg


def test_top_level_must_be_a_mapping(tmp_path: Path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping of sections"):
        load_config(path)
    path.write_text("train: {epochs: [\n")
    with pytest.raises(ConfigError, match=r"not valid YAML \(line"):
        load_config(path)


@pytest.mark.parametrize(
    ("item", "key", "value"),
    [
        ("train.epochs=5", ("train", "epochs"), 5),
        ("train.lr=3e-4", ("train", "lr"), 3e-4),
        ("train.lr=0.001", ("train", "lr"), 0.001),
        ("split.embargo=false", ("split", "embargo"), False),
        ("features.calendar=true", ("features", "calendar"), True),
        ("train.num_threads=null", ("train", "num_threads"), None),
        ("backtest.models=[lstm, gru]", ("backtest", "models"), ["lstm", "gru"]),
        ("data.symbol=ETH/USDT", ("data", "symbol"), "ETH/USDT"),
        ("data.start=2020-01-01", ("data", "start"), "2020-01-01"),
        ("output.name=a=b", ("output", "name"), "a=b"),
    ],
)
def test_set_parses_yaml_scalars_and_lists(item, key, value):
    cfg = load_config(None, [item])
    assert getattr(getattr(cfg, key[0]), key[1]) == value


def test_unquoted_dates_in_a_file_stay_strings(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {start: 2020-01-01, end: 2021-06-30}\nsplit: {test_start: 2021-01-01}\n")
    cfg = load_config(path)
    assert (cfg.data.start, cfg.data.end, cfg.split.test_start) == (
        "2020-01-01",
        "2021-06-30",
        "2021-01-01",
    )


def test_set_overrides_the_file_and_later_sets_win():
    cfg = load_config(TINY_CONFIG, ["train.epochs=7", "model.name=lstm", "train.epochs=9"])
    assert cfg.train.epochs == 9 and cfg.model.name == "lstm"
    assert cfg.model.d_model == 16  # the rest of the file is kept


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ("epochs=5", "key must be dotted"),
        ("train.epochs", "expected section.key=value"),
        ("train..epochs=1", "key must be dotted"),
        ("data.symbol.x=1", "symbol is not a section"),
    ],
)
def test_malformed_set_items(item, needle):
    raw = {"data": {"symbol": "BTC/USDT"}}
    with pytest.raises(ConfigError, match=needle):
        apply_overrides(raw, [item])


def test_cross_field_checks():
    assert "model.d_model (64) must be divisible by model.n_heads (3)" in _error(
        {"model": {"d_model": 64, "n_heads": 3}}
    )
    assert "split.train + split.val must be < 1" in _error({"split": {"train": 0.8, "val": 0.2}})
    assert "needs split.val_start and split.test_start" in _error(
        {"split": {"method": "date", "val_start": "2022-01-01"}}
    )
    assert "backtest.window=rolling needs backtest.train_length" in _error(
        {"backtest": {"window": "rolling"}}
    )
    # and the valid versions pass
    config_from_dict({"model": {"d_model": 64, "n_heads": 8}, "split": {"train": 0.6, "val": 0.2}})
    config_from_dict({"backtest": {"window": "rolling", "train_length": 500}})


def test_hash_is_stable_and_sensitive():
    a = load_config(TINY_CONFIG)
    assert a.hash() == load_config(TINY_CONFIG).hash() == config_from_dict(a.to_dict()).hash()
    assert len(a.hash()) == 12 and int(a.hash(), 16) >= 0
    # the same values spelled differently (key order, defaults written out) hash the same
    assert config_from_dict({"train": {"seed": 0, "epochs": 30}}).hash() == Config().hash()
    assert config_from_dict({"train": {"epochs": 30, "seed": 0}}).hash() == Config().hash()


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path: Path):
    cfg = load_config(path)
    if path.stem in ("performer_bilstm", "lstm", "gru", "transformer"):
        assert cfg.model.name == path.stem and cfg.train.device == "auto"
        assert cfg.model.dim_feedforward < 2048  # the PyTorch default is ~6x slower for nothing


# (override, does it change the trained weights?): every setting moves the config hash; only the
# sections that decide the weights move the training hash (forecast --config finds runs by it)
HASH_CASES = [
    ("train.seed=1", True), ("model.dropout=0.2", True), ("data.symbol=ETH/USDT", True),
    ("split.embargo=false", True), ("train.epochs=4", True), ("train.refit_all=false", True),
    ("features.lookback=8", True), ("data.end=2023-01-01", True),
    ("output.runs_dir=x", False), ("backtest.workers=3", False), ("tune.trials=5", False),
    ("forecast.max_model_age=30D", False),
]  # fmt: skip


@pytest.mark.parametrize(("item", "weights"), HASH_CASES, ids=[c[0] for c in HASH_CASES])
def test_training_hash_moves_only_with_settings_that_change_the_weights(item, weights):
    a, b = load_config(TINY_CONFIG), load_config(TINY_CONFIG, [item])
    assert b.hash() != a.hash()
    assert (b.training_hash() != a.training_hash()) == weights


def test_shipped_configs_have_distinct_run_names():
    """``forecast --config`` looks for runs/{name}-*: no shipped config shares a bare model name."""
    from cryptocast.models.registry import model_names

    names = {p.name: load_config(p).output.name for p in (REPO / "configs").glob("*.yaml")}
    assert all(names.values()) and len(set(names.values())) == len(names), names
    assert not set(names.values()) & set(model_names()), names


def test_timeframe_overrides_apply_to_the_jobs_of_that_timeframe_only():
    """The fast hourly grid: hourly jobs warm-start on a strided epoch, daily ones do not."""
    from cryptocast.config.schema import for_timeframe

    fast = "backtest.timeframe_overrides={1h: [backtest.warm_start=true, train.window_stride=3]}"
    cfg = load_config(TINY_CONFIG, [fast])
    hourly, daily = for_timeframe(cfg, "1h"), for_timeframe(cfg, "1d")
    assert (hourly.backtest.warm_start, hourly.train.window_stride) == (True, 3)
    assert (daily.backtest.warm_start, daily.train.window_stride) == (False, 1)
    assert hourly.backtest.timeframe_overrides == {}  # applied: a job's config carries none
    plain = load_config(TINY_CONFIG)
    assert cfg.hash() != plain.hash() and cfg.training_hash() == plain.training_hash()
    # an empty mapping is the older behaviour: the hash of a config written before the setting
    assert load_config(TINY_CONFIG, ["backtest.timeframe_overrides={}"]).hash() == plain.hash()


@pytest.mark.parametrize(
    ("item", "needles"),
    [
        (
            "train.window_stride=0",
            ["timeframe_overrides.1h", "train.window_stride", "greater than 0"],
        ),
        ("train.nope=1", ["timeframe_overrides.1h", "unknown key train.nope"]),
        ("data.start=2020-01-01", ["timeframe_overrides.1h", "data.start", "train."]),
        ("backtest.fold_period=7D", ["timeframe_overrides.1h", "backtest.fold_period"]),
        ("train.window_stride", ["timeframe_overrides.1h", "key=value"]),
    ],
)
def test_bad_timeframe_overrides_fail_at_load_naming_the_item(item, needles):
    with pytest.raises(ConfigError) as err:
        load_config(TINY_CONFIG, [f"backtest.timeframe_overrides={{1h: [{item}]}}"])
    msg = str(err.value)
    assert "\n" not in msg and all(n in msg for n in needles), msg
