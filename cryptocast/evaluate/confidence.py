"""Comparing many forecasters at once: the Model Confidence Set and Hansen's SPA test.

Both take a losses DataFrame, one row per forecast origin (time) and one column per model, of any
loss where lower is better (CRPS, pinball, QLIKE, ...), and both run the stationary block
bootstrap of ``arch.bootstrap`` (Sheppard) with a fixed seed, so a report is reproducible. Rows
where any model's loss is missing are dropped: every model is judged on the same origins.

- ``model_confidence_set``: Hansen, Lunde & Nason (2011), "The Model Confidence Set",
  Econometrica 79(2). The set of models that contains the best one with probability
  ``1 - size``; a model outside it is significantly worse than some member. ``size=0.10`` is the
  90% MCS. Range statistic (``method="R"``).
- ``spa_test``: Hansen (2005), "A Test for Superior Predictive Ability", JBES 23(4). H0: no model
  has a lower expected loss than ``benchmark``; small p-values say at least one beats it.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: fewest complete origins a test runs on; below it the answer is "undecided" (NaN p-values)
MIN_ORIGINS = 10


def _complete(losses: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(losses).astype("float64")
    return frame[np.isfinite(frame.to_numpy()).all(axis=1)]


def model_confidence_set(
    losses: pd.DataFrame,
    size: float = 0.10,
    reps: int = 1000,
    block_size: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """The Model Confidence Set of the columns of ``losses`` (time x model).

    Args:
        losses: per-origin losses, lower is better; columns are model names.
        size: the test size; the set holds the best model with probability ``1 - size``.
        reps: bootstrap replications.
        block_size: mean block length of the stationary bootstrap (default: sqrt of the rows).
        seed: the bootstrap's seed.

    Returns:
        One row per model (the columns' order): ``pvalue`` (the MCS p-value; the model is in the
        set when it exceeds ``size``) and ``included`` (bool). With one model it is the set; with
        fewer than ``MIN_ORIGINS`` complete rows every model is kept with a NaN p-value.
    """
    from arch.bootstrap import MCS

    models = list(losses.columns)
    clean = _complete(losses)
    if len(models) < 2 or len(clean) < MIN_ORIGINS:
        pvalue = 1.0 if len(models) == 1 and len(clean) else math.nan
        return pd.DataFrame({"pvalue": pvalue, "included": True}, index=pd.Index(models))

    # Models with the same losses up to rounding (a selection that picked the same member every
    # fold) are one model to the test (arch's elimination breaks on tied statistics): test the
    # first of each group, give the others its answer.
    def same(a: str, b: str) -> bool:
        return bool(np.allclose(clean[a], clean[b], rtol=1e-9, atol=1e-12))

    first = {m: next(o for o in models if same(o, m)) for m in models}
    distinct = list(dict.fromkeys(first.values()))
    if len(distinct) < 2:
        return pd.DataFrame({"pvalue": 1.0, "included": True}, index=pd.Index(models))
    mcs = MCS(clean[distinct], size=size, reps=reps, block_size=block_size, method="R", seed=seed)
    mcs.compute()
    pvalues = mcs.pvalues["Pvalue"].reindex([first[m] for m in models]).astype("float64")
    kept = set(mcs.included)
    included = pd.Series([first[m] in kept for m in models], index=models)
    return pd.DataFrame({"pvalue": pvalues.to_numpy(), "included": included})


def spa_test(
    losses: pd.DataFrame,
    benchmark: str,
    reps: int = 1000,
    block_size: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Hansen's SPA test of every other column of ``losses`` against the column ``benchmark``.

    Returns:
        ``{"lower", "consistent", "upper"}`` p-values of H0 "no model beats the benchmark"
        (``consistent`` is Hansen's recommended one), NaN when there is no other model or fewer
        than ``MIN_ORIGINS`` complete rows.
    """
    from arch.bootstrap import SPA

    if benchmark not in losses.columns:
        raise KeyError(f"benchmark {benchmark!r} is not a column of the losses")
    clean = _complete(losses)
    others = clean.drop(columns=benchmark)
    if others.shape[1] == 0 or len(clean) < MIN_ORIGINS:
        return dict.fromkeys(("lower", "consistent", "upper"), math.nan)
    spa = SPA(clean[benchmark], others, block_size=block_size, reps=reps, seed=seed)
    spa.compute()
    return {k: float(spa.pvalues[k]) for k in ("lower", "consistent", "upper")}
