"""The feature table each trial walks over: one per distinct feature config.

A searched ``features.*`` key such as ``calendar`` or ``log_returns`` changes the table itself,
so a trial must not reuse the table of the base config (it would score the base features under
the sampled name, and ``best.yaml`` would recommend a value no trial tested). The driver keys
tables by the features cache's own signature (:func:`cryptocast.features.table.features_signature`:
exactly the keys that change the table, not ``lookback``/``scaler``/``gap_tolerance``, which only
shape windows), builds each on first use, cuts it at ``tune.end`` like the base table and ships it
once through the executor (Ray's object store for ``--executor ray``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptocast.config.schema import Config


def table_key(cfg: Config) -> str:
    """The part of a config that decides its feature table, as a string key."""
    from cryptocast.features.table import features_signature

    sig = features_signature(cfg.features, cfg.data.timeframe)
    return json.dumps(sig, sort_keys=True, separators=(",", ":"), default=str)


class TrialTables:
    """Cut feature tables (executor objects) by feature config; the base one is built already.

    Args:
        cfg: the study's base config.
        data_dir: the data folder the tables are built from (on the driver only).
        period: the base config's :class:`cryptocast.tune.trial.TuningPeriod`.
        executor: where the tables go (:meth:`put`).
    """

    def __init__(self, cfg: Config, data_dir: Path, period: Any, executor: Any):
        self.data_dir = Path(data_dir)
        self.executor = executor
        self._tables: dict[str, Any] = {table_key(cfg): executor.put(period.table)}

    def __len__(self) -> int:
        return len(self._tables)

    def get(self, cfg: Config) -> Any:
        """The cut table for a trial's config, built the first time its feature config is seen.

        Raises:
            ConfigError, DataError: the table cannot be built for these values (the trial fails).
        """
        from cryptocast.training.runs import load_feature_table
        from cryptocast.tune.trial import tuning_table

        key = table_key(cfg)
        if key not in self._tables:
            period = tuning_table(cfg, load_feature_table(cfg, self.data_dir))
            self._tables[key] = self.executor.put(period.table)
        return self._tables[key]
