"""The paper's whole experiment as one yardstick: a walk-forward grid, cold vs fast refits.

The grid (issue 16): BTC, ETH, LTC x 1h and 1d x lstm, gru, transformer, performer_bilstm (+
persistence, drift), walk-forward over 2022-07-01 .. 2023-06-30 with 30-day folds, a refit every
fold, the shipped paper-like sizes and training settings (``configs/lstm.yaml``: 64-unit models,
40 epochs, patience 8, batch 64; the four model configs share them), on the reference candles.
It runs in passes, back to back in one process, on the same machine:

- ``cold``: every fold trained from scratch (the shipped default, what a grid cost before);
- ``warm``: ``backtest.warm_start`` (each refit after a job's first continues from the previous
  fold's weights for ``backtest.warm_epochs`` epochs, early stopping as configured);
- ``fast``: warm start plus ``train.window_stride`` on hourly series (``--stride``, default 4:
  each epoch trains on every 4th hourly window, the phase rotating; daily series keep stride 1).

A pass whose config for a timeframe equals one already run (``fast`` on daily data is ``warm``)
reuses that run's time and results: the same config and seed give the same forecasts.

Records, in the bench schema:

- ``grid seconds`` per pass (wall time of the passes' ``run_backtest`` calls, one per timeframe)
  and ``grid speed-up`` of each pass over ``cold`` (the ratio of two passes of one run);
- ``seconds per refit`` per pass, timeframe and model, split into the job's first refit (cold in
  every pass) and the later ones (warm in ``warm``/``fast``), from the folds' own timings;
- every job's ``rmse`` and ``skill_rmse`` (vs persistence) per pass and seed, and per job the cold
  passes' seed spread beside each other pass's skill (``skill vs cold seeds``), so accuracy is
  compared against seed noise, not against zero.

The whole grid takes about a day of CPU on 2 cores cold (the hourly refits dominate: minutes
each at the shipped sizes), so ``python -m bench.bench_grid`` (``make bench-grid``, ~45 min)
measures a sample of it with ``--workers 2``: its last 2 folds (``--last-folds``; 12 is the
whole year), every daily job (3 coins x 4 models + naive, the cold pass over 3 seeds for the
skill spread) and the hourly BTC lstm and gru jobs (one seed); see :func:`sample_slices`.
``--symbols``/``--models``/``--timeframes``/``--seeds`` apply to every timeframe, ``--passes``
picks passes; ``--name grid_x`` writes ``bench/results/grid_x.json`` beside ``grid.json`` (e.g. the
hourly seed spread: ``--name grid_hourly --timeframes 1h --seeds 3 --passes cold,fast``).
Progress and an ETA over each pass print as plain lines. ``--quick`` (CI: ``make
bench-quick``): BTC 1d and 1h from 2022-11 only, lstm 16x1 + the baselines, one epoch, four
folds; synthetic candles when the reference data is absent. A smoke test, not a measurement.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.candles import candles_dir, synthetic_candles
from bench.common import cli, config, record, write_results

NAME = "grid"
SYMBOLS = ["BTC/USDT", "ETH/USDT", "LTC/USDT"]
TIMEFRAMES = ["1h", "1d"]
MODELS = ["lstm", "gru", "transformer", "performer_bilstm", "persistence", "drift"]
END = "2023-06-30"
FOLD_DAYS = 30
GRID = [
    "backtest.test_start=2022-07-01",
    f"backtest.test_end={END}",
    f"backtest.fold_period={FOLD_DAYS}D",
    "backtest.window=expanding",
    "backtest.retrain_every=1",
    "backtest.val_fraction=0.15",
    "train.device=cpu",
]
QUICK = [
    "data.start=2022-11-01",
    "backtest.test_start=2023-03-01",
    f"backtest.test_end={END}",
    f"backtest.fold_period={FOLD_DAYS}D",
    "features.indicators=[{name: rsi, params: {window: 14}}]",
    "model.hidden_size=16",
    "model.num_layers=1",
    "train.epochs=1",
    "train.batch_size=256",
    "train.device=cpu",
    "backtest.warm_epochs=1",
]
PASSES = ("cold", "warm", "fast")
NAIVE = ("persistence", "drift")  # untrained: the same forecasts in every pass


def pass_sets(name: str, timeframe: str, stride: int) -> list[str]:
    """The overrides that make pass ``name`` for one timeframe (stride on hourly data only)."""
    if name == "cold":
        return ["backtest.warm_start=false", "train.window_stride=1"]
    k = stride if name == "fast" and timeframe == "1h" else 1
    return ["backtest.warm_start=true", f"train.window_stride={k}"]


def last_folds_start(n: int) -> str:
    """The test start that leaves the last ``n`` 30-day folds before the grid's end."""
    start = pd.Timestamp(END) + pd.Timedelta(days=1) - pd.Timedelta(days=FOLD_DAYS * n)
    return start.strftime("%Y-%m-%d")


def synthetic(i: int, timeframe: str) -> pd.DataFrame:
    """Synthetic candles ending mid-2023, like the reference."""
    import numpy as np

    n, freq = (12_000, "1h") if timeframe == "1h" else (1_500, "1D")
    df = synthetic_candles(n, i, freq, end=END)
    df["volume"] = np.maximum(df["volume"], 1e-6)
    return df


def _data_dir(root: Path, symbols: list[str], timeframes: list[str]) -> str:
    """Candles under ``root`` (copies of the reference files, or synthetic); returns a label."""
    ref = candles_dir(root / "ohlcv" / "binance", symbols, timeframes, synthetic)
    return "reference Binance candles" if ref else "synthetic candles"


def grid_pass(cfg, data_dir: Path, label: str) -> tuple[float, list, list[dict], dict]:
    """One backtest with plain-line progress: (wall seconds, results, fold events, summary)."""
    from cryptocast.cli.grid_progress import GridProgress
    from cryptocast.evaluate.backtest import run_backtest, summarise

    grid, folds = GridProgress(), []

    def on_event(ev: dict) -> None:
        if grid.update(ev) == "fold":
            folds.append(ev)
            print(f"  [{label}] {grid.line()}", flush=True)

    t0 = time.perf_counter()
    results = run_backtest(cfg, data_dir, on_event)
    return time.perf_counter() - t0, results, folds, summarise(cfg, results)[0]


def _rec(figure: str, value: float | None, unit: str, params: dict, **extra) -> dict:
    return record(figure, value, unit, params, 6, **extra)


def refit_records(folds: list[dict], base: dict) -> list[dict]:
    """``seconds per refit`` per timeframe and model: a job's first refit and its later ones."""
    out = []
    refits = [f for f in folds if f["retrained"]]
    first: dict[tuple, int] = {}  # job -> its first refit's fold
    for f in refits:
        job = (f["symbol"], f["timeframe"], f["model"])
        first[job] = min(first.get(job, f["fold"]), f["fold"])
    for tf, model in dict.fromkeys((f["timeframe"], f["model"]) for f in refits):
        mine = [f for f in refits if (f["timeframe"], f["model"]) == (tf, model)]
        firsts = [f for f in mine if f["fold"] == first[(f["symbol"], tf, model)]]
        later = [f for f in mine if f["fold"] != first[(f["symbol"], tf, model)]]
        for which, group in (("first", firsts), ("later", later)):
            if group:
                s = statistics.fmean(f["seconds"] for f in group)
                p = {**base, "timeframe": tf, "model": model, "refit": which, "refits": len(group)}
                out.append(_rec("seconds per refit", s, "s", p))
    return out


def skill_records(skills: dict[tuple, list[float]], base: dict) -> list[dict]:
    """Per job and pass: its skill beside the cold passes' seed mean, spread and range."""
    out = []
    for (pass_, sym, tf, model), values in skills.items():
        cold = skills.get(("cold", sym, tf, model))
        if pass_ == "cold" or not cold or not values:
            continue
        sd = statistics.stdev(cold) if len(cold) > 1 else None
        delta = statistics.fmean(values) - statistics.fmean(cold)
        within = None if sd is None else abs(delta) <= 2 * sd
        p = {**base, "pass": pass_, "symbol": sym, "timeframe": tf, "model": model,
             "cold_mean": round(statistics.fmean(cold), 6), "cold_sd": sd and round(sd, 6),
             "cold_range": [round(min(cold), 6), round(max(cold), 6)], "seeds": len(cold),
             "within_2sd": within}  # fmt: skip
        out.append(_rec("skill vs cold seeds", delta, "skill difference", p))
    return out


def sample_slices(quick: bool) -> list[dict]:
    """What ``python -m bench.bench_grid`` measures when not told otherwise.

    Quick: BTC, both timeframes, lstm + naive. Full: the grid's every daily job (3 coins x 4
    models, the cold pass over 3 seeds for the skill spread) and, of the hourly jobs, BTC with
    lstm and gru (one seed): a cold hourly refit of the shipped sizes takes minutes each, so the
    whole hourly grid cold is a day of CPU on 2 cores; the records say what ran.
    """
    if quick:
        return [{"timeframe": tf, "symbols": ["BTC/USDT"], "models": ["lstm", *NAIVE],
                 "seeds": 1} for tf in TIMEFRAMES]  # fmt: skip
    return [
        {"timeframe": "1h", "symbols": ["BTC/USDT"], "models": ["lstm", "gru", *NAIVE], "seeds": 1},
        {"timeframe": "1d", "symbols": SYMBOLS, "models": MODELS, "seeds": 3},
    ]


def run(
    quick: bool,
    slices: list[dict],
    workers: int = 1,
    last_folds: int | None = None,
    stride: int = 4,
    passes: list[str] | None = None,
) -> list[dict]:
    """Each pass over every slice (one ``run_backtest`` per slice), cold first; see the module
    docstring for the records."""
    from cryptocast.training.threads import machine_load

    passes = passes or list(PASSES)
    sets = [
        *(QUICK if quick else GRID),
        *([f"backtest.test_start={last_folds_start(last_folds)}"] if last_folds else []),
        f"backtest.workers={workers}",
    ]

    def slice_sets(sl: dict) -> list[str]:
        return [*sets, f"backtest.timeframes=[{sl['timeframe']}]",
                f"backtest.symbols=[{', '.join(sl['symbols'])}]",
                f"backtest.models=[{', '.join(sl['models'])}]"]  # fmt: skip

    records: list[dict] = []
    with tempfile.TemporaryDirectory() as d:
        data_dir = Path(d)
        label = ""
        for sl in slices:
            label = _data_dir(data_dir, sl["symbols"], [sl["timeframe"]])
        # warm-up outside the timings: imports torch and builds every series' feature cache
        for sl in slices:
            warmup = [*slice_sets(sl), "backtest.models=[persistence]", "backtest.workers=1"]
            grid_pass(config("lstm", warmup), data_dir, "warm-up")
        import torch

        # the first optimiser a process builds imports torch._dynamo (seconds, once)
        torch.optim.AdamW([torch.zeros(1, requires_grad=True)])
        load_before = machine_load()
        base = {"data": label, "slices": slices, "workers": workers, "last_folds": last_folds,
                "quick": quick}  # fmt: skip
        seconds: dict[str, float] = {}
        skills: dict[tuple, list[float]] = {}
        done: dict[str, tuple] = {}  # config hash -> (seconds, fold events, summary)
        for seed in range(max(sl["seeds"] for sl in slices)):
            for name in passes:
                if seed and name != "cold":  # extra seeds measure the cold passes' spread
                    continue
                total, folds, cfgs = 0.0, [], []
                for sl in slices:
                    if seed >= sl["seeds"]:
                        continue
                    tf = sl["timeframe"]
                    over = [*slice_sets(sl), f"train.seed={seed}", *pass_sets(name, tf, stride)]
                    cfg = config("lstm", over)
                    if cfg.hash() in done:  # e.g. fast on daily data is warm: same config
                        s, evs, summary = done[cfg.hash()]
                    else:
                        s, _, evs, summary = grid_pass(cfg, data_dir, f"{name} seed {seed} {tf}")
                        done[cfg.hash()] = (s, evs, summary)
                    total, folds, cfgs = total + s, folds + evs, [*cfgs, cfg]
                    p = {**base, "pass": name, "seed": seed, "timeframe": tf}
                    records.append(_rec("slice seconds", s, "s", p))
                    records += _job_records(summary, {**base, "pass": name, "seed": seed}, skills)
                c = cfgs[0]
                p = {**base, "pass": name, "seed": seed, "epochs": c.train.epochs,
                     "warm_epochs": c.backtest.warm_epochs if name != "cold" else None,
                     "stride_1h": stride if name == "fast" else 1,
                     "folds": len(folds)}  # fmt: skip
                if seed == 0:
                    records.append(_rec("grid seconds", total, "s", p))
                    seconds[name] = total
                records += refit_records(folds, {**base, "pass": name, "seed": seed})
                print(f"grid {name} (seed {seed}): {total:.1f} s", flush=True)
        for name in passes:
            if name != "cold" and "cold" in seconds and name in seconds:
                records.append(
                    _rec("grid speed-up", seconds["cold"] / seconds[name], "x",
                         {**base, "pass": name, "stride_1h": stride if name == "fast" else 1,
                          "load_before": load_before, "load_after": machine_load()})
                )  # fmt: skip
                print(f"{name} over cold: {seconds['cold'] / seconds[name]:.2f}x")
        records += skill_records(skills, base)
    return records


def _job_records(summary: dict, base: dict, skills: dict[tuple, list[float]]) -> list[dict]:
    """``rmse`` and ``skill_rmse`` of every job; trained models' skills go to ``skills``."""
    out = []
    for rec in summary["results"]:
        key = (base["pass"], rec["symbol"], rec["timeframe"], rec["model"])
        if rec.get("skill_rmse") is not None and rec["model"] not in NAIVE:
            skills.setdefault(key, []).append(rec["skill_rmse"])
        p = {**base, "symbol": rec["symbol"], "timeframe": rec["timeframe"],
             "model": rec["model"], "folds": rec["folds"]}  # fmt: skip
        out.append(_rec("rmse", rec.get("rmse"), "price", p))
        out.append(_rec("skill_rmse", rec.get("skill_rmse"), "fraction", p))
    return out


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


if __name__ == "__main__":
    ap = cli(__doc__, "a tiny slice of the grid (CI smoke)")
    ap.add_argument("--workers", type=int, help="backtest.workers (default: 2; quick 1)")
    ap.add_argument("--symbols", help="comma list for every timeframe (default: the sample)")
    ap.add_argument("--timeframes", help="comma list (default: 1h,1d)")
    ap.add_argument("--models", help="comma list for every timeframe (default: the sample)")
    ap.add_argument("--seeds", type=int, help="seeds of the cold pass (default: the sample's)")
    ap.add_argument("--last-folds", type=int, help="walk the grid's last N 30-day folds (2)")
    ap.add_argument("--stride", type=int, default=4, help="train.window_stride of hourly jobs")
    ap.add_argument("--passes", help=f"comma list of {', '.join(PASSES)} (default: all)")
    ap.add_argument("--name", default=NAME, help="results file bench/results/NAME.json (grid)")
    a = ap.parse_args()
    tfs = _csv(a.timeframes) or TIMEFRAMES
    slices = [sl for sl in sample_slices(a.quick) if sl["timeframe"] in tfs]
    for sl in slices:  # options given apply to every timeframe
        sl.update({k: v for k, v in (("symbols", _csv(a.symbols)), ("models", _csv(a.models)),
                                     ("seeds", a.seeds)) if v})  # fmt: skip
    workers = a.workers or (1 if a.quick else 2)
    last = a.last_folds or (None if a.quick else 2)
    recs = run(a.quick, slices, workers, last, a.stride, _csv(a.passes))
    if a.name != NAME:  # another slice beside grid.json: say how it was made
        cmd = " ".join(["python -m bench.bench_grid", *sys.argv[1:]])
        for rec in recs:
            rec["params"]["command"] = cmd
    path = write_results(a.name, recs, a.quick)
    print(f"results in {path}")
