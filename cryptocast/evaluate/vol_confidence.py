"""Which volatility models of a series are indistinguishable from the best, and which beat ``har``.

On the per-origin QLIKE losses at the last step (the losses the DM tests use), over every model
of one series, with the bootstrap tests of ``evaluate/confidence.py`` (``arch.bootstrap``, seed 0,
origins where any model's loss is missing dropped, so every model is judged on the same days):

- ``mcs_qlike_90`` (bool) and ``mcs_pvalue_qlike``: in the 90% Model Confidence Set (Hansen,
  Lunde & Nason 2011), the set that holds the best model with probability 0.9; a model outside
  it is significantly worse than some model in it.
- ``spa_p_vs_har``: Hansen's (2005) SPA test of the model against ``har``, H0 "the model's
  expected QLIKE is not lower than har's", the consistent p-value; small: it beats ``har``
  significantly. ``har``'s own record holds ``spa_p_any_vs_har``, the SPA p-value of all the
  other models at once (small: at least one of them beats ``har``).

With one model, or fewer than ``confidence.MIN_ORIGINS`` common origins, the fields are absent
or NaN (undecided), never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

MCS_SIZE = 0.10
BENCHMARK = "har"

NOTE = (
    "Model Confidence Set at 90% (Hansen, Lunde & Nason 2011) and Hansen's SPA test against har "
    "on the per-origin QLIKE losses at the last step (arch.bootstrap, stationary block bootstrap, "
    "seed 0; evaluate/vol_confidence.py). A model in the set is not significantly worse than the "
    "best; SPA p < 0.05: it beats har significantly."
)


def add_vol_confidence(records: Mapping[str, dict], losses: Mapping[str, np.ndarray]) -> None:
    """MCS and SPA fields (module docstring) into ``records`` (model -> record, in place) from
    each model's per-origin QLIKE ``losses`` (model -> (n,), the same origins for all)."""
    from cryptocast.evaluate.confidence import model_confidence_set, spa_test

    frame = pd.DataFrame({m: np.asarray(v, dtype=np.float64) for m, v in losses.items()})
    if frame.shape[1] >= 2:
        mcs = model_confidence_set(frame, size=MCS_SIZE)
        for model, row in mcs.iterrows():
            records[model]["mcs_qlike_90"] = bool(row["included"])
            records[model]["mcs_pvalue_qlike"] = float(row["pvalue"])
    if BENCHMARK not in frame.columns:
        return
    for model in frame.columns:
        if model == BENCHMARK:
            p = spa_test(frame, BENCHMARK)["consistent"] if frame.shape[1] >= 2 else math.nan
            records[model]["spa_p_any_vs_har"] = p
            continue
        records[model]["spa_p_vs_har"] = spa_test(frame[[BENCHMARK, model]], BENCHMARK)[
            "consistent"
        ]


def _p(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.3g}"


def confidence_lines(records: Sequence[Mapping]) -> list[str]:
    """report.md's lines for one series: which models are in the 90% MCS, and the table of MCS
    membership (p-value) and SPA p vs har; none when the series has no MCS."""
    recs = [r for r in records if "mcs_qlike_90" in r]
    if not recs:
        return []
    inside = [r["model"] for r in recs if r["mcs_qlike_90"]]
    lines = [
        NOTE,
        "",
        f"In the 90% Model Confidence Set on QLIKE: **{', '.join(inside)}** "
        f"({len(inside)} of {len(recs)} models).",
        "",
        "| model | MCS 90% (p) | SPA p vs har |",
        "|---|---:|---:|",
    ]
    for r in recs:
        mcs = f"{'yes' if r['mcs_qlike_90'] else 'no'} ({_p(r.get('mcs_pvalue_qlike'))})"
        spa = r.get("spa_p_vs_har", r.get("spa_p_any_vs_har"))
        spa_cell = _p(spa) if "spa_p_vs_har" in r else f"{_p(spa)} (any other)"
        if spa is None:
            spa_cell = "–"
        lines.append(f"| {r['model']} | {mcs} | {spa_cell} |")
    return [*lines, ""]
