"""compare.py probabilistic: the page's aims are computed from the records (a model beats rw_ewma
on CRPS with DM p < 0.05 on >= 2 coins; every VaR test passes on every coin), and the daily and
hourly runs each get their own section."""

from __future__ import annotations

from scripts.comparison import probabilistic

VAR = [
    f"var{k}_{t}" for k in ("95_lo", "95_hi", "99_lo", "99_hi") for t in ("p_uc", "p_ind", "p_cc")
]


def _rec(sym: str, model: str, skill: float, p: float, var_p: float) -> dict:
    rec = {
        "symbol": f"{sym}/USDT", "model": model, "n": 364, "crps": 0.01 * (1 - skill),
        "crps_skill": skill, "dm_pvalue_crps_vs_rw_ewma": p, "dm_pvalue_pinball_vs_rw_ewma": p,
        "coverage_80": 0.8, "coverage_90": 0.9, "coverage_98": 0.98, "width_80": 0.05,
        "width_90": 0.08, "var_backtests": True, "mcs_crps_90": True, "mcs_pvalue_crps": 0.5,
    }  # fmt: skip
    for k in ("95_lo", "95_hi", "99_lo", "99_hi"):
        rec[f"var{k}_rate"] = 0.05
    rec.update(dict.fromkeys(VAR, var_p))
    return rec


def _summary(tf: str, t_wins_on: set[str], var_ok: set[str]) -> dict:
    recs = []
    for sym in ("BTC", "ETH", "LTC"):
        recs += [
            _rec(sym, "rw_ewma", 0.0, 1.0, 0.01),  # fails every VaR test
            _rec(sym, "t_ewma", 0.02, 0.01 if sym in t_wins_on else 0.2, 0.5 if sym in var_ok else 0.01),
        ]  # fmt: skip
    return {
        "results": recs, "config_hash": "x", "wall_seconds": 1.0, "created": "now",
        "test_start": "2022-07-01", "test_end": "2023-06-30", "versions": {"torch": "t"},
        "config": {
            "model": {"quantiles": [0.01, 0.5, 0.99]},
            "train": {"epochs": 1, "window_stride": 1},
            "backtest": {"timeframes": [tf], "fold_length": 91, "fold_period": None,
                         "window": "expanding", "val_fraction": 0.15, "aci_gamma": 0.005},
        },
    }  # fmt: skip


def test_aims_follow_the_records():
    met = probabilistic._aims(_summary("1d", {"BTC", "ETH"}, {"BTC", "ETH", "LTC"}))
    assert "**met**" in met[0] and "`t_ewma` on BTC, ETH" in met[0]
    assert "**met**" in met[1] and "by `t_ewma`." in met[1]
    missed = probabilistic._aims(_summary("1d", {"BTC"}, {"BTC"}))
    assert "**not met**" in missed[0]
    assert "**not met**" in missed[1] and "`t_ewma` on 1 of 3" in missed[1]


def test_each_timeframe_gets_its_section():
    daily = {m: _summary("1d", {"BTC", "ETH"}, set()) for m in ("none", "cqr")}
    hourly = {m: _summary("1h", set(), set()) for m in ("none", "cqr")}
    page = probabilistic.render([(daily, "configs/a.yaml"), (hourly, "configs/b.yaml")])
    assert page.index("## Daily candles (1d)") < page.index("## Hourly candles (1h)")
    assert page.count("### calibration: none") == 2 and page.count("**Aims**") == 2
    assert "Hourly BTC, ETH and LTC" in page
