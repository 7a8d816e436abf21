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
- wait policy: OpenMP's default (spinning) when our threads fit on the cores other processes
  leave free; ``PASSIVE`` when several threads of ours would compete with other processes for
  the cores. "Busy" is measured, not guessed from the 1-minute load average: the CPU time other
  processes used over a 0.2 s sample (``/proc/stat``) before torch loads. The load average lags
  by a minute and counts the user's own previous command, so on a quiet machine it picked
  PASSIVE, which made a walk-forward refit ~3x slower (``bench_threads``, 2026-11-29);
- a user's ``train.num_threads`` or ``OMP_WAIT_POLICY`` always wins, except that a thread
  count is capped at the cores available (:func:`available_cores`, the affinity mask): more
  threads than cores only contend, thousands drove a 2-core machine's load past 1,200, and
  100,000 exhausted the process's thread limit (pyarrow's import then failed, a million
  segfaulted; issue 25). The CLI prints :func:`cap_note` when it caps.

The same config and seed on the same machine give the same weights whatever else is running; set
``train.num_threads`` (at most the smaller machine's cores) to make a run reproducible across
machines with other core counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptocast.executor import available_cores


@dataclass(frozen=True)
class ThreadPlan:
    """Torch threads per job, the OpenMP wait policy to set (None: leave it) and why."""

    threads: int
    wait_policy: str | None
    reason: str


def capped_threads(requested: int, cores: int | None = None) -> int:
    """``requested`` torch threads, at most the cores available (at least 1)."""
    return max(1, min(requested, cores if cores is not None else available_cores()))


def cap_note(requested: int | None, cores: int | None = None) -> str | None:
    """The one-line note when ``train.num_threads`` is capped (None when it is not)."""
    cores = cores if cores is not None else available_cores()
    if not requested or requested <= cores:
        return None
    return (
        f"train.num_threads={requested} is more than the {cores} core(s) available: "
        f"using {cores} thread(s)"
    )


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
        load: cores other processes keep busy before this command starts (``machine_busy``;
            None: unknown, assume quiet).
        user_threads: ``train.num_threads`` when set; used as given up to ``cores``.
        user_policy: the ``OMP_WAIT_POLICY`` already in the environment; never overridden.

    Returns:
        The plan; ``wait_policy`` is None when the environment should be left as it is.
    """
    jobs, cores = max(1, jobs), max(1, cores)
    busy = max(0, round(load or 0.0))  # cores other processes already keep busy
    if user_threads and user_threads > cores:
        threads, why = cores, f"train.num_threads={user_threads} capped at {cores} cores"
    elif user_threads:
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


def busy_cores(interval: float = 0.2) -> float | None:
    """Cores' worth of CPU time other processes use now: ``/proc/stat`` sampled ``interval``
    seconds apart while this process sleeps (None where there is no ``/proc/stat``)."""
    import time

    def sample() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle  # user .. steal; guest time is already in user

    a = sample()
    if a is None:
        return None
    time.sleep(interval)
    b = sample()
    if b is None or b[0] <= a[0]:
        return None
    total, idle = b[0] - a[0], b[1] - a[1]
    return (os.cpu_count() or 1) * (total - idle) / total


def machine_busy() -> float | None:
    """How many cores other processes keep busy: :func:`busy_cores`, else the load average."""
    busy = busy_cores()
    return busy if busy is not None else machine_load()


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
    cores, user_policy = available_cores(), os.environ.get("OMP_WAIT_POLICY")
    # the load only picks the policy of a team of threads the user has not set: measure (0.2 s)
    # only then; the thread count never depends on it
    quiet = plan_threads(jobs, cores, None, user_threads, user_policy)
    if user_policy or quiet.threads == 1:
        plan = quiet
    else:
        plan = plan_threads(jobs, cores, machine_busy(), user_threads, user_policy)
    if plan.wait_policy is not None:
        os.environ["OMP_WAIT_POLICY"] = plan.wait_policy
    return plan
