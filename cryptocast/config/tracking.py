"""The ``tracking`` section: MLflow experiment tracking of train, backtest and tune runs.

Off by default. It observes runs and never changes one, so it is left out of both config hashes
(:data:`cryptocast.config.schema.NOT_HASHED`): turning it on orphans no trained run or report.
The logging itself lives at the top of the package (:mod:`cryptocast.api.tracking`).
"""

from __future__ import annotations

from pydantic import Field, field_validator

from cryptocast.config.fields import _Section


class TrackingConfig(_Section):
    enabled: bool = False
    # a folder (a local store: mlruns/mlflow.db + mlruns/artifacts/) or any MLflow tracking URI
    # (http://host:5000, sqlite:///x.db, databricks, file:///abs/mlruns ...)
    uri: str = Field("mlruns", min_length=1)
    experiment: str = Field("cryptocast", min_length=1)  # MLflow experiment the runs go to
    # log the report, plots, config.yaml, best.yaml and the checkpoint as artifacts
    artifacts: bool = True
    tags: dict[str, str] = Field(default_factory=dict)  # extra tags on every run

    @field_validator("experiment")
    @classmethod
    def _visible(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("experiment name is blank; use e.g. cryptocast")
        return value
