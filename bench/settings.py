"""Override sets several benchmarks share, so each setting is written once.

- :data:`SMALL`: the harness benchmarks' small recurrent nets (``bench_backtest``,
  ``bench_grid_exec``): 16 units, 2 epochs, one torch thread per job, daily series.
- :data:`DARTS`: our side of the issue's darts refit setting (``bench_backtest`` times it with one
  thread; ``bench_darts`` and ``bench_threads`` drop ``train.num_threads=1`` to run under the
  CLI's thread plan).
- :data:`ANCHOR_COMMON` + :data:`ANCHOR_MODELS`: the darts-anchor training shapes
  (``bench_train``; ``bench_darts`` trains darts on the same ones, in the same run).
"""

from __future__ import annotations

SMALL = [
    "features.indicators=[{name: rsi, params: {window: 14}}, {name: macd}]",
    "features.lookback=30",
    "model.hidden_size=16",
    "model.num_layers=1",
    "train.epochs=2",
    "train.batch_size=64",
    "train.patience=0",
    "train.device=cpu",
    "train.num_threads=1",
    "backtest.timeframes=[1d]",
]
DARTS = [
    "features.indicators=[]",
    "features.range_features=false",
    "features.calendar=false",
    "features.lookback=30",
    "model.hidden_size=25",
    "model.num_layers=1",
    "model.dropout=0.0",
    "train.epochs=5",
    "train.batch_size=32",
    "train.patience=0",
    "train.schedule=none",
    "train.device=cpu",
    "train.num_threads=1",
    "backtest.timeframes=[1d]",
    "backtest.models=[lstm]",
    "backtest.symbols=[BTC/USDT]",
]
ANCHOR_COMMON = [
    "features.lookback=48",
    "train.batch_size=256",
    "train.lr=0.001",
    "model.d_model=64",
    "model.n_heads=4",
    "model.dim_feedforward=128",
]
ANCHOR_MODELS = {
    "lstm": ["model.name=lstm", "model.hidden_size=64", "model.num_layers=1"],
    "transformer": ["model.name=transformer", "model.n_layers=2"],
    "transformer_4layers": ["model.name=transformer", "model.n_layers=4"],
    "performer_bilstm": ["model.name=performer_bilstm", "model.n_layers=2"],
}


def without_threads(sets: list[str]) -> list[str]:
    """``sets`` less ``train.num_threads``: the job then runs under the CLI's thread plan."""
    return [s for s in sets if not s.startswith("train.num_threads")]
