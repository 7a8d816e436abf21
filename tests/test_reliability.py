"""Hostile configs, names, checkpoints and file systems: one-line errors, exit codes, nothing lost.

The file-system trials use real mounts (a read-only tmpfs, a 1 MiB tmpfs that fills up) when the
test runs as root with mount rights; elsewhere they skip with the reason.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.config.schema import load_config
from cryptocast.data.store import series_path, write_parquet_atomic
from cryptocast.errors import CheckpointError, ConfigError, TrainingDiverged
from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D, TINY_CONFIG, make_ohlcv

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


STAMP = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ "


def _error_line(res) -> str:
    # fetch and forecast (cron commands) start their lines with the UTC time
    lines = [re.sub(STAMP, "", ln) for ln in res.output.splitlines()]
    lines = [ln for ln in lines if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    return lines[0]


def _daily(data_dir: Path, n: int = 300) -> Path:
    path = series_path(data_dir, "binance", "BTC/USDT", "1d")
    write_parquet_atomic(make_ohlcv(n), path)
    return path


# ---- 5: names that become paths ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-s", "BTC/../../../../../ESC", "-t", "1d"], "symbol 'BTC/../../../../../ESC'"),
        (["--exchange", "../../../escex", "-s", "BTC/USDT", "-t", "1d"], "'../../../escex'"),
        (["-s", "B" * 300 + "/USDT", "-t", "1d"], "must look like BASE/QUOTE"),
    ],
)
def test_fetch_and_import_names_cannot_escape_the_data_folder(args, needle, tmp_path):
    data = tmp_path / "deep" / "er" / "data"
    src = tmp_path / "f.csv"
    src.write_text("1672531200000,1,2,0.5,1.5,10,1672617599999,0,1,0,0,0\n")
    for extra in ([], ["--import", str(src)]):
        res = _cli(
            "fetch", *args, *extra, "--data-dir", str(data), "--exchange-url", "http://127.0.0.1:9"
        )
        assert res.exit_code == 2, res.output
        assert needle in _error_line(res)
    assert not list(tmp_path.rglob("*.parquet"))


def test_run_name_cannot_escape_runs_dir(tmp_path):
    with pytest.raises(ConfigError, match=r"output.name '../../../x' is not a valid run name"):
        load_config(TINY_CONFIG, ["output.name=../../../x"])
    assert load_config(TINY_CONFIG, ["output.name=exp-1.b"]).output.name == "exp-1.b"


# ---- 6: config values, divergence, NaN checkpoints, non-finite forecasts -----------------------
@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("train.lr=.inf", "finite number"),
        ("train.lr=.nan", "finite number"),
        ("train.epochs=true", "expected a number, not true"),
        ("backtest.fee_bps=-1", "greater than or equal to 0"),
        ("model.dropout=.inf", "finite number"),
        ("data.symbol=BTC/../x", "must look like BASE/QUOTE"),
        ("data.exchange=../x", "exchange '../x' is not a valid"),
    ],
)
def test_nonsense_config_values_are_refused_by_dotted_key(override, needle):
    with pytest.raises(ConfigError) as err:
        load_config(TINY_CONFIG, [override])
    assert needle in str(err.value) and override.split("=")[0] in str(err.value)


def test_diverging_training_stops_with_exit_11_and_no_checkpoint(data_dir, tmp_path):
    _daily(data_dir)
    runs = tmp_path / "runs"
    sets = ["train.lr=1e30", "train.optimizer=sgd", "train.grad_clip=0", "train.epochs=2"]
    from cryptocast.evaluate.holdout import train_run

    with pytest.raises(TrainingDiverged, match=r"loss of epoch 1 is (nan|inf)"):
        train_run(load_config(TINY_CONFIG, [*sets, f"output.runs_dir={runs}"]), data_dir)
    args = [a for s in sets for a in ("--set", s)]
    res = _cli("train", "-c", str(TINY_CONFIG), "--data-dir", str(data_dir), *args,
               "--set", f"output.runs_dir={runs}")  # fmt: skip
    assert res.exit_code == 11 and "no checkpoint was written" in _error_line(res)
    assert not list(runs.rglob("checkpoint.pt"))


def _tampered_run(forecast_run: Path, tmp_path: Path, value: float) -> Path:
    run = tmp_path / f"{forecast_run.name}-t"
    shutil.copytree(forecast_run, run)
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    name = [k for k, v in payload["state_dict"].items() if v.is_floating_point()][-1]
    payload["state_dict"][name].fill_(value)
    torch.save(payload, run / "checkpoint.pt")
    return run


def test_nan_weights_refused_and_non_finite_forecasts_never_logged(
    forecast_run, data_dir, tmp_path
):
    from cryptocast.training.checkpoint import load_checkpoint

    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: FORECAST_DAY_D + 1],
        series_path(data_dir, "binance", "BTC/USDT", "1d"),
    )
    nan_run = _tampered_run(forecast_run, tmp_path, float("nan"))
    with pytest.raises(CheckpointError, match="holds nan/inf"):
        load_checkpoint(nan_run / "checkpoint.pt")
    huge_run = _tampered_run(forecast_run, tmp_path / "h", 1e30)  # finite weights, inf output
    now = (FORECAST_CANDLES["timestamp"].iloc[FORECAST_DAY_D] + pd.Timedelta("1D1min")).isoformat()
    for run, code, needle in ((nan_run, 7, "holds nan/inf"), (huge_run, 7, "non-finite price")):
        res = _cli("forecast", "--run", str(run), "--data-dir", str(data_dir), "--no-fetch",
                   env={"CRYPTOCAST_NOW": now})  # fmt: skip
        assert res.exit_code == code and needle in _error_line(res)
    assert not series_path(data_dir, "binance", "BTC/USDT", "1d", kind="forecasts").exists()


# ---- 7: OS errors at the edge -----------------------------------------------------------------
@contextlib.contextmanager
def _mount(tmp_path: Path, options: str) -> Iterator[Path]:
    point = tmp_path / f"mnt-{uuid.uuid4().hex[:6]}"
    point.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                        capture_output=True, check=False)  # fmt: skip
    if ok.returncode != 0 or not shutil.which("umount"):
        pytest.skip("needs root with mount rights for a real read-only / full file system")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_disk_full_is_one_line_exit_9_and_the_old_file_is_intact(tmp_path):
    with _mount(tmp_path, "size=1m") as mnt:
        data = mnt / "data"
        path = series_path(data, "binance", "BTC/USDT", "1h")
        write_parquet_atomic(make_ohlcv(50, "1h", start="2020-01-01"), path)
        before = path.read_bytes()
        (mnt / "filler").write_bytes(b"\0" * (1024 * 1024 - 64 * 1024))  # leave too little room
        big = tmp_path / "BTCUSDT-1h-2021-01.csv"
        ms = np.arange(200_000, dtype=np.int64) * 3_600_000 + 1_514_764_800_000
        ms = ms[ms < 1_700_000_000_000]
        rows = np.column_stack([ms, np.full((len(ms), 5), 1.5)])
        pd.DataFrame(rows).astype({0: "int64"}).to_csv(big, header=False, index=False)
        res = _cli(
            "fetch", "--import", str(big), "--data-dir", str(data), "-t", "1h", "--overwrite"
        )
        assert res.exit_code == 9, res.output
        line = _error_line(res)
        assert "the disk is full; files already stored are intact" in line and "errno 28" in line
        assert path.read_bytes() == before


def test_read_only_data_folder_readers_work_writers_get_exit_9(tmp_path):
    src = tmp_path / "src"
    _daily(src)
    with _mount(tmp_path, "size=8m") as mnt:
        shutil.copytree(src, mnt / "data")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        runs = tmp_path / "runs"
        res = _cli("train", "-c", str(TINY_CONFIG), "--data-dir", str(mnt / "data"),
                   "--set", "train.epochs=1", "--set", f"output.runs_dir={runs}", "-q")  # fmt: skip
        assert res.exit_code == 0, res.output  # a reader needs no write lock
        res = _cli("fetch", "--import", str(src / "ohlcv" / "binance" / "BTC-USDT_1d.parquet"),
                   "--data-dir", str(mnt / "data"), "--overwrite")  # fmt: skip
        assert res.exit_code == 9 and "read-only" in _error_line(res)


def test_data_folder_that_is_a_file_runs_dir_unwritable_and_long_names(tmp_path, data_dir):
    afile = tmp_path / "afile"
    afile.write_text("x")
    src = tmp_path / "BTCUSDT-1d-2023-01.csv"
    src.write_text("1672531200000,1,2,0.5,1.5,10,1672617599999,0,1,0,0,0\n")
    res = _cli("fetch", "--import", str(src), "--data-dir", str(afile))
    assert res.exit_code == 9 and "is a file, not a folder" in _error_line(res)
    _daily(data_dir)
    res = _cli("train", "-c", str(TINY_CONFIG), "--data-dir", str(data_dir),
               "--set", f"output.runs_dir={afile}/runs")  # fmt: skip
    line = _error_line(res)
    assert res.exit_code == 9 and line.startswith("error: output.runs_dir:") and "afile" in line
    res = _cli("fetch", "--import", str(src), "--data-dir", str(data_dir / ("d" * 300)))
    assert res.exit_code == 9 and "too long" in _error_line(res)


def test_backtest_report_to_an_impossible_path(tmp_path, data_dir):
    afile = tmp_path / "afile"
    afile.write_text("x")
    _daily(data_dir, 400)
    res = _cli("backtest", "-c", str(TINY_CONFIG), "--data-dir", str(data_dir),
               "--models", "persistence", "-s", "BTC/USDT", "-t", "1d",
               "--report", str(afile / "x"))  # fmt: skip
    assert res.exit_code == 9 and "afile" in _error_line(res), res.output


# ---- 8: messages ------------------------------------------------------------------------------
def test_bracketed_text_in_messages_is_printed_intact(tmp_path, data_dir):
    bad = series_path(data_dir, "binance", "BTC/USDT", "1d")
    bad.parent.mkdir(parents=True)
    df = make_ohlcv(5)
    df["timestamp"] = df["timestamp"].dt.tz_localize(None)  # naive: wrong type in the store
    df.to_parquet(bad)
    res = _cli("data", "--data-dir", str(data_dir))
    assert "datetime64[ns, UTC]" in res.output, res.output


def test_store_entry_that_is_a_folder(data_dir):
    from cryptocast.data.store import read_ohlcv
    from cryptocast.errors import DataError

    path = series_path(data_dir, "binance", "BTC/USDT", "1d")
    path.mkdir(parents=True)
    with pytest.raises(DataError, match="BTC-USDT_1d.parquet is a folder, not a candle file"):
        read_ohlcv(path)
    res = _cli("data", "--data-dir", str(data_dir))
    assert res.exit_code == 3 and "has columns" not in res.output, res.output


def test_train_messages_for_future_start_and_unknown_exchange(data_dir, tmp_path):
    _daily(data_dir)
    base = ["train", "-c", str(TINY_CONFIG), "--data-dir", str(data_dir),
            "--set", f"output.runs_dir={tmp_path / 'runs'}"]  # fmt: skip
    res = _cli(*base, "--set", "data.start=2030-01-01")
    line = _error_line(res)
    assert res.exit_code == 3 and "data.start=2030-01-01" in line and "run from" in line
    assert "None" not in line
    res = _cli(*base, "--set", "data.exchange=nope")
    assert res.exit_code == 2 and "data.exchange 'nope'" in _error_line(res)


def test_forecast_clock_before_the_data_is_refused(forecast_run, data_dir):
    write_parquet_atomic(
        FORECAST_CANDLES.iloc[: FORECAST_DAY_D + 1],
        series_path(data_dir, "binance", "BTC/USDT", "1d"),
    )
    early = FORECAST_CANDLES["timestamp"].iloc[FORECAST_DAY_D - 10].isoformat()
    res = _cli("forecast", "--run", str(forecast_run), "--data-dir", str(data_dir), "--no-fetch",
               env={"CRYPTOCAST_NOW": early})  # fmt: skip
    assert res.exit_code == 2 and "is before the newest stored candle closed" in _error_line(res)
