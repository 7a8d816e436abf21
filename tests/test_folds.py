"""Walk-forward folds: tiling, no leakage past the first forecast origin, windows, retraining."""

from __future__ import annotations

import pytest

from cryptocast.errors import ConfigError, DataError
from cryptocast.evaluate.folds import make_folds


@pytest.mark.parametrize("horizon", [1, 5])
@pytest.mark.parametrize("window,train_length", [("expanding", None), ("rolling", 300)])
def test_folds_tile_and_never_leak(horizon, window, train_length):
    folds = make_folds(
        1000, 600, 950, 90, horizon, window=window, train_length=train_length, retrain_every=2
    )
    assert [f.test for f in folds] == [(600, 690), (690, 780), (780, 870), (870, 950)]
    covered = [r for f in folds for r in range(*f.test)]
    assert covered == list(range(600, 950))  # tiles: every origin once, in order
    for f in folds:
        first_origin = f.test[0]
        # every row the model read (inputs and targets) is known at its fold's first forecast
        assert f.train[1] - 1 <= first_origin and f.val[1] - 1 <= first_origin
        last_train_origin = f.train[1] - horizon - 1  # window_ends: e + H < hi
        assert last_train_origin + horizon <= first_origin
        assert f.train[0] < f.train[1] == f.val[0] < f.val[1]
        assert f.val[1] - f.val[0] >= horizon + 1


def test_expanding_vs_rolling():
    exp = make_folds(1000, 600, 900, 100, 1)
    roll = make_folds(1000, 600, 900, 100, 1, window="rolling", train_length=200)
    assert all(f.train[0] == 0 for f in exp)
    assert [f.val[1] for f in exp] == [601, 701, 801]
    assert [f.train[0] for f in roll] == [401, 501, 601]
    assert all(f.val[1] - f.train[0] == 200 for f in roll)
    # validation is the 15% tail of the training range
    assert exp[0].val == (601 - 91, 601)


def test_retrain_every_k_reuses_the_trained_ranges():
    folds = make_folds(1000, 500, 1000, 50, 1, retrain_every=3)
    assert [f.retrain for f in folds] == [k % 3 == 0 for k in range(10)]
    assert folds[1].train == folds[2].train == folds[0].train
    assert folds[3].train != folds[0].train and folds[3].val[1] == folds[3].test[0] + 1


def test_last_fold_takes_the_remainder():
    folds = make_folds(200, 100, 200, 30, 1)
    assert [f.test for f in folds][-1] == (190, 200)


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        (dict(test_lo=900, test_hi=1100), DataError, "outside the data"),
        (dict(test_lo=-5, test_hi=100), DataError, "outside the data"),
        (dict(fold_length=500), ConfigError, "longer than the test period"),
        (dict(test_lo=2, test_hi=100, fold_length=10), DataError, "0 training windows"),
        (dict(test_lo=1, test_hi=100, fold_length=10), DataError, "validation tail"),
        (dict(lookback=700, min_train_windows=10), DataError, "training windows"),
        (dict(window="rolling"), ConfigError, "train_length"),
        (dict(window="sliding"), ConfigError, "expanding or rolling"),
        (dict(retrain_every=0), ConfigError, "retrain_every"),
    ],
)
def test_bad_inputs_one_line_errors(kwargs, err, match):
    args = dict(n_rows=1000, test_lo=600, test_hi=900, fold_length=100, horizon=1) | kwargs
    with pytest.raises(err, match=match) as exc:
        make_folds(**args)
    assert "\n" not in str(exc.value)
