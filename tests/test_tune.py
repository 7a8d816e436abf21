"""``cryptocast tune``: the search space, the tuning period that never reaches the test period,
a real Optuna study on SQLite (resume, pruning reports, best config) and the CLI.

Trials are tiny (an 8-unit LSTM, one epoch, 2 folds of 20 daily candles), so a study of a few
trials takes seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import TINY_CONFIG, TINY_NET, make_ohlcv
from tests.test_backtest import store

pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("restore_torch_threads")

runner = CliRunner()
TEST_START = "2021-08-01"
TUNE = [
    *TINY_NET,
    "model.name=lstm",
    "backtest.models=[lstm, persistence]",
    "backtest.symbols=[BTC/USDT]",
    "backtest.timeframes=[1d]",
    f"backtest.test_start={TEST_START}",
    "backtest.fold_length=20",
    "tune.folds=2",
    "tune.space={model.hidden_size: [4, 8, 16], train.lr: {log_uniform: [1.0e-3, 1.0e-2]}}",
]
CANDLES = make_ohlcv(260, "1d", start="2021-01-01", seed=4)


def config(tmp_path: Path, *overrides: str):
    from cryptocast.config.schema import load_config

    return load_config(TINY_CONFIG, [*TUNE, f"output.runs_dir={tmp_path / 'runs'}", *overrides])


@pytest.fixture
def data(data_dir: Path) -> Path:
    return store(data_dir, CANDLES)


# ---- the space --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "space, needle",
    [
        ("{model.d_modle: [16, 32]}", "tune.space.model.d_modle: unknown config key"),
        ("{backtest.test_start: [2021-01-01]}", "tune.space.backtest.test_start: search keys"),
        ("{train.lr: {log_uniform: [0, 0.1]}}", "tune.space.train.lr: log_uniform needs low > 0"),
        ("{model.n_layers: {int: [3, 1]}}", "tune.space.model.n_layers: int needs [low, high]"),
        ("{train.lr: {normal: [0, 1]}}", "tune.space.train.lr: expected a list of choices"),
        ("{model.d_model: []}", "tune.space.model.d_model: a choice list needs scalar values"),
    ],
)
def test_a_bad_space_fails_when_the_config_loads_naming_the_key(tmp_path, space, needle):
    from cryptocast.errors import ConfigError

    with pytest.raises(ConfigError, match=needle.replace("[", r"\[")):
        config(tmp_path, f"tune.space={space}")


def test_every_kind_of_space_entry_is_sampled_inside_its_range():
    import optuna

    from cryptocast.config.sections import searchable_fields
    from cryptocast.config.space import parse_space
    from cryptocast.tune.space import suggest

    space = {
        "model.d_model": [16, 32],
        "train.lr": {"log_uniform": [1e-4, 1e-2]},
        "model.dropout": {"uniform": [0.0, 0.3]},
        "model.n_layers": {"int": [1, 3]},
    }
    params = parse_space(space, searchable_fields())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        got = suggest(study.ask(), params)
        assert got["model.d_model"] in (16, 32)
        assert 1e-4 <= got["train.lr"] <= 1e-2 and 0 <= got["model.dropout"] <= 0.3
        assert got["model.n_layers"] in (1, 2, 3) and isinstance(got["model.n_layers"], int)


# ---- the tuning period never reaches the test period ---------------------------------------------
@pytest.mark.parametrize("end", ["2021-08-02", "2021-09-15"])
def test_a_tuning_period_touching_the_test_period_is_refused(tmp_path, data, end):
    from cryptocast.errors import ConfigError
    from cryptocast.training.runs import load_feature_table
    from cryptocast.tune.trial import tuning_table

    cfg = config(tmp_path, f"tune.end={end}")
    with pytest.raises(ConfigError, match="tuning on the test period is a leak"):
        tuning_table(cfg, load_feature_table(cfg, data))


def test_the_cli_refuses_it_in_one_line_with_exit_2_and_writes_nothing(tmp_path, data):
    sets = [a for s in TUNE for a in ("--set", s)]
    runs = tmp_path / "runs"
    result = runner.invoke(
        app,
        ["tune", "--config", str(TINY_CONFIG), *sets, "--set", "tune.end=2021-08-10",
         "--set", f"output.runs_dir={runs}", "--data-dir", str(data), "--trials", "2"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    err = result.output.strip().splitlines()[-1]
    assert "tune.end 2021-08-10 is after the test start 2021-08-01" in err
    assert not (runs / "tune").exists()


def test_the_cut_table_ends_before_the_test_and_blanks_targets_reaching_it(tmp_path, data):
    from cryptocast.training.runs import load_feature_table
    from cryptocast.tune.trial import tuning_table

    cfg = config(tmp_path, "features.horizon=3")
    df = load_feature_table(cfg, data)
    period = tuning_table(cfg, df)
    t = period.table
    test_start = pd.Timestamp(TEST_START, tz="UTC")
    assert t["timestamp"].max() < test_start
    cut = len(t)
    assert df["timestamp"].iloc[cut] == test_start  # nothing before the test was cut away
    for h in (1, 2, 3):
        known = t[f"target_{h}"].notna().to_numpy()
        # a target is kept exactly when the candle it is computed from lies before the test
        assert np.array_equal(known[cut - h :], np.zeros(h, bool))
        assert known[: cut - h][-5:].all()


# ---- a real study ------------------------------------------------------------------------------
def test_no_trial_reads_a_test_period_target_and_the_future_cannot_move_a_score(
    tmp_path, data, data_dir, monkeypatch
):
    """Spy on every place a trial reads targets (the training targets ``prepare`` scales, the
    realised closes that score a forecast), then poison every candle from the test start on:
    the study's scores must not move by a bit."""
    from cryptocast.features import targets, windows
    from cryptocast.tune.study import run_tune

    test_start = pd.Timestamp(TEST_START, tz="UTC")
    reads: list[pd.Timestamp] = []
    real_prepare, real_realised = windows.prepare, targets.Target.realised

    def spy_prepare(df, f, segments, embargo=True):
        out = real_prepare(df, f, segments, embargo)
        ts = df["timestamp"].to_numpy()
        for ends in out.ends.values():  # windows fit on: targets are rows e+1 .. e+H
            if len(ends):
                reads.append(pd.Timestamp(ts[ends.max() + f.horizon]))
        # and no target in the table a trial holds may come from the test period
        for h in range(1, f.horizon + 1):
            known = np.flatnonzero(df[f"target_{h}"].notna().to_numpy())
            reads.append(pd.Timestamp(ts[known.max() + h]))
        return out

    scored: list[pd.Timestamp] = []  # the realised values that score a forecast

    def spy_realised(self, df, ends, horizon):
        scored.append(pd.Timestamp(df["timestamp"].to_numpy()[int(np.max(ends)) + horizon]))
        return real_realised(self, df, ends, horizon)

    monkeypatch.setattr(windows, "prepare", spy_prepare)
    monkeypatch.setattr(targets.Target, "realised", spy_realised)
    honest = run_tune(config(tmp_path / "a", "tune.trials=2"), data)
    assert reads and scored  # the spies saw the trials' reads
    assert max(reads) < test_start and max(scored) < test_start

    poisoned = CANDLES.copy()
    future = poisoned["timestamp"] >= test_start
    for col in ("open", "high", "low", "close"):
        poisoned.loc[future, col] *= 50.0
    other = store(tmp_path / "poisoned", poisoned)
    moved = run_tune(config(tmp_path / "b", "tune.trials=2"), other)
    assert [r["value"] for r in honest.top] == [r["value"] for r in moved.top]
    assert honest.best_params == moved.best_params


def test_a_study_resumes_reports_every_fold_and_writes_a_usable_best_config(tmp_path, data):
    import optuna

    from cryptocast.tune.study import run_tune

    first = run_tune(config(tmp_path, "tune.trials=2"), data)
    assert Path(first.storage.removeprefix("sqlite:///")).is_file()
    study = optuna.load_study(study_name=first.study_name, storage=first.storage)
    before = [(t.number, t.value) for t in study.trials]
    # "Ctrl-C and rerun": the same command again continues the same study up to 3 trials
    second = run_tune(config(tmp_path, "tune.trials=3"), data)
    study = optuna.load_study(study_name=first.study_name, storage=first.storage)
    assert len(study.trials) == 3
    assert [(t.number, t.value) for t in study.trials[:2]] == before
    for t in study.trials:  # the pruner saw the running score after each fold
        assert sorted(t.intermediate_values) == list(range(len(t.intermediate_values)))
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert len(t.intermediate_values) == 2
            assert t.intermediate_values[1] == pytest.approx(t.value)
    assert second.best_value == min(t.value for t in study.trials if t.value is not None)
    assert second.plot.is_file() and second.plot.stat().st_size > 1000

    from cryptocast.config.schema import load_config

    best = load_config(second.best_config)  # accepted as it is
    for key, value in second.best_params.items():
        section, name = key.split(".")
        assert getattr(getattr(best, section), name) == value


def test_a_study_made_from_another_config_is_not_mixed_in(tmp_path, data):
    from cryptocast.errors import ConfigError
    from cryptocast.tune.study import run_tune

    run_tune(config(tmp_path, "tune.trials=1"), data)
    with pytest.raises(ConfigError, match="was made from another config"):
        run_tune(config(tmp_path, "tune.trials=2", "features.lookback=10"), data)


def test_crps_scores_a_quantile_model_and_is_refused_for_a_point_model(tmp_path, data):
    import optuna

    from cryptocast.errors import ConfigError
    from cryptocast.tune.study import run_tune

    with pytest.raises(ConfigError, match="tune.metric crps needs a quantile model"):
        run_tune(config(tmp_path, "tune.metric=crps"), data)
    q = ["model.quantiles=[0.1, 0.5, 0.9]", "train.loss=pinball", "tune.metric=crps"]
    res = run_tune(config(tmp_path, *q, "tune.trials=1", "tune.study_name=q"), data)
    trial = optuna.load_study(study_name="q", storage=res.storage).trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE and 0 < trial.value < np.inf


@pytest.mark.parametrize(
    "sets, needle",
    [
        (["tune.metric=qlike"], "tune.metric qlike does not score features.target=log_return"),
        (["tune.metric=nope"], "tune.metric 'nope' is unknown"),
    ],
)
def test_a_metric_of_the_wrong_kind_is_refused_before_any_trial(tmp_path, data, sets, needle):
    from cryptocast.errors import ConfigError
    from cryptocast.tune.study import run_tune

    with pytest.raises(ConfigError, match=needle):
        run_tune(config(tmp_path, *sets), data)
    assert not (tmp_path / "runs" / "tune").exists()


def test_the_snapshot_pruner_stops_above_the_median_of_finished_trials():
    from cryptocast.tune.pruning import SnapshotPruning

    prune = SnapshotPruning({0: 1.0, 1: 2.0})
    assert prune(0, 1.5) and not prune(0, 0.5) and not prune(1, 2.0) and not prune(2, 9.0)


def test_tune_cli_end_to_end_and_train_and_backtest_take_its_best_config(tmp_path, data):
    cfg_file = tmp_path / "tune.yaml"
    cfg = config(tmp_path)
    cfg_file.write_text(yaml.safe_dump(cfg.to_dict()))
    result = runner.invoke(
        app,
        ["tune", "--config", str(cfg_file), "--data-dir", str(data), "--trials", "2",
         "--seed", "3"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "best trials" in result.output and "best config written to" in result.output
    best = tmp_path / "runs" / "tune" / "lstm-BTC-USDT-1d" / "best.yaml"
    assert (best.parent / "history.png").is_file()
    out = runner.invoke(app, ["train", "--config", str(best), "--data-dir", str(data), "-q"])
    assert out.exit_code == 0, out.output
    report = tmp_path / "report"
    out = runner.invoke(
        app, ["backtest", "--config", str(best), "--data-dir", str(data), "--report", str(report)]
    )
    assert out.exit_code == 0, out.output
    assert (report / "summary.json").is_file()
