"""The Model Confidence Set with two models whose losses are identical up to rounding (``vol_select`` picking
``har`` in every fold forecasts exactly as ``har``): both get the same answer, no crash."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryptocast.evaluate.confidence import model_confidence_set


def test_mcs_with_identical_columns_gives_both_the_same_answer():
    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 0.25, size=300)
    losses = pd.DataFrame(
        {
            "har": base,
            "vol_select": base * (1 + 1e-15),  # the same forecasts, refit: equal up to rounding
            "worse": base + 0.5 + rng.normal(0, 0.05, size=300),
            "other": base * rng.uniform(0.9, 1.1, size=300),
        }
    )
    mcs = model_confidence_set(losses, reps=200)
    assert list(mcs.index) == ["har", "vol_select", "worse", "other"]
    assert mcs.loc["har", "pvalue"] == mcs.loc["vol_select", "pvalue"]
    assert bool(mcs.loc["har", "included"]) and bool(mcs.loc["vol_select", "included"])
    assert not bool(mcs.loc["worse", "included"])
