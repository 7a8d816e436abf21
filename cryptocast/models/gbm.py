"""``gbm_vol``: gradient-boosted trees (LightGBM; Ke et al. 2017) on the HAR and realized-measure
features, a learned baseline on the same inputs as the HAR family.

One booster per step h maps the origin row's ``features/volatility.py`` columns (``VOL_FEATURES``:
the HAR components, RQ, semivariances, continuous and jump parts, range and EWMA volatilities,
the daily return) to ``log RV(t+h)`` with squared loss. It is fitted on the fold's TRAINING
windows; the VALIDATION windows only choose the number of trees (early stopping on their L2 loss:
``EARLY_STOP`` rounds without improvement, at most ``model.gbm_rounds``). No test row is read.
Like ``har`` it is a model of log RV, so the target maps it back with the bias correction of
``features/targets.py``; its factor comes from the residuals on training and validation windows,
which for trees fitted on the former is smaller than out of sample (docs/volatility.md).

The boosters travel in the checkpoint as LightGBM's text models, UTF-8 bytes in a ``uint8`` buffer
(``blob``, the models joined by NUL) that a restore resizes before loading: a plain tensor, so
``torch.load(weights_only=True)`` and every ``state_dict`` copy handle it like any weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cryptocast.errors import ConfigError, DataError
from cryptocast.features.volatility import VOL_FEATURES
from cryptocast.models.registry import register
from cryptocast.models.volatility import VolBaseline

EARLY_STOP = 50
PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "deterministic": True,
    "force_col_wise": True,
    "num_threads": 1,
    "verbose": -1,
}


def _lightgbm():
    try:
        import lightgbm
    except ImportError:
        raise ConfigError(
            "the gbm_vol baseline needs the lightgbm package: pip install 'cryptocast[vol]'"
        ) from None
    return lightgbm


class GbmVol(VolBaseline):
    features = tuple(VOL_FEATURES)

    def __init__(self, horizon: int, rounds: int = 500, seed: int = 0) -> None:
        super().__init__(horizon)
        self.rounds = rounds
        self.seed = seed
        self.register_buffer("blob", torch.zeros(0, dtype=torch.uint8))
        self.register_buffer("best_iterations", torch.zeros(horizon, dtype=torch.long))
        self._boosters: list[Any] = []

    def _fit(self, data) -> None:
        self._fit_rows([self._fit_sets(data)])

    def fit_pooled(self, parts: list) -> None:
        """One set of boosters over several series (a pooled model, ``features/pooled.py``): each
        ``windows.PreparedData`` of ``parts`` unscaled with its own statistics, their training
        rows stacked in order, early stopping on the union of their validation rows. On one series
        this is ``fit_prepared`` exactly. The buffers are left at the last series' scalers; a
        series is forecast through :meth:`for_series`."""
        sets = []
        for part in parts:
            self.adopt_scalers(part)
            sets.append(self._fit_sets(part))
        self._fit_rows(sets)

    def _fit_sets(self, data) -> tuple[np.ndarray, ...]:
        """(x_train, y_train, x_val, y_val) of ``data``, unscaled with the buffers' statistics:
        the origin rows' features (n, k) and their log RV labels (n, H)."""
        train = data.ends.get("train", np.empty(0, np.int64))
        val = data.ends.get("val", np.empty(0, np.int64))
        inverse = data.y_scaler.inverse_transform
        x_tr, y_tr = self.unscaled_rows(data, train), inverse(data.Y[train].astype("float64"))
        x_va, y_va = self.unscaled_rows(data, val), inverse(data.Y[val].astype("float64"))
        return x_tr, y_tr, x_va, y_va

    def _fit_rows(self, sets: list[tuple[np.ndarray, ...]]) -> None:
        lgb = _lightgbm()
        # one series: its own arrays, so the pooled fit is the per-series fit bit for bit
        stack = (lambda a: a[0]) if len(sets) == 1 else np.concatenate
        x_tr, y_tr, x_va, y_va = (stack([s[i] for s in sets]) for i in range(4))
        if len(x_va) == 0:
            raise ConfigError("gbm_vol stops early on validation rows: set split.val above 0")
        if len(x_tr) < 2 * PARAMS["min_data_in_leaf"]:
            raise DataError(
                f"gbm_vol needs at least {2 * PARAMS['min_data_in_leaf']} training days"
            )
        strings, best = [], []
        for h in range(self.horizon):
            ok_tr, ok_va = np.isfinite(y_tr[:, h]), np.isfinite(y_va[:, h])
            if not ok_va.any():
                raise DataError("gbm_vol: no validation row has a realised label to stop on")
            fit_set = lgb.Dataset(x_tr[ok_tr], y_tr[ok_tr, h], free_raw_data=False)
            val_set = lgb.Dataset(x_va[ok_va], y_va[ok_va, h], reference=fit_set)
            booster = lgb.train(
                {**PARAMS, "seed": self.seed},
                fit_set,
                num_boost_round=self.rounds,
                valid_sets=[val_set],
                valid_names=["val"],
                callbacks=[lgb.early_stopping(EARLY_STOP, verbose=False)],
            )
            n = booster.best_iteration or booster.current_iteration()
            best.append(int(n))
            strings.append(booster.model_to_string(num_iteration=n))
        self.best_iterations.copy_(torch.as_tensor(best))
        raw = "\0".join(strings).encode()
        self.blob = torch.frombuffer(bytearray(raw), dtype=torch.uint8).clone()
        self._boosters = []

    def boosters(self) -> list[Any]:
        """The per-step boosters, rebuilt from ``blob`` once after a fit or a restore."""
        if not self._boosters and self.blob.numel():
            lgb = _lightgbm()
            text = bytes(self.blob.cpu().numpy()).decode()
            self._boosters = [lgb.Booster(model_str=s) for s in text.split("\0")]
        return self._boosters

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        blob = state_dict.get(prefix + "blob")
        if blob is not None:  # the fitted size, unknown when the module was built
            self.blob = torch.zeros_like(blob, device=self.blob.device)
        self._boosters = []
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        boosters = self.boosters()
        if not boosters:
            return self.scaled(torch.zeros(x.shape[0], self.horizon, dtype=torch.float64))
        z = self.raw(x)[:, -1, :].detach().cpu().numpy()  # (B, k)
        out = np.column_stack([b.predict(z) for b in boosters])  # (B, H) log RV
        return self.scaled(torch.as_tensor(out, dtype=torch.float64, device=x.device))


register("gbm_vol", trainable=False, poolable=True)(
    lambda cfg, n_features, horizon, lookback: GbmVol(horizon, cfg.gbm_rounds)
)
