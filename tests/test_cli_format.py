"""Output that pipes: tables sized to $COLUMNS without trailing padding, and ``--format csv|json``
(the table's rows for scripts) for ``data``, ``features``, ``backtest`` and ``forecast --score``."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.data.store import series_path, write_parquet_atomic
from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D, REPO, TINY_CONFIG, make_ohlcv

runner = CliRunner()
SERIES = [("BTC/USDT", "1d"), ("BTC/USDT", "1h"), ("ETH/USDT", "1d")]


@pytest.fixture
def stored(data_dir: Path) -> Path:
    """Three stored series, one with gaps (so every integrity column has a value)."""
    for i, (symbol, tf) in enumerate(SERIES):
        n = 300 if tf == "1d" else 600
        drop = [10, 11, 50] if tf == "1h" else None
        candles = make_ohlcv(n, tf, start="2022-01-01", seed=i, drop=drop)
        write_parquet_atomic(candles, series_path(data_dir, "binance", symbol, tf))
    return data_dir


def _cli(*args: str, columns: str | None = None) -> subprocess.CompletedProcess:
    """``cryptocast ARGS`` in a fresh process whose stdout is a pipe (as in ``| cat``)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        env["COLUMNS"] = columns
    code = "from cryptocast.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("columns", ["80", None, "60"])
def test_piped_table_fits_columns_without_trailing_spaces(stored, columns):
    proc = _cli("data", "--data-dir", str(stored), columns=columns)
    assert proc.returncode == 0, proc.stderr
    width = int(columns or 80)
    lines = proc.stdout.splitlines()
    assert lines and all(len(ln) <= width for ln in lines), max(lines, key=len)
    assert not [ln for ln in lines if ln != ln.rstrip()], "trailing spaces"
    for symbol, tf in SERIES:
        assert f"{symbol} {tf}" in proc.stdout
    assert proc.stderr == ""


def test_piped_text_wraps_without_trailing_spaces(data_dir):
    proc = _cli("data", "--data-dir", str(data_dir / "nothing" / "here"), columns="40")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) > 2 and "no candles stored in" in lines[0]  # wrapped at 40
    assert all(len(ln) <= 40 and ln == ln.rstrip() for ln in lines), lines


def _parse(text: str, fmt: str) -> list[dict]:
    if fmt == "json":
        return json.loads(text)
    return list(csv.DictReader(io.StringIO(text)))


def test_data_csv_and_json_give_the_table_rows(stored):
    out = {}
    for fmt in ("csv", "json"):
        res = runner.invoke(app, ["data", "--data-dir", str(stored), "--format", fmt])
        assert res.exit_code == 0, res.output
        out[fmt] = _parse(res.stdout, fmt)
    js, cs = out["json"], out["csv"]
    assert [(r["symbol"], r["timeframe"]) for r in js] == SERIES  # the table's order
    assert len(cs) == len(js) == len(SERIES)
    for c, j in zip(cs, js, strict=True):  # the same rows, the same values, as text in csv
        assert list(c) == list(j)
        assert c == {k: "" if v is None else str(v) for k, v in j.items()}
    hourly = next(r for r in js if r["timeframe"] == "1h")
    assert hourly["rows"] == 597 and hourly["gaps"] == 2 and hourly["missing"] == 3
    assert pd.Timestamp(hourly["first"]) == pd.Timestamp("2022-01-01", tz="UTC")


def test_bad_format_is_one_line_exit_2(stored):
    res = runner.invoke(app, ["data", "--data-dir", str(stored), "--format", "xml"])
    assert res.exit_code == 2, res.output
    assert "--format 'xml': use one of table, csv, json" in res.output


def test_features_csv_and_json(stored):
    base = ["features", "--data-dir", str(stored), "-s", "BTC/USDT", "-t", "1d"]
    js = json.loads(runner.invoke(app, [*base, "--format", "json"]).stdout)
    res = runner.invoke(app, [*base, "--format", "csv"])
    assert res.exit_code == 0, res.output
    cs = list(csv.DictReader(io.StringIO(res.stdout)))
    assert len(js) == len(cs) == 1
    assert js[0]["symbol"] == "BTC/USDT" and js[0]["rows_in"] == 300
    assert js[0]["status"] == "built" and cs[0]["status"] == "cached"
    assert {k: v for k, v in cs[0].items() if k != "status"} == {
        k: str(v) for k, v in js[0].items() if k != "status"
    }


@pytest.mark.usefixtures("restore_torch_threads")
def test_backtest_csv_and_json_rows_match_summary(tmp_path):
    from tests.test_backtest import FAST, store

    data_dir = store(tmp_path / "data", make_ohlcv(200, "1d", start="2021-01-01", seed=7))
    out = {}
    for fmt in ("json", "csv"):
        res = runner.invoke(
            app,
            [
                "backtest", "--config", str(TINY_CONFIG), *[a for s in FAST for a in ("--set", s)],
                "--data-dir", str(data_dir), "--models", "persistence,drift",
                "--test-start", "2021-06-01", "--fold-length", "20",
                "--report", str(tmp_path / f"report_{fmt}"), "--format", fmt,
            ],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        out[fmt] = _parse(res.stdout, fmt)  # stdout holds only the records
        assert "report written to" in res.stderr
    summary = json.loads((tmp_path / "report_json" / "summary.json").read_text())
    js, cs = out["json"], out["csv"]
    assert [r["model"] for r in js] == [r["model"] for r in cs] == ["persistence", "drift"]
    for row, rec in zip(js, summary["results"], strict=True):
        assert row["rmse"] == rec["rmse"] and row["skill_rmse"] == rec["skill_rmse"]
        assert row["symbol"] == "BTC/USDT" and row["timeframe"] == "1d"
    assert float(cs[1]["rmse"]) == js[1]["rmse"]


@pytest.fixture
def fx():
    from tests.fake_exchange import FakeExchange

    with FakeExchange() as server:
        server.set_series("BTC", "USDT", "1d", FORECAST_CANDLES.iloc[: FORECAST_DAY_D + 2])
        yield server


def test_forecast_score_csv_json(forecast_run, fx, data_dir):
    ts = FORECAST_CANDLES["timestamp"]
    day = [
        (ts.iloc[i] + pd.Timedelta("1D") + pd.Timedelta("5min")).isoformat()
        for i in (FORECAST_DAY_D, FORECAST_DAY_D + 1)
    ]
    base = ["forecast", "--run", str(forecast_run), "--data-dir", str(data_dir)]
    fx.set_series("BTC", "USDT", "1d", FORECAST_CANDLES.iloc[: FORECAST_DAY_D + 1])
    env = {"CRYPTOCAST_EXCHANGE_URL": fx.url, "CRYPTOCAST_NOW": day[0]}
    assert runner.invoke(app, base, env=env).exit_code == 0
    fx.set_series("BTC", "USDT", "1d", FORECAST_CANDLES.iloc[: FORECAST_DAY_D + 2])
    env["CRYPTOCAST_NOW"] = day[1]
    res = runner.invoke(app, [*base, "--score", "--format", "csv"], env=env)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    again = runner.invoke(app, [*base, "--score", "--format", "json"], env=env)
    alias = runner.invoke(app, [*base, "--score", "--json"], env=env)
    assert again.exit_code == 0 and again.stdout == alias.stdout  # --json is --format json
    live = json.loads(again.stdout)[0]["live"]
    assert [r["model"] for r in rows] == list(live) == ["performer_bilstm"]
    assert rows[0]["n"] == "1" and float(rows[0]["mae"]) == live["performer_bilstm"]["mae"]
    assert float(rows[0]["persistence_mae"]) == live["performer_bilstm"]["persistence_mae"]
