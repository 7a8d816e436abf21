"""One training loop for every registered model, on CPU or CUDA.

The loop works on pre-built tensors: the scaled feature table ``X`` (N, F) and targets ``Y``
(N, H) live on the device once, and each batch is gathered from window end rows by index
arithmetic (``windows.gather_windows``) — no DataLoader, no per-batch pandas.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cryptocast.config.schema import TrainConfig
from cryptocast.errors import ConfigError, TrainingDiverged
from cryptocast.training.threads import capped_threads

if TYPE_CHECKING:  # precision.py imports torch; this module imports it only when it runs
    from cryptocast.training.precision import PrecisionPolicy


@dataclass
class TrainResult:
    """What a fit did: per-epoch history and where it stopped."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = float("nan")  # nan when there is no validation segment
    selected_on: str = "val_loss"  # "train_loss" when there is no validation segment
    stopped_early: bool = False
    device: str = "cpu"
    seconds: float = 0.0
    windows_per_s: float = 0.0
    trained: bool = True


def prefer_passive_openmp(jobs: int = 1, user_threads: int | None = None) -> Any:
    """Apply the thread plan for ``jobs`` parallel jobs (kept for older callers).

    The decision (threads per job, and whether idle OpenMP threads sleep) now lives in
    :func:`cryptocast.training.threads.apply_thread_plan`: ``PASSIVE`` is set only when several threads
    of ours would share busy cores, not unconditionally (that made a quiet machine ~2x slower).
    """
    from cryptocast.training.threads import apply_thread_plan

    return apply_thread_plan(jobs, user_threads)


def resolve_device(name: str) -> Any:
    """``auto`` -> cuda if available else cpu; ``cuda`` without a GPU is a ConfigError."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "train.device=cuda but no CUDA GPU is available; use train.device=auto or cpu"
        )
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _optimizer(model: Any, cfg: TrainConfig) -> Any:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def _loss_fn(name: str, levels: tuple[float, ...] | None = None) -> Any:
    """mse/huber for point models, pinball over ``levels`` for quantile models (the
    forecast-distribution seam decides, ``distribution.loss_fn``)."""
    from cryptocast.models.distribution import loss_fn

    return loss_fn(name, levels)


def _to_device(data: Any, device: Any) -> tuple[Any, Any]:
    import torch

    X = torch.from_numpy(np.ascontiguousarray(data.X, dtype=np.float32))
    Y = torch.from_numpy(np.nan_to_num(np.ascontiguousarray(data.Y, dtype=np.float32)))
    if device.type == "cuda":
        X, Y = X.pin_memory(), Y.pin_memory()
    return X.to(device, non_blocking=True), Y.to(device, non_blocking=True)


def fit_naive_model(model: Any, data: Any, cfg: TrainConfig | None = None) -> None:
    """Fit a no-training baseline (persistence, drift, rw_*) from the training rows only, a
    volatility baseline (``fit_prepared``) from the training windows and their features, or a
    combination (``fit_members``, models/combo.py), which fits its members with ``cfg``. A pooled
    training set (``features.pooled.PooledData``) goes to ``fit_pooled`` (gbm_vol)."""
    if hasattr(model, "fit_members"):  # each member fit as ``fit`` fits a model alone
        cfg = cfg if cfg is not None else TrainConfig()
        model.fit_members(
            data,
            lambda member: fit(member, data, cfg),
            lambda member, rows: predict_scaled(member, data.X, rows, data.lookback),
        )
        return
    if hasattr(data, "parts"):  # a pooled training set (features/pooled.py)
        if not hasattr(model, "fit_pooled"):
            raise ConfigError(f"{type(model).__name__} is fitted per series only, not pooled")
        model.fit_pooled(data.parts)
        return
    if hasattr(model, "fit_prepared"):
        model.fit_prepared(data)
        return

    from cryptocast.features.targets import get_target

    ends = data.ends["train"]
    if hasattr(model, "fit_series"):  # random-walk quantile baselines: training closes only
        model.fit_series(data.close[: int(ends.max()) + data.horizon + 1])
        return
    y_train = data.Y[ends]
    target = get_target(data.target)
    identity_scaled = target.naive_anchor(data.y_scaler, data.horizon, getattr(model, "kind", None))
    model.fit_naive(y_train, identity_scaled)


def fit(
    model: Any,
    data: Any,
    cfg: TrainConfig,
    progress_cb: Callable[[dict[str, float]], None] | None = None,
    batch_cb: Callable[[int, int, int], None] | None = None,
    epochs: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``data.ends['train']``, early-stop on ``data.ends['val']``.

    The best weights (lowest validation loss) are restored at the end. Models registered as not
    trainable (naive baselines) are fitted from the training targets and returned at once.

    Args:
        model: a registry model.
        data: prepared windows (``cryptocast.features.windows.prepare``).
        cfg: the ``train`` config section.
        progress_cb: called after each epoch with its history row.
        batch_cb: called after each optimiser step with (epoch, batch, batches per epoch), for a
            progress bar within the epoch.
        epochs: run exactly this many epochs of the schedule laid out for ``cfg.epochs`` (the
            learning rates of the validated run's first ``epochs`` epochs), with no early stopping,
            and keep the last weights: the refit on all rows after validation chose ``epochs``.
            A ``plateau`` schedule, having no validation loss there, steps on the training loss.
    """
    import torch

    from cryptocast.features.windows import gather_windows
    from cryptocast.models.registry import is_trainable
    from cryptocast.training.precision import precision_policy

    device = resolve_device(cfg.device)
    policy = precision_policy(cfg.precision, device)
    if cfg.num_threads:  # at most the cores available (training/threads.py)
        torch.set_num_threads(capped_threads(cfg.num_threads))
    # Models do not record their registry name, so a baseline is recognised by ``fit_naive``
    # (it has no parameters: the optimiser would refuse an empty parameter list).
    name = getattr(model, "registry_name", None)
    naive = (
        not is_trainable(name)
        if name is not None
        else any(
            hasattr(model, a) for a in ("fit_naive", "fit_series", "fit_prepared", "fit_members")
        )
    )
    if naive:
        fit_naive_model(model, data, cfg)
        model.eval()
        return TrainResult(device=str(device), trained=False)

    train_ends = np.asarray(data.ends["train"], dtype=np.int64)
    val_ends = np.asarray(data.ends.get("val", np.empty(0, np.int64)), dtype=np.int64)
    if len(train_ends) == 0:
        raise ConfigError("no training windows: lower features.lookback or use more data")
    model.to(device)
    X, Y = _to_device(data, device)
    tr = torch.from_numpy(train_ends).to(device)
    L, bs = data.lookback, cfg.batch_size
    stride = min(cfg.window_stride, len(train_ends))  # no epoch without a window
    opt = _optimizer(model, cfg)
    steps_per_epoch = math.ceil(math.ceil(len(train_ends) / stride) / bs)
    sched = None
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    elif cfg.schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    from cryptocast.models.distribution import levels_of

    levels = levels_of(model)
    loss_fn = _loss_fn(cfg.loss, levels)
    gen = torch.Generator().manual_seed(cfg.seed)
    result = TrainResult(device=str(device))
    best_state: dict[str, Any] | None = None
    bad_epochs, t_start, n_seen = 0, time.perf_counter(), 0

    params = [p for p in model.parameters() if p.requires_grad]
    fixed = epochs is not None
    for epoch in range(1, (epochs if fixed else cfg.epochs) + 1):
        t0 = time.perf_counter()
        model.train()
        # window_stride k: this epoch's share of the training windows, phase (epoch - 1) % k
        part = tr[(epoch - 1) % stride :: stride] if stride > 1 else tr
        perm = part[torch.randperm(len(part), generator=gen).to(device)]
        # summed on the device: a .item() per batch would stall a GPU queue every step
        total, count = torch.zeros((), device=device), 0
        for i in range(0, len(perm), bs):
            ends = perm[i : i + bs]
            xb = gather_windows(X, ends, L)  # (B, L, F)
            yb = Y[ends]  # (B, H)
            with policy.autocast():  # bf16 matmuls in mixed mode; RNNs, FAVOR+ float32
                pred = model(xb)  # (B, H), or (B, H, Q) for a quantile model
            loss = loss_fn(pred.float(), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            if cfg.schedule == "cosine":
                sched.step()
            total += loss.detach() * len(ends)
            count += len(ends)
            if batch_cb is not None:
                batch_cb(epoch, i // bs + 1, steps_per_epoch)
        n_seen += count
        train_loss = total.item() / max(count, 1)
        val_loss = evaluate_loss(model, X, Y, val_ends, L, bs, cfg.loss, device, levels, policy)
        _check_finite(epoch, train_loss, val_loss if len(val_ends) else 0.0, cfg)
        # the loss that picks the epoch: validation, else (a refit on every row) training
        score = val_loss if not math.isnan(val_loss) else train_loss
        if cfg.schedule == "plateau":
            sched.step(score)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "lr": opt.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
        }
        result.history.append(row)
        if progress_cb is not None:
            progress_cb(row)
        if fixed:
            result.best_epoch, result.best_val_loss = epoch, score
        elif best_state is None or score < result.best_val_loss:
            result.best_val_loss, result.best_epoch, bad_epochs = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
            if cfg.patience and bad_epochs >= cfg.patience:
                result.stopped_early = True
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    if fixed:  # the epoch count was chosen before (on validation): keep the last weights
        result.best_val_loss, result.selected_on = float("nan"), "fixed"
    elif len(val_ends) == 0:  # the best epoch was picked on the training loss: say so
        result.best_val_loss, result.selected_on = float("nan"), "train_loss"
    model.eval()
    result.seconds = time.perf_counter() - t_start
    result.windows_per_s = n_seen / result.seconds if result.seconds > 0 else 0.0
    return result


def _check_finite(epoch: int, train_loss: float, val_loss: float, cfg: TrainConfig) -> None:
    """Stop at the first epoch whose loss is nan/inf: the weights are garbage from then on."""
    for name, value in (("training", train_loss), ("validation", val_loss)):
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"training diverged: the {name} loss of epoch {epoch} is {value}; lower "
                f"train.lr (now {cfg.lr:g}) or set train.grad_clip > 0; no checkpoint was written"
            )


def evaluate_loss(
    model: Any,
    X: Any,
    Y: Any,
    ends: np.ndarray,
    lookback: int,
    bs: int,
    loss: str,
    device: Any,
    levels: tuple[float, ...] | None = None,
    policy: PrecisionPolicy | None = None,
) -> float:
    """Mean loss over the windows ending at ``ends`` (eval mode, no grad); nan when empty."""
    import torch

    if len(ends) == 0:
        return float("nan")
    pred = _predict_tensor(
        model, X, torch.from_numpy(np.asarray(ends)).to(device), lookback, bs, device, policy
    )
    target = Y[torch.from_numpy(np.asarray(ends)).to(device)]
    return float(_loss_fn(loss, levels)(pred.float(), target).item())


def _predict_tensor(
    model: Any,
    X: Any,
    ends: Any,
    lookback: int,
    bs: int,
    device: Any,
    policy: PrecisionPolicy | None = None,
) -> Any:
    import torch

    from cryptocast.features.windows import gather_windows
    from cryptocast.training.precision import precision_policy

    policy = policy or precision_policy("auto", device)
    was_training = model.training
    model.eval()
    outs = []
    with torch.inference_mode():  # cheaper than no_grad: no version counters on the outputs
        for i in range(0, len(ends), bs):
            xb = gather_windows(X, ends[i : i + bs], lookback)  # (B, L, F)
            with policy.autocast():
                # float64 models (the naive baselines) stay float64 so persistence is exact
                outs.append(model(xb).to(torch.float64))  # (B, H) or (B, H, Q)
    model.train(was_training)
    return torch.cat(outs) if outs else torch.empty(0)


def predict_scaled(
    model: Any,
    X: np.ndarray,
    ends: np.ndarray,
    lookback: int,
    batch_size: int = 1024,
    device: str = "cpu",
    precision: str = "auto",
) -> np.ndarray:
    """Model outputs (n, H), or (n, H, Q) quantiles, in the scaled target space for windows
    ending at ``ends``. ``precision`` is a ``train.precision`` mode; ``auto`` is fp32 on the CPU
    (precision.py)."""
    import torch

    from cryptocast.training.precision import precision_policy

    dev = resolve_device(device)
    model.to(dev)
    Xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).to(dev)
    et = torch.from_numpy(np.asarray(ends, dtype=np.int64)).to(dev)
    if len(et) == 0:
        return np.empty((0, getattr(model, "horizon", 1)), dtype=np.float64)
    policy = precision_policy(precision, dev)
    return _predict_tensor(model, Xt, et, lookback, batch_size, dev, policy).cpu().double().numpy()
