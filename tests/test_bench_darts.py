"""bench_darts: the median-of-rounds ratio, the skipped path, its schema and its table cell.

The live measurement itself runs in ``make bench-quick`` (CI), not here: it starts two worker
processes that import torch and darts, too slow for the default suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import bench_darts
from bench.bench_darts import FIGURES, paired, skipped_records
from bench.schema import validate
from bench.tables import render, value_cell


def _doc(records: list[dict]) -> dict:
    return {
        "benchmark": "darts",
        "quick": False,
        "created": "2026-01-01T00:00:00Z",
        "git_commit": "abc1234",
        "machine": {"cpu_count": 2, "python": "3.11.7", "torch": "2.13.0", "torch_threads": 2},
        "records": records,
    }


def _measured(figure: str, unit: str, ours: list[float], darts: list[float], higher: bool) -> dict:
    return {"figure": figure, "unit": unit, "params": {"rounds": len(ours)}, "threads": 2,
            "darts_threads": 2, **paired(ours, darts, higher)}  # fmt: skip


def test_paired_takes_the_median_of_per_round_ratios_not_the_ratio_of_medians() -> None:
    # rounds: 1.0x, 3.0x, 1.5x -> median ratio 1.5; ratio of medians would be 200/100 = 2.0
    r = paired([100.0, 300.0, 200.0], [100.0, 100.0, 200.0 / 1.5], higher_is_better=True)
    assert r["value"] == 200.0 and r["darts_value"] == 100.0
    assert r["x_darts"] == 1.5 and r["ratios"] == [1.0, 3.0, 1.5]


def test_paired_inverts_the_ratio_for_seconds() -> None:
    # seconds: ours 1 s, darts 2.5 s -> ours is 2.5x faster; ours slower -> below 1
    assert paired([1.0], [2.5], higher_is_better=False)["x_darts"] == 2.5
    assert paired([2.0], [1.0], higher_is_better=False)["x_darts"] == 0.5
    assert paired([900.0], [1000.0], higher_is_better=True)["x_darts"] == 0.9


def test_paired_refuses_rounds_without_a_partner() -> None:
    with pytest.raises(ValueError, match="one darts figure per round"):
        paired([1.0, 2.0], [1.0], higher_is_better=True)
    with pytest.raises(ValueError):
        paired([], [], higher_is_better=True)


def test_without_darts_the_bench_writes_valid_skipped_records(monkeypatch, capsys) -> None:
    monkeypatch.setattr(bench_darts, "darts_missing", lambda: "darts is not installed (x)")
    records = bench_darts.run(quick=True)
    assert capsys.readouterr().out.strip() == "darts anchors skipped: darts is not installed (x)"
    assert [r["figure"] for r in records] == list(FIGURES.values())
    assert all(r["skipped"] and r["value"] is None for r in records)
    assert validate(_doc(records)) == []


def test_schema_requires_both_sides_of_a_live_comparison() -> None:
    good = _measured(FIGURES["lstm"], "windows/s", [4000.0], [3600.0], True)
    others = [_measured(FIGURES[k], "s", [1.0], [2.0], False) for k in ("transformer", "refit")]
    assert validate(_doc([good, *others])) == []
    no_darts = {k: v for k, v in good.items() if k != "darts_value"}
    assert any("darts_value" in e for e in validate(_doc([no_darts, *others])))
    no_reason = {**skipped_records("r", False)[0]}
    del no_reason["reason"]
    assert any("skipped record" in e for e in validate(_doc([no_reason, *others])))
    missing = validate(_doc([good]))
    assert any("lacks figure" in e and "transformer" in e for e in missing)


def test_table_cell_shows_ours_darts_and_the_same_run_ratio(tmp_path: Path) -> None:
    rec = _measured(FIGURES["lstm"], "windows/s", [4400.0, 4500.0, 4600.0],
                    [4000.0, 4100.0, 4000.0], True)  # fmt: skip
    assert value_cell(rec) == (
        "ours 4,500 windows/s; darts 4,000 windows/s (1.1× darts, same run, rounds 1.1–1.15)"
    )
    assert value_cell(skipped_records("no darts", True)[2]) == "skipped: no darts"
    (tmp_path / "darts.json").write_text(json.dumps(_doc([rec])))
    md = render(tmp_path, quick=False, names=["darts"])
    assert "| vs darts (live) | train throughput lstm, ours vs darts | ours 4,500" in md
