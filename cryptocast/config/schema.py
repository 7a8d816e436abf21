"""One typed config for every stage, loaded from YAML.

Sections: ``data``, ``features``, ``split``, ``model``, ``train``, ``output``, ``backtest``,
``tune``, ``forecast``, ``tracking``.
Unknown keys and wrong types are errors that name the dotted key; cross-field checks run here,
before any work starts. pydantic does the type checking (strict where it matters, ``extra=forbid``)
because it reports the exact dotted location of each problem.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    Field,
    ValidationError,
    model_validator,
)

from cryptocast.config.sections import (  # noqa: F401  (the sections are part of this module's API)
    DEFAULT_SYMBOLS,
    DEFAULT_TIMEFRAMES,
    TIMEFRAME_KEYS,
    BacktestConfig,
    DataConfig,
    FeaturesConfig,
    ForecastConfig,
    IndicatorSpec,
    IsoDate,
    ModelConfig,
    OutputConfig,
    SplitConfig,
    TrainConfig,
    TuneConfig,
    _Section,
)
from cryptocast.config.text import (
    MAX_NESTING,
    YamlLoader,
    apply_overrides,
    format_validation_error,
    override_sources,
    too_deep,
    yaml_problem,
)
from cryptocast.config.tracking import TrackingConfig
from cryptocast.errors import ConfigError

__all__ = ["Config", "apply_overrides", "config_from_dict", "load_config", "override_sources"]

#: sections that do not change the trained weights: editing them keeps a run's training hash
NOT_TRAINING = ("output", "backtest", "tune", "forecast", "tracking")
#: sections that only observe a run (MLflow tracking): left out of both hashes at any value
NOT_HASHED = ("tracking",)
#: settings added after runs and pages were recorded: left out of both hashes while at these
#: values (which reproduce the older behaviour), so an upgrade does not orphan trained runs
HASH_NEUTRAL = {
    ("train", "window_stride"): 1,
    ("backtest", "timeframe_overrides"): {},
    ("tune", "max_in_flight"): None,
    ("features", "rv_cross"): None,
    ("model", "har_window"): None,
    ("model", "gbm_rounds"): 500,
    ("model", "members"): ["har", "ewma_vol", "garch"],
    ("model", "combo_weights"): "equal",
    ("model", "series_embedding"): False,
    ("train", "universe"): [],
    ("backtest", "pooled"): False,
}


def _hashable(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` without the ``HASH_NEUTRAL`` settings that are at their neutral value."""
    d = {k: dict(v) if isinstance(v, dict) else v for k, v in d.items() if k not in NOT_HASHED}
    for (section, key), neutral in HASH_NEUTRAL.items():
        if isinstance(d.get(section), dict) and d[section].get(key, neutral) == neutral:
            d[section].pop(key, None)
    return d


class Config(_Section):
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _check(self) -> Config:
        quantile = self.model.quantiles is not None
        if quantile and self.train.loss != "pinball":
            raise ValueError(
                f"model.quantiles needs train.loss=pinball (got {self.train.loss}); "
                "or drop model.quantiles for a point forecast"
            )
        if quantile and self.features.target == "realized_vol":
            raise ValueError(
                "model.quantiles is for price targets (log_return, price); realized_vol "
                "forecasts are points: drop model.quantiles or use features.target=log_return"
            )
        if self.train.loss == "pinball" and not quantile:
            raise ValueError(
                "train.loss=pinball needs model.quantiles, e.g. [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]"
            )
        for tf in self.backtest.timeframe_overrides:
            try:  # a bad value fails at load, not in the middle of a grid
                for_timeframe(self, tf)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def hash(self) -> str:
        """Stable 12-hex-digit hash of the resolved config."""
        blob = json.dumps(_hashable(self.to_dict()), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def training_hash(self) -> str:
        """Hash of the sections that decide the trained weights (all but ``NOT_TRAINING``).

        ``forecast --config`` uses the newest run whose training hash equals its config's, so a
        change of report folder, backtest or forecast settings does not orphan a trained run.
        With ``backtest.pooled`` the evaluated symbols are in it too: they are what a pooled
        run trains on.
        """
        d = {k: v for k, v in _hashable(self.to_dict()).items() if k not in NOT_TRAINING}
        if self.backtest.pooled:  # a pooled run trains on backtest.symbols (and train.universe)
            d["pool"] = list(self.backtest.symbols)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def for_timeframe(cfg: Config, timeframe: str) -> Config:
    """``cfg`` with ``backtest.timeframe_overrides[timeframe]`` applied (itself, if none).

    The result carries no overrides of its own: it is the config of that timeframe's jobs.
    """
    items = cfg.backtest.timeframe_overrides.get(timeframe)
    if not items:
        return cfg
    raw = cfg.to_dict()
    raw["backtest"]["timeframe_overrides"] = {}
    raw = apply_overrides(raw, list(items))
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        msg = format_validation_error(err, "", override_sources(list(items)), Config)
        raise ConfigError(
            f"backtest.timeframe_overrides.{timeframe}: {msg.removeprefix('--set ')}"
        ) from None


def config_from_dict(
    raw: dict[str, Any], source: str = "config", blame: dict[str, str] | None = None
) -> Config:
    """Validate a raw mapping; errors name ``source`` or, for keys in ``blame``, the option."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, blame, Config)) from None


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Load a YAML config (or the defaults when ``path`` is None) and apply ``--set`` overrides."""
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(
                f"config file {p} not found; pass an existing file, e.g. configs/tiny.yaml"
            )
        text = p.read_text()
        if too_deep(text):  # e.g. a JSON list nested 100k deep (a RecursionError in PyYAML)
            raise ConfigError(
                f"{p}: nested too deeply to be a config (over {MAX_NESTING} levels); fix the file"
            )
        try:
            raw = yaml.load(text, Loader=YamlLoader) or {}  # noqa: S506
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML ({yaml_problem(err)})") from None
    raw = apply_overrides(raw, overrides or [])
    return config_from_dict(raw, source, override_sources(overrides or []))
