"""What ``cryptocast tune`` guarantees beyond a plain study (issue 25 points 1, 3, 4, 5, 16, 22;
issue 26 point 8): searched feature keys really change the table a trial sees, a resumed study
continues the sampler's sequence, the study name stays a folder name, ``crps`` is the backtest's
CRPS, concurrent processes each run their trials, and bad input ends in one line.

Real components throughout: Optuna on SQLite, the tiny LSTM of tests/test_tune.py, real
subprocesses for the concurrent study.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import REPO, TINY_CONFIG
from tests.test_backtest import store
from tests.test_tune import CANDLES, TUNE, config

optuna = pytest.importorskip("optuna")
pytestmark = pytest.mark.usefixtures("restore_torch_threads")

runner = CliRunner()


@pytest.fixture
def data(data_dir: Path) -> Path:
    return store(data_dir, CANDLES)


def _params(storage: str, name: str) -> list[tuple]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [tuple(sorted(t.params.items())) for t in study.trials]


# ---- 1: features.* keys ----------------------------------------------------------------------
def test_a_searched_feature_key_changes_the_table_the_trial_sees(tmp_path, data):
    """calendar: false must drop dow_sin/dow_cos from the trial's table, so it scores differently
    from calendar: true (before, every trial reused the base table and scored identically)."""
    from cryptocast.tune.study import run_tune

    cfg = config(
        tmp_path,
        "tune.space={features.calendar: [true, false]}",
        "tune.pruner=none",
        "tune.trials=4",
        "tune.seed=1",
    )
    res = run_tune(cfg, data)
    study = optuna.load_study(study_name=res.study_name, storage=res.storage)
    by_value: dict[bool, set[float]] = {True: set(), False: set()}
    for t in study.trials:
        assert t.state == optuna.trial.TrialState.COMPLETE
        by_value[t.params["features.calendar"]].add(t.value)
    assert by_value[True] and by_value[False], "the seed should sample both values"
    assert len(by_value[True]) == len(by_value[False]) == 1  # deterministic per feature config
    assert by_value[True] != by_value[False]


@pytest.mark.parametrize("key", ["features.horizon", "features.target"])
def test_a_feature_key_that_changes_what_is_scored_is_refused_at_load(tmp_path, key):
    from cryptocast.errors import ConfigError

    space = (
        "{features.horizon: [1, 3]}"
        if key == "features.horizon"
        else ("{features.target: [log_return, price]}")
    )
    with pytest.raises(ConfigError, match=f"tune.space.{key}: cannot be searched") as err:
        config(tmp_path, f"tune.space={space}")
    assert "searchable features keys:" in str(err.value) and "calendar" in str(err.value)


# ---- 3: a resumed study continues the sampler's sequence ---------------------------------------
def test_a_resumed_study_does_not_repeat_the_first_trials(tmp_path, data):
    from cryptocast.tune.study import run_tune

    first = run_tune(config(tmp_path, "tune.trials=3", "tune.pruner=none"), data)
    run_tune(config(tmp_path, "tune.trials=6", "tune.pruner=none"), data)  # resume: 3 more
    params = _params(first.storage, first.study_name)
    assert len(params) == 6
    assert len(set(params)) == 6, params  # no parameter set repeated


# ---- 4: the study name is a folder name --------------------------------------------------------
@pytest.mark.parametrize("name", ["../../x", "/tmp/x", ".hidden", "a/b"])
def test_a_study_name_that_is_a_path_is_refused_at_load(tmp_path, name):
    from cryptocast.errors import ConfigError

    with pytest.raises(ConfigError, match="tune.study_name .* is not a valid run name"):
        config(tmp_path, f"tune.study_name={name}")


def test_the_cli_refuses_a_study_name_path_in_one_line(tmp_path, data):
    sets = [a for s in TUNE for a in ("--set", s)]
    runs = tmp_path / "runs"
    result = runner.invoke(
        app,
        ["tune", "--config", str(TINY_CONFIG), *sets, "--set", f"output.runs_dir={runs}",
         "--data-dir", str(data), "--study-name", "../../escaped"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "tune.study_name '../../escaped' is not a valid run name" in result.output
    assert not (tmp_path / "escaped").exists() and not (runs / "tune").exists()


# ---- 5: one unit for CRPS ----------------------------------------------------------------------
def test_a_trials_crps_is_the_backtests_crps_in_log_return_units(tmp_path, data):
    """The trial's ``crps`` and the backtest's CRPS (evaluate.probabilistic, log-return units)
    of the same config over the same folds: the backtest runs on candles ending at tune.end, so
    its test period is exactly the tuning period."""
    from cryptocast.evaluate.backtest import run_backtest
    from cryptocast.evaluate.probabilistic import prob_scores
    from cryptocast.training.runs import load_feature_table
    from cryptocast.tune.trial import run_trial, tuning_table

    q = ["model.quantiles=[0.1, 0.5, 0.9]", "train.loss=pinball", "tune.metric=crps"]
    cfg = config(tmp_path, *q)
    period = tuning_table(cfg, load_feature_table(cfg, data))
    trial = run_trial(cfg.to_dict(), period.table, period.start)

    cut = int(CANDLES["timestamp"].searchsorted(pd.Timestamp(period.end)))
    short = store(tmp_path / "short", CANDLES.iloc[:cut])
    raw = cfg.to_dict()
    raw["backtest"].update(test_start=period.start, models=["lstm"])
    from cryptocast.config.schema import config_from_dict

    (job,) = run_backtest(config_from_dict(raw), short)
    backtest_crps = prob_scores(job.y_true, job.y_quantiles, job.last_close, job.quantile_levels)[
        "crps"
    ]
    assert np.isfinite(backtest_crps) and backtest_crps < 0.5  # log-return units (~0.01-0.05)
    assert trial["value"] == pytest.approx(backtest_crps, rel=1e-9)


# ---- 16: a corrupt study database ----------------------------------------------------------------
def test_a_corrupt_study_database_is_one_line_naming_it_and_is_kept(tmp_path, data):
    sets = [a for s in TUNE for a in ("--set", s)]
    runs = tmp_path / "runs"
    db = runs / "tune" / "broken" / "study.db"
    db.parent.mkdir(parents=True)
    junk = b"SQLite format 3\x00" + bytes(range(256)) * 8
    db.write_bytes(junk)
    result = runner.invoke(
        app,
        ["tune", "--config", str(TINY_CONFIG), *sets, "--set", f"output.runs_dir={runs}",
         "--data-dir", str(data), "--study-name", "broken", "--trials", "1"],
        env={"COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert str(db) in last and "move it aside" in last, last
    assert db.read_bytes() == junk  # nothing stored is lost


# ---- issue 26 point 8: --workers 0 --------------------------------------------------------------
def test_tune_workers_0_is_one_line_like_backtest(tmp_path):
    result = runner.invoke(app, ["tune", "--workers", "0"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--workers 0" in lines[0], result.output
    assert "╭" not in result.output and "Usage" not in result.output


# ---- 22: two concurrent processes on one study ---------------------------------------------------
def _tune_process(tmp_path: Path, data: Path, n: int, log: Path) -> subprocess.Popen:
    sets = [a for s in TUNE for a in ("--set", s)]
    cmd = [sys.executable, "-m", "cryptocast", "tune", "--config", str(TINY_CONFIG), *sets,
           "--set", f"output.runs_dir={tmp_path / 'runs'}", "--set", "tune.pruner=none",
           "--set", "train.epochs=100",
           "--data-dir", str(data), "--study-name", "shared", "--trials", str(n)]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_two_concurrent_processes_on_one_study_each_run_their_trials(tmp_path, data):
    """The second process starts once the first has finished a trial: it must not count that
    trial (of a run still going) as its own, so the study ends with both runs' trials. (100
    epochs: a trial takes seconds, so the first run is still going when the second has read the
    study; at 20 a quiet machine finished all ten trials before the second process had started.)"""
    storage = f"sqlite:///{tmp_path / 'runs' / 'tune' / 'shared' / 'study.db'}"
    first = _tune_process(tmp_path, data, 10, tmp_path / "a.log")
    try:
        deadline = time.monotonic() + 120
        done = 0
        while done < 1:
            assert first.poll() is None, (tmp_path / "a.log").read_text()
            assert time.monotonic() < deadline, "the first process finished no trial"
            time.sleep(0.3)
            try:
                study = optuna.load_study(study_name="shared", storage=storage)
            except (KeyError, Exception):  # noqa: BLE001  (not created yet)
                continue
            done = len([t for t in study.trials if t.state.is_finished()])
        second = _tune_process(tmp_path, data, 3, tmp_path / "b.log")
        started_while_first_ran = first.poll() is None
        assert second.wait(240) == 0, (tmp_path / "b.log").read_text()
        assert first.wait(240) == 0, (tmp_path / "a.log").read_text()
    finally:
        for p in (first, locals().get("second")):
            if p is not None and p.poll() is None:
                p.kill()
    study = optuna.load_study(study_name="shared", storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 13, (tmp_path / "b.log").read_text()
    a_run = study.trials[0].user_attrs.get("run")
    a = [t for t in finished if t.user_attrs.get("run") == a_run]
    b = [t for t in finished if t.user_attrs.get("run") != a_run]
    assert len(a) == 10 and len(b) == 3  # each process ran its own trials ...
    # the second started while the first's run was going and had finished trials (how long the
    # two then overlap depends on start-up time: a quick first run may end before the second's
    # first trial, and the old count of finished trials failed either way)
    assert started_while_first_ran
    params = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(params)) == len(params)  # and no parameter set twice
