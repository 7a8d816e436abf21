"""Peer anchors measured live: ours against darts 0.48.1 in the same run, never a stored constant.

Two long-lived worker processes, one per side, take turns (ours, darts, ours, darts, ...) on
each comparison, so a burst of load hits both sides of a round alike; each figure is the median
of the per-round ratios, with both sides' medians. Separate processes give each side its own
defaults for what is fixed when torch loads:

- ours: the CLI's thread plan (``cryptocast.training.threads.apply_thread_plan(1)`` before torch loads,
  then its ``cores // jobs`` torch threads; the OpenMP wait policy left default on a quiet
  machine, ``PASSIVE`` when the load says the cores are busy), ``train.num_threads`` unset;
- darts: torch's default thread count, Lightning with ``enable_progress_bar=False``,
  ``logger=False``, ``enable_checkpointing=False``, ``enable_model_summary=False``,
  ``accelerator="cpu"``; everything else (Adam, lr 1e-3, no clipping) darts' defaults. Its
  OpenMP wait policy is the one our plan picked: on a quiet machine that is OpenMP's default,
  i.e. darts' own; on a busy one our plan picks ``PASSIVE``, and darts gets it too, because
  OpenMP's spinning default on busy cores can be many times slower (``cryptocast/training/threads.py``):
  that would measure the neighbours, not darts, and flatter us.

Comparisons:

a. ``train throughput lstm``: windows/s of one training epoch at the issue's darts-anchor shapes
   (lookback 48, batch 256, 5 input columns = target + 4 past covariates, LSTM hidden 64,
   1 layer; ~48k windows): ours through ``cryptocast.training.loop.fit`` (configs/lstm.yaml's training
   settings: AdamW, cosine schedule, grad clip) vs darts ``BlockRNNModel(model="LSTM")`` on the
   same synthetic array. Counted: the epoch itself -- batch sampling and window gathering
   (darts: its Dataset ``__getitem__`` and collate), forward, loss, backward, optimiser step,
   Lightning's per-batch hooks. Not counted: model construction, Lightning's Trainer set-up, data
   conversion, and a warm-up epoch on each side (allocator, kernels) before the rounds. Darts'
   epoch is timed by a Lightning Callback (``on_train_epoch_start``/``end``) and its windows
   counted from the batches it saw; ours by ``fit``'s per-epoch ``seconds`` (no validation set).
b. ``train throughput transformer``: darts' ``TransformerModel`` is an encoder-decoder; in
   training its decoder reads 2 tokens (a start token + the 1-step target, teacher forcing)
   against the 48-step memory. Ours is an encoder over the 48 steps. The fair setting: the same
   d_model 64 / 4 heads / ff 128 and the same encoder depth (2 layers over the 48 steps), darts
   with its 2 decoder layers on top (``num_decoder_layers=2``) -- they add parameters (2.5x ours)
   but little compute at 2 tokens; an encoder of 4 layers on our side would do ~2x the work of
   darts' 2 encoder layers. Both sides' parameter counts and training FLOPs per window (forward
   + backward, ``torch.utils.flop_counter``) are in the record, so the reader can weigh it.
   12k windows per epoch (48k in the issue) keeps the full run within minutes.
c. ``seconds per refit``: darts ``historical_forecasts(retrain=True, forecast_horizon=1,
   stride=30)`` of ``BlockRNNModel`` LSTM (hidden 25, 1 layer, 5 epochs, lookback 30, batch 32)
   on the daily BTC log returns, vs our ``run_backtest`` of the same LSTM (``bench.settings.DARTS``
   overrides, threads from the plan) over the same number of 30-day folds, one refit each; both
   whole job time (features or series building, training, forecasting) divided by the refits.

Every record carries both sides' threads and OpenMP wait policy and the 1-minute load average
before and after its rounds. Without darts (``pip install -e '.[bench]'``) one line says so and
the records are written as skipped. Run: ``python -m bench.bench_darts`` (full, ~5 min on 2
cores), ``--quick`` (tiny sizes, CI smoke), ``--rounds N``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import multiprocessing as mp
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.candles import daily_candles
from bench.common import cli, report
from bench.darts_sides import serve

NAME = "darts"
FIGURES = {
    "lstm": "train throughput lstm, ours vs darts",
    "transformer": "train throughput transformer, ours vs darts",
    "refit": "seconds per refit, ours vs darts historical_forecasts",
}
UNITS = {"lstm": "windows/s", "transformer": "windows/s", "refit": "s"}


def sizes(quick: bool) -> dict[str, Any]:
    """Windows per timed epoch, refits, epochs per refit and rounds of each comparison."""
    if quick:
        return {"lstm": 1200, "transformer": 600, "warm": 512, "refits": 2, "refit_epochs": 1,
                "rounds": 1}  # fmt: skip
    return {"lstm": 48000, "transformer": 12000, "warm": 2560, "refits": 6, "refit_epochs": 5,
            "rounds": 3}  # fmt: skip


def paired(ours: list[float], darts: list[float], higher_is_better: bool) -> dict[str, Any]:
    """Medians of both sides and the median of the per-round ratios (> 1: ours is faster).

    Args:
        ours: our figure per round.
        darts: darts' figure in the same rounds.
        higher_is_better: True for throughput (ratio ours / darts), False for seconds
            (ratio darts / ours).
    """
    if len(ours) != len(darts) or not ours:
        raise ValueError(f"need one darts figure per round: {len(ours)} vs {len(darts)}")
    ratios = [o / d if higher_is_better else d / o for o, d in zip(ours, darts, strict=True)]
    return {
        "value": round(statistics.median(ours), 3),
        "darts_value": round(statistics.median(darts), 3),
        "x_darts": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "ours_runs": [round(x, 3) for x in ours],
        "darts_runs": [round(x, 3) for x in darts],
    }


def darts_missing() -> str | None:
    """Why darts cannot run here (None: it can)."""
    for mod in ("darts", "pytorch_lightning"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install -e '.[bench]')"
    return None


def skipped_records(reason: str, quick: bool) -> list[dict[str, Any]]:
    """One record per comparison, value null, marked skipped with the reason."""
    return [
        {
            "figure": fig,
            "value": None,
            "unit": UNITS[key],
            "params": {"quick": quick},
            "skipped": True,
            "reason": reason,
        }  # fmt: skip
        for key, fig in FIGURES.items()
    ]


def _load() -> float | None:
    from cryptocast.training.threads import machine_load

    load = machine_load()
    return None if load is None else round(load, 2)


class DartsUnavailable(RuntimeError):
    """The darts worker could not start (darts importable in name only, e.g. a broken install)."""


class _Side:
    """A worker process for one side; ``call`` runs a task there and returns its result."""

    def __init__(
        self,
        side: str,
        ctx: Any,
        quick: bool,
        data_dir: str,
        policy: str | None = None,
    ) -> None:
        self.side = side
        self.conn, child = ctx.Pipe()
        args = (side, child, quick, sizes(quick), data_dir, policy)
        self.proc = ctx.Process(target=serve, args=args, daemon=True)
        self.proc.start()
        kind, self.info = self.conn.recv()  # threads, wait policy: fixed once torch has loaded
        if kind == "error":
            self.close()
            if side == "darts":
                raise DartsUnavailable(self.info.strip().splitlines()[-1][:300])
            raise RuntimeError(f"ours worker did not start:\n{self.info}")

    def _recv(self) -> Any:
        kind, payload = self.conn.recv()
        if kind == "error":
            raise RuntimeError(f"{self.side} worker: {payload}")
        return payload

    def call(self, task: str, **kwargs: Any) -> Any:
        self.conn.send((task, kwargs))
        return self._recv()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()


def _compare(key: str, sides: dict[str, _Side], rounds: int, sz: dict[str, Any]) -> dict:
    """Warm up both sides, then ``rounds`` interleaved rounds; one record."""
    task = "refit" if key == "refit" else "train"
    kw: dict[str, Any] = {"model": key} if task == "train" else {}
    setup = {s: sides[s].call(f"{task}_setup", **kw) for s in ("ours", "darts")}  # + warm-up
    load0 = _load()
    runs: dict[str, list[float]] = {"ours": [], "darts": []}
    for _ in range(rounds):
        for s in ("ours", "darts"):
            runs[s].append(sides[s].call(task, **kw))
    rec = paired(runs["ours"], runs["darts"], higher_is_better=task == "train")
    params: dict[str, Any] = {"rounds": rounds}
    if task == "train":
        params.update(lookback=48, batch_size=256, n_features=5, windows=sz[key],
                      ours_params=setup["ours"]["n_params"],
                      darts_params=setup["darts"]["n_params"])  # fmt: skip
        if key == "lstm":
            params.update(model="LSTM hidden 64, 1 layer", darts_model="BlockRNNModel LSTM")
        else:
            params.update(model="encoder 2 layers, d_model 64, 4 heads, ff 128",
                          darts_model="TransformerModel 2 encoder + 2 decoder layers",
                          ours_flops_per_window=setup["ours"].get("flops"),
                          darts_flops_per_window=setup["darts"].get("flops"))  # fmt: skip
    else:
        params.update(data=setup["ours"]["data"], model="LSTM hidden 25, 1 layer",
                      lookback=30, batch_size=32, epochs=sz["refit_epochs"], fold_days=30,
                      refits=setup["ours"]["refits"], darts_refits=setup["darts"]["refits"],
                      darts_call="historical_forecasts(retrain=True, forecast_horizon=1, "
                                 "stride=30)")  # fmt: skip
    return {
        "figure": FIGURES[key],
        "unit": UNITS[key],
        **rec,
        "params": params,
        "threads": sides["ours"].info["threads"],
        "darts_threads": sides["darts"].info["threads"],
        "omp_wait_policy": sides["ours"].info["policy"],
        "darts_omp_wait_policy": sides["darts"].info["policy"],
        "thread_plan": sides["ours"].info["why"],
        "loadavg_1m": load0,
        "loadavg_1m_after": _load(),
    }


def run(quick: bool, rounds: int | None = None) -> list[dict[str, Any]]:
    """Every comparison, ours and darts interleaved; skipped records when darts is missing."""
    reason = darts_missing()
    if reason:
        print(f"darts anchors skipped: {reason}", flush=True)
        return skipped_records(reason, quick)
    sz = sizes(quick)
    rounds = rounds or sz["rounds"]
    ctx = mp.get_context("spawn")
    records = []
    with tempfile.TemporaryDirectory() as d:
        data_dir, _, _ = daily_candles(Path(d), quick)
        sides: dict[str, _Side] = {}
        try:
            sides["ours"] = _Side("ours", ctx, quick, str(data_dir))
            # the wait policy ours' plan picked, for both (see the module docstring)
            policy = sides["ours"].info["policy"]
            policy = None if policy == "default" else policy
            sides["darts"] = _Side("darts", ctx, quick, str(data_dir), policy)
            print(f"threads: ours {sides['ours'].info}, darts {sides['darts'].info}", flush=True)
            for key in FIGURES:
                rec = _compare(key, sides, rounds, sz)
                records.append(rec)
                print(f"  {key}: ours {rec['value']} darts {rec['darts_value']} {rec['unit']} "
                      f"-> {rec['x_darts']}x darts (rounds {rec['ratios']}, load "
                      f"{rec['loadavg_1m']} -> {rec['loadavg_1m_after']})", flush=True)  # fmt: skip
        except DartsUnavailable as exc:  # darts present but broken (e.g. an import error)
            print(f"darts anchors skipped: {exc}", flush=True)
            return skipped_records(str(exc), quick)
        finally:
            for side in sides.values():
                side.close()
    return records


if __name__ == "__main__":
    ap = cli(__doc__, "tiny sizes, one round (CI smoke)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds per comparison (3; quick 1)")
    a = ap.parse_args()
    report(NAME, run(a.quick, a.rounds), a.quick)
