"""Schema of ``bench/results/*.json`` and a hand-written validator (no jsonschema dependency).

Every results file is the document written by :func:`bench.common.write_results`::

    {"benchmark": str, "quick": bool, "created": str, "git_commit": str | null,
     "machine": {"cpu_count": int, "python": str, "torch": str | null, "torch_threads": int, ...},
     "records": [record, ...]}   # non-empty

Every record carries ``figure`` (str), ``value`` (number, or null for a summary that could not be
computed, e.g. no crossover in the measured range), ``unit`` (str) and ``params`` (dict), so the
Markdown tables can treat all benchmarks alike. On top of that:

- attention timing records (``figure == "attention_time"``) carry the fields issue 7 asks for:
  ``impl`` in {favor, sdpa}, ``L``, ``head_dim``, ``nb_features`` (int, null for sdpa), ``pass``
  in {fwd, fwd_bwd}, ``seconds`` > 0, ``peak_bytes`` (int or null) and ``device``. The summary
  records in the same file (exponents, crossover, GFLOP/s) are generic records, but an ``impl`` or
  ``pass`` they carry must still be one of the allowed values.
- peer comparisons (``darts``) carry ``darts_value`` and ``x_darts`` (> 0) and both sides'
  ``threads``, or ``skipped: true`` with a ``reason`` and a null value (darts not installed).
- each benchmark must contain the figures its table row is built from (:data:`REQUIRED_FIGURES`),
  so a renamed figure fails here rather than silently dropping out of ``bench/RESULTS.md``.

Errors are collected, not raised one by one: :func:`validate` returns every problem as one line
naming the record index and key.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

MACHINE_KEYS: dict[str, tuple[type, ...]] = {
    "cpu_count": (int,),
    "python": (str,),
    "torch": (str, type(None)),
    "torch_threads": (int,),
}
# Figures only the full run must report (quick mode skips them to stay within seconds).
REQUIRED_FULL_ONLY: dict[str, set[str]] = {
    "backtest": {"workers 2 speed-up over 1"},
    "grid_exec": {
        "grid seconds, --workers 2",
        "grid seconds, --executor ray*",
        "ray start-up seconds*",
        "grid speed-up over serial, --executor ray",
    },
    "threads": {"threads train speed-up*"},
}
ATTENTION_IMPLS = {"favor", "sdpa"}
ATTENTION_PASSES = {"fwd", "fwd_bwd"}

# Figures each benchmark must report (the ones bench/tables.py puts in the summary table);
# fnmatch patterns, each matched by at least one record.
REQUIRED_FIGURES: dict[str, set[str]] = {
    "fetch": {"fetch candles/s", "fetch requests", "import candles/s"},
    "store": {"append one day seconds, single file", "append one day seconds, monthly files"},
    "features": {"default features rows/s", "default features seconds, all three coins"},
    "train": {"train throughput * paper 1d", "train throughput * darts-anchor"},
    "backtest": {"backtest seconds", "seconds per refit*"},
    "forecast": {"forecast --no-fetch cold start"},
    "attention": {"attention_time", "matmul_gflops"},
    # scripts/gpu_check.py (make gpu-check; not run by bench.run)
    "gpu": {
        "precision_policy_mismatches",
        "val_loss",
        "val_loss_agreement",
        "attention_time",
        "attention_crossover_L",
        "train throughput *",
        "make compare seconds",
        "gpu-check failures",
    },
    "quantile": {"quantile/point train throughput ratio *", "quantile/point backtest time ratio"},
    "grid_exec": {
        "grid seconds, local serial",
        "tune trials per minute, pruner median",
        "tune trials per minute, pruner none",
    },
    "threads": {"threads refit speed-up*"},
    "grid": {"grid seconds", "grid speed-up", "seconds per refit", "skill_rmse"},
    "darts": {
        "train throughput lstm, ours vs darts",
        "train throughput transformer, ours vs darts",
        "seconds per refit, ours vs darts*",
    },
}


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _type_name(x: Any) -> str:
    return "null" if x is None else type(x).__name__


def _check_attention_time(rec: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    if rec.get("impl") not in ATTENTION_IMPLS:
        errors.append(f"{where}.impl: {rec.get('impl')!r} is not one of {sorted(ATTENTION_IMPLS)}")
    if rec.get("pass") not in ATTENTION_PASSES:
        errors.append(f"{where}.pass: {rec.get('pass')!r} is not one of {sorted(ATTENTION_PASSES)}")
    for key in ("L", "head_dim"):
        if not _is_int(rec.get(key)) or rec[key] <= 0:
            errors.append(f"{where}.{key}: expected a positive int, got {rec.get(key)!r}")
    m = rec.get("nb_features", "missing")
    if rec.get("impl") == "sdpa" and m is not None:
        errors.append(f"{where}.nb_features: must be null for sdpa, got {m!r}")
    if rec.get("impl") == "favor" and not (_is_int(m) and m > 0):
        errors.append(f"{where}.nb_features: expected a positive int for favor, got {m!r}")
    sec = rec.get("seconds")
    if not (_is_number(sec) and sec > 0):
        errors.append(f"{where}.seconds: expected a number > 0, got {sec!r}")
    fastest = rec.get("seconds_min")  # optional: fastest of the timed runs
    if "seconds_min" in rec and not (_is_number(fastest) and fastest > 0):
        errors.append(f"{where}.seconds_min: expected a number > 0, got {fastest!r}")
    peak = rec.get("peak_bytes", "missing")
    if not (peak is None or (_is_int(peak) and peak >= 0)):
        errors.append(f"{where}.peak_bytes: expected an int >= 0 or null, got {peak!r}")
    if not isinstance(rec.get("device"), str):
        errors.append(f"{where}.device: expected a str, got {_type_name(rec.get('device'))}")
    return errors


def _check_peer(rec: dict[str, Any], where: str) -> list[str]:
    """A live peer comparison (bench_darts): both sides measured, or skipped with a reason."""
    if rec.get("skipped"):
        ok = rec.get("value") is None and isinstance(rec.get("reason"), str)
        return [] if ok else [f"{where}: a skipped record needs value null and a reason"]
    errors = []
    for key in ("value", "darts_value", "x_darts"):
        if not (_is_number(rec.get(key)) and rec[key] > 0):
            errors.append(f"{where}.{key}: expected a number > 0, got {rec.get(key)!r}")
    for key in ("threads", "darts_threads"):
        if not (_is_int(rec.get(key)) and rec[key] > 0):
            errors.append(f"{where}.{key}: expected a positive int, got {rec.get(key)!r}")
    return errors


def _check_record(rec: Any, i: int, benchmark: str) -> list[str]:
    where = f"records[{i}]"
    if not isinstance(rec, dict):
        return [f"{where}: expected an object, got {_type_name(rec)}"]
    errors: list[str] = []
    fig = rec.get("figure")
    if not isinstance(fig, str) or not fig:
        errors.append(f"{where}.figure: expected a non-empty str, got {fig!r}")
    where = f"records[{i}] ({fig})" if isinstance(fig, str) else where
    if "value" not in rec:
        errors.append(f"{where}.value: missing")
    elif not (rec["value"] is None or _is_number(rec["value"])):
        errors.append(f"{where}.value: expected a number or null, got {_type_name(rec['value'])}")
    if not isinstance(rec.get("unit"), str):
        errors.append(f"{where}.unit: expected a str, got {_type_name(rec.get('unit'))}")
    if not isinstance(rec.get("params"), dict):
        errors.append(f"{where}.params: expected an object, got {_type_name(rec.get('params'))}")
    if benchmark == "darts":
        errors += _check_peer(rec, where)
    if benchmark in ("attention", "gpu"):
        if fig == "attention_time":
            errors += _check_attention_time(rec, where)
        else:
            if "impl" in rec and rec["impl"] not in ATTENTION_IMPLS:
                errors.append(f"{where}.impl: {rec['impl']!r} is not one of favor, sdpa")
            if "pass" in rec and rec["pass"] not in ATTENTION_PASSES:
                errors.append(f"{where}.pass: {rec['pass']!r} is not one of fwd, fwd_bwd")
    return errors


def validate(doc: Any) -> list[str]:
    """Return every schema violation of one results document (empty list: valid).

    Args:
        doc: the parsed JSON of a results file.

    Returns:
        One line per problem, naming the key (``records[3] (attention_time).seconds: ...``).
    """
    if not isinstance(doc, dict):
        return [f"document: expected an object, got {_type_name(doc)}"]
    errors: list[str] = []
    for key, types in (
        ("benchmark", (str,)),
        ("quick", (bool,)),
        ("created", (str,)),
        ("git_commit", (str, type(None))),
        ("machine", (dict,)),
        ("records", (list,)),
    ):
        if key not in doc:
            errors.append(f"{key}: missing")
        elif not isinstance(doc[key], types):
            errors.append(
                f"{key}: expected {' or '.join(t.__name__ for t in types)}, "
                f"got {_type_name(doc[key])}"
            )
    machine = doc.get("machine")
    if isinstance(machine, dict):
        for key, types in MACHINE_KEYS.items():
            if key not in machine:
                errors.append(f"machine.{key}: missing")
            elif not isinstance(machine[key], types) or isinstance(machine[key], bool):
                errors.append(f"machine.{key}: got {_type_name(machine[key])}")
    records = doc.get("records")
    benchmark = doc.get("benchmark") if isinstance(doc.get("benchmark"), str) else ""
    if isinstance(records, list):
        if not records:
            errors.append("records: empty; a benchmark must report at least one figure")
        for i, rec in enumerate(records):
            errors += _check_record(rec, i, benchmark)
        figures = [r["figure"] for r in records if isinstance(r, dict) and "figure" in r]
        missing = {
            pat
            for pat in REQUIRED_FIGURES.get(benchmark, set())
            | (set() if doc.get("quick") else REQUIRED_FULL_ONLY.get(benchmark, set()))
            if not fnmatch.filter([f for f in figures if isinstance(f, str)], pat)
        }
        if missing:
            errors.append(f"records: benchmark {benchmark!r} lacks figure(s) {sorted(missing)}")
    return errors


def validate_file(path: Path) -> list[str]:
    """Validate one results file; problems are prefixed with the file name.

    Besides :func:`validate`, checks that the file parses, that ``benchmark`` matches the file
    name (``fetch.json`` / ``fetch.quick.json``) and that ``quick`` matches the suffix.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        return [f"{path.name}: unreadable JSON ({exc})"]
    errors = validate(doc)
    stem = path.name.removesuffix(".json")
    quick = stem.endswith(".quick")
    name = stem.removesuffix(".quick")
    if isinstance(doc, dict):
        if isinstance(doc.get("benchmark"), str) and doc["benchmark"] != name:
            errors.append(f"benchmark: {doc['benchmark']!r} does not match the file name")
        if isinstance(doc.get("quick"), bool) and doc["quick"] != quick:
            errors.append(f"quick: {doc['quick']} does not match the file name")
    return [f"{path.name}: {e}" for e in errors]
