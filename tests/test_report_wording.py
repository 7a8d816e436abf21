"""report.md and the plots say what they mean: DM p defined and named by the model it is against,
RMSE with its unit, an unusable calibration not silently ignored, honest plots (markers for few
folds, the real span of the test period, distinguishable lines, drift above persistence), and a
one-fold backtest that writes nothing to stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from cryptocast.evaluate import evaluate_forecasts
from cryptocast.evaluate.plots import plot_actual_vs_pred, plot_fold_errors
from cryptocast.evaluate.report import forecasts_frame, results_table, write_report
from cryptocast.evaluate.significance import dm_vs_best_other
from tests.conftest import REPO, TINY_CONFIG, make_ohlcv

MODELS = {"lstm": 0.010, "gru": 0.012, "persistence": 0.0, "drift": None}


def _series(n: int = 60, fold_length: int = 30, seed: int = 0):
    """Forecasts and scored records of four models on one synthetic daily series (horizon 1)."""
    rng = np.random.default_rng(seed)
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.02, n + 1)))
    last, true = close[:n], close[1:, None]
    ts = pd.date_range("2023-01-01", periods=n, freq="1D", tz="UTC")
    folds = np.arange(n) // fold_length
    recs, preds, frames = {}, {}, []
    for model, noise in MODELS.items():
        if noise is None:  # drift: persistence plus one small mean move
            pred = last[:, None] * 1.0005
        elif noise == 0:
            pred = last[:, None].copy()
        else:
            pred = true * np.exp(rng.normal(0, noise, true.shape))
        recs[model], _ = evaluate_forecasts("BTC/USDT", "1d", model, last, true, pred)
        preds[model] = pred
        frames.append(forecasts_frame(ts, "BTC/USDT", "1d", model, folds, last, true, pred))
    rmse = {m: r["rmse"] for m, r in recs.items()}
    for m, (other, stat, p) in dm_vs_best_other(true, preds, rmse, ["lstm", "gru"]).items():
        recs[m].update(dm_best_other=other, dm_stat_vs_best=stat, dm_pvalue_vs_best=p)
    return pd.concat(frames, ignore_index=True), list(recs.values())


@pytest.fixture
def saved(monkeypatch, tmp_path):
    """``saved(plot_fn, part, *args)``: the matplotlib Figure a report plot function wrote."""
    from matplotlib.figure import Figure

    figures = []
    real = Figure.savefig

    def keep(self, *a, **k):
        figures.append(self)
        return real(self, *a, **k)

    monkeypatch.setattr(Figure, "savefig", keep)

    def run(fn, part, *args):
        fn(part, tmp_path / f"{fn.__name__}_{len(figures)}.png", *args)
        return figures[-1]

    return run


def _summary(recs, calibration: str = "none") -> dict:
    return {"config": {"backtest": {"calibration": calibration}}, "results": recs}


def test_dm_p_is_defined_and_names_the_model_it_is_against(tmp_path):
    forecasts, recs = _series()
    md = (write_report(tmp_path / "r", forecasts, _summary(recs)) / "report.md").read_text()
    assert "Diebold–Mariano" in md  # defined in the report itself
    header = next(line for line in md.splitlines() if line.startswith("| model |"))
    assert "dm_pvalue_vs_best" not in [c.strip() for c in header.split("|")]  # no bare "best"
    assert "vs best other neural" in header
    best_neural = min(
        ("lstm", "gru"), key=lambda m: next(r["rmse"] for r in recs if r["model"] == m)
    )
    row = next(line for line in md.splitlines() if line.startswith("| persistence |"))
    assert f"({best_neural})" in row  # persistence's p-value says it is against that model
    terminal = Console(width=300, record=True)
    terminal.print(results_table(recs))
    assert (
        f"({best_neural})" in terminal.export_text() and "DM p best" not in terminal.export_text()
    )


def test_rmse_carries_its_unit(tmp_path, saved):
    forecasts, recs = _series()
    md = (write_report(tmp_path / "r", forecasts, _summary(recs)) / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| model |"))
    assert "rmse (USDT)" in header and "mae (USDT)" in header
    terminal = Console(width=300, record=True)
    terminal.print(results_table(recs))
    assert "errors in USDT" in terminal.export_text()
    ax = saved(plot_fold_errors, forecasts).axes[0]
    assert ax.get_ylabel() == "RMSE (USDT)"


def test_unusable_calibration_is_not_silent(tmp_path):
    forecasts, recs = _series()
    md = (write_report(tmp_path / "r", forecasts, _summary(recs, "cqr")) / "report.md").read_text()
    warning = [line for line in md.splitlines() if "backtest.calibration=cqr" in line]
    assert len(warning) == 1 and "point" in warning[0]
    clean = (write_report(tmp_path / "r2", forecasts, _summary(recs)) / "report.md").read_text()
    assert "backtest.calibration" not in clean


@pytest.mark.usefixtures("restore_torch_threads")
def test_unusable_calibration_warns_on_the_terminal(tmp_path):
    from typer.testing import CliRunner

    from cryptocast.cli import app
    from tests.test_backtest import FAST, store

    data_dir = store(tmp_path / "data", make_ohlcv(200, "1d", start="2021-01-01", seed=7))
    res = CliRunner().invoke(
        app,
        [
            "backtest", "--config", str(TINY_CONFIG), *[a for s in FAST for a in ("--set", s)],
            "--set", "backtest.calibration=cqr", "--data-dir", str(data_dir),
            "--models", "persistence,drift", "--test-start", "2021-06-01", "--fold-length", "20",
            "--report", str(tmp_path / "report"),
        ],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.output.splitlines() if "backtest.calibration=cqr" in ln]
    assert len(lines) == 1 and lines[0].startswith("warning:")
    assert "backtest.calibration=cqr" in (tmp_path / "report" / "report.md").read_text()


def test_fold_error_plot_draws_markers_below_three_folds(saved):
    two, _ = _series(60, fold_length=30)
    four, _ = _series(60, fold_length=15)
    for forecasts, joined in ((two, False), (four, True)):
        lines = saved(plot_fold_errors, forecasts).axes[0].get_lines()
        assert len(lines) == len(MODELS)
        assert all(ln.get_marker() not in (None, "None", "") for ln in lines)
        assert all((ln.get_linestyle() != "None") == joined for ln in lines)


def test_actual_vs_pred_names_the_real_span_and_its_lines_differ(saved):
    forecasts, _ = _series(60)
    top, bottom = saved(plot_actual_vs_pred, forecasts, 90).axes
    assert "90" not in bottom.get_title() and "60 days" in bottom.get_title()
    assert "2023-01-02 .. 2023-03-02" in bottom.get_title()  # the 1-step targets it covers
    long, _ = _series(200)
    assert "last 90 of 200 days" in saved(plot_actual_vs_pred, long, 90).axes[1].get_title()
    for ax in (top, bottom):
        model_lines = [ln for ln in ax.get_lines() if ln.get_label() in MODELS]
        looks = {(ln.get_color(), ln.get_linestyle(), ln.get_marker()) for ln in model_lines}
        assert len(looks) == len(MODELS)  # no two models drawn alike
    ys = {ln.get_label(): np.asarray(ln.get_ydata()) for ln in bottom.get_lines()}
    for a in MODELS:  # the lower panel separates the models instead of stacking their errors
        for b in MODELS:
            if a < b:
                assert np.abs(ys[a] - ys[b]).max() > 1e-6 * np.abs(ys[a]).max() + 1e-9


def test_drift_is_drawn_over_persistence(saved):
    forecasts, _ = _series(60, fold_length=15)
    axes = [
        *saved(plot_actual_vs_pred, forecasts, 90).axes,
        saved(plot_fold_errors, forecasts).axes[0],
    ]
    for ax in axes:
        by = {ln.get_label(): ln for ln in ax.get_lines()}
        drift, pers = by["drift"], by["persistence"]
        assert drift.get_zorder() > pers.get_zorder()
        assert drift.get_linestyle() != pers.get_linestyle()
        assert pers.get_linewidth() > drift.get_linewidth()  # persistence shows around drift


def test_one_fold_plots_raise_no_warning(tmp_path):
    forecasts, recs = _series(29, fold_length=29)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the AutoDateLocator UserWarning of a one-date axis
        write_report(tmp_path / "r", forecasts, _summary(recs))


def test_one_fold_backtest_writes_nothing_to_stderr(tmp_path):
    from tests.test_backtest import FAST, store

    data_dir = store(tmp_path / "data", make_ohlcv(200, "1d", start="2021-01-01", seed=7))
    sets = [a for s in FAST for a in ("--set", s)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONWARNINGS")}
    proc = subprocess.run(
        [
            sys.executable, "-c", "from cryptocast.cli import main; main()",
            "backtest", "--config", str(TINY_CONFIG), *sets, "--data-dir", str(data_dir),
            "--models", "persistence,drift", "--test-start", "2021-06-20", "--fold-length", "29",
            "--report", str(tmp_path / "report"),
        ],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "2 jobs, 2 folds" in proc.stdout  # one fold per job
    assert proc.stderr == ""
