"""Precision policy: which parts of a model run in which dtype, decided in one place.

Two modes (``train.precision``; ``auto`` picks one per device):

- ``fp32``: everything in float32, no autocast.
- ``mixed``: ``torch.autocast`` with bfloat16 for the matmul-heavy ops (``nn.Linear``, softmax
  attention through ``scaled_dot_product_attention``); weights, optimiser state, LayerNorm, the
  loss and the gradients stay float32. bf16 has float32's exponent range, so no gradient scaling
  is needed. Two parts opt out and run in float32:

  * FAVOR+ (``models/favor.py``) disables autocast itself: exp of bf16 logits loses too much.
  * The recurrent layers (LSTM, GRU, the BiLSTM feed-forward) run through ``run_recurrent``
    (``models/common.py``):
    autocast off, float32 inputs. Left to autocast, cuDNN RNNs run in **float16** whatever dtype
    autocast was given (PyTorch's ``aten/src/ATen/cudnn/AutocastRNN.cpp`` casts to half), with no
    GradScaler to keep small gradients from flushing to zero; and on a CPU without bf16 units
    oneDNN has no bf16 LSTM primitive (``could not create a primitive descriptor``). float32
    rather than explicit bf16 tensors because these layers are small (hidden 64) and sequential
    (30-720 steps), so their time is latency, not FLOPs, and a bf16 hidden state would round
    8-bit mantissas at every one of those steps; float32 is correct on every backend.

``precision_policy`` is the single decision; ``PrecisionPolicy.module_dtypes`` states the outcome
per module kind and tests/test_precision.py checks it against dtypes observed in forward passes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch

from cryptocast.errors import ConfigError
from cryptocast.models.common import RECURRENT_DTYPE, run_recurrent  # noqa: F401  (re-exported)

MODES = ("auto", "fp32", "mixed")


@dataclass(frozen=True)
class PrecisionPolicy:
    """The resolved precision of one run: mode, device type and autocast dtype (None: off)."""

    mode: str  # "fp32" or "mixed" (never "auto": resolved)
    device_type: str  # "cpu" or "cuda"
    autocast_dtype: torch.dtype | None

    def autocast(self) -> Any:
        """Context manager for forward passes: autocast in mixed mode, a no-op in fp32."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.autocast_dtype)

    def module_dtypes(self) -> dict[str, torch.dtype]:
        """Dtype each module kind computes in under this policy (documentation and tests)."""
        low = self.autocast_dtype or torch.float32
        return {
            "linear": low,  # nn.Linear: qkv/out projections, MLP, stem, head
            "softmax_attention": low,  # scaled_dot_product_attention (transformer)
            "favor_attention": torch.float32,  # opts out of autocast (favor.py)
            "recurrent": RECURRENT_DTYPE,  # nn.LSTM / nn.GRU through run_recurrent
            # CUDA autocast runs layer_norm in float32; CPU autocast keeps the input's dtype (its
            # kernel accumulates the statistics in float32 either way).
            "layer_norm": torch.float32 if self.device_type == "cuda" else low,
            "loss": torch.float32,  # the training loop casts predictions to float32
            "weights": torch.float32,  # parameters and optimiser state are never cast
        }


def precision_policy(mode: str, device: Any) -> PrecisionPolicy:
    """Resolve ``train.precision`` for ``device`` (a ``torch.device`` or its type string).

    ``auto`` is ``mixed`` on a CUDA GPU that supports bf16 and ``fp32`` otherwise (including every
    CPU: bf16 matmuls are slower than float32 on CPUs without bf16 units). ``mixed`` on a CPU uses
    CPU autocast (bf16); it exists so fp32 and mixed can be compared on one machine.

    Raises:
        ConfigError: unknown mode, or ``mixed`` on a GPU without bf16 support.
    """
    device_type = device if isinstance(device, str) else device.type
    if mode not in MODES:
        raise ConfigError(f"train.precision: {mode!r} is not one of {', '.join(MODES)}")
    bf16_ok = device_type == "cpu" or (
        device_type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    )
    if mode == "auto":
        mode = "mixed" if device_type == "cuda" and bf16_ok else "fp32"
    if mode == "fp32":
        return PrecisionPolicy("fp32", device_type, None)
    if not bf16_ok:
        raise ConfigError(
            "train.precision=mixed needs bf16, which this GPU lacks; use train.precision=fp32"
        )
    return PrecisionPolicy("mixed", device_type, torch.bfloat16)


def observe_dtypes(model: torch.nn.Module, x: torch.Tensor, policy: PrecisionPolicy) -> dict:
    """Run ``model(x)`` under ``policy`` and record the dtype each module kind computed in.

    The observed counterpart of ``PrecisionPolicy.module_dtypes`` (tests and ``make gpu-check``
    compare the two): output dtypes of ``nn.Linear``, ``nn.LSTM``/``nn.GRU`` and ``nn.LayerNorm``
    (forward hooks), of ``scaled_dot_product_attention``, and of the matmuls and exps inside
    ``FastAttention`` (a torch-function mode, which sees ops that are not modules).

    Returns:
        ``{kind: set of dtypes}`` for the kinds the model contains.
    """
    from torch.overrides import TorchFunctionMode

    from cryptocast.models.favor import FastAttention

    seen: dict[str, set] = {}
    inside_favor = [0]

    def note(kind: str, t: Any) -> None:
        if isinstance(t, tuple):  # RNNs return (output, state)
            t = t[0]
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            seen.setdefault(kind, set()).add(t.dtype)

    class _Ops(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = getattr(func, "__name__", "")
            if name == "scaled_dot_product_attention":
                note("softmax_attention", out)
            elif inside_favor[0] and name in ("matmul", "exp", "exp_"):
                note("favor_attention", out)
            return out

    kinds = {
        torch.nn.Linear: "linear",
        torch.nn.LSTM: "recurrent",
        torch.nn.GRU: "recurrent",
        torch.nn.LayerNorm: "layer_norm",
    }
    handles = []
    for mod in model.modules():
        kind = next((k for cls, k in kinds.items() if isinstance(mod, cls)), None)
        if kind is not None:
            handles.append(mod.register_forward_hook(lambda _m, _i, o, k=kind: note(k, o)))
        if isinstance(mod, FastAttention):

            def enter(*_):
                inside_favor[0] += 1

            def leave(*_):
                inside_favor[0] -= 1

            handles.append(mod.register_forward_pre_hook(enter))
            handles.append(mod.register_forward_hook(leave))
    try:
        with _Ops(), policy.autocast():
            model(x)
    finally:
        for h in handles:
            h.remove()
    seen["weights"] = {p.dtype for p in model.parameters()}
    return seen
