"""The refit on every row (the checkpoint's weights) follows ``train.schedule`` like the
validated run: a ``plateau`` schedule lowers its learning rate when the loss stops improving."""

from __future__ import annotations

from cryptocast.config.schema import load_config
from cryptocast.data.store import series_path, write_parquet_atomic
from cryptocast.training.loop import TrainResult
from cryptocast.training.runs import refit_all
from tests.conftest import TINY_CONFIG, make_ohlcv


def test_a_refit_with_a_plateau_schedule_lowers_its_lr_on_a_plateau(data_dir, one_torch_thread):
    write_parquet_atomic(
        make_ohlcv(200, "1d", seed=5), series_path(data_dir, "binance", "BTC/USDT", "1d")
    )
    # an LSTM without dropout and a learning rate too small to move the loss: a flat plateau
    cfg = load_config(
        TINY_CONFIG,
        ["model.name=lstm", "model.dropout=0", "train.schedule=plateau", "train.lr=1e-6",
         "train.device=cpu", "train.num_threads=1"],
    )  # fmt: skip
    validated = TrainResult(best_epoch=6)  # what the validated run chose
    _, _, _, result, _ = refit_all(cfg, data_dir, validated)
    lrs = [row["lr"] for row in result.history]
    assert len(lrs) == 6 and all(row["val_loss"] != row["val_loss"] for row in result.history)
    # ReduceLROnPlateau(factor 0.5, patience 2): epoch 1 is the best, 2-4 do not improve
    assert lrs[0] == 1e-6 and lrs[-1] < lrs[0], lrs
    assert lrs[3] == 0.5e-6, lrs
