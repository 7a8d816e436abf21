"""Behaviour unchanged: the golden run's digests equal the ones recorded before the restructure."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO, SHARED_OHLCV


@pytest.mark.skipif(
    not (SHARED_OHLCV / "BTC-USDT_1d.parquet").exists(),
    reason=f"reference candles not found at {SHARED_OHLCV} (set CRYPTOCAST_SHARED_DATA)",
)
def test_golden_run_is_byte_identical() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "golden_run.py")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "identical" in proc.stdout
