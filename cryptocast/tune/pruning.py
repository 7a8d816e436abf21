"""How a trial learns whether to stop: the median rule against the live study.

- In this process (one local worker) the trial reports to the study's own ``MedianPruner``
  after every fold (:class:`LivePruning`).
- Elsewhere (a worker process, a Ray task on another machine) a trial cannot reach the study,
  so the driver publishes the rule's thresholds on a *board* after every finished trial: the
  median running score of the finished trials at each fold (:func:`medians`). The trial reads
  the board after every fold (:class:`BoardPruning`), so a trial started before any other
  finished is still pruned once enough have. The board is a Ray actor with ``--executor ray``
  (any node can reach it) and a manager dict for local worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

STARTUP_TRIALS = 3  # the MedianPruner's n_startup_trials: no pruning before this many finished


class LivePruning:
    """In-process: the study's own pruner decides after every fold."""

    def __init__(self, trial: Any):
        self.trial = trial
        self.reported = True

    def __call__(self, step: int, value: float) -> bool:
        self.trial.report(value, step)
        return self.trial.should_prune()


@dataclass
class SnapshotPruning:
    """The median rule against fixed thresholds ``{fold: median}``."""

    medians: dict[int, float]
    reported: bool = False

    def __call__(self, step: int, value: float) -> bool:
        m = self.medians.get(step)
        return m is not None and value > m


@dataclass
class BoardPruning:
    """The median rule against the thresholds the driver last published on ``board``."""

    board: Any  # has .get() -> {fold: median}
    reported: bool = False

    def __call__(self, step: int, value: float) -> bool:
        m = self.board.get().get(step)
        return m is not None and value > m


def medians(study: Any, startup: int = STARTUP_TRIALS) -> dict[int, float]:
    """``{fold: median running score of the complete trials}``; empty before ``startup`` of them."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < startup:
        return {}
    steps: dict[int, list[float]] = {}
    for t in done:
        for step, v in t.intermediate_values.items():
            steps.setdefault(step, []).append(v)
    return {s: float(np.nanmedian(v)) for s, v in steps.items()}


class _Medians:
    """The Ray actor behind :class:`RayBoard`."""

    def __init__(self) -> None:
        self.values: dict[int, float] = {}

    def set(self, values: dict[int, float]) -> None:
        self.values = dict(values)

    def get(self) -> dict[int, float]:
        return self.values


@dataclass
class RayBoard:
    """Thresholds held by a Ray actor; the handle travels with each trial to any node."""

    actor: Any

    @classmethod
    def create(cls) -> RayBoard:
        import ray

        return cls(ray.remote(num_cpus=0)(_Medians).remote())

    def publish(self, values: dict[int, float]) -> None:
        import ray

        ray.get(self.actor.set.remote(values))

    def get(self) -> dict[int, float]:
        import ray

        return ray.get(self.actor.get.remote())

    def close(self) -> None:
        import ray

        ray.kill(self.actor)


class ManagerBoard:
    """Thresholds in a ``multiprocessing`` manager dict, for local worker processes."""

    def __init__(self) -> None:
        import multiprocessing as mp

        self._manager = mp.get_context("spawn").Manager()
        self.values = self._manager.dict()

    def reader(self) -> _DictReader:
        return _DictReader(self.values)

    def publish(self, values: dict[int, float]) -> None:
        self.values["medians"] = dict(values)  # one assignment: a reader sees old or new

    def close(self) -> None:
        self._manager.shutdown()


@dataclass
class _DictReader:
    values: Any  # a manager dict proxy (picklable into the spawned workers)

    def get(self) -> dict[int, float]:
        return self.values.get("medians", {})


def make_board(executor: str) -> Any:
    """A board for trials running outside this process on ``executor``."""
    return RayBoard.create() if executor == "ray" else ManagerBoard()


def reader(board: Any) -> Any:
    """What a trial carries to read ``board``."""
    return board.reader() if isinstance(board, ManagerBoard) else board
