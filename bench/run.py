"""Run every benchmark in its own process, validate the results and regenerate the tables.

``python -m bench.run [--quick] [--only NAME ...]`` (``make bench`` / ``make bench-quick``):

1. discovers ``bench/bench_*.py`` (benchmark ``x`` lives in ``bench/bench_x.py``);
2. runs each as ``python -m bench.bench_x [--quick]`` in a fresh process group, so one
   benchmark's imports, threads and memory cannot skew the next, under a timeout that kills the
   whole group (benchmarks start servers and child processes);
3. checks that each wrote its results file during this run, validates every results file of the
   mode against :mod:`bench.schema`;
4. regenerates ``bench/RESULTS.md`` from the full results (``bench/RESULTS.quick.md`` from the
   quick ones, which are git-ignored, so a smoke run never overwrites the published table).

Exits 1 if a benchmark failed or timed out or a results file is invalid.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO, RESULTS_DIR, results_path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_TIMEOUT = {True: 90.0, False: 600.0}  # seconds per benchmark: quick, full
# Full runs that take most of an hour: left out of a full ``make bench`` (their quick mode still
# runs in ``make bench-quick``); ``make bench-grid`` / ``make bench-paper-grid`` (``--only NAME``)
# runs one, without timeout.
LONG = {"grid", "paper_grid"}


@dataclass
class Outcome:
    """One benchmark process: name, ok, wall seconds and a one-line reason when not ok."""

    name: str
    ok: bool
    seconds: float
    reason: str = ""


def discover(bench_dir: Path = BENCH_DIR) -> list[str]:
    """Names of the benchmarks in ``bench_dir`` (``bench_fetch.py`` -> ``fetch``), sorted."""
    return sorted(p.stem.removeprefix("bench_") for p in Path(bench_dir).glob("bench_*.py"))


def run_one(name: str, quick: bool, timeout: float, results_dir: Path) -> Outcome:
    """Run ``python -m bench.bench_{name}`` in its own process group and check its output file."""
    cmd = [sys.executable, "-m", f"bench.bench_{name}"] + (["--quick"] if quick else [])
    env = {**os.environ, "CRYPTOCAST_BENCH_RESULTS": str(results_dir)}
    out_file = results_path(results_dir, name, quick)
    before = out_file.stat().st_mtime if out_file.exists() else None
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return Outcome(name, False, time.perf_counter() - t0, f"timed out after {timeout:.0f} s")
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join("    " + line for line in (output or "").splitlines()[-15:])
        return Outcome(name, False, seconds, f"exit code {proc.returncode}\n{tail}")
    if not out_file.exists() or (before is not None and out_file.stat().st_mtime == before):
        return Outcome(name, False, seconds, f"exited 0 but did not write {out_file.name}")
    return Outcome(name, True, seconds)


def validate_all(results_dir: Path, quick: bool) -> list[str]:
    """Schema problems of every results file of this mode in ``results_dir``."""
    from bench.schema import validate_file

    errors: list[str] = []
    for path in sorted(Path(results_dir).glob("*.json")):
        if path.name.removesuffix(".json").endswith(".quick") == quick:
            errors += validate_file(path)
    return errors


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, regenerate the Markdown, print a summary; return the exit code."""
    from bench.tables import markdown_path, render

    names = discover()
    parser = argparse.ArgumentParser(description="Run the cryptocast benchmarks.")
    parser.add_argument("--quick", action="store_true", help="smoke mode (CI): seconds each")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=names, help="run only these")
    parser.add_argument("--timeout", type=float, help="seconds per benchmark (90 quick, 600 full)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    timeout = args.timeout or DEFAULT_TIMEOUT[args.quick]
    if args.only and LONG & set(args.only) and not args.quick and not args.timeout:
        timeout = 4 * 3600.0
    results_dir = args.results_dir.resolve()
    results_dir.mkdir(parents=True, exist_ok=True)

    t_all = time.perf_counter()
    outcomes = []
    chosen = args.only or [n for n in names if args.quick or n not in LONG]
    if not args.quick and not args.only:
        print(
            f"(left out, about an hour each: {', '.join(sorted(LONG))}; make bench-grid, make bench-paper-grid)"
        )
    for name in chosen:
        print(f"bench {name}{' --quick' if args.quick else ''} ...", flush=True)
        outcome = run_one(name, args.quick, timeout, results_dir)
        status = "ok" if outcome.ok else f"FAILED: {outcome.reason}"
        print(f"  {name}: {outcome.seconds:.1f} s, {status}", flush=True)
        outcomes.append(outcome)

    errors = validate_all(results_dir, args.quick)
    for err in errors:
        print(f"schema: {err}")
    md = markdown_path(results_dir, args.quick)
    md.write_text(render(results_dir, args.quick))
    if not args.quick and results_dir == RESULTS_DIR:
        from bench.tables import update_performance_doc, update_readme

        update_performance_doc(results_dir=results_dir)
        update_readme(results_dir=results_dir)

    failed = [o.name for o in outcomes if not o.ok]
    total = time.perf_counter() - t_all
    print(
        f"{len(outcomes) - len(failed)}/{len(outcomes)} benchmarks ok in {total:.1f} s"
        + (f"; failed: {', '.join(failed)}" if failed else "")
        + (f"; {len(errors)} schema error(s)" if errors else "")
        + f"; tables in {md.relative_to(REPO) if md.is_relative_to(REPO) else md}"
    )
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
