"""A failed backtest job keeps the finished ones (issue 25, point 6), with the local executor.

``flaky`` is a test-only model registered like any other; while ``BROKEN`` is set it outputs NaN,
so its training diverges (``TrainingDiverged``) and its job fails while the baselines finish.
Clearing it "fixes" the model without changing the config, so a rerun can redo the job.
(tests/test_executor_ray_faults.py covers lost Ray workers; tests/test_backtest.py a job that
fails in a worker process.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from tests.conftest import TINY_CONFIG, make_ohlcv
from tests.test_backtest import FAST, _Cheat, config, store

pytestmark = pytest.mark.usefixtures("restore_torch_threads")

BROKEN = {"on": True}
GRID = [
    "backtest.models=[flaky, persistence, drift]",
    "backtest.test_start=2021-06-01",
    "backtest.fold_length=40",
]


class _Flaky(_Cheat):
    def forward(self, x):
        return super().forward(x) * (float("nan") if BROKEN["on"] else 1.0)


def _build_flaky(cfg, n_features: int, horizon: int, lookback: int):
    return _Flaky(n_features, horizon)


@pytest.fixture
def flaky_model():
    """Registers the test-only model ``flaky`` (broken until ``BROKEN["on"]`` is cleared)."""
    from cryptocast.models import registry

    registry.model_names()  # load the built-in models first
    registry.register("flaky")(_build_flaky)
    BROKEN["on"] = True
    yield "flaky"
    registry._BUILDERS.pop("flaky", None)
    registry._TRAINABLE.pop("flaky", None)


def _data(tmp_path: Path) -> Path:
    return store(tmp_path / "data", make_ohlcv(220, "1d", start="2021-01-01", seed=4))


def _cli(tmp_path: Path, data: Path):
    sets = [a for s in [*FAST, *GRID] for a in ("--set", s)]
    return CliRunner().invoke(
        app,
        ["backtest", "--config", str(TINY_CONFIG), *sets, "--data-dir", str(data),
         "--report", str(tmp_path / "report")],
    )  # fmt: skip


@pytest.mark.usefixtures("flaky_model")
def test_a_failed_job_leaves_a_partial_report_and_exit_8(tmp_path):
    """The two baselines finish: their results are shown and written, report.md names the failed
    job and its one-line error under "Failed jobs", and the exit code is PartialFailure's 8."""
    data = _data(tmp_path)
    res = _cli(tmp_path, data)
    assert res.exit_code == 8, res.output
    last = res.output.strip().splitlines()[-1]
    assert (
        "1 of 3 backtest jobs failed (BTC/USDT 1d flaky: training diverged: the training loss"
        in " ".join(res.output.split())
    )
    assert "rerun the same command to redo only those" in " ".join(res.output.split()), last
    report = tmp_path / "report"
    summary = json.loads((report / "summary.json").read_text())
    assert [r["model"] for r in summary["results"]] == ["persistence", "drift"]
    (failed,) = summary["failed_jobs"]
    assert failed["symbol"] == "BTC/USDT" and failed["timeframe"] == "1d"
    assert failed["model"] == "flaky"
    assert failed["error"].startswith("training diverged: the training loss of epoch 1 is nan")
    assert "\n" not in failed["error"]
    md = (report / "report.md").read_text()
    assert "## Failed jobs" in md and "This report is partial: 1 job(s) failed" in md
    assert "| BTC/USDT | 1d | flaky | training diverged: the training loss" in md
    assert (tmp_path / ".report.jobs").is_dir()  # the finished jobs, kept for the rerun


@pytest.mark.usefixtures("flaky_model")
def test_a_rerun_redoes_only_the_failed_jobs(tmp_path):
    """The rerun takes the two finished jobs from disk (bit for bit, no fold recomputed) and runs
    only ``flaky``; the complete report has no "Failed jobs" section and the kept jobs are gone."""
    from cryptocast.api import backtest
    from cryptocast.errors import PartialFailure

    data = _data(tmp_path)
    report = tmp_path / "report"
    with pytest.raises(PartialFailure) as info:
        backtest(config(*GRID), data_dir=data, report_dir=report)
    first = info.value.done
    assert first.report_dir == report and [f.model for f in info.value.failed] == ["flaky"]
    BROKEN["on"] = False  # the cause is fixed; the config is the same

    events: list[dict] = []
    second = backtest(config(*GRID), data_dir=data, report_dir=report, on_event=events.append)
    jobs = {e["job"][2]: e for e in events if e.get("event") == "job"}
    assert {m for m, e in jobs.items() if e.get("reused")} == {"persistence", "drift"}
    assert not jobs["flaky"].get("reused") and jobs["flaky"]["ok"]
    computed = {e["model"] for e in events if "seconds" in e}  # folds trained/forecast now
    assert computed == {"flaky"}
    assert list(second.records["model"]) == ["flaky", "persistence", "drift"]
    old = first.forecasts.set_index(["model", "timestamp", "step"])["y_pred"]
    new = second.forecasts.set_index(["model", "timestamp", "step"])["y_pred"]
    for m in ("persistence", "drift"):
        assert np.array_equal(old.loc[m].to_numpy(), new.loc[m].to_numpy()), m
    assert "failed_jobs" not in json.loads((report / "summary.json").read_text())
    assert "Failed jobs" not in (report / "report.md").read_text()
    assert not (tmp_path / ".report.jobs").exists()


def test_a_stored_job_is_reused_only_under_the_same_key(tmp_path):
    """The key covers the job config, the table's content, the thread count and the code; not
    the grid's other jobs, the worker count or the report folder."""
    from cryptocast.evaluate.jobstore import job_key, table_hash
    from cryptocast.evaluate.walkforward import job_config
    from cryptocast.features.table import compute_features

    candles = make_ohlcv(220, "1d", start="2021-01-01", seed=4)
    cfg = config(*GRID)
    table = compute_features(candles, cfg.features, "1d")
    job = ("BTC/USDT", "1d", "drift")
    key = job_key(job_config(cfg, *job), table_hash(table), 1)
    same = config(*GRID, "backtest.workers=2", "backtest.models=[drift]", "backtest.report_dir=x")
    assert job_key(job_config(same, *job), table_hash(table), 1) == key
    assert job_key(job_config(cfg, *job), table_hash(table), 2) != key
    other = config(*GRID, "backtest.fold_length=41")
    assert job_key(job_config(other, *job), table_hash(table), 1) != key
    changed = candles.copy()
    changed.loc[150, "close"] *= 1.0001  # one corrected price
    table2 = compute_features(changed, cfg.features, "1d")
    assert job_key(job_config(cfg, *job), table_hash(table2), 1) != key


def test_a_stored_quantile_job_reads_back_equal(tmp_path):
    """Every field of a quantile model's result (calibration sets, tz-aware origin times) survives
    the store; a torn entry is ignored rather than trusted."""
    from cryptocast.evaluate.jobstore import JobStore
    from cryptocast.evaluate.walkforward import run_job
    from cryptocast.features.table import compute_features

    cfg = config(
        *GRID, "model.quantiles=[0.1, 0.5, 0.9]", "train.loss=pinball",
        "backtest.calibration=cqr",
    )  # fmt: skip
    df = compute_features(make_ohlcv(220, "1d", start="2021-01-01", seed=4), cfg.features, "1d")
    res = run_job(cfg, None, "BTC/USDT", "1d", "rw_ewma", df=df)
    assert res.calibration_sets and res.y_quantiles is not None
    js = JobStore(tmp_path / "jobs")
    js.put("k", res)
    back = js.get("k")
    for name, v in vars(res).items():
        w = getattr(back, name)
        if name == "calibration_sets":
            assert all(
                np.array_equal(a, c)
                for x, y in zip(v, w, strict=True)
                for a, c in zip(x, y, strict=True)
            )
        elif name == "aux":
            assert v.keys() == w.keys() and all(np.array_equal(v[k], w[k]) for k in v)
        elif isinstance(v, np.ndarray):
            assert v.dtype == w.dtype and np.array_equal(v, w), name
        else:
            assert v == w, name
    js.path("k").write_bytes(js.path("k").read_bytes()[:100])
    assert js.get("k") is None
