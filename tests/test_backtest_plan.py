"""``cryptocast backtest`` says up front how long its plan can take (issue 26, point 1): the
estimate is printed with the plan; on a terminal a plan over 10 minutes asks first (``--yes``
skips it), piped runs proceed."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cryptocast.cli import app
from cryptocast.config.schema import load_config
from cryptocast.evaluate.estimate import estimate_backtest, human_duration
from tests.conftest import REPO, TINY_CONFIG, make_ohlcv
from tests.test_backtest import FAST, store

pytestmark = pytest.mark.usefixtures("restore_torch_threads")
PLAN = ["--models", "lstm,persistence", "--test-start", "2021-06-20", "--fold-length", "30"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return store(tmp_path_factory.mktemp("plan") / "data", make_ohlcv(240, "1d", "2021-01-01", 7))


def _args(data_dir: Path, report: Path, *extra: str) -> list[str]:
    sets = [a for s in FAST for a in ("--set", s)]
    return [
        "backtest", "-c", str(TINY_CONFIG), *sets, "--data-dir", str(data_dir),
        "--symbol", "BTC/USDT", "--timeframe", "1d", "--report", str(report), *PLAN, *extra,
    ]  # fmt: skip


def test_the_estimate_counts_the_refits_the_run_makes(data_dir):
    cfg = load_config(TINY_CONFIG, FAST)
    cfg.backtest.models, cfg.backtest.test_start = ["lstm", "persistence"], "2021-06-20"
    cfg.backtest.fold_length, cfg.backtest.retrain_every = 30, 2
    plan = estimate_backtest(cfg, data_dir)
    # 69 test origins in folds of 30: 3 folds per job, lstm refits on folds 0 and 2
    assert (plan.jobs, plan.folds, plan.refits) == (2, 6, 2)
    assert 0 < plan.seconds < 600 and set(plan.rates) == {"lstm"}
    long = cfg.model_copy(deep=True)
    long.train.epochs = 10_000
    assert estimate_backtest(long, data_dir).seconds > 1000 * plan.seconds


def test_piped_runs_print_the_estimate_with_the_plan_and_proceed(data_dir, tmp_path):
    result = CliRunner().invoke(app, _args(data_dir, tmp_path / "r"), env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "plan: 2 jobs, 6 folds, 3 neural refits; estimated " in result.output
    assert (tmp_path / "r" / "summary.json").is_file()


def _on_a_terminal(args: list[str], answer: str | None, wait_for: str) -> tuple[str, int | None]:
    """Run the CLI with a pseudo-terminal as stdin and stdout; type ``answer`` once
    ``wait_for`` appears (None: stop the process there). Returns (output, exit code)."""
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "250", "TERM": "dumb"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cryptocast", *args],
        stdin=secondary, stdout=secondary, stderr=secondary, cwd=REPO, env=env,
    )  # fmt: skip
    os.close(secondary)
    out, deadline, answered = b"", time.monotonic() + 120, False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    out += os.read(primary, 4096)
                except OSError:  # the process closed the terminal
                    break
            if not answered and wait_for.encode() in out:
                if answer is None:
                    break
                os.write(primary, answer.encode())
                answered = True
            if proc.poll() is not None and not ready:
                break
    finally:
        if proc.poll() is None and (answer is None or time.monotonic() >= deadline):
            proc.kill()
        code = proc.wait(30)
        os.close(primary)
    return out.decode(errors="replace"), (None if answer is None else code)


def test_a_long_plan_asks_on_a_terminal_and_no_starts_nothing(data_dir, tmp_path):
    long = ["--set", "train.epochs=100000"]
    out, code = _on_a_terminal(_args(data_dir, tmp_path / "r", *long), "n\n", "start it?")
    assert "if every refit runs all its epochs" in out and "start it?" in out, out
    assert code == 1 and "not started" in out
    assert not (tmp_path / "r").exists()


def test_yes_starts_a_long_plan_without_asking(data_dir, tmp_path):
    long = ["--set", "train.epochs=100000", "--yes"]
    out, _ = _on_a_terminal(_args(data_dir, tmp_path / "r", *long), None, "jobs")
    assert "if every refit runs all its epochs" in out and "start it?" not in out, out


def test_human_durations():
    assert [human_duration(s) for s in (0.2, 40, 252, 11100)] == [
        "1 s",
        "40 s",
        "4.2 min",
        "3 h 05 min",
    ]
