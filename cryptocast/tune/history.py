"""``history.png`` beside a study: every trial's score and the best so far."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_history(trials: list[Any], path: Path, metric: str) -> Path:
    """Optimisation history: each trial's score (pruned: its last running score) and best so far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    fig, ax = plt.subplots(figsize=(7, 4))
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
    ax.scatter([t.number for t in done], [t.value for t in done], s=18, label="complete")
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.scatter([t.number for t in pruned], last, s=18, marker="x", label="pruned (last fold)")
    order = sorted(done, key=lambda t: t.number)
    best = np.minimum.accumulate([t.value for t in order]) if order else []
    ax.step([t.number for t in order], best, where="post", color="k", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{metric} on the tuning period (lower is better)")
    ax.set_title("cryptocast tune: optimisation history")
    ax.legend(loc="upper right")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
