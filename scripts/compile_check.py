"""Does ``torch.compile`` pay off for training on this CPU? (issue 16: "where it pays off on CPU
and is not fragile"). Writes nothing; prints one line per model and round.

For each model of ``configs/lstm.yaml`` (the paper-like sizes; batch 64, lookback 30, 38 features
like the hourly BTC table, random data: speed does not depend on the values), an eager and a
``torch.compile``-d copy of the same weights each run the ``fit`` step (forward, MSE, backward,
AdamW) in interleaved timed rounds after warm-up; it prints windows/s of both, their ratio, and
the one-time compile cost of the first step. Run: ``python scripts/compile_check.py [--models
lstm,transformer] [--rounds 3]`` (a few minutes on 2 cores: compilation dominates).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
B, L, F = 64, 30, 38


def _stepper(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _windows_per_s(step, n: int = 30) -> float:
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    return B * n / (time.perf_counter() - t0)


def main() -> None:
    from cryptocast.config.schema import load_config
    from cryptocast.models.registry import build_model
    from cryptocast.training.threads import apply_thread_plan

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="lstm,gru,transformer,performer_bilstm")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    apply_thread_plan(1)  # the CLI's default for one job
    torch.manual_seed(0)
    x, y = torch.randn(B, L, F), torch.randn(B, 1)
    for name in a.models.split(","):
        cfg = load_config(REPO / "configs" / "lstm.yaml", [f"model.name={name}"])
        model = build_model(cfg.model, F, 1, L).train()
        eager = _stepper(model, x, y)
        t0 = time.perf_counter()
        compiled = _stepper(torch.compile(copy.deepcopy(model)), x, y)
        compiled()  # the first call compiles forward and backward
        print(f"{name}: compile + first step {time.perf_counter() - t0:.1f} s", flush=True)
        for r in range(a.rounds):
            e, c = _windows_per_s(eager), _windows_per_s(compiled)
            print(f"  round {r + 1}: eager {e:,.0f} windows/s, compiled {c:,.0f} windows/s, "
                  f"compiled/eager {c / e:.2f}x", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
