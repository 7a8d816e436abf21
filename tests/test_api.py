"""The public Python API: docs/api.md runs as written, the quickstart runs, the package imports
light, and every exported function is documented."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, modules_loaded_by

DOC = REPO / "docs" / "api.md"
QUICKSTART = REPO / "examples" / "quickstart.py"
EXPORTS = ["backtest", "build_features", "fetch", "forecast", "load_config", "load_run", "train"]


def python_blocks(text: str) -> list[str]:
    """The ```python fenced blocks of a Markdown page, in order."""
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_package_exports_the_api_lazily():
    import cryptocast

    assert sorted(cryptocast.__all__) == EXPORTS
    subpackages = {p.name for p in (REPO / "cryptocast").iterdir() if (p / "__init__.py").is_file()}
    assert not set(cryptocast.__all__) & subpackages, "an export shadows a subpackage"
    for name in EXPORTS:
        fn = getattr(cryptocast, name)
        assert fn is getattr(cryptocast.api, name) and name in dir(cryptocast)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cryptocast.nope  # noqa: B018


def test_import_cryptocast_imports_neither_pandas_nor_torch():
    code = "import cryptocast\nassert callable(cryptocast.__getattr__) and 'fetch' in cryptocast.__all__"
    assert modules_loaded_by(code, ("pandas", "torch", "cryptocast.api")) == []


def test_getting_an_api_function_still_imports_no_torch():
    code = (
        "import sys; from cryptocast import " + ", ".join(EXPORTS) + "; "
        "print(','.join(m for m in ('pandas', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"the API's import pulls in {out.stdout.strip()}"


@pytest.mark.parametrize("name", EXPORTS)
def test_every_exported_function_has_a_google_style_docstring(name):
    import cryptocast

    fn = getattr(cryptocast, name)
    doc = inspect.getdoc(fn) or ""
    assert doc.strip(), f"{name} has no docstring"
    for section in ("Args:", "Returns:", "Raises:"):
        assert section in doc, f"{name}'s docstring lacks {section}"
    documented = set(re.findall(r"^ {4}(\w+):", doc.split("Returns:")[0], flags=re.M))
    params = set(inspect.signature(fn).parameters)
    assert params <= documented, f"{name}: undocumented arguments {sorted(params - documented)}"


def test_the_docs_page_has_blocks_and_documents_every_export():
    text = DOC.read_text()
    assert len(python_blocks(text)) >= 5
    for name in EXPORTS:
        assert f"`{name}(" in text or f"`{name}`" in text, f"docs/api.md does not show {name}"


@pytest.fixture
def workdir(tmp_path, monkeypatch, shared_ohlcv, restore_torch_threads):
    """A scratch working directory holding configs/, as if run from the repository root."""
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRYPTOCAST_SHARED_DATA", str(shared_ohlcv))
    monkeypatch.delenv("CRYPTOCAST_NOW", raising=False)
    return tmp_path


def test_docs_api_md_runs_as_written(workdir, capsys):
    """Every ```python block of docs/api.md, in order, in one namespace (skipped without the
    reference candles)."""
    namespace: dict = {"__name__": "__docs__"}
    for i, block in enumerate(python_blocks(DOC.read_text()), 1):
        exec(compile(block, f"docs/api.md, python block {i}", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    bt, fc = namespace["bt"], namespace["fc"]
    assert set(bt.records["model"]) == {"lstm", "persistence"}
    assert (bt.report_dir / "report.md").is_file() and (bt.report_dir / "summary.json").is_file()
    assert fc.added == 1 and len(fc.rows) == 1 and not fc.stale
    assert Path(fc.log_path).is_file()
    assert "exit 10:" in out and "exit 2: --set model.name=perfomer" in out


def test_quickstart_runs(tmp_path, shared_ohlcv):
    """examples/quickstart.py end to end in a subprocess (skipped without the reference candles)."""
    env = {**os.environ, "CRYPTOCAST_SHARED_DATA": str(shared_ohlcv)}
    env["QUICKSTART_DIR"] = str(tmp_path / "quickstart")
    env.pop("CRYPTOCAST_NOW", None)
    proc = subprocess.run(
        [sys.executable, str(QUICKSTART)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for step in ("candles", "features", "train", "backtest", "forecast"):
        assert re.search(rf"\] {step}$", proc.stdout, flags=re.M), proc.stdout
    assert "(1 new row(s))" in proc.stdout
    assert (tmp_path / "quickstart" / "report" / "report.md").is_file()


# ---- the API's own behaviour, on synthetic candles (no reference data needed) ----
def test_load_config_takes_a_path_a_config_and_overrides():
    from cryptocast.api import load_config
    from cryptocast.errors import ConfigError

    tiny = REPO / "configs" / "tiny.yaml"
    cfg = load_config(tiny, ["train.epochs=1"])
    assert cfg.train.epochs == 1 and load_config(cfg) is cfg
    again = load_config(cfg, "model.name=lstm")  # one string is one override
    assert again.model.name == "lstm" and cfg.model.name == "performer_bilstm"
    assert again.train.epochs == 1
    with pytest.raises(ConfigError, match=r"--set train\.epochs=abc"):
        load_config(cfg, ["train.epochs=abc"])


def test_fetch_imports_files_and_returns_one_row_per_series(tmp_path):
    from cryptocast.api import build_features, fetch
    from tests.conftest import make_ohlcv

    src = tmp_path / "src"
    src.mkdir()
    make_ohlcv(300, "1d", seed=1).to_parquet(src / "BTC-USDT_1d.parquet", index=False)
    data = tmp_path / "data"
    report = fetch(import_from=src, data_dir=data)
    assert report[["exchange", "symbol", "timeframe", "rows", "new_candles"]].values.tolist() == [
        ["binance", "BTC/USDT", "1d", 300, 300]
    ]
    table = build_features(REPO / "configs" / "tiny.yaml", data_dir=data)
    assert len(table) == table.attrs["rows_in"] - table.attrs["warmup_dropped"]
    trimmed = build_features(
        REPO / "configs" / "tiny.yaml", ["data.start=2020-06-01"], data_dir=data, trim=True
    )
    assert str(trimmed["timestamp"].iloc[0].date()) == "2020-06-01"


def test_refusals_are_library_errors_before_any_work(tmp_path):
    from cryptocast.api import backtest, forecast, load_run
    from cryptocast.errors import CheckpointError, ConfigError

    with pytest.raises(ConfigError, match="nothing to forecast"):
        forecast(data_dir=tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        forecast(tmp_path, config=REPO / "configs" / "tiny.yaml")
    with pytest.raises(CheckpointError, match="not found"):
        load_run(tmp_path / "no-such-run")
    with pytest.raises(ConfigError, match="use one of local, ray"):
        backtest(executor="spark", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="test_start '01/02/2023'"):  # the keyword is named
        backtest(test_start="01/02/2023", data_dir=tmp_path, write=False)


def test_load_run_and_forecast_a_trained_run(forecast_run, tmp_path):
    import pandas as pd

    from cryptocast.api import forecast, load_run
    from cryptocast.data.store import series_path, write_parquet_atomic
    from tests.conftest import FORECAST_CANDLES, FORECAST_DAY_D

    run = load_run(forecast_run)
    assert run.path == forecast_run and run.name == forecast_run.name
    assert run.config.model.name == run.metrics["model"] == "performer_bilstm"
    assert list(run.history["epoch"]) == [1]
    assert run.predictor.feature_names and run.predictor.lookback == run.config.features.lookback
    data = tmp_path / "data"
    candles = FORECAST_CANDLES.iloc[: FORECAST_DAY_D + 1]
    write_parquet_atomic(candles, series_path(data, "binance", "BTC/USDT", "1d"))
    now = candles["timestamp"].iloc[-1] + pd.Timedelta("36h")  # the day after, at noon
    res = forecast(run, data_dir=data, fetch=False, now=now)
    assert res.added == 1 and res.run_id == run.name and not res.stale
    assert forecast(forecast_run, data_dir=data, fetch=False, now=now).added == 0
