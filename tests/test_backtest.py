"""The walk-forward runner (``cryptocast.evaluate.backtest`` + ``evaluate.walkforward``) end to end.

Oracles on a straight line, leakage that the harness must expose (a cheat model fed the future)
and must not create (the rows a fold actually reads, scalers, perturbing the future), and
``--workers 2`` == ``--workers 1``. Models are tiny and train for one epoch, so this stays fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.conftest import TINY_CONFIG, TINY_NET, make_ohlcv, scramble_after

SYMBOL = "BTC/USDT"
FAST = [
    *TINY_NET,
    f"backtest.symbols=[{SYMBOL}]",
    "backtest.timeframes=[1d]",
]


pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def store(data_dir: Path, candles: pd.DataFrame, symbol: str = SYMBOL) -> Path:
    from cryptocast.data.store import series_path, write_parquet_atomic

    write_parquet_atomic(candles, series_path(data_dir, "binance", symbol, "1d"))
    return data_dir


def config(*overrides: str):
    from cryptocast.config.schema import load_config

    return load_config(TINY_CONFIG, [*FAST, *overrides])


def line_candles(n: int = 160, r: float = 0.01, start: str = "2021-01-01") -> pd.DataFrame:
    """A straight line in log price: close_t = 100 * exp(r * t), a constant log return."""
    close = 100.0 * np.exp(r * np.arange(n))
    open_ = np.concatenate([[close[0] * np.exp(-r)], close[:-1]])
    ts = pd.date_range(start, periods=n, freq="1D", tz="UTC").astype("datetime64[ns, UTC]")
    return pd.DataFrame(
        {
            "timestamp": ts,
            "open": open_,
            "high": np.maximum(open_, close),
            "low": np.minimum(open_, close),
            "close": close,
            "volume": np.ones(n),
        }
    )


# ---- oracles --------------------------------------------------------------------------------
@pytest.mark.parametrize("horizon", [1, 3])
def test_straight_line_drift_is_exact_and_persistence_errs_by_the_differences(data_dir, horizon):
    """darts' oracle: on a constant-log-return line, drift (the mean training log return) has no
    error, and persistence's errors are exactly close[t+h] - close[t]."""
    from cryptocast.evaluate.backtest import run_backtest, summarise

    candles = line_candles()
    store(data_dir, candles)
    # Only the lagged log returns: defined (and constant) on a line, unlike volume indicators.
    cfg = config(
        "features.indicators=[]", "features.range_features=false", "features.calendar=false",
        f"features.horizon={horizon}", "backtest.models=[persistence, drift]",
        "backtest.test_start=2021-04-01", "backtest.fold_length=20",
    )  # fmt: skip
    results = run_backtest(cfg, data_dir)
    summary, forecasts, _ = summarise(cfg, results)
    by_model = {r.model: r for r in results}
    close = candles["close"].to_numpy()
    pos = {t: i for i, t in enumerate(candles["timestamp"].to_numpy())}

    drift, pers = by_model["drift"], by_model["persistence"]
    assert len(drift.fold_info) == 4 and len(drift.timestamps) > 60
    np.testing.assert_allclose(drift.y_pred, drift.y_true, rtol=1e-12, atol=0)
    origin = np.array([pos[t] for t in pers.timestamps])
    steps = np.arange(1, horizon + 1)
    # the realised prices and persistence's errors are the h-step differences, bit for bit
    assert np.array_equal(pers.y_true, close[origin[:, None] + steps])
    assert np.array_equal(pers.y_pred, np.repeat(close[origin][:, None], horizon, axis=1))
    assert np.array_equal(
        pers.y_true - pers.y_pred, close[origin[:, None] + steps] - close[origin, None]
    )

    recs = {r["model"]: r for r in summary["results"]}
    assert recs["drift"]["rmse"] < 1e-9 * close.max()
    assert recs["drift"]["mape"] < 1e-9
    assert recs["persistence"]["skill_rmse"] == 0.0
    last = close[origin + horizon] - close[origin]  # the error of the headline step H
    assert recs["persistence"]["rmse"] == pytest.approx(np.sqrt(np.mean(last**2)), rel=1e-12)
    assert len(forecasts) == 2 * len(origin) * horizon


# ---- leakage: exposed when present ------------------------------------------------------------
class _Cheat(torch.nn.Module):
    """A linear read-out of the last input row: harmless on honest features, an oracle when one
    feature column is the future return."""

    def __init__(self, n_features: int, horizon: int) -> None:
        super().__init__()
        self.head = torch.nn.Linear(n_features, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x[:, -1, :])  # (B, L, F) -> (B, H)


@pytest.fixture
def cheat_model():
    """Registers the test-only model ``cheat`` and removes it afterwards."""
    from cryptocast.models import registry

    registry.model_names()  # load the built-in models first
    registry.register("cheat")(
        lambda cfg, n_features, horizon, lookback: _Cheat(n_features, horizon)
    )
    yield "cheat"
    registry._BUILDERS.pop("cheat", None)
    registry._TRAINABLE.pop("cheat", None)


@pytest.fixture
def leak_future(monkeypatch):
    """Adds a feature column holding the NEXT candle's log return (what a buggy pipeline with a
    negative shift would do)."""
    import cryptocast.features.table as features

    honest = features.compute_features

    def leaky(candles, cfg, timeframe, **kw):
        table = honest(candles, cfg, timeframe, **kw)
        close = table["close"].to_numpy()
        leak = np.zeros(len(close))
        leak[:-1] = np.log(close[1:] / close[:-1])
        table.insert(3, "leak_next_return", leak)
        return table

    monkeypatch.setattr(features, "compute_features", leaky)


CHEAT_TRAINING = ["train.epochs=40", "train.lr=0.05", "train.schedule=none", "train.patience=0"]


def _cheat_run(data_dir: Path):
    from cryptocast.evaluate.backtest import run_backtest, summarise

    store(data_dir, make_ohlcv(300, "1d", start="2021-01-01", seed=5))
    cfg = config(
        *CHEAT_TRAINING, "backtest.models=[cheat, persistence]",
        "backtest.test_start=2021-08-01", "backtest.fold_length=60",
    )  # fmt: skip
    summary, _, _ = summarise(cfg, run_backtest(cfg, data_dir))
    return {r["model"]: r for r in summary["results"]}


def test_a_model_fed_the_future_is_flagged(data_dir, cheat_model, leak_future):
    from cryptocast.evaluate.backtest import LEAKAGE_SKILL

    recs = _cheat_run(data_dir)
    assert recs["cheat"]["skill_rmse"] > LEAKAGE_SKILL
    assert recs["cheat"]["leakage_suspect"] is True
    assert recs["persistence"]["leakage_suspect"] is False


def test_the_same_model_on_honest_features_is_not_flagged(data_dir, cheat_model):
    from cryptocast.evaluate.backtest import LEAKAGE_SKILL

    recs = _cheat_run(data_dir)
    assert recs["cheat"]["skill_rmse"] < LEAKAGE_SKILL
    assert recs["cheat"]["leakage_suspect"] is False


# ---- leakage: never created by the harness ----------------------------------------------------
@pytest.mark.parametrize(("warm_start", "stride"), [(False, 1), (True, 1), (True, 2)])
def test_folds_read_only_rows_known_at_their_first_forecast(
    data_dir, monkeypatch, warm_start, stride
):
    """Spy on what training actually touches: every window gathered while fitting (inputs AND
    target row e + H) and the scaler statistics, fold by fold, including reused models. With
    ``backtest.warm_start`` a fold's weights carry every earlier fit, so all of them are checked,
    and the warm fit must start from the previous fit's weights with the warm epoch budget; with
    ``train.window_stride`` (the fast hourly grid) too."""
    import cryptocast.features.windows as windows
    import cryptocast.training.loop as train
    from cryptocast.evaluate.walkforward import job_config, run_job
    from cryptocast.features.table import feature_columns, target_columns
    from cryptocast.training.runs import load_feature_table

    store(data_dir, make_ohlcv(260, "1d", start="2021-01-01", seed=1))
    cfg = config(
        "features.horizon=2", "backtest.test_start=2021-06-15", "backtest.fold_length=25",
        "backtest.retrain_every=2", "train.epochs=3", "backtest.warm_epochs=1",
        f"backtest.warm_start={str(warm_start).lower()}", f"train.window_stride={stride}",
    )  # fmt: skip
    fits: list[dict] = []
    real_fit, real_gather = train.fit, windows.gather_windows
    state = {"fitting": False}

    def spy_gather(X, ends, lookback):
        if state["fitting"]:
            fits[-1]["gathered"].append(np.asarray(ends).copy())
        return real_gather(X, ends, lookback)

    def spy_fit(model, data, cfg, progress_cb=None):
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        fits.append({"data": data, "gathered": [], "start": start, "epochs": cfg.epochs})
        state["fitting"] = True
        try:
            return real_fit(model, data, cfg, progress_cb)
        finally:
            state["fitting"] = False
            fits[-1]["end"] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    monkeypatch.setattr(train, "fit", spy_fit)
    monkeypatch.setattr(windows, "gather_windows", spy_gather)
    result = run_job(cfg, data_dir, SYMBOL, "1d", "lstm")

    H = 2
    df = load_feature_table(job_config(cfg, SYMBOL, "1d", "lstm"), data_dir)
    feats, targets = df[feature_columns(df)].to_numpy(), df[target_columns(H)].to_numpy()
    info = result.fold_info
    assert len(info) == 4 and [f["retrained"] for f in info] == [True, False, True, False]
    assert len(fits) == 2
    assert [f["warm_start"] for f in info] == [False, False, warm_start, warm_start]
    assert [f["epochs"] for f in fits] == [3, 1 if warm_start else 3]
    same = all(torch.equal(fits[1]["start"][k], fits[0]["end"][k]) for k in fits[0]["end"])
    assert same is warm_start  # warm: continues exactly where the previous fit ended
    fit_of_fold = np.cumsum([f["retrained"] for f in info]) - 1
    for fold, k in zip(info, fit_of_fold, strict=True):
        s = fold["first_origin"]
        assert fold["max_row_fit"] <= s
        rec = fits[k]
        data = rec["data"]
        # the weights in use carry fit k and, when warm-started, every fit before it
        behind = fits[: k + 1] if warm_start else [rec]
        gathered = np.concatenate([g for r in behind for g in r["gathered"]])
        assert len(gathered) > 0
        # the last target read is row e + H; it must be known at the fold's first forecast
        assert gathered.max() + H <= s
        assert max(hi for _, hi in data.segments.values()) <= s + 1
        lo, hi = data.segments["train"]
        np.testing.assert_allclose(data.x_scaler.center, feats[lo:hi].mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(data.x_scaler.scale, feats[lo:hi].std(axis=0), rtol=1e-12)
        train_ends = data.ends["train"]
        assert train_ends.max() + H < hi
        np.testing.assert_allclose(data.y_scaler.center, targets[train_ends].mean(axis=0))
    # every test origin was forecast, and each fold's origins come after its training rows
    assert sum(f["n_origins"] for f in info) == len(result.timestamps)


def test_timeframe_overrides_reach_only_the_jobs_of_their_timeframe(data_dir):
    from cryptocast.evaluate.walkforward import run_job

    store(data_dir, make_ohlcv(260, "1d", start="2021-01-01", seed=1))
    base = ["backtest.test_start=2021-06-15", "backtest.fold_length=25", "backtest.warm_epochs=1"]
    runs = {
        tf: run_job(
            config(*base, f"backtest.timeframe_overrides={{{tf}: [backtest.warm_start=true]}}"),
            data_dir, SYMBOL, "1d", "lstm",
        )
        for tf in ("1d", "1h")
    }  # fmt: skip
    assert [f["warm_start"] for f in runs["1d"].fold_info] == [False, True, True, True]
    assert not any(f["warm_start"] for f in runs["1h"].fold_info)


@pytest.mark.parametrize("warm_start", [False, True])
def test_changing_the_future_leaves_earlier_forecasts_bit_identical(tmp_path, warm_start):
    """The end-to-end check: scramble every candle from row p on; each forecast made before p is
    unchanged, bit for bit (features, scalers, training and prediction all ignore the future).
    With warm start, p lies in the third fold, so two warm-started folds come before it."""

    candles = make_ohlcv(260, "1d", start="2021-01-01", seed=2)
    p = 200 if not warm_start else 220  # inside the second (cold) or third fold (warm)
    future = scramble_after(candles, p, volume=3.0)
    cfg = config(
        "backtest.models=[lstm, drift]", "backtest.test_start=2021-06-01",
        "backtest.fold_length=30" if not warm_start else "backtest.fold_length=20",
        f"backtest.warm_start={str(warm_start).lower()}", "backtest.warm_epochs=1",
    )  # fmt: skip
    assert_past_unchanged(cfg, tmp_path, candles, future, p, "y_pred")


def assert_past_unchanged(cfg, tmp_path, candles, future, p: int, field: str) -> None:
    """Backtest ``candles`` and ``future`` (the same past, another future from row ``p``): every
    job's ``field`` before the cut is equal bit for bit, and differs after it."""
    from cryptocast.evaluate.backtest import run_backtest

    runs = []
    for name, c in (("a", candles), ("b", future)):
        d = tmp_path / name
        d.mkdir()
        runs.append(run_backtest(cfg, store(d, c)))
    cut = candles["timestamp"].iloc[p]
    for a, b in zip(*runs, strict=True):
        assert np.array_equal(a.timestamps, b.timestamps)
        before = pd.DatetimeIndex(a.timestamps) < cut
        assert before.sum() > 30 and (~before).sum() > 10
        fa, fb = getattr(a, field), getattr(b, field)
        assert np.array_equal(fa[before], fb[before]), a.model
        assert not np.allclose(fa[~before], fb[~before]), a.model


# ---- parallel == serial -----------------------------------------------------------------------
def test_two_workers_give_the_same_metrics_as_one(data_dir):
    from cryptocast.evaluate.backtest import run_backtest, summarise

    store(data_dir, make_ohlcv(220, "1d", start="2021-01-01", seed=4))
    out = {}
    for workers in (1, 2):
        cfg = config(
            "backtest.models=[lstm, gru]", "backtest.test_start=2021-06-01",
            "backtest.fold_length=40", f"backtest.workers={workers}",
        )  # fmt: skip
        results = run_backtest(cfg, data_dir)
        out[workers] = (results, summarise(cfg, results)[0]["results"])
    (r1, s1), (r2, s2) = out[1], out[2]
    assert [r.model for r in r1] == [r.model for r in r2] == ["lstm", "gru"]
    for a, b in zip(r1, r2, strict=True):
        assert np.array_equal(a.y_pred, b.y_pred), a.model
        assert a.fold_info == b.fold_info
    keys = ["n", "rmse", "mae", "mape", "directional_accuracy", "skill_rmse", "sharpe"]
    assert [[rec[k] for k in keys] for rec in s1] == [[rec[k] for k in keys] for rec in s2]


def test_a_job_failing_in_a_worker_is_reported_with_its_own_error(data_dir, cheat_model):
    """A worker's CryptocastError reaches the caller with its own one-line message, and the jobs
    that finished are kept (``PartialFailure.done``). ``cheat`` is registered only in this
    process, so building it fails in the spawned worker."""
    from cryptocast.errors import PartialFailure
    from cryptocast.evaluate.backtest import run_backtest

    store(data_dir, make_ohlcv(220, "1d", start="2021-01-01", seed=4))
    cfg = config(
        "backtest.models=[cheat, persistence, drift]", "backtest.test_start=2021-06-01",
        "backtest.fold_length=40", "backtest.workers=2",
    )  # fmt: skip
    with pytest.raises(PartialFailure, match="unknown model 'cheat'") as info:
        run_backtest(cfg, data_dir)
    assert [r.model for r in info.value.done] == ["persistence", "drift"]
    assert [(f.model, "unknown model 'cheat'" in f.error) for f in info.value.failed] == [
        ("cheat", True)
    ]
