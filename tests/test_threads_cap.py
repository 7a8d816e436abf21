"""Thread counts are capped at the cores this process may use (issue 25, points 8 and 17).

More torch threads than cores only contend; thousands drove a 2-core machine's load past 1,200,
100,000 exhausted the process's thread limit (pyarrow's import then failed and the intact candle
file was called unreadable, exit 3) and a million segfaulted.
"""

from __future__ import annotations

import os
import subprocess
import sys

from cryptocast.data.store import series_path, write_parquet_atomic
from cryptocast.training.threads import apply_thread_plan, available_cores, plan_threads
from tests.conftest import REPO, TINY_CONFIG, make_ohlcv


def test_available_cores_follow_the_affinity_mask():
    assert available_cores() == len(os.sched_getaffinity(0))


def test_num_threads_is_capped_at_the_cores_with_a_reason():
    plan = plan_threads(jobs=1, cores=2, user_threads=5000)
    assert plan.threads == 2
    assert "capped" in plan.reason and "5000" in plan.reason
    assert plan_threads(jobs=1, cores=8, user_threads=3).threads == 3  # below the cap: as given
    assert apply_thread_plan(1, 5000).threads == available_cores()


def test_a_hundred_thousand_threads_train_with_a_note_not_a_data_error(tmp_path):
    data = tmp_path / "data"
    write_parquet_atomic(make_ohlcv(200), series_path(data, "binance", "BTC/USDT", "1d"))
    sets = [
        "train.num_threads=100000",
        "train.epochs=1",
        "train.device=cpu",
        "train.refit_all=false",
    ]
    cmd = [sys.executable, "-m", "cryptocast", "train", "-c", str(TINY_CONFIG)]
    cmd += ["--data-dir", str(data), *[a for s in sets for a in ("--set", s)]]
    cmd += ["--set", f"output.runs_dir={tmp_path / 'runs'}", "--quiet"]
    env = {**os.environ, "COLUMNS": "200"}
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "unreadable" not in text
    cores = available_cores()
    assert f"train.num_threads=100000 is more than the {cores} core(s) available" in text
