"""Issue 22 point 1: log-RV forecasts map back to variance without bias.

A model of log RV forecasts ``E[log RV]``; ``exp`` of it is the geometric mean, biased low for the
expected variance QLIKE scores. The realized_vol target multiplies the forecast variance by a
factor estimated from the residuals of the rows the model was fit on (the lognormal exp(2 m + 2 s^2)
by default, Duan's smearing as the alternative), never from test rows; models that forecast the
variance itself are left alone.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from tests.test_volatility import config, make_hourly, store_both

pytestmark = pytest.mark.usefixtures("restore_torch_threads")


def _log_vol_ar1(n: int, phi: float, s: float, seed: int) -> np.ndarray:
    """log daily vol: a Gaussian AR(1) around log 0.03, so the variance is lognormal."""
    rng = np.random.default_rng(seed)
    mu = math.log(0.03)
    e = rng.normal(0.0, s, n)
    y = np.empty(n)
    y[0] = mu
    for t in range(1, n):
        y[t] = mu + phi * (y[t - 1] - mu) + e[t]
    return y


@pytest.mark.parametrize("estimator", ["smearing_factor", "normal_factor"])
def test_the_correction_is_unbiased_on_a_lognormal_variance_process(estimator):
    import cryptocast.features.targets as targets
    from cryptocast.evaluate.volatility import vol_metrics
    from cryptocast.models.volatility import har_ols

    s, phi, n = 0.35, 0.5, 40_000
    y = _log_vol_ar1(n + 1, phi, s, seed=11)
    Z, label = y[:-1, None], y[1:, None]  # (n, 1), (n, 1): regress tomorrow on today
    fit = slice(0, n // 2)
    test = slice(n // 2, n)
    coef = har_ols(Z[fit], label[fit])
    fitted = coef[0] + Z @ coef[1:]  # (n, 1) forecasts of log vol
    factor = getattr(targets, estimator)(label[fit] - fitted[fit])  # in-sample residuals only
    # the residual is N(0, s^2) in log vol, so E[RV^2] = exp(2 log_vol_hat) * exp(2 s^2)
    expected = math.exp(2 * s * s)
    assert factor.shape == (1,) and factor[0] == pytest.approx(expected, rel=0.03)

    target = targets.get_target("realized_vol")
    close = np.ones(n - n // 2)
    realised = target.realised(pd.DataFrame({"target_1": label[:, 0]}), np.arange(n)[test], 1)
    plain = target.to_output(fitted[test], close)
    corrected = target.to_output(fitted[test], close, factor)
    # bias ratio = mean realised variance / mean forecast variance; sampling error ~1 % here
    uncorrected_ratio = vol_metrics(realised, plain)["bias_ratio"]
    assert uncorrected_ratio == pytest.approx(expected, rel=0.04)  # biased low by exp(2 s^2)
    assert vol_metrics(realised, corrected)["bias_ratio"] == pytest.approx(1.0, abs=0.04)


def _scramble_after(hourly: pd.DataFrame, cut: pd.Timestamp, seed: int) -> pd.DataFrame:
    """Every candle from ``cut`` on rescaled by a random factor: other returns, other RV."""
    out = hourly.copy()
    late = (out["timestamp"] >= cut).to_numpy()
    k = np.exp(np.random.default_rng(seed).normal(0.0, 0.05, late.sum()))
    for c in ("open", "high", "low", "close"):
        out.loc[late, c] = out.loc[late, c].to_numpy() * k
    return out


def _fold_factors(cfg, data_dir) -> tuple[list, list[np.ndarray]]:
    """Each fold's first origin (row, time) and har's variance factor, built as run_job does."""
    from cryptocast.config.schema import ModelConfig
    from cryptocast.evaluate.walkforward import job_config, job_folds
    from cryptocast.features.windows import prepare
    from cryptocast.models.registry import build_model
    from cryptocast.training.inference import Predictor
    from cryptocast.training.loop import fit
    from cryptocast.training.runs import load_feature_table

    c = job_config(cfg, cfg.backtest.symbols[0], "1d", "har")
    df = load_feature_table(c, data_dir)
    f = c.features
    origins, factors = [], []
    for fold in job_folds(df, c):
        data = prepare(df, f, {"train": fold.train, "val": fold.val}, embargo=False)
        model = build_model(ModelConfig(name="har"), len(data.feature_names), f.horizon, f.lookback)
        fit(model, data, c.train)
        origins.append((int(fold.test[0]), df["timestamp"].iloc[fold.test[0]]))
        factors.append(Predictor.from_prepared(model, data).variance_factor)
    return origins, factors


def test_the_factor_reads_no_row_at_or_after_the_fold_origin(tmp_path):
    cfg = config(
        "backtest.models=[har]", "backtest.test_start=2021-06-01", "backtest.fold_length=30"
    )
    hourly = make_hourly(240, seed=12)
    origins, factors = _fold_factors(cfg, store_both(tmp_path / "a", hourly))
    assert len(origins) >= 2 and all(
        f is not None and f.shape == (cfg.features.horizon,) for f in factors
    )
    # scramble the test period: every hour after the close of the first origin's day
    first_day = origins[0][1]
    scrambled = _scramble_after(hourly, first_day + pd.Timedelta("1D"), seed=3)
    origins2, factors2 = _fold_factors(cfg, store_both(tmp_path / "b", scrambled))
    assert origins2 == origins
    np.testing.assert_array_equal(factors2[0], factors[0])  # fold 0 read nothing scrambled
    # the control: fold 1 fits on rows of the scrambled period, so its factor does change
    assert not np.allclose(factors2[1], factors[1], rtol=1e-9, atol=0)


@pytest.fixture(scope="module")
def vol_prepared():
    from cryptocast.config.schema import FeaturesConfig
    from cryptocast.features.windows import prepare
    from tests.test_volatility import _table

    df = _table(make_hourly(260, seed=4))
    f = FeaturesConfig(target="realized_vol", indicators=[], horizon=2, lookback=10)
    n = len(df)
    return prepare(df, f, {"train": (0, int(n * 0.7)), "val": (int(n * 0.7), n)}, True)


@pytest.mark.parametrize(
    "name,corrected",
    [("har", True), ("drift", True), ("gru", True), ("vol_persistence", False),
     ("ewma_vol", False), ("garch", False)],
)  # fmt: skip
def test_log_models_are_corrected_and_variance_models_are_not(name, corrected, vol_prepared):
    from cryptocast.config.schema import ModelConfig, TrainConfig
    from cryptocast.features.targets import ANNUALISE
    from cryptocast.models.registry import build_model
    from cryptocast.training.inference import Predictor
    from cryptocast.training.loop import fit, predict_scaled

    data = vol_prepared
    cfg = ModelConfig(name=name, hidden_size=8, num_layers=1)
    model = build_model(cfg, len(data.feature_names), 2, 10)
    fit(model, data, TrainConfig(device="cpu", epochs=2, num_threads=1))
    p = Predictor.from_prepared(model, data)
    ends = data.ends["val"]
    raw = data.y_scaler.inverse_transform(predict_scaled(model, data.X, ends, 10))
    plain = np.exp(raw) * ANNUALISE
    vol = p.predict_rows(data.X, data.close, ends)
    if not corrected:  # a variance forecast already: mapped back as it is
        assert p.variance_factor is None
        np.testing.assert_allclose(vol, plain, rtol=1e-12)
        return
    rows = np.concatenate([data.ends["train"], data.ends["val"]])
    y = data.y_scaler.inverse_transform(data.Y[rows].astype("float64"))
    fitted = data.y_scaler.inverse_transform(predict_scaled(model, data.X, rows, 10))
    e = y - fitted  # (n, H) log-vol residuals of the fit rows
    by_hand = np.exp(2.0 * e.mean(axis=0) + 2.0 * e.var(axis=0, ddof=1))  # lognormal E[exp(2e)]
    np.testing.assert_allclose(p.variance_factor, by_hand, rtol=1e-9)
    np.testing.assert_allclose(vol, plain * np.sqrt(by_hand), rtol=1e-9)


def test_har_bias_ratio_is_in_summary_json_and_report(data_dir, tmp_path):
    from cryptocast.evaluate.backtest import run_backtest, summarise
    from cryptocast.evaluate.report import write_report

    store_both(data_dir, make_hourly(240, seed=6))
    cfg = config(
        "backtest.models=[har, ewma_vol]", "backtest.test_start=2021-06-01",
        "backtest.fold_length=45",
    )  # fmt: skip
    summary, forecasts, equity = summarise(cfg, run_backtest(cfg, data_dir))
    rep = write_report(tmp_path / "rep", forecasts, summary, equity)
    saved = json.loads((rep / "summary.json").read_text())
    recs = {r["model"]: r for r in saved["results"]}
    har = forecasts[forecasts["model"] == "har"]
    expect = np.mean(har["y_true"] ** 2) / np.mean(har["y_pred"] ** 2)
    assert recs["har"]["bias_ratio"] == pytest.approx(expect, rel=1e-9)
    assert 0.5 < recs["har"]["bias_ratio"] < 2.0 and "bias_ratio" in recs["ewma_vol"]
    text = (rep / "report.md").read_text()
    head = next(line for line in text.splitlines() if "| qlike |" in line)
    cols = [c.strip() for c in head.strip("|").split("|")]
    assert cols.index("bias_ratio") == cols.index("mz_r2") + 1  # beside Mincer-Zarnowitz


def test_a_har_checkpoint_carries_its_factor(data_dir, tmp_path):
    from cryptocast.evaluate.holdout import train_run
    from cryptocast.training.inference import Predictor
    from cryptocast.training.runs import CHECKPOINT

    store_both(data_dir, make_hourly(140, seed=7))
    run = train_run(config("model.name=har", f"output.runs_dir={tmp_path}"), data_dir).run_dir
    p = Predictor.from_checkpoint(run / CHECKPOINT)
    assert p.variance_factor is not None and p.variance_factor.shape == (1,)
    assert np.all(p.variance_factor > 1.0)  # exp of a noisy log residual: above 1 on average
