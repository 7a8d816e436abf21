"""The study's database, its sampler, and which finished trials a run may count as its own.

- :func:`open_study`: the Optuna study in SQLite (default) or any SQLAlchemy URL; a database that
  cannot be read is a one-line :class:`~cryptocast.errors.DataError` naming it, and the file is
  left as it was.
- :class:`TrialSeededSampler`: TPE whose random stream is seeded by ``(tune.seed, trial
  number)``. A resumed study continues the sequence instead of repeating its first trials (a
  sampler seeded by ``tune.seed`` alone replays the same draws on every resume), and two
  processes on one study draw different values for their different trial numbers; the same
  study built again trial by trial still gives the same trials.
- Runs: every ``cryptocast tune`` process is a *run* recorded in the study (``run:<id>`` user
  attribute, its trials tagged ``run=<id>``). ``--trials N`` means "the study holds N finished
  trials": a run counts as done the finished trials of runs that have ended (or of no recorded
  run), never those of a run still going, so two concurrent ``tune -n 8`` on one study each run
  their 8 trials, while a rerun after Ctrl-C runs only what is missing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from cryptocast.config.schema import Config
from cryptocast.errors import DataError, brief

RUN_PREFIX = "run:"
SQLITE_TIMEOUT_S = 60  # concurrent processes on one SQLite study wait for its lock this long


def _where(url: str) -> str:
    """The database a message names: the file of a SQLite URL, else the URL without password."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001  (an unparsable URL is named as given)
        return url


def open_study(optuna: Any, cfg: Config, name: str, url: str) -> Any:
    """Create or load the study ``name`` in the database at ``url``.

    Raises:
        DataError: the database cannot be read (corrupt file, not a database, ...).
    """
    import sqlalchemy.exc

    tu = cfg.tune
    _as_optuna_sampler()
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
        if tu.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    try:
        storage: Any = url
        if url.startswith("sqlite:"):
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
            )
        return optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=TrialSeededSampler(tu.seed),
            pruner=pruner,
            direction="minimize",
            load_if_exists=True,
        )
    except sqlalchemy.exc.SQLAlchemyError as err:
        cause = brief(getattr(err, "orig", None) or err)
        raise DataError(
            f"the Optuna study database {_where(url)} cannot be read ({cause}); move it aside "
            "(or delete it) and rerun to start the study afresh, or set --study-name for a new "
            "study"
        ) from None


def trial_seed(seed: int, number: int) -> int:
    """A sampler seed for trial ``number`` of a study seeded ``seed`` (distinct per trial)."""
    return int(np.random.SeedSequence([seed & 0xFFFFFFFF, number]).generate_state(1)[0])


def _tpe(seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


class TrialSeededSampler:
    """Optuna's TPE, reseeded per trial from ``(seed, trial.number)`` (see the module doc).

    A sampler may keep no per-process sequence: trial numbers come from the database, so the
    draws depend only on the seed, the trial number and the finished trials TPE learns from.
    """

    def __init__(self, seed: int):
        self.seed = seed
        self._by_trial: dict[int, Any] = {}

    def _for(self, trial: Any) -> Any:
        if trial.number not in self._by_trial:
            self._by_trial[trial.number] = _tpe(trial_seed(self.seed, trial.number))
        return self._by_trial[trial.number]

    def infer_relative_search_space(self, study: Any, trial: Any) -> dict:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: dict) -> dict:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, name: str, distribution: Any) -> Any:
        return self._for(trial).sample_independent(study, trial, name, distribution)

    def before_trial(self, study: Any, trial: Any) -> None:
        self._for(trial).before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        sampler = self._for(trial)
        self._by_trial.pop(trial.number, None)
        sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._by_trial.clear()


def _as_optuna_sampler() -> None:
    """Register :class:`TrialSeededSampler` as an Optuna ``BaseSampler`` (virtual subclass)."""
    import optuna

    optuna.samplers.BaseSampler.register(TrialSeededSampler)


# ---- runs ---------------------------------------------------------------------------------------
def begin_run(study: Any, trials: int) -> str:
    """Record a new run in the study -> its id (tag each of its trials with ``run=<id>``)."""
    run_id = uuid.uuid4().hex[:12]
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    study.set_user_attr(RUN_PREFIX + run_id, {"trials": trials, "started": now, "ended": None})
    return run_id


def end_run(study: Any, run_id: str) -> None:
    """Mark a run ended (finished, out of time, interrupted): later runs count its trials."""
    key = RUN_PREFIX + run_id
    info = dict(study.user_attrs.get(key) or {})
    info["ended"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    study.set_user_attr(key, info)


def credited_trials(study: Any) -> int:
    """Finished trials a new run counts towards ``tune.trials``: those of ended runs, or of none.

    The trials of a run still going are its own: a concurrent process does not count them.
    """
    ended = {
        k.removeprefix(RUN_PREFIX)
        for k, v in study.user_attrs.items()
        if k.startswith(RUN_PREFIX) and isinstance(v, dict) and v.get("ended")
    }
    done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
    return sum(1 for t in done if t.user_attrs.get("run") is None or t.user_attrs["run"] in ended)


def sqlite_url(study_dir: Path) -> str:
    return f"sqlite:///{(Path(study_dir) / 'study.db').resolve()}"
