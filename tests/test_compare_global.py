"""compare.py pooled on synthetic summaries: the page's rule (pooled mean skill >= per-series mean
minus the per-series sd over seeds), the per-table met / not met line, what was not run, the plan
parser and the results markers."""

from __future__ import annotations

import argparse

import pytest

from scripts.comparison import common, pooled

COINS = ("BTC", "ETH", "LTC")


def _rec(coin: str, model: str, skill: float, p: float = 0.5, seconds: float = 10.0) -> dict:
    return {
        "symbol": f"{coin}/USDT", "model": model, "skill_rmse": skill, "rmse_ret": 0.03 * (1 - skill),
        "dm_pvalue_vs_persistence": p, "seconds": seconds,
    }  # fmt: skip


def _summary(per: float, pooled_skill: float, ltc_pooled: float | None = None) -> dict:
    recs = []
    for c in COINS:
        recs += [
            _rec(c, "lstm", per, seconds=10.0),
            _rec(c, "persistence", 0.0, p=1.0, seconds=0.1),
            _rec(c, "lstm@pooled", ltc_pooled if c == "LTC" and ltc_pooled is not None
                 else pooled_skill, p=0.2, seconds=20.0),
        ]  # fmt: skip
    ranges = {
        f"{c}/USDT 1d": {"test_first_origin": "2022-07-01T00:00:00+00:00",
                         "test_last_origin": "2023-06-29T00:00:00+00:00", "origins": 364}
        for c in COINS
    }  # fmt: skip
    return {
        "results": recs, "data_ranges": ranges, "wall_seconds": 80.0, "created": "2026-12-02T17:00Z",
        "versions": {"torch": "2.x"},
        "config": {"backtest": {"timeframes": ["1d"], "models": ["lstm", "persistence"]}},
    }  # fmt: skip


def test_rule_is_pooled_mean_at_least_per_series_mean_minus_sd():
    per = [0.00, 0.02, 0.04]  # mean 0.02, sd 0.02 -> floor 0.00
    assert pooled.at_or_above([0.00, 0.00, 0.00], per) is True
    assert pooled.at_or_above([-0.01, 0.0, 0.0], per) is False
    assert pooled.at_or_above([0.5], per) is None  # one seed is no spread
    assert common.seed_cell([0.01, 0.01, 0.01]) == "0.010"
    assert common.seed_cell([0.0, 0.02, 0.04]) == "0.020 ± 0.020"
    assert common.seed_p_cell([0.2, 0.01, 0.5]) == "0.200 [0.010, 0.500]"


def test_table_met_when_every_row_passes_and_not_met_naming_the_misses():
    table = pooled.TABLES["1d-price"]
    seeds = [(0.00, 0.01), (0.02, 0.01), (0.04, 0.01)]  # per-series floor 0.00; pooled 0.01
    alone = [_summary(p, q) for p, q in seeds]
    universe = [_summary(p, q, ltc_pooled=-0.05) for p, q in seeds]  # worse on LTC
    lines = pooled.render_table(table, {"alone": alone, "universe": universe})
    text = "\n".join(lines)
    assert "| BTC | lstm | 0.020 ± 0.020 |" in text
    assert "**alone: aim met** — pooled at or above per-series on 3 of 3" in text
    assert "**universe: aim not met** — pooled at or above per-series on 2 of 3" in text
    assert "below on LTC lstm." in text
    row = next(line for line in lines if line.startswith("| LTC | lstm |"))
    assert row.endswith("| 0.010 | 0.200 | yes | -0.050 | 0.200 | **no** |")


def test_page_names_what_was_not_run_and_the_cost():
    found = {
        ("1d-price", "alone"): [_summary(0.0, 0.01), _summary(0.02, 0.01), _summary(0.04, 0.0)]
    }
    body = pooled.render_results(found, [0, 1, 2], "1d-price:alone")
    assert "### Hourly price" in body and "Not run (`1h-price`" in body
    assert "Not run: universe." in body
    assert "`1d-price:universe`" in body and "`1h-price:alone`" in body
    assert (
        "| 1d-price | alone | 80, 80, 80 | lstm 30 s per-series (3 jobs) vs 20 s pooled |" in body
    )
    assert "**2022-07-01 .. 2023-06-29**" in body


def test_plan_parser_and_markers():
    assert pooled.parse_plan("1h-price:alone,1d-price") == [
        ("1d-price", "alone"), ("1d-price", "universe"), ("1h-price", "alone"),
    ]  # fmt: skip
    with pytest.raises(SystemExit, match="unknown table"):
        pooled.parse_plan("2d-price")
    with pytest.raises(SystemExit, match="alone or universe"):
        pooled.parse_plan("1d-price:both")
    page = "intro\n<!-- results: x -->\nold\n<!-- end results -->\nafter\n"
    new = pooled.splice(page, "NEW\n")
    assert "old" not in new and new.startswith("intro\n<!-- results: x -->\nNEW\n<!-- end")
    assert new.endswith("after\n")


def test_fewer_than_three_seeds_refused(tmp_path, capsys):
    args = argparse.Namespace(seeds="0,1", out=tmp_path / "g.md", plan="1d-price")
    assert pooled.run(args) == 2
    assert "at least 3 seeds" in capsys.readouterr().err


def test_quantile_table_adds_the_pinball_loss_with_the_baseline_marked():
    def summary(shift: float) -> dict:
        recs = []
        for c in COINS:
            for model, crps, pin in (("lstm", 0.0100, 0.0050), ("rw_ewma", 0.0101, 0.0051),
                                     ("lstm@pooled", 0.0099 - shift, 0.0049 - shift)):  # fmt: skip
                recs.append({
                    "symbol": f"{c}/USDT", "model": model, "crps": crps, "pinball": pin,
                    "crps_skill": 1 - crps / 0.0101, "dm_pvalue_crps_vs_rw_ewma": 0.3,
                })  # fmt: skip
        return {"results": recs}

    runs = {"alone": [summary(0.0), summary(0.0001), summary(0.0002)]}
    text = "\n".join(pooled.render_table(pooled.TABLES["1d-quantile"], runs))
    assert "**alone: aim met**" in text
    assert "| BTC | lstm | 0.00500 | 0.00480 ± 0.00010 |" in text
    assert "| ETH | rw_ewma | 0.00510 | (baseline) |" in text
