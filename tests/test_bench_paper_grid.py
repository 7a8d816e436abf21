"""The whole-grid benchmark's bookkeeping and its two configs: the pooled grid is the shipped grid
but for the pooled keys, a pooled job counts as one job and one refit per fold, and a plan's
skill is set beside the per-series plan's with a DM test on the same origins."""

from __future__ import annotations

import numpy as np
import pytest

from bench.bench_paper_grid import PLANS, _cost_records, _job, plan_config, versus
from cryptocast.config.schema import for_timeframe
from cryptocast.evaluate.walkforward import JobResult

POOLED_KEYS = {("backtest", "pooled"), ("backtest", "timeframe_overrides")}


def _flat(d: dict) -> dict:
    """{(section, key): value} of a config dict."""
    return {(sec, k): v for sec, keys in d.items() for k, v in keys.items()}


def test_the_pooled_grid_is_the_shipped_grid_but_for_its_pooled_keys():
    grid, pooled = plan_config("fast", False, 2, 0), plan_config("pooled", False, 2, 0)
    a, b = _flat(grid.to_dict()), _flat(pooled.to_dict())
    differ = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert differ - {("output", "name"), ("backtest", "report_dir")} == POOLED_KEYS
    assert pooled.backtest.pooled == "only"
    # an epoch of the pooled model takes every (3 x k)-th window of the three coins
    n = len(pooled.backtest.symbols)
    assert n == 3
    for tf in ("1h", "1d"):
        mine, theirs = for_timeframe(pooled, tf), for_timeframe(grid, tf)
        assert mine.train.window_stride == n * theirs.train.window_stride
        assert mine.backtest.warm_start == theirs.backtest.warm_start == (tf == "1h")


def test_the_cold_plan_empties_the_per_timeframe_plan():
    cold = plan_config("cold", False, 2, 0)
    assert cold.backtest.timeframe_overrides == {}
    assert PLANS["fast"][1] == []  # the shipped config as it is


def _fold(sym, model, fold, retrained=True):
    return {"symbol": sym, "timeframe": "1h", "model": model, "fold": fold, "retrained": retrained}


def _result(sym, model, pred, seconds=1.0):
    n = len(pred)
    ts = np.arange(n).astype("datetime64[h]")
    true = np.zeros((n, 1))
    return JobResult(sym, "1h", model, ts, np.zeros(n, int), np.ones(n), true,
                     np.asarray(pred, float).reshape(n, 1), seconds=seconds)  # fmt: skip


def test_a_pooled_job_is_one_job_and_one_refit_per_fold_whatever_its_symbols():
    syms = ["BTC/USDT", "ETH/USDT", "LTC/USDT"]
    pooled = [_fold(s, "lstm@pooled", k) for s in syms for k in range(4)]
    per = [_fold(s, "lstm", k) for s in syms for k in range(4)]
    assert len({_job(f) for f in pooled}) == 1 and len({_job(f) for f in per}) == 3
    res_p = [_result(s, "lstm@pooled", [0.1], seconds=30.0) for s in syms]
    res_s = [_result(s, "lstm", [0.1], seconds=12.0) for s in syms]
    (p,) = _cost_records(res_p, pooled, {})
    (s,) = _cost_records(res_s, per, {})
    assert (p["value"], p["params"]["refits"]) == (30.0, 4)  # the job's seconds, once
    assert (s["value"], s["params"]["refits"]) == (36.0, 12)  # three jobs' seconds summed


def test_versus_compares_the_same_origins_and_skips_baselines():
    rng = np.random.default_rng(0)
    good, bad = rng.normal(0, 0.1, 200), rng.normal(0, 1.0, 200)
    a = [_result("BTC/USDT", "lstm@pooled", good), _result("BTC/USDT", "persistence", bad)]
    b = [_result("BTC/USDT", "lstm", bad), _result("BTC/USDT", "persistence", bad)]
    out = versus(a, b, h=1)
    assert list(out) == [("BTC/USDT", "1h", "lstm")]
    stat, p = out[("BTC/USDT", "1h", "lstm")]
    assert stat < 0 and p < 1e-6  # the pooled errors are far smaller
    assert versus(a, a[:0], h=1) == {}  # nothing to compare with: no record


@pytest.mark.parametrize("plan", list(PLANS))
def test_every_plan_loads_from_a_shipped_config(plan):
    cfg = plan_config(plan, True, 1, 0)
    assert cfg.train.device == "cpu" and cfg.backtest.workers == 1


def _skill_doc() -> dict:
    base = {"symbol": "BTC/USDT", "timeframe": "1d", "seed": 0}
    recs = [
        {"figure": "grid seconds", "value": 1800.0, "unit": "s",
         "params": {"plan": "pooled", "seed": 0, "jobs": 20, "folds": 468}},
        {"figure": "grid seconds", "value": 3600.0, "unit": "s",
         "params": {"plan": "fast", "seed": 0, "jobs": 36, "folds": 468}},
        {"figure": "grid speed-up", "value": 2.0, "unit": "x",
         "params": {"plan": "pooled", "over": "fast"}},
    ]  # fmt: skip
    # lstm: pooled better, significantly; gru: pooled worse, not significantly
    for model, fast, pooled, dm in (("lstm", -0.02, 0.01, 0.01), ("gru", 0.01, 0.0, 0.4)):
        key = {**base, "model": model}
        for plan, v, p in (("fast", fast, 0.03), ("pooled", pooled, 0.5)):
            recs.append({"figure": "skill_rmse", "value": v, "params": {**key, "plan": plan}})
            recs.append({"figure": "dm p vs persistence", "value": p,
                         "params": {**key, "plan": plan}})  # fmt: skip
        recs.append({"figure": "skill vs fast", "value": pooled - fast,
                     "params": {**key, "plan": "pooled", "dm_p": dm}})  # fmt: skip
    return {"created": "2026-12-02T00:00:00Z", "git_commit": "abc", "records": recs}


def test_the_grid_section_and_readme_block_say_what_was_met():
    from bench.tables_paper_grid import paper_grid_section, readme_block

    doc = _skill_doc()
    text = "\n".join(paper_grid_section(doc, quick=False))
    assert "| pooled + fast (`configs/grid_pooled.yaml`) | 30.0 min | 2.00× | 20 | 468 |" in text
    assert "| BTC/USDT | 1d | lstm | -0.0200 (0.030) | +0.0100 (0.500) | +0.0300 | 0.010 |" in text
    verdict = "pooled skill at or above per-series on 1 of 2 jobs; significantly worse"
    assert verdict + " (DM p < 0.05) on 0, significantly better on 1" in text
    block = readme_block(doc)
    assert "1.00 h" in block and "make bench-paper-grid" in block
    # per-series: gru beats persistence, significantly (p 0.03); lstm is significantly worse
    assert "1 of 2 jobs beat persistence (1 with DM p < 0.05); 1 significantly worse" in block
    assert readme_block({"records": []}) == ""


def _second_seed(doc: dict, shift: dict[str, float]) -> dict:
    """``doc`` plus a seed 1 whose skills are seed 0's + ``shift[plan]``."""
    extra = []
    for r in doc["records"]:
        if r["figure"] in ("skill_rmse", "dm p vs persistence", "skill vs fast"):
            p = {**r["params"], "seed": 1}
            v = r["value"] + shift[p["plan"]] if r["figure"] == "skill_rmse" else r["value"]
            if r["figure"] == "skill vs fast":
                v = r["value"] + shift["pooled"] - shift["fast"]
            extra.append({**r, "value": v, "params": p})
    return {**doc, "records": doc["records"] + extra}


def test_over_two_seeds_the_table_shows_spreads_and_the_aim_counts_the_seed_spread():
    from bench.tables_paper_grid import paper_grid_section, skill_rows, verdict

    doc = _second_seed(_skill_doc(), {"fast": 0.02, "pooled": 0.0})
    rows = {r["model"]: r for r in skill_rows(doc["records"])}
    # lstm: fast -0.02, 0.0 (mean -0.01, sd 0.0141); pooled 0.01, 0.01
    assert rows["lstm"]["fast"] == [-0.02, 0.0] and rows["lstm"]["delta"] == pytest.approx(0.02)
    assert rows["lstm"]["dm_p"] == [0.01, 0.01]
    # gru: fast 0.01, 0.03 (mean 0.02, sd 0.0141); pooled 0.0, 0.0: 0.02 below, within 2 sd
    assert rows["gru"]["delta"] == pytest.approx(-0.02)
    text = verdict(list(rows.values()))
    assert "at or above per-series on 1 of 2 jobs (means over 2 seeds)" in text
    assert "within 2 sd of its seeds on 2 of 2 (the aim, every job: met)" in text
    section = "\n".join(paper_grid_section(doc, quick=False))
    assert "| BTC/USDT | 1d | lstm | -0.0100 ± 0.0141 (0.030–0.030) |" in section
    # a pooled model further below than 2 sd of the per-series seeds fails the aim
    worse = _second_seed(_skill_doc(), {"fast": 0.002, "pooled": 0.0})
    text = verdict(skill_rows(worse["records"]))
    assert "(the aim, every job: not met), below on BTC 1d gru" in text


def test_extend_keeps_the_earlier_seeds_and_starts_after_them():
    from bench.bench_paper_grid import prior_seeds

    doc = _second_seed(_skill_doc(), {"fast": 0.02, "pooled": 0.0})
    spread = {"figure": "skill seed spread", "value": 0.0, "params": {"plan": "fast"}}
    seed1 = {"figure": "grid seconds", "value": 1.0, "params": {"plan": "fast", "seed": 1}}
    kept, skills, start = prior_seeds([*doc["records"], spread, seed1])
    assert spread not in kept and len(kept) == len(doc["records"]) + 1  # spreads are recomputed
    assert start == 2
    assert skills[("fast", "BTC/USDT", "1d", "lstm")] == [-0.02, 0.0]
    # seed 1 never timed (its run did not finish): its records go, and seed 1 runs again
    kept, skills, start = prior_seeds(doc["records"])
    assert start == 1 and {r["params"].get("seed", 0) for r in kept} == {0}
    assert skills[("fast", "BTC/USDT", "1d", "lstm")] == [-0.02]
    assert prior_seeds([]) == ([], {}, 0)
