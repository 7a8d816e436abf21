"""The Model Confidence Set and Hansen's SPA test (evaluate/confidence.py) on synthetic losses."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from cryptocast.evaluate.confidence import model_confidence_set, spa_test


def losses(means: dict[str, float], n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Independent N(mean, 0.3^2) losses per model (time x model)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({m: rng.normal(mu, 0.3, n) for m, mu in means.items()})


def test_mcs_holds_only_the_clearly_best_model():
    out = model_confidence_set(losses({"good": 1.0, "bad": 1.4, "worse": 1.5}), size=0.10)
    assert list(out.index) == ["good", "bad", "worse"]  # the columns' order
    assert out["included"].tolist() == [True, False, False]
    assert out.loc["good", "pvalue"] == 1.0 and (out.loc[["bad", "worse"], "pvalue"] < 0.10).all()


def test_mcs_keeps_models_it_cannot_tell_apart_and_is_reproducible():
    frame = losses({"a": 1.0, "b": 1.0, "far": 2.0}, seed=1)
    out = model_confidence_set(frame, size=0.10, seed=3)
    assert out["included"].tolist() == [True, True, False]
    pd.testing.assert_frame_equal(out, model_confidence_set(frame, size=0.10, seed=3))


def test_mcs_drops_incomplete_rows_and_is_undecided_on_too_few():
    frame = losses({"good": 1.0, "bad": 1.5})
    frame.iloc[:5, 1] = np.nan  # rows any model misses are left out, not an error
    assert model_confidence_set(frame)["included"].tolist() == [True, False]
    few = model_confidence_set(frame.iloc[:12])  # 7 complete rows
    assert few["included"].all() and few["pvalue"].isna().all()


def test_spa_rejects_a_beaten_benchmark_and_keeps_the_best_one():
    frame = losses({"bench": 1.3, "better": 1.0, "same": 1.3})
    assert spa_test(frame, "bench")["consistent"] < 0.05
    frame = losses({"bench": 1.0, "worse": 1.3, "same": 1.0}, seed=2)
    assert spa_test(frame, "bench")["consistent"] > 0.10
    assert all(math.isnan(p) for p in spa_test(frame[["bench"]], "bench").values())
