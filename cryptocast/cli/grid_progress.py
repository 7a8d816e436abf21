"""Progress and ETA over a whole backtest grid (jobs x folds), from ``run_backtest``'s events.

``GridProgress`` is the bookkeeping (pure, unit-tested): folds done of the plan, seconds per fold
(the fold's own training + forecasting time, as measured in its worker) and an ETA from the wall
time so far, which accounts for workers running folds in parallel. The CLI shows it as rich bars
on a terminal and as one plain line per fold when piped (cron mail, CI logs, ``| tee``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class GridProgress:
    """Counts folds and jobs of a backtest grid and estimates the time left."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.t0 = clock()
        self.jobs = self.folds = self.jobs_done = self.folds_done = 0
        self.fold_seconds = 0.0
        self.last: dict[str, Any] = {}

    def update(self, ev: dict[str, Any]) -> str | None:
        """Take one event; returns its kind (``plan``, ``fold``, ``job``) or None if unknown."""
        kind = ev.get("event")
        if kind == "plan":
            self.jobs, self.folds, self.t0 = int(ev["jobs"]), int(ev["folds"]), self.clock()
            return "plan"
        if kind == "job":
            self.jobs_done += 1
            return "job"
        if "fold" in ev:
            self.folds_done += 1
            self.fold_seconds += float(ev.get("seconds", 0.0))
            self.last = ev
            return "fold"
        return None

    @property
    def elapsed(self) -> float:
        return self.clock() - self.t0

    @property
    def seconds_per_fold(self) -> float | None:
        """Mean training + forecasting seconds of the folds done (per worker)."""
        return self.fold_seconds / self.folds_done if self.folds_done else None

    @property
    def eta(self) -> float | None:
        """Seconds left: wall time per fold so far x folds left (None before the first fold)."""
        if not self.folds_done:
            return None
        return self.elapsed / self.folds_done * max(0, self.folds - self.folds_done)

    def line(self) -> str:
        """One plain line for the last fold, e.g. for a log file."""
        ev = self.last
        what = f"{ev.get('symbol', '')} {ev.get('timeframe', '')} {ev.get('model', '')}".strip()
        warm = " warm" if ev.get("warm_start") and ev.get("retrained") else ""
        fit = "refit" if ev.get("retrained") else "reuse"
        return (
            f"fold {self.folds_done}/{self.folds} ({what} fold {ev.get('fold', '?')}, {fit}{warm}) "
            f"{float(ev.get('seconds', 0.0)):.1f} s; mean {self.seconds_per_fold or 0:.1f} s/fold; "
            f"jobs {self.jobs_done}/{self.jobs}; elapsed {_hms(self.elapsed)}, eta {_hms(self.eta)}"
        )


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )
