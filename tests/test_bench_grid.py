"""The grid benchmark's bookkeeping: which overrides make a pass, the folds a slice walks, how
refit seconds are split into a job's first (always cold) and later refits, and how a pass's
skill is set beside the cold passes' seed spread."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.bench_grid import (
    END,
    FOLD_DAYS,
    last_folds_start,
    pass_sets,
    refit_records,
    skill_records,
)


def test_passes_differ_only_in_warm_start_and_the_hourly_stride():
    assert pass_sets("cold", "1h", 4) == ["backtest.warm_start=false", "train.window_stride=1"]
    assert pass_sets("warm", "1h", 4) == ["backtest.warm_start=true", "train.window_stride=1"]
    assert pass_sets("fast", "1h", 4) == ["backtest.warm_start=true", "train.window_stride=4"]
    # daily series keep every window: fast on 1d is warm (and is reused, not run twice)
    assert pass_sets("fast", "1d", 4) == pass_sets("warm", "1d", 4)


@pytest.mark.parametrize("n", [1, 3, 12])
def test_last_folds_start_leaves_exactly_n_folds_before_the_end(n):
    start = pd.Timestamp(last_folds_start(n))
    end = pd.Timestamp(END) + pd.Timedelta(days=1)  # the end date is inclusive
    assert (end - start) == pd.Timedelta(days=FOLD_DAYS * n)


def _fold(sym, tf, model, fold, seconds, retrained=True):
    return {"symbol": sym, "timeframe": tf, "model": model, "fold": fold,
            "seconds": seconds, "retrained": retrained}  # fmt: skip


def test_first_refit_of_each_job_is_kept_apart_from_the_later_ones():
    folds = [
        _fold("BTC", "1h", "lstm", 0, 100.0), _fold("BTC", "1h", "lstm", 1, 10.0),
        _fold("BTC", "1h", "lstm", 2, 12.0), _fold("ETH", "1h", "lstm", 0, 80.0),
        _fold("ETH", "1h", "lstm", 1, 8.0), _fold("ETH", "1h", "lstm", 2, 99.0, retrained=False),
    ]  # fmt: skip
    recs = {r["params"]["refit"]: r for r in refit_records(folds, {"pass": "warm"})}
    assert recs["first"]["value"] == 90.0 and recs["first"]["params"]["refits"] == 2
    assert recs["later"]["value"] == 10.0 and recs["later"]["params"]["refits"] == 3


def test_skill_is_judged_against_the_cold_seed_spread():
    skills = {
        ("cold", "BTC", "1d", "lstm"): [-0.010, -0.004, -0.007],  # sd 0.003
        ("warm", "BTC", "1d", "lstm"): [-0.006],
        ("fast", "BTC", "1d", "lstm"): [-0.030],
    }
    recs = {r["params"]["pass"]: r for r in skill_records(skills, {})}
    assert set(recs) == {"warm", "fast"}  # cold is the reference, not compared with itself
    assert recs["warm"]["value"] == pytest.approx(0.001)
    assert recs["warm"]["params"]["within_2sd"] is True
    assert recs["fast"]["params"]["within_2sd"] is False
    one_seed = skill_records({("cold", "B", "1d", "m"): [0.1], ("warm", "B", "1d", "m"): [0.2]}, {})
    assert one_seed[0]["params"]["within_2sd"] is None  # no spread from one seed: no verdict


def _doc() -> dict:
    base = {"data": "reference Binance candles", "workers": 2, "last_folds": 2,
            "slices": [{"timeframe": "1h", "symbols": ["BTC/USDT"], "models": ["lstm"],
                        "seeds": 1}]}  # fmt: skip
    recs = [
        {"figure": "grid seconds", "value": 600.0, "unit": "s", "params": {**base, "pass": "cold", "folds": 4}},
        {"figure": "grid seconds", "value": 100.0, "unit": "s", "params": {**base, "pass": "fast", "folds": 4}},
        {"figure": "grid speed-up", "value": 6.0, "unit": "x", "params": {**base, "pass": "fast"}},
    ]  # fmt: skip
    for ps, first, later in (("cold", 300.0, 300.0), ("fast", 60.0, 20.0)):
        for which, v in (("first", first), ("later", later)):
            p = {**base, "pass": ps, "seed": 0, "timeframe": "1h", "model": "lstm", "refit": which}
            recs.append({"figure": "seconds per refit", "value": v, "unit": "s", "params": p})
    for ps, seed, v in (("cold", 0, -0.01), ("cold", 1, -0.02), ("fast", 0, -0.5)):
        p = {
            **base,
            "pass": ps,
            "seed": seed,
            "symbol": "BTC/USDT",
            "timeframe": "1h",
            "model": "lstm",
        }
        recs.append({"figure": "skill_rmse", "value": v, "unit": "fraction", "params": p})
    recs += skill_records({("cold", "BTC/USDT", "1h", "lstm"): [-0.01, -0.02],
                           ("fast", "BTC/USDT", "1h", "lstm"): [-0.5]}, base)  # fmt: skip
    return {"records": recs, "created": "2026-11-29T00:00:00Z", "git_commit": "abc", "quick": False}


def test_grid_section_shows_speed_up_job_cost_and_skill_verdict():
    from bench.tables_grid import grid_section

    text = "\n".join(grid_section(_doc(), quick=False))
    assert "| fast | 100 | 6.00× | 4 |" in text
    # one 12-fold hourly lstm job: 300 + 11 x 300 s cold = 1.0 h; 60 + 11 x 20 s fast = 4.7 min
    assert "| 1h | lstm |" in text and "| 1.0 h | 4.7 min |" in text
    assert "-0.0150 ± 0.0071 (2)" in text and "-0.5000 (**outside 2 sd**)" in text


def test_whole_grid_estimate_scales_unmeasured_hourly_models_by_throughput():
    from bench.tables_grid import whole_grid_estimate

    recs = []
    for tf, model, cold, fast in (("1h", "lstm", 100.0, 10.0), *(("1d", m, 5.0, 5.0) for m in (
            "lstm", "gru", "transformer", "performer_bilstm"))):  # fmt: skip
        for ps, v in (("cold", cold), ("fast", fast)):
            for which in ("first", "later"):
                p = {"pass": ps, "seed": 0, "timeframe": tf, "model": model, "refit": which,
                     "workers": 2}  # fmt: skip
                recs.append({"figure": "seconds per refit", "value": v, "params": p})
    recs += [
        {"figure": "grid seconds", "value": 1.0, "params": {"pass": ps}} for ps in ("cold", "fast")
    ]
    train = [{"unit": "windows/s", "threads": 1, "value": v,
              "params": {"setting": "paper", "series": "BTC/USDT 1h", "model": m}}
             for m, v in (("lstm", 4000.0), ("gru", 2000.0), ("transformer", 1000.0),
                          ("performer_bilstm", 500.0))]  # fmt: skip
    text = "\n".join(whole_grid_estimate(recs, train))
    # hourly per coin cold: 12 x 100 x (1 + 2 + 4 + 8) = 18,000 s; daily 4 x 60 = 240 s
    cold = 3 * (18_000 + 240)
    fast = 3 * (12 * 10 * 15 + 240)
    assert f"| cold | {cold / 3600:.1f} | {cold / 7200:.1f} | 1.00× |" in text
    assert f"| fast | {fast / 3600:.1f} | {fast / 7200:.1f} | {cold / fast:.2f}× |" in text
    assert "gru, performer_bilstm, transformer scaled" in text
    assert whole_grid_estimate(recs, None) == []  # no throughput: no guess
