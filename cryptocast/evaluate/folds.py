"""Walk-forward folds: pure row-index logic, no data.

Rows are the rows of the feature table of one series (row ``e`` = candle ``e``). A forecast made at
origin row ``e`` uses rows ``<= e`` as inputs and predicts rows ``e+1 .. e+H``.

The test period is the origins ``[test_lo, test_hi)``, cut into consecutive folds of
``fold_length`` origins (the last fold takes the remainder). For a fold whose first origin is
``s``, only rows ``<= s`` are known when its first forecast is made, so its model may use rows
``[lo, s + 1)`` — inputs AND targets. A training window with origin ``e`` reads target row
``e + H``, so it is allowed only if ``e + H <= s``. ``Fold.train`` and ``Fold.val`` are half-open row
ranges ``[lo, hi)`` with exactly this meaning, and ``val.hi == s + 1`` for the fold that trained
the model. They plug into ``windows.window_ends(n_rows, lo, hi, ...)``, which keeps origins ``e``
with ``lo <= e`` and ``e + H < hi``.

Validation is the tail ``val_fraction`` of that range (at least ``H + 1`` rows so it holds one
window); because ``window_ends`` keeps targets inside their segment, train windows never read a
validation target.

Retraining: fold ``k`` trains a new model when ``k % retrain_every == 0``; the folds in between
reuse it, and their ``train``/``val`` are those of the fold that trained it (the rows the model they
use actually saw), so "no leakage" can be checked on every fold alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cryptocast.errors import ConfigError, DataError


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold; all ranges are half-open row ranges ``(lo, hi)``."""

    fold: int
    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]  # forecast origins
    retrain: bool


def make_folds(
    n_rows: int,
    test_lo: int,
    test_hi: int,
    fold_length: int,
    horizon: int,
    window: str = "expanding",
    train_length: int | None = None,
    retrain_every: int = 1,
    val_fraction: float = 0.15,
    lookback: int = 1,
    min_train_windows: int = 1,
) -> list[Fold]:
    """Cut ``[test_lo, test_hi)`` into walk-forward folds with leak-free training ranges.

    Args:
        n_rows: rows in the series' feature table.
        test_lo: first forecast origin row of the test period.
        test_hi: one past the last origin row (origins whose targets lie beyond the data get no
            ``y_true``; the runner drops or masks them).
        fold_length: origins per fold (the last fold may be shorter).
        horizon: H, steps ahead of each forecast.
        window: ``"expanding"`` (train from row 0) or ``"rolling"`` (the last ``train_length``
            rows, training plus validation).
        train_length: rolling window length in rows; required for ``"rolling"``.
        retrain_every: train a new model every k folds (k = 1: every fold).
        val_fraction: validation tail of each training range, in (0, 1).
        lookback: input window length L, to count usable training windows (origin ``e >= L-1``).
        min_train_windows: fewest training windows a retrain may have.

    Returns:
        Folds in time order; their ``test`` ranges tile ``[test_lo, test_hi)`` without overlap.

    Raises:
        DataError: the test period is outside the data or leaves too little training data.
        ConfigError: bad fold length, window, train length, retrain_every or val_fraction.
    """
    if not (0 <= test_lo < test_hi <= n_rows):
        raise DataError(
            f"test period rows [{test_lo}, {test_hi}) is outside the data (0..{n_rows}); "
            "pick --test-start/--test-end inside the stored candles"
        )
    n_test = test_hi - test_lo
    if fold_length < 1:
        raise ConfigError(f"backtest.fold_length must be >= 1, got {fold_length}")
    if fold_length > n_test:
        raise ConfigError(
            f"backtest.fold_length {fold_length} is longer than the test period ({n_test} candles); "
            "shorten the fold or widen the test period"
        )
    if horizon < 1:
        raise ConfigError(f"horizon must be >= 1, got {horizon}")
    if window not in ("expanding", "rolling"):
        raise ConfigError(f"backtest.window must be expanding or rolling, got {window!r}")
    if window == "rolling" and (train_length is None or train_length < 1):
        raise ConfigError("backtest.window=rolling needs backtest.train_length >= 1")
    if retrain_every < 1:
        raise ConfigError(f"backtest.retrain_every must be >= 1, got {retrain_every}")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"backtest.val_fraction must be in (0, 1), got {val_fraction}")

    folds: list[Fold] = []
    train = val = (0, 0)
    for k, start in enumerate(range(test_lo, test_hi, fold_length)):
        test = (start, min(start + fold_length, test_hi))
        retrain = k % retrain_every == 0
        if retrain:
            train, val = train_val_rows(start, horizon, window, train_length, val_fraction)
            n_windows = train[1] - horizon - max(train[0], lookback - 1)
            if n_windows < min_train_windows:
                raise DataError(
                    f"fold {k} (first origin row {start}) has {max(n_windows, 0)} training windows, "
                    f"needs {min_train_windows}; move the test start later, lower val_fraction "
                    "or lookback, or lengthen train_length"
                )
        folds.append(Fold(fold=k, train=train, val=val, test=test, retrain=retrain))
    return folds


def train_val_rows(
    start: int, horizon: int, window: str, train_length: int | None, val_fraction: float
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Training and validation rows of a model whose first forecast is at origin row ``start``
    (targets up to row ``start``; the pooled walk cuts every series with this at its own row)."""
    hi = start + 1  # row `start` is known at the first forecast; targets up to it may be used
    lo = 0 if window == "expanding" else max(0, hi - int(train_length))
    n_val = max(math.ceil(val_fraction * (hi - lo)), horizon + 1)
    v_lo = hi - n_val
    if v_lo <= lo:
        raise DataError(
            f"training range rows [{lo}, {hi}) is too short for a validation tail of {n_val} rows; "
            "move the test start later or lengthen train_length"
        )
    return (lo, v_lo), (v_lo, hi)
