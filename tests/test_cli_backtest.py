"""``cryptocast backtest`` through the CLI: the report folder, the leakage warning, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import TINY_CONFIG, make_ohlcv
from tests.test_backtest import CHEAT_TRAINING, FAST, cheat_model, leak_future, store  # noqa: F401

runner = CliRunner()
MODELS = ["lstm", "persistence", "drift"]


pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _backtest(data_dir: Path, report: Path, *args: str):
    sets = [a for s in FAST for a in ("--set", s)]
    return runner.invoke(
        app,
        [
            "backtest", "--config", str(TINY_CONFIG), *sets, "--data-dir", str(data_dir),
            "--symbol", "BTC/USDT", "--timeframe", "1d", "--report", str(report), *args,
        ],
        env={"COLUMNS": "220"},
    )  # fmt: skip


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> tuple[Path, Path, str]:
    """One complete CLI backtest: (data dir, report dir, output)."""
    root = tmp_path_factory.mktemp("cli_backtest")
    data_dir = store(root / "data", make_ohlcv(240, "1d", start="2021-01-01", seed=7))
    report = root / "report"
    threads = torch.get_num_threads()
    result = _backtest(
        data_dir, report, "--models", ",".join(MODELS), "--test-start", "2021-06-20",
        "--fold-length", "30", "--horizon", "2",
    )  # fmt: skip
    torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return data_dir, report, result.output


def test_report_folder_is_complete(done):
    from cryptocast.evaluate.frames import FORECAST_COLUMNS
    from cryptocast.evaluate.scoring import PRICE

    _, report, output = done
    assert "report written to" in output and "folds" in output
    for m in MODELS:
        assert m in output  # the results table
    summary = json.loads((report / "summary.json").read_text())
    recs = summary["results"]
    assert [r["model"] for r in recs] == MODELS
    for r in recs:
        assert all(f in r for f in PRICE.required_fields), r
        assert (r["symbol"], r["timeframe"], r["folds"]) == ("BTC/USDT", "1d", 3)
        assert r["n"] == recs[0]["n"] > 30
    assert recs[1]["skill_rmse"] == 0.0  # persistence against itself
    assert summary["config"]["backtest"]["models"] == MODELS
    rng = summary["data_ranges"]["BTC/USDT 1d"]
    assert rng["test_first_origin"].startswith("2021-06-20")
    assert len(summary["config_hash"]) == 12 and "torch" in summary["versions"]

    forecasts = pd.read_parquet(report / "forecasts.parquet")
    assert list(forecasts.columns) == FORECAST_COLUMNS
    assert len(forecasts) == len(MODELS) * recs[0]["n"] * 2  # origins x models x 2 steps
    assert set(forecasts["step"]) == {1, 2} and set(forecasts["fold"]) == {0, 1, 2}
    assert set(forecasts["model"]) == set(MODELS)
    assert pd.read_parquet(report / "equity.parquet")["model"].nunique() == len(MODELS) + 1

    pngs = sorted(p.name for p in report.glob("*.png"))
    assert pngs == [f"{k}_BTC-USDT_1d.png" for k in ("actual_vs_pred", "equity", "fold_error")]
    assert all((report / p).stat().st_size > 1000 for p in pngs)
    md = (report / "report.md").read_text()
    assert (
        "- test_start: `2021-06-20" in md and "- models: `['lstm', 'persistence', 'drift']`" in md
    )
    for m in MODELS:
        assert f"| {m} |" in md
    for p in pngs:
        assert f"({p})" in md
    assert not [p for p in report.parent.iterdir() if p.name.startswith(".report")]


BAD = [
    (["--test-start", "2030-01-01"], 3, ["2030-01-01", "outside the data"]),
    (["--test-start", "2015-01-01"], 3, ["2015-01-01", "outside the data"]),
    (["--test-start", "2021-08-01", "--test-end", "2021-07-01"], 3, ["--test-end"]),
    (["--test-start", "2021-08-01", "--fold-length", "500"], 2, ["fold_length 500", "longer"]),
    (["--models", ","], 2, ["no model left"]),
    (["--models", "lstm,nope"], 2, ["unknown model 'nope'", "persistence"]),
    (["--metrics", "rmse,foo"], 2, ["unknown metric 'foo'", "mape"]),
    (["--window", "sideways"], 2, ["--window 'sideways'", "'expanding' or 'rolling'"]),
    (["--test-start", "01/02/2023"], 2, ["--test-start '01/02/2023' is not an ISO date"]),
    (["--test-end", "2023-13-01"], 2, ["--test-end '2023-13-01'", "YYYY-MM-DD"]),
    (["--set", "backtest.test_start=2023-02-30"], 2, ["--set backtest.test_start=", "day"]),
]


@pytest.mark.parametrize(("args", "code", "needles"), BAD, ids=lambda v: str(v)[:30])
@pytest.mark.parametrize("previous", [True, False], ids=["over-report", "no-report"])
def test_bad_inputs_fail_in_one_line_and_leave_no_partial_report(
    done, tmp_path, args, code, needles, previous
):
    data_dir, good, _ = done
    report = tmp_path / "report"
    before = {}
    if previous:
        shutil.copytree(good, report)
        before = {p.name: p.read_bytes() for p in report.iterdir()}
    result = _backtest(data_dir, report, "--models", "persistence", *args)
    assert result.exit_code == code, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    assert all(n in errors[0] for n in needles), errors[0]
    if previous:
        assert {p.name: p.read_bytes() for p in report.iterdir()} == before
    else:
        assert not report.exists()
    assert [p.name for p in tmp_path.iterdir()] == (["report"] if previous else [])


def test_leakage_is_flagged_on_the_terminal_and_in_the_summary(
    tmp_path,
    cheat_model,  # noqa: F811
    leak_future,  # noqa: F811
):
    data_dir = store(tmp_path / "data", make_ohlcv(300, "1d", start="2021-01-01", seed=5))
    report = tmp_path / "report"
    sets = [a for s in CHEAT_TRAINING for a in ("--set", s)]
    result = _backtest(
        data_dir, report, *sets, "--models", "cheat,persistence", "--test-start", "2021-08-01",
        "--fold-length", "60",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    warnings = [ln for ln in result.output.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "cheat on BTC/USDT 1d" in warnings[0], result.output
    assert "look-ahead" in warnings[0]
    recs = {r["model"]: r for r in json.loads((report / "summary.json").read_text())["results"]}
    assert recs["cheat"]["leakage_suspect"] is True
    assert recs["persistence"]["leakage_suspect"] is False
