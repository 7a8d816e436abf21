"""Forecasting models behind one registry: every model maps (B, L, F) -> (B, H), or (B, H, Q)
quantiles (``cryptocast.models.distribution``).

Importing this package does not import torch; the model modules load on first registry use.
"""

from cryptocast.models.registry import build_model, is_trainable, model_names, register

__all__ = ["build_model", "is_trainable", "model_names", "register"]
