"""The thread plan (``cryptocast.training.threads``): threads per job and the OpenMP wait policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cryptocast.training.threads import apply_thread_plan, plan_threads


def test_a_single_job_on_a_quiet_machine_takes_every_core_and_keeps_spinning():
    """The old default (PASSIVE + all cores) made a quiet 2-core machine ~2x slower."""
    plan = plan_threads(jobs=1, cores=2, load=0.2)
    assert plan.threads == 2 and plan.wait_policy is None


@pytest.mark.parametrize("load", [1.0, 1.6, 9.5])
def test_a_busy_machine_changes_the_wait_policy_never_the_thread_count(load):
    """The thread count changes results in the last bits; the load must not decide it."""
    plan = plan_threads(jobs=1, cores=2, load=load)
    assert plan.threads == 2 and plan.wait_policy == "PASSIVE"  # sleep, don't spin, when busy
    assert plan_threads(jobs=1, cores=16, load=load).threads == 16
    assert plan_threads(jobs=2, cores=2, load=load) == plan_threads(jobs=2, cores=2, load=0.0)


@pytest.mark.parametrize("jobs,cores,threads", [(2, 2, 1), (4, 2, 1), (2, 16, 8), (3, 16, 5)])
def test_parallel_jobs_share_the_cores(jobs, cores, threads):
    plan = plan_threads(jobs=jobs, cores=cores, load=0.0)
    assert plan.threads == threads and plan.wait_policy is None
    assert threads * jobs <= cores or threads == 1


def test_several_threads_per_job_on_busy_cores_sleep_when_idle():
    assert plan_threads(jobs=2, cores=16, load=4.0).wait_policy == "PASSIVE"
    assert plan_threads(jobs=1, cores=2, load=3.0, user_threads=2).wait_policy == "PASSIVE"
    assert plan_threads(jobs=1, cores=2, load=0.0, user_threads=2).wait_policy is None


def test_the_users_settings_always_win():
    plan = plan_threads(jobs=2, cores=4, load=0.0, user_threads=3, user_policy="ACTIVE")
    assert plan.threads == 3 and plan.wait_policy is None and "yours" in plan.reason
    assert (
        plan_threads(jobs=1, cores=2, load=8.0, user_threads=2, user_policy="ACTIVE").wait_policy
        is None
    )
    assert plan_threads(jobs=1, cores=2, load=None).threads == 2  # no load average: assume quiet


def test_apply_sets_passive_only_when_the_plan_says_so(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    import cryptocast.training.threads as threads

    monkeypatch.setattr(threads, "available_cores", lambda: 2)

    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.2: 0.1)
    assert apply_thread_plan(1).threads == 2
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.2: 1.9)
    assert apply_thread_plan(1, user_threads=2).wait_policy == "PASSIVE"
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    apply_thread_plan(1, user_threads=2)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_train_command_applies_the_plan_before_torch_loads(tmp_path):
    """In a fresh process (torch not yet loaded): the CLI leaves a quiet machine's policy alone
    and sets torch's thread count from the plan."""
    code = (
        "import os, sys\n"
        "os.cpu_count = lambda: 2\n"
        "import cryptocast.training.threads as threads\n"
        "threads.available_cores = lambda: 2\n"
        "threads.busy_cores = lambda interval=0.2: 0.0\n"
        "from cryptocast.cli import main\n"
        "import cryptocast.evaluate.holdout as holdout\n"
        "def fake(*args, **kwargs):\n"
        "    import torch\n"
        "    print('threads', torch.get_num_threads(), os.environ.get('OMP_WAIT_POLICY'))\n"
        "    raise SystemExit(0)\n"
        "holdout.train_run = fake\n"
        "sys.argv = ['cryptocast', 'train']\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "threads 2 None" in out.stdout, out.stdout + out.stderr


def test_busy_cores_sees_a_process_spinning_on_a_core():
    """The policy is picked from CPU time measured now, not the lagging 1-minute load average
    (which counts the user's own previous command and made a quiet machine pick PASSIVE)."""
    from cryptocast.training.threads import busy_cores

    if busy_cores() is None:
        pytest.skip("no /proc/stat on this OS: the load average is used instead")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        import time

        time.sleep(0.3)  # past the interpreter's start-up
        assert busy_cores(0.3) >= 0.6
    finally:
        spinner.kill()
        spinner.wait()


def test_without_proc_stat_the_load_average_stands_in(monkeypatch):
    import cryptocast.training.threads as threads

    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.2: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    assert threads.machine_busy() == 1.5


def test_the_load_is_measured_only_when_it_can_change_the_plan(monkeypatch):
    """The 0.2 s sample picks the policy of a team of threads: skipped when the user set the
    policy or each job gets one thread (workers >= cores)."""
    import cryptocast.training.threads as threads

    calls: list[float] = []
    monkeypatch.setattr(threads, "busy_cores", lambda interval=0.2: calls.append(1) or 1.9)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert apply_thread_plan(1).wait_policy is None and calls == []
    monkeypatch.delenv("OMP_WAIT_POLICY")
    assert apply_thread_plan(2).threads == 1 and calls == []
    assert "OMP_WAIT_POLICY" not in os.environ
    assert apply_thread_plan(1).wait_policy == "PASSIVE" and calls == [1]
