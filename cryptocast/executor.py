"""The executor seam: where independent units of work (backtest jobs, tuning trials) run.

A unit of work is a :class:`Task`: a module-level function and its arguments, called as
``fn(*args, emit=...)`` where ``emit`` (or None) streams progress events back to the driver. The
members:

- ``local``: this machine. One worker runs the tasks in this process; more run them in a
  ``spawn`` process pool (no forked torch state), events come back through a manager queue.
- ``ray``: one Ray task per unit, with its CPU (and GPU) needs declared, on a local Ray instance
  or the cluster at ``--ray-address`` / ``RAY_ADDRESS``. Workers on other machines cannot read the
  driver's files, so large inputs go through :meth:`Executor.put` (Ray's object store) and the
  tasks receive the objects themselves, never a path. Tasks are idempotent (a pure function of
  their arguments), so a task whose worker process or node is lost is run again, up to
  ``RAY_MAX_RETRIES`` times; an exception the task itself raises is never retried (it would
  fail the same way) and is reported at once.

Both keep going when a task fails: its :class:`Outcome` carries the error, named by the task, and
the caller decides what a failure means. Results do not depend on the member: the same function
runs with the same arguments and the same torch thread count (the caller's thread plan, whatever
the executor).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptocast.errors import ConfigError

EXECUTORS = ("local", "ray")
# Attempts after a lost worker or node (preemption, OOM kill); Ray's own default for tasks.
RAY_MAX_RETRIES = 3
RAY_INSTALL = "pip install 'cryptocast[ray]'"


@dataclass
class Task:
    """One unit of work; ``name`` is how a failure is reported (e.g. ``BTC/USDT 1d lstm``)."""

    name: str
    fn: Callable[..., Any]
    args: tuple = ()
    num_cpus: int = 1  # torch threads of the task, and the CPUs Ray reserves for it
    num_gpus: float = 0.0


@dataclass
class Outcome:
    """A finished task: ``value`` on success, else ``error``; ``meta``: where it ran
    (Ray: ``gpus``, the GPUs Ray gave the task)."""

    task: Task
    value: Any = None
    error: BaseException | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class _Inline:
    """A task already run in this process (the one-worker local executor)."""

    outcome: Outcome
    meta: dict = field(default_factory=dict)


def available_cores() -> int:
    """CPUs this process may run on: its affinity mask (``taskset``, a container's cpuset),
    which can be fewer than ``os.cpu_count()``, the machine's (training/threads.py caps with it)."""
    import os

    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # no affinity API (macOS, Windows)
        return os.cpu_count() or 1


def _call(fn: Callable[..., Any], threads: int, args: tuple, emit: Any) -> Any:
    import torch

    # at most this machine's cores (a Ray node may have fewer than the driver planned for)
    torch.set_num_threads(max(1, min(threads, available_cores())))
    return fn(*args, emit=emit)


_worker: dict[str, Any] = {}


def _init_worker(queue: Any) -> None:
    _worker["queue"] = queue


def _pool_call(fn: Callable[..., Any], threads: int, args: tuple) -> Any:
    q = _worker.get("queue")
    return _call(fn, threads, args, q.put if q is not None else None)


class LocalExecutor:
    """Tasks on this machine: in this process (``workers=1``) or a spawn process pool."""

    name = "local"

    def __init__(self, workers: int = 1, on_event: Callable[[dict], None] | None = None):
        self.workers = max(1, workers)
        self.on_event = on_event
        self._pool = self._manager = self._queue = None

    def capacity(self) -> int:
        return self.workers

    def gpus_for(self, device: str, trains: bool) -> float:
        """Local processes reserve nothing: ``train.device`` alone picks the device."""
        return 0.0

    def put(self, obj: Any) -> Any:
        return obj  # a pool worker receives its own pickled copy with each task

    def submit(self, task: Task) -> Any:
        if self.workers == 1:
            try:
                out = Outcome(task, value=_call(task.fn, task.num_cpus, task.args, self.on_event))
            except Exception as err:  # reported by name by the caller; the rest go on
                out = Outcome(task, error=err)
            return _Inline(out)
        if self._pool is None:
            self._start()
        return self._pool.submit(_pool_call, task.fn, task.num_cpus, task.args), task

    def _start(self) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")
        self._manager = ctx.Manager()
        self._queue = self._manager.Queue()
        self._pool = ProcessPoolExecutor(
            self.workers, mp_context=ctx, initializer=_init_worker, initargs=(self._queue,)
        )

    def wait(self, handles: list) -> tuple[list[Outcome], list]:
        """Block until at least one handle is done -> (outcomes of the done ones, pending)."""
        inline = [h for h in handles if isinstance(h, _Inline)]
        if inline:
            return [h.outcome for h in inline], [h for h in handles if not isinstance(h, _Inline)]
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_futures

        by_future = dict(handles)
        while True:
            done, _ = wait_futures(by_future, timeout=0.25, return_when=FIRST_COMPLETED)
            self._drain()
            if done:
                break
        outcomes = []
        for fut in done:
            task = by_future.pop(fut)
            err = fut.exception()
            outcomes.append(Outcome(task, error=err) if err else Outcome(task, fut.result()))
        return outcomes, list(by_future.items())

    def _drain(self) -> None:
        import queue as queue_mod

        while self._queue is not None:
            try:
                ev = self._queue.get_nowait()
            except (queue_mod.Empty, EOFError, OSError):
                return
            if self.on_event:
                self.on_event(ev)

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
            if not cancel:
                self._drain()
            self._manager.shutdown()
            self._pool = self._manager = self._queue = None


def _ray_call(fn: Callable[..., Any], threads: int, *args: Any) -> tuple[Any, dict]:
    # top-level ObjectRef arguments arrive here already resolved from the object store
    import ray

    return _call(fn, threads, args, None), {"gpus": len(ray.get_gpu_ids())}


class RayExecutor:
    """One Ray task per unit of work on a local Ray instance or a cluster."""

    name = "ray"

    def __init__(self, address: str | None = None, on_event: Callable[[dict], None] | None = None):
        ray = import_ray()
        self.on_event = on_event
        self.owned = not ray.is_initialized()
        t0 = time.perf_counter()
        if self.owned:
            try:
                ray.init(
                    address=address or None,
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level="ERROR",
                    # idle torch threads sleep instead of spinning (see train.prefer_passive_openmp)
                    runtime_env={"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}},
                )
            except ConnectionError as err:
                raise ConfigError(
                    f"cannot connect to the Ray cluster at {address}: {err}; start it with "
                    "`ray start --head` or check --ray-address / RAY_ADDRESS"
                ) from None
        self.startup_seconds = time.perf_counter() - t0
        self._remote = ray.remote(_ray_call)
        self._node_cpus: int | None = None

    def capacity(self) -> int:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def node_cpus(self) -> int:
        """The most CPUs one live node has: a task asking for more could never be scheduled."""
        import ray

        cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
        return max(1, int(max(cpus, default=1)))

    def gpus_for(self, device: str, trains: bool) -> float:
        """GPUs a task asks for: one for a job that trains with ``train.device`` ``cuda``, or
        ``auto`` when the cluster has GPUs; none otherwise. Ray hides every GPU a task did not
        ask for (``CUDA_VISIBLE_DEVICES``), so without this ``auto`` trains on the CPU."""
        import ray

        if not trains or device == "cpu":
            return 0.0
        if device == "auto" and not ray.cluster_resources().get("GPU", 0):
            return 0.0  # CPU-only cluster: ask for none, or the task could never be scheduled
        return 1.0

    def put(self, obj: Any) -> Any:
        import ray

        return ray.put(obj)

    def submit(self, task: Task) -> Any:
        if self._node_cpus is None:
            self._node_cpus = self.node_cpus()
        ref = self._remote.options(
            # reserve the task's threads, but never more CPUs than a node has (threads stay)
            num_cpus=min(task.num_cpus, self._node_cpus),
            num_gpus=task.num_gpus,
            max_retries=RAY_MAX_RETRIES,  # lost worker or node only: the task is idempotent
            retry_exceptions=False,  # the task's own error would repeat: report it at once
            name=task.name,
        ).remote(task.fn, task.num_cpus, *task.args)
        return ref, task

    def wait(self, handles: list) -> tuple[list[Outcome], list]:
        import ray

        by_ref = dict(handles)
        done, _ = ray.wait(list(by_ref), num_returns=1)
        outcomes = []
        for ref in done:
            task = by_ref.pop(ref)
            try:
                value, meta = ray.get(ref)
                outcomes.append(Outcome(task, value=value, meta=meta))
            except ray.exceptions.RayTaskError as err:
                cause = getattr(err, "cause", None)
                outcomes.append(Outcome(task, error=cause if cause is not None else err))
            except ray.exceptions.RayError as err:  # worker or node lost RAY_MAX_RETRIES times
                outcomes.append(Outcome(task, error=err))
        return outcomes, list(by_ref.items())

    def close(self, cancel: bool = False) -> None:
        import ray

        if self.owned and ray.is_initialized():
            ray.shutdown()


def import_ray() -> Any:
    """``ray``, or a one-line ConfigError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--executor ray needs Ray, which is not installed: {RAY_INSTALL}"
        ) from None
    return ray


def make_executor(
    name: str,
    workers: int = 1,
    ray_address: str | None = None,
    on_event: Callable[[dict], None] | None = None,
) -> LocalExecutor | RayExecutor:
    """``local`` (``workers`` processes) or ``ray`` (``ray_address``; None: RAY_ADDRESS or local)."""
    if name == "local":
        return LocalExecutor(workers, on_event)
    if name == "ray":
        return RayExecutor(ray_address, on_event)
    raise ConfigError(f"unknown executor {name!r}; use one of {', '.join(EXECUTORS)}")


def run_all(executor: Any, tasks: list[Task]) -> list[Outcome]:
    """Run every task (at most ``capacity()`` in flight); outcomes in task order.

    A failing task does not stop the others; the caller closes the executor.
    """
    index = {id(t): i for i, t in enumerate(tasks)}
    outcomes: list[Outcome | None] = [None] * len(tasks)
    todo = list(tasks)
    pending: list = []
    limit = executor.capacity()
    try:
        while todo or pending:
            while todo and len(pending) < limit:
                pending.append(executor.submit(todo.pop(0)))
            done, pending = executor.wait(pending)
            for out in done:
                outcomes[index[id(out.task)]] = out
                if executor.on_event:
                    ev = {"event": "task", "name": out.task.name, "ok": out.error is None}
                    ev["outcome"] = out
                    executor.on_event(ev if out.error is None else {**ev, "error": out.error})
    except BaseException:
        executor.close(cancel=True)  # Ctrl-C or a driver error: drop the queued tasks
        raise
    return outcomes  # type: ignore[return-value]
