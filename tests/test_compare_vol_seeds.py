"""compare.py volatility over >= 3 seeds: neural rows pooled over the seeds, the deterministic
baselines shown once, the recommendation by the page's stated rule (MCS on every coin and seed,
then the lowest mean QLIKE), and fewer than 3 seeds refused."""

from __future__ import annotations

import argparse

from scripts.comparison import common, volatility


def _rec(sym: str, model: str, qlike: float, mcs: bool, skill: float = 0.0, p: float = 1.0):
    return {
        "symbol": f"{sym}/USDT", "model": model, "n": 364, "qlike": qlike, "skill_qlike": skill,
        "dm_pvalue_vs_har": p, "spa_p_vs_har": 0.5, "mcs_qlike_90": mcs, "mcs_pvalue_qlike": 0.5,
        "bias_ratio": 1.0,
    }  # fmt: skip


def _summary(neural_q: float, neural_mcs: bool) -> dict:
    recs = []
    for sym in ("BTC", "ETH", "LTC"):
        recs += [
            _rec(sym, "performer_bilstm", neural_q, neural_mcs),
            _rec(sym, "har", 0.50, True),
            _rec(sym, "vol_combo", 0.45, True, skill=0.1, p=0.01),
            _rec(sym, "garch", 0.40, sym != "LTC"),  # lowest QLIKE but out of the set on LTC
        ]
    return {"results": recs}


def test_pool_keeps_every_seed_and_recommend_follows_the_rule():
    summaries = [_summary(0.44, True), _summary(0.48, True), _summary(0.46, False)]
    pooled = volatility.pool(summaries)
    assert pooled[("BTC", "performer_bilstm")]["qlike"] == [0.44, 0.48, 0.46]
    assert pooled[("BTC", "har")]["qlike"] == [0.50] * 3
    assert common.seed_cell(pooled[("BTC", "har")]["qlike"]) == "0.500"  # shown once
    assert common.seed_cell(pooled[("BTC", "performer_bilstm")]["qlike"]) == "0.460 ± 0.020"
    assert volatility._mcs_cell(pooled[("BTC", "performer_bilstm")]) == "2/3 seeds"
    # garch has the lowest QLIKE but is not in the set on LTC; performer_bilstm misses one seed
    best, why = volatility.recommend(pooled)
    assert best == "vol_combo", why
    assert volatility.beats_har(pooled[("ETH", "vol_combo")])


def test_fewer_than_three_seeds_refused(tmp_path, capsys):
    page = tmp_path / "v.md"
    page.write_text("x\n<!-- results: r -->\n<!-- end results -->\n")
    args = argparse.Namespace(seeds="0,1", out=page)
    assert volatility.run(args) == 2
    assert "at least 3 seeds" in capsys.readouterr().err


def test_five_minute_section_has_its_own_markers_and_leaves_the_hourly_one_alone():
    page = (
        "intro\n<!-- results: 1h -->\nHOURLY\n<!-- end results -->\n"
        "5m text\n<!-- results-5m: 5m -->\nold\n<!-- end results-5m -->\n"
    )
    assert volatility.markers("1h") == (volatility.START, volatility.END)
    new = volatility.splice(page, "FIVE\n", *volatility.markers("5m"))
    assert "HOURLY" in new and "FIVE" in new and "old" not in new
    assert new.index("FIVE") > new.index("<!-- results-5m:")
    # the hourly section's end marker is not mistaken for the 5m one, nor the other way round
    assert volatility.splice(page, "H2\n").count("HOURLY") == 0
    assert "old" in volatility.splice(page, "H2\n")


def test_the_aim_of_another_section_judges_the_configured_model():
    pooled = volatility.pool([_summary(0.44, True)] * 3)
    lines = volatility.aim(pooled, "garch", "why", main=False)
    assert "picks **`garch`**" in lines[0]
    configured = volatility._configured()
    assert f"Aim, for `{configured}`," in lines[-1]
