"""Benchmark harness: results schema, generated tables, discovery and one quick run end to end."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import REPO
from bench.run import discover, validate_all
from bench.schema import validate, validate_file
from bench.tables import markdown_path, render

RESULTS = REPO / "bench" / "results"
NAMES = discover()


def _doc(records: list[dict], benchmark: str = "x") -> dict:
    return {
        "benchmark": benchmark,
        "quick": False,
        "created": "2026-01-01T00:00:00Z",
        "git_commit": "abc1234",
        "machine": {"cpu_count": 2, "python": "3.11.7", "torch": "2.13.0", "torch_threads": 2},
        "records": records,
    }


def _attention_doc() -> dict:
    timing = {
        "figure": "attention_time",
        "value": 0.01,
        "unit": "s",
        "params": {"B": 1, "heads": 4, "L": 1024, "head_dim": 64, "nb_features": 256},
        "impl": "favor",
        "L": 1024,
        "head_dim": 64,
        "nb_features": 256,
        "pass": "fwd_bwd",
        "seconds": 0.01,
        "peak_bytes": 4096,
        "device": "cpu",
    }
    sdpa = {**timing, "impl": "sdpa", "nb_features": None, "seconds": 0.03, "value": 0.03}
    summary = {"figure": "matmul_gflops", "value": 90.0, "unit": "GFLOP/s", "params": {"n": 2048}}
    return _doc([timing, sdpa, summary], "attention")


@pytest.mark.parametrize("name", NAMES)
def test_committed_results_validate(name: str) -> None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path.name} not generated yet (make bench)")
    assert validate_file(path) == []


def test_valid_documents_pass() -> None:
    assert validate(_doc([{"figure": "f", "value": 1.5, "unit": "s", "params": {}}])) == []
    assert validate(_attention_doc()) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("machine"), "machine: missing"),
        (lambda d: d.update(quick="no"), "quick: expected bool"),
        (lambda d: d.update(records=[]), "records: empty"),
        (lambda d: d["machine"].pop("torch_threads"), "machine.torch_threads: missing"),
        (lambda d: d["records"][0].pop("figure"), "records[0].figure"),
        (lambda d: d["records"][0].update(value="fast"), "value: expected a number or null"),
        (lambda d: d["records"][0].update(value=True), "value: expected a number or null"),
        (lambda d: d["records"][0].update(params=None), "params: expected an object"),
    ],
)
def test_validator_rejects_broken_generic_docs(mutate, expected: str) -> None:
    doc = _doc([{"figure": "f", "value": 1.5, "unit": "s", "params": {}}])
    mutate(doc)
    errors = validate(doc)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("impl", "flash", "impl: 'flash' is not one of"),
        ("pass", "bwd", "pass: 'bwd' is not one of"),
        ("L", 10.5, "L: expected a positive int"),
        ("seconds", 0.0, "seconds: expected a number > 0"),
        ("seconds", None, "seconds: expected a number > 0"),
        ("peak_bytes", -1, "peak_bytes: expected an int >= 0 or null"),
        ("nb_features", None, "nb_features: expected a positive int for favor"),
        ("device", 0, "device: expected a str"),
    ],
)
def test_validator_rejects_broken_attention_records(key: str, value, expected: str) -> None:
    doc = _attention_doc()
    doc["records"][0][key] = value
    errors = validate(doc)
    assert any(expected in e for e in errors), errors


def test_validator_requires_benchmark_figures_and_matching_file_name(tmp_path: Path) -> None:
    doc = _attention_doc()
    doc["records"] = [r for r in doc["records"] if r["figure"] != "attention_time"]
    assert any("lacks figure(s) ['attention_time']" in e for e in validate(doc))
    path = tmp_path / "fetch.quick.json"
    path.write_text(json.dumps(_attention_doc()))
    errors = validate_file(path)
    assert any("does not match the file name" in e for e in errors), errors
    (tmp_path / "bad.json").write_text("{")
    assert "unreadable JSON" in validate_file(tmp_path / "bad.json")[0]


def _uncommitted_results() -> list[str]:
    """Results files that differ from git (a benchmark being rerun in this working tree)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "bench/results/*.json"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line[3:] for line in out.splitlines() if not line.endswith(".quick.json")]


def test_results_md_is_generated_from_the_json_files() -> None:
    committed = REPO / "bench" / "RESULTS.md"
    if not committed.exists():
        pytest.skip("bench/RESULTS.md not generated yet (make bench)")
    if changed := _uncommitted_results():
        # A clean checkout (CI) always compares; here a benchmark was just rerun.
        pytest.skip(f"uncommitted results {changed}; python -m bench.tables, then commit both")
    assert render(RESULTS, quick=False) == committed.read_text(), (
        "bench/RESULTS.md is stale or hand-edited; regenerate: python -m bench.tables"
    )


def test_performance_page_block_is_generated_from_the_json_files() -> None:
    from bench.tables import DOC_END, DOC_START, PERFORMANCE_DOC, performance_block

    if changed := _uncommitted_results():
        pytest.skip(f"uncommitted results {changed}; python -m bench.tables, then commit both")
    page = PERFORMANCE_DOC.read_text()
    block = page.split(DOC_START, 1)[1].split(DOC_END, 1)[0]
    assert block.strip() == performance_block(RESULTS).strip(), (
        "docs/performance.md's block is stale or hand-edited; regenerate: python -m bench.tables"
    )
    for target in re.findall(r"\]\((\.\./bench/results/[^)]+)\)", block):
        assert (PERFORMANCE_DOC.parent / target).exists(), f"broken link {target}"


def test_readme_grid_block_is_generated_from_the_json_files() -> None:
    from bench.tables import GRID_END, GRID_START, README, readme_grid_block

    if changed := _uncommitted_results():
        pytest.skip(f"uncommitted results {changed}; python -m bench.tables, then commit both")
    block = README.read_text().split(GRID_START, 1)[1].split(GRID_END, 1)[0]
    assert block.strip() == readme_grid_block(RESULTS).strip(), (
        "README.md's paper-grid block is stale or hand-edited; regenerate: python -m bench.tables"
    )


def test_render_lists_missing_benchmarks_and_attention_tables(tmp_path: Path) -> None:
    (tmp_path / "attention.json").write_text(json.dumps(_attention_doc()))
    md = render(tmp_path, quick=False, names=["fetch", "attention"])
    assert "Not yet run (make bench): fetch." in md
    # L=1024 row: favor 10 ms, sdpa 30 ms for fwd+bwd, ratio 3.00; fwd not measured.
    assert "| 1,024 | – | – | – | 10 | 30 | 3.00 |" in md
    assert markdown_path(tmp_path / "results", quick=True) == tmp_path / "RESULTS.quick.md"


def test_discover_finds_every_bench_module() -> None:
    files = sorted(p.stem.removeprefix("bench_") for p in (REPO / "bench").glob("bench_*.py"))
    assert files == NAMES and {"fetch", "features", "attention"} <= set(NAMES)
    for name in NAMES:
        module = importlib.import_module(f"bench.bench_{name}")
        assert name == module.NAME, f"bench/bench_{name}.py must set NAME = {name!r}"
        assert callable(module.run)


def test_quick_fetch_runs_end_to_end_through_bench_run(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", "fetch"]
        + ["--results-dir", str(results), "--timeout", "60"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1/1 benchmarks ok" in proc.stdout
    assert validate_file(results / "fetch.quick.json") == []
    md = (tmp_path / "RESULTS.quick.md").read_text()
    assert "fetch candles/s" in md and "`python -m bench.bench_fetch --quick`" in md


def test_validate_all_reports_an_invalid_results_file(tmp_path: Path) -> None:
    broken = _attention_doc()
    broken["quick"] = True
    broken["records"][0]["impl"] = "flash"
    (tmp_path / "attention.quick.json").write_text(json.dumps(broken))
    (tmp_path / "attention.json").write_text(json.dumps(_attention_doc()))
    assert validate_all(tmp_path, quick=False) == []
    errors = validate_all(tmp_path, quick=True)
    assert len(errors) == 1 and errors[0].startswith("attention.quick.json: records[0]"), errors


def test_bench_run_fails_when_a_benchmark_times_out(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", "fetch", "--timeout", "0.5"]
        + ["--results-dir", str(tmp_path / "results")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "fetch: " in proc.stdout and "timed out after" in proc.stdout
    assert "0/1 benchmarks ok" in proc.stdout
    assert not (tmp_path / "results" / "fetch.quick.json").exists()
