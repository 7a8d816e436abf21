"""The thread plan (``cryptocast.threads``): threads per job and the OpenMP wait policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cryptocast.threads import apply_thread_plan, plan_threads


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
    plan = plan_threads(jobs=2, cores=2, load=0.0, user_threads=3, user_policy="ACTIVE")
    assert plan.threads == 3 and plan.wait_policy is None and "yours" in plan.reason
    assert (
        plan_threads(jobs=1, cores=2, load=8.0, user_threads=2, user_policy="ACTIVE").wait_policy
        is None
    )
    assert plan_threads(jobs=1, cores=2, load=None).threads == 2  # no load average: assume quiet


def test_apply_sets_passive_only_when_the_plan_says_so(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert apply_thread_plan(1).threads == 2
    assert "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setattr(os, "getloadavg", lambda: (5.0, 5.0, 5.0))
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
        "os.getloadavg = lambda: (0.0, 0.0, 0.0)\n"
        "from cryptocast.cli import main\n"
        "import cryptocast.runs as runs\n"
        "def fake(*args, **kwargs):\n"
        "    import torch\n"
        "    print('threads', torch.get_num_threads(), os.environ.get('OMP_WAIT_POLICY'))\n"
        "    raise SystemExit(0)\n"
        "runs.train_run = fake\n"
        "sys.argv = ['cryptocast', 'train']\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "threads 2 None" in out.stdout, out.stdout + out.stderr
