"""The paper's whole grid, run end to end once per training plan: wall time and every job's skill.

The grid (issue 23): BTC, ETH, LTC x 1h and 1d x lstm, gru, transformer, performer_bilstm (+
persistence, drift), walk-forward over 2022-07-01 .. 2023-06-30 with 30-day folds and a refit every
fold, at the shipped paper-like sizes, on the reference candles, ``--workers 2``. Not a sample:
each plan is the shipped config as ``cryptocast backtest -c configs/X.yaml`` runs it (plus
``train.device=cpu``), timed from the first refit to the last forecast:

- ``pooled``: ``configs/grid_pooled.yaml``, one model per (timeframe, model, fold) trained on the
  three coins together (``backtest.pooled: only``), an epoch taking every (3 x k)-th window;
- ``fast``: ``configs/grid.yaml`` as shipped (hourly refits warm-started on every 4th window, daily
  refits from scratch);
- ``cold``: ``configs/grid.yaml`` with every refit from scratch (``backtest.timeframe_overrides``
  emptied): about 5 h on 2 cores, so only with ``--plans cold,...``.

Records, in the bench schema:

- ``grid seconds`` per plan and seed (one ``run_backtest`` over the whole grid) and ``grid speed-up``
  of each plan over ``fast`` (and over ``cold`` when it ran): ratios of passes of one run;
- ``training seconds`` per plan, timeframe and model: the seconds of its jobs (the three per-series
  jobs summed, or the one pooled job), and ``refits`` beside them;
- ``skill_rmse`` (vs persistence) and ``dm p vs persistence`` of every trained job per plan and seed;
- per job, ``skill vs fast``: a plan's skill minus the per-series fast plan's (same seed), with the
  Diebold–Mariano p-value of the two forecasts' squared errors on the same origins;
- with ``--seeds N`` (N > 1; default 3), ``skill seed spread`` per plan and job: mean, sd and range
  over seeds, against which the pooled models' skill is judged.

``--extend`` keeps the seeds already in ``bench/results/paper_grid.json`` and runs only the missing
ones (``--seeds 4`` after a three-seed run: seed 3 of the same plans), then recomputes the spreads
over all of them: another seed costs one more pass, not a rerun of the others. Three seeds of the
default plans take about 3.2 h on the 2-core machine.

Features are built once before any timing (a persistence-only run). ``--quick`` (CI: ``make
bench-quick``): BTC and ETH, both timeframes, from 2022-11 on, lstm 16x1 for one epoch + the
baselines, four folds; synthetic candles when the reference data is absent. A smoke test, not a
measurement.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import numpy as np

from bench.bench_grid import END, QUICK, SYMBOLS, TIMEFRAMES, grid_pass, synthetic
from bench.candles import candles_dir
from bench.common import RESULTS_DIR, cli, config, record, results_path, write_results
from bench.tables_common import by_figure

NAME = "paper_grid"
# plan -> (config, overrides): the shipped configs as `cryptocast backtest -c` runs them
PLANS = {
    "pooled": ("grid_pooled", []),
    "fast": ("grid", []),
    "cold": ("grid", ["backtest.timeframe_overrides={}"]),
}
DEFAULT_PLANS = ("pooled", "fast")
BASE = ["train.device=cpu"]
QUICK_MODELS = "backtest.models=[lstm, persistence, drift]"
QUICK_SYMBOLS = ["BTC/USDT", "ETH/USDT"]
NAIVE = ("persistence", "drift")


def _rec(figure: str, value: float | None, unit: str, params: dict) -> dict:
    return record(figure, value, unit, params, 6)


def plan_config(plan: str, quick: bool, workers: int, seed: int):
    """The config a plan runs: its shipped file + ``train.device=cpu`` (quick: a tiny slice)."""
    name, sets = PLANS[plan]
    small = (
        [*QUICK, QUICK_MODELS, f"backtest.symbols=[{', '.join(QUICK_SYMBOLS)}]"] if quick else []
    )
    return config(name, [*sets, *BASE, *small, f"backtest.workers={workers}", f"train.seed={seed}"])


def _errors(r) -> dict:
    """Origin -> error at the last horizon step of one job's forecasts."""
    e = np.asarray(r.y_pred)[:, -1] - np.asarray(r.y_true)[:, -1]
    return dict(zip(np.asarray(r.timestamps).tolist(), e.tolist(), strict=True))


def versus(results: list, reference: list, h: int) -> dict[tuple, tuple[float, float]]:
    """Per (symbol, timeframe, model): (DM statistic, p) of ``results``' squared errors against
    ``reference``'s on the origins both forecast (trained models only; pooled names unpooled)."""
    from cryptocast.evaluate.pooled import base_name
    from cryptocast.evaluate.significance import diebold_mariano

    ref = {(r.symbol, r.timeframe, r.model): r for r in reference}
    out = {}
    for r in results:
        key = (r.symbol, r.timeframe, base_name(r.model))
        if key[2] in NAIVE or key not in ref:
            continue
        a, b = _errors(r), _errors(ref[key])
        common = sorted(set(a) & set(b))
        if len(common) < 3:
            continue
        ea, eb = np.array([a[t] for t in common]), np.array([b[t] for t in common])
        out[key] = diebold_mariano(ea, eb, h=h, loss="squared")
    return out


def _job_records(summary: dict, base: dict, skills: dict) -> list[dict]:
    from cryptocast.evaluate.pooled import base_name

    out = []
    for rec in summary["results"]:
        model = base_name(rec["model"])
        if model in NAIVE:
            continue
        key = (base["plan"], rec["symbol"], rec["timeframe"], model)
        skills.setdefault(key, []).append(rec.get("skill_rmse"))
        p = {**base, "symbol": rec["symbol"], "timeframe": rec["timeframe"], "model": model,
             "result": rec["model"]}  # fmt: skip
        out.append(_rec("skill_rmse", rec.get("skill_rmse"), "fraction", p))
        out.append(_rec("dm p vs persistence", rec.get("dm_pvalue_vs_persistence"), "p", p))
    return out


def _cost_records(results: list, folds: list[dict], base: dict) -> list[dict]:
    """``training seconds`` and ``refits`` per timeframe and model (a pooled job counted once)."""
    from cryptocast.evaluate.pooled import base_name

    seconds: dict[tuple, float] = {}
    for r in results:
        key = (r.timeframe, base_name(r.model))
        if key[1] in NAIVE:
            continue
        pooled = base_name(r.model) != r.model  # every symbol's result carries the job's seconds
        seconds[key] = r.seconds if pooled else seconds.get(key, 0.0) + r.seconds
    refits: dict[tuple, set] = {}  # a pooled refit is one per fold, whatever the symbols
    for f in folds:
        if f.get("retrained"):
            one = f["fold"] if base_name(f["model"]) != f["model"] else (f["symbol"], f["fold"])
            refits.setdefault((f["timeframe"], base_name(f["model"])), set()).add(one)
    out = []
    for (tf, model), s in seconds.items():
        p = {**base, "timeframe": tf, "model": model, "refits": len(refits.get((tf, model), ()))}
        out.append(_rec("training seconds", s, "s", p))
    return out


def _job(fold: dict) -> tuple:
    """The job a fold event belongs to: a pooled one is one job over every symbol."""
    if fold["model"].endswith("@pooled"):
        return fold["timeframe"], fold["model"]
    return fold["symbol"], fold["timeframe"], fold["model"]


def prior_seeds(prior: list[dict]) -> tuple[list[dict], dict[tuple, list], int]:
    """What an earlier run left to keep: its records of the seeds it timed (less the spreads,
    recomputed), each job's skills by seed order, and the first seed it did not run."""
    seeds = {r["params"]["seed"] for r in by_figure(prior, "grid seconds")}
    start = max(seeds) + 1 if seeds else 0
    kept = [r for r in prior if r["figure"] != "skill seed spread"
            and r["params"].get("seed", 0) < start]  # fmt: skip
    skills: dict[tuple, list] = {}
    for r in sorted(by_figure(kept, "skill_rmse"), key=lambda r: r["params"]["seed"]):
        p = r["params"]
        skills.setdefault((p["plan"], p["symbol"], p["timeframe"], p["model"]), []).append(
            r["value"]
        )
    return kept, skills, start


def run(
    quick: bool, plans: list[str], workers: int = 2, seeds: int = 1, prior: list[dict] | None = None
) -> list[dict]:
    """Every plan over the whole grid (quick: a tiny slice), ``seeds`` times; see the module doc.
    ``prior``: an earlier run's records, whose seeds are kept and not rerun."""
    from cryptocast.training.threads import machine_load

    records, skills, start = prior_seeds(prior or [])
    symbols = QUICK_SYMBOLS if quick else SYMBOLS
    with tempfile.TemporaryDirectory() as d:
        data_dir = Path(d)
        ref = candles_dir(data_dir / "ohlcv" / "binance", symbols, TIMEFRAMES, synthetic)
        label = "reference Binance candles" if ref else "synthetic candles"
        # warm-up outside the timings: torch imports and every series' feature cache
        warm = plan_config(plans[0], quick, 1, 0).model_copy(deep=True)
        warm.backtest.models = ["persistence"]
        grid_pass(warm, data_dir, "warm-up")
        import torch

        torch.optim.AdamW([torch.zeros(1, requires_grad=True)])  # imports torch._dynamo once
        base = {"data": label, "workers": workers, "quick": quick, "end": END}
        load_before = machine_load()
        seconds: dict[str, float] = {}
        firsts: dict[int, dict[str, list]] = {}
        for seed in range(start, seeds):
            for plan in plans:
                cfg = plan_config(plan, quick, workers, seed)
                s, results, folds, summary = grid_pass(cfg, data_dir, f"{plan} seed {seed}")
                firsts.setdefault(seed, {})[plan] = results
                p = {**base, "plan": plan, "config": f"configs/{PLANS[plan][0]}.yaml",
                     "overrides": PLANS[plan][1], "seed": seed, "folds": len(folds),
                     "jobs": len({_job(f) for f in folds})}  # fmt: skip
                records.append(_rec("grid seconds", s, "s", p))
                if seed == 0:
                    seconds[plan] = s
                    records += _cost_records(results, folds, {**base, "plan": plan, "seed": 0})
                records += _job_records(summary, {**base, "plan": plan, "seed": seed}, skills)
                print(f"grid {plan} (seed {seed}): {s:.1f} s", flush=True)
            if "fast" in firsts[seed]:
                h = plan_config("fast", quick, workers, seed).features.horizon
                for plan, results in firsts[seed].items():
                    if plan != "fast":
                        records += _versus_records(plan, seed, results, firsts[seed], h, skills,
                                                   base)  # fmt: skip
            firsts[seed] = {}  # keep one seed's forecasts in memory at a time
        load = {"load_before": load_before, "load_after": machine_load()}
        for ref_plan in ("fast", "cold"):
            for plan in plans:
                if plan != ref_plan and ref_plan in seconds and plan in seconds:
                    value = seconds[ref_plan] / seconds[plan]
                    p = {**base, "plan": plan, "over": ref_plan, **load}
                    records.append(_rec("grid speed-up", value, "x", p))
        records += _spread_records(skills, base)
    return records


def _versus_records(plan, seed, results, by_plan, h, skills, base) -> list[dict]:
    out = []
    for key, (_, pv) in versus(results, by_plan["fast"], h).items():
        sym, tf, model = key
        mine, ref = skills.get((plan, *key)), skills.get(("fast", *key))
        if not mine or not ref or mine[-1] is None or ref[-1] is None:
            continue
        p = {**base, "plan": plan, "seed": seed, "symbol": sym, "timeframe": tf, "model": model,
             "dm_p": round(float(pv), 6)}  # fmt: skip
        out.append(_rec("skill vs fast", mine[-1] - ref[-1], "skill difference", p))
    return out


def _spread_records(skills: dict, base: dict) -> list[dict]:
    out = []
    for (plan, sym, tf, model), values in skills.items():
        vals = [v for v in values if v is not None]
        if len(vals) < 2:
            continue
        p = {**base, "plan": plan, "symbol": sym, "timeframe": tf, "model": model,
             "seeds": len(vals), "sd": round(statistics.stdev(vals), 6),
             "range": [round(min(vals), 6), round(max(vals), 6)]}  # fmt: skip
        out.append(_rec("skill seed spread", statistics.fmean(vals), "fraction", p))
    return out


if __name__ == "__main__":
    ap = cli(__doc__, "a tiny slice of the grid (CI smoke)")
    ap.add_argument("--plans", default=",".join(DEFAULT_PLANS),
                    help=f"comma list of {', '.join(PLANS)} (default: pooled,fast)")  # fmt: skip
    ap.add_argument("--workers", type=int, default=2, help="backtest.workers (default 2)")
    ap.add_argument("--seeds", type=int, default=3,
                    help="train.seed 0..N-1 of every plan (default 3: the seed spread)")  # fmt: skip
    ap.add_argument("--extend", action="store_true",
                    help="keep the seeds of the existing results file, run only the missing ones")  # fmt: skip
    a = ap.parse_args()
    plans = [p.strip() for p in a.plans.split(",") if p.strip()]
    unknown = [p for p in plans if p not in PLANS]
    if unknown:
        ap.error(f"unknown plan(s) {', '.join(unknown)}; choose from {', '.join(PLANS)}")
    prior = None
    if a.extend:
        old = results_path(RESULTS_DIR, NAME, a.quick)
        if not old.exists():
            ap.error(f"--extend: no {old} to extend; run without --extend first")
        prior = json.loads(old.read_text())["records"]
        ran = sorted({r["params"]["plan"] for r in by_figure(prior, "grid seconds")})
        if ran != sorted(plans):
            ap.error(
                f"--extend: {old.name} holds plans {','.join(ran)}; pass --plans {','.join(ran)}"
            )
    path = write_results(NAME, run(a.quick, plans, a.workers, a.seeds, prior), a.quick)
    print(f"results in {path}")
