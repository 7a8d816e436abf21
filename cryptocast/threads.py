"""How many torch threads a job gets, and whether OpenMP's idle threads spin or sleep.

One function decides it (:func:`plan_threads`, pure, unit-tested); :func:`apply_thread_plan`
reads the machine (cores, load average, the user's environment) and applies it. The trade-off
it resolves, measured on a 2-core machine (issue 16):

- ``OMP_WAIT_POLICY=PASSIVE`` with 2 threads on a quiet machine made training ~2x slower
  (the LSTM darts anchor 2,340-2,450 vs 4,400-4,650 windows/s) and a walk-forward refit ~5x
  slower (5.1 s vs 0.93 s), because every parallel region wakes sleeping threads;
- the default (spinning) policy with 2 threads on a busy machine was up to 40x slower than one
  thread: each thread spins waiting for a sibling that another process holds off the core.

The thread count changes results in the last bits, the wait policy never does. So the count
depends on the cores and the job count only, never on the load, and the load picks the policy:

- threads per job: ``cores // jobs`` (at least 1): one per job when jobs run in parallel on a
  small machine, every core for a single job;
- wait policy: OpenMP's default (spinning) when our threads fit on the cores the 1-minute load
  average leaves free; ``PASSIVE`` when several threads of ours would compete with other
  processes for the cores;
- a user's ``train.num_threads`` or ``OMP_WAIT_POLICY`` always wins.

The same config and seed on the same machine give the same weights whatever else is running; set
``train.num_threads`` to make a run reproducible across machines with other core counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ThreadPlan:
    """Torch threads per job, the OpenMP wait policy to set (None: leave it) and why."""

    threads: int
    wait_policy: str | None
    reason: str


def plan_threads(
    jobs: int,
    cores: int,
    load: float | None = None,
    user_threads: int | None = None,
    user_policy: str | None = None,
) -> ThreadPlan:
    """Pick torch threads per job and the OpenMP wait policy.

    Args:
        jobs: jobs running at the same time (backtest workers; 1 for ``train``).
        cores: logical CPUs available to this process.
        load: 1-minute load average before this command started (None: unknown, assume quiet).
        user_threads: ``train.num_threads`` when set; always used as given.
        user_policy: the ``OMP_WAIT_POLICY`` already in the environment; never overridden.

    Returns:
        The plan; ``wait_policy`` is None when the environment should be left as it is.
    """
    jobs, cores = max(1, jobs), max(1, cores)
    busy = max(0, round(load or 0.0))  # cores other processes already keep busy
    if user_threads:
        threads, why = user_threads, "train.num_threads"
    else:  # never from the load: the thread count changes the results' last bits
        threads, why = max(1, cores // jobs), f"{jobs} job(s) on {cores} cores"
    if user_policy:
        return ThreadPlan(threads, None, f"{why}; OMP_WAIT_POLICY={user_policy} (yours)")
    # Sleeping threads only pay off when several threads of ours compete with other processes.
    oversubscribed = threads > 1 and threads * jobs + busy > cores
    if oversubscribed:
        return ThreadPlan(threads, "PASSIVE", f"{why}; cores busy: idle threads sleep")
    return ThreadPlan(threads, None, why)


def machine_load() -> float | None:
    """The 1-minute load average, or None where the OS has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def apply_thread_plan(jobs: int, user_threads: int | None = None) -> ThreadPlan:
    """Decide the plan for this machine and set ``OMP_WAIT_POLICY`` if it says so.

    Call before torch is imported (the OpenMP runtime reads the variable once, at load); spawned
    worker processes inherit it. Torch's thread count is set by the caller (per process).
    """
    plan = plan_threads(
        jobs, os.cpu_count() or 1, machine_load(), user_threads, os.environ.get("OMP_WAIT_POLICY")
    )
    if plan.wait_policy is not None:
        os.environ["OMP_WAIT_POLICY"] = plan.wait_policy
    return plan
