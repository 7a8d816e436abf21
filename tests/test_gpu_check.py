"""scripts/gpu_check.py (make gpu-check, sections in scripts/gpucheck/): its summaries, its refusal
without a GPU, and the dry run.

The full dry run (``--device cpu``, ~40 s) is marked slow; CI runs it as ``make gpu-check-dry``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from scripts.gpucheck.attention import attention_summary
from scripts.gpucheck.sizes import legs

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(impl, L, seconds, dtype="float32", pass_="fwd"):
    return {"impl": impl, "L": L, "seconds": seconds, "dtype": dtype, "pass": pass_}


def test_attention_summary_crossover_and_speedup():
    rows = [
        _row("favor", 256, 2.0),
        _row("sdpa", 256, 1.0),
        _row("favor", 512, 1.0),  # faster from here on...
        _row("sdpa", 512, 1.5),
        _row("favor", 1024, 1.0),
        _row("sdpa", 1024, 4.0),
        _row("favor", 2048, 2.0),  # ...and only FAVOR+ was measured at 2048
    ]
    summary = attention_summary(rows, "cpu")
    out = {
        r["figure"]: r
        for r in summary
        if r["params"]["dtype"] == "float32" and r["params"]["pass"] == "fwd"
    }
    assert out["attention_crossover_L"]["value"] == 512
    assert out["attention_speedup_longest_L"]["value"] == 4.0  # at L=1024, the longest common L
    assert out["attention_longest_L"]["value"] == 2048
    assert out["attention_longest_L"]["sdpa_longest_L"] == 1024


def test_legs_are_cpu_and_accelerator_once_each():
    assert legs("cuda") == [
        ("cpu", "fp32"),
        ("cpu", "mixed"),
        ("cuda", "fp32"),
        ("cuda", "mixed"),
    ]
    assert legs("cpu") == [("cpu", "fp32"), ("cpu", "mixed")]


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA"
)
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    assert _module().main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_dry_run_covers_every_section(tmp_path, shared_ohlcv):
    from bench.schema import validate_file
    from cryptocast.features.targets import VOL_BASELINES
    from cryptocast.models.registry import model_names

    env = {**os.environ, "CRYPTOCAST_SHARED_DATA": str(shared_ohlcv)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    path = tmp_path / "gpu.quick.json"
    assert validate_file(path) == []
    records = json.loads(path.read_text())["records"]
    by = {}
    for r in records:
        by.setdefault(r["figure"], []).append(r)
    assert all(r["value"] == 0 for r in by["precision_policy_mismatches"])
    trained = {(r["params"]["model"], r["params"]["timeframe"]) for r in by["val_loss"]}
    # the check trains on the price target; the volatility baselines belong to realized_vol
    price_models = [m for m in model_names() if m not in VOL_BASELINES]
    assert trained == {(m, tf) for m in price_models for tf in ("1d", "1h")}
    assert all(r["value"] is not None for r in by["val_loss"])  # finite
    assert all(r["params"]["ok"] for r in by["val_loss_agreement"])
    kinds = {(r["impl"], r["dtype"], r["pass"]) for r in by["attention_time"]}
    assert len(kinds) == 8  # favor/sdpa x float32/bfloat16 x fwd/fwd_bwd
    assert by["make compare seconds"][0]["value"] > 0
    assert by["gpu-check failures"][0]["value"] == 0
