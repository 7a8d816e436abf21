"""``cryptocast forecast``: the unattended daily (or hourly) job, quiet when it works."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from cryptocast.cli.app import (
    DataDirOpt,
    ExchangeUrlOpt,
    SetOpt,
    app,
    console,
    print_error,
    stamp_errors,
    utc_stamp,
)
from cryptocast.cli.output import FormatOpt, emit, use_format


def _fmt_time(ts: Any, timeframe: str) -> str:
    return ts.strftime("%Y-%m-%d" if timeframe.endswith(("d", "w")) else "%Y-%m-%d %H:%M")


def _pct(x: float) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.2f}%"


def _line(res: Any) -> str:
    """One concise line for cron mail, dated (wall clock, UTC)."""
    from cryptocast.config.timeframes import human_duration

    tf = res.timeframe
    steps = res.rows.iloc[[0, -1]] if len(res.rows) > 1 else res.rows
    if "predicted_vol" in steps.columns:  # a realized_vol run: annualised volatility
        pred = ", ".join(
            f"h{int(r.step)} {_fmt_time(r.target_time, tf)} vol {r.predicted_vol * 100:.1f}% "
            f"(today {r.rv_last * 100:.1f}%)"
            for r in steps.itertuples()
        )
    else:
        pred = ", ".join(
            f"h{int(r.step)} {_fmt_time(r.target_time, tf)} {r.predicted_close:.6g} "
            f"({r.predicted_return * 100:+.2f}%)"
            for r in steps.itertuples()
        )
    if res.stale:
        status = "[bold yellow]STALE[/] logged" if res.added else "[yellow]stale[/], already logged"
    else:
        status = "logged" if res.added else "already logged"
    if res.gap_reason is not None:
        status += " [bold yellow]GAP[/] in window"
    age = "age unknown" if res.model_age is None else f"{human_duration(res.model_age)} old"
    return (
        f"{utc_stamp()} {res.series}: last {_fmt_time(res.last_candle, tf)} close "
        f"{res.last_close:.6g} -> {pred}{_interval(res)}  run {res.run_id} (model {age}): {status}"
    )


def _interval(res: Any) -> str:
    """A quantile run's last-step 90% interval and how it was calibrated ("" for a point run)."""
    cal = getattr(res, "calibration", None)
    if not cal:
        return ""
    row = res.rows.iloc[-1]
    method = cal["method"]
    text = row.quantiles if method == "none" else row.calibrated_quantiles
    q = {round(float(k), 6): v for k, v in json.loads(text).items()}
    band = f" 90% {q[0.05]:.6g}..{q[0.95]:.6g}" if 0.05 in q and 0.95 in q else ""
    if method == "none":
        return f"{band} (uncalibrated)"
    if method == "aci":
        alpha = cal["alpha"].get("0.9")
        lvl = f", alpha {alpha[-1]:.4g}" if alpha else ""
        return f"{band} (calibrated aci after {cal['n_outcomes']} outcomes{lvl})"
    return f"{band} (calibrated {method})"


def _score_lines(res: Any) -> list[str]:
    stamp = utc_stamp()
    if not res.live:
        return [f"{stamp}   live: no forecast of {res.series} scored yet (filled {res.scored} now)"]
    out = []
    for model, m in res.live.items():
        if "qlike" in m:
            out.append(
                f"{stamp}   live {model}: {m['n']} scored (+{res.scored} now)  "
                f"QLIKE {m['qlike']:.4g} vs "
                f"vol_persistence {m['persistence_qlike']:.4g}  RMSE vol {m['rmse_vol']:.4g} vs "
                f"{m['persistence_rmse_vol']:.4g}"
            )
            continue
        da = m["directional_accuracy"]
        out.append(
            f"{stamp}   live {model}: {m['n']} scored (+{res.scored} now)  "
            f"MAE {m['mae']:.6g} vs persistence {m['persistence_mae']:.6g}  "
            f"MAPE {_pct(m['mape'])} vs {_pct(m['persistence_mape'])}  "
            f"direction {_pct(da * 100 if da == da else float('nan'))} (persistence calls none)"
        )
        if m.get("n_quantile"):
            out.append(
                f"  live {model} quantiles: {m['n_quantile']} scored  "
                f"{_coverages(m, '', 'rw_ewma')}  "
                f"CRPS {m['crps']:.4g} vs rw_ewma {m['rw_ewma_crps']:.4g} (log-return units)"
            )
        if m.get("n_calibrated"):
            out.append(
                f"  live {model} calibrated ({m['calibration']}): {m['n_calibrated']} scored  "
                f"{_coverages(m, 'calibrated_', 'raw')}  "
                f"CRPS {m['calibrated_crps']:.4g} vs raw {m['raw_crps']:.4g}"
            )
    return out


def _coverages(m: dict, prefix: str, other: str) -> str:
    """``80% coverage 81.0% vs <other> 86.5%  90% ...`` from ``<prefix>coverage_<c>`` beside
    ``<other>_coverage_<c>``, for the intervals the scores hold."""
    return "  ".join(
        f"{c}% coverage {_pct(100 * m[f'{prefix}coverage_{c}'])} vs {other} "
        f"{_pct(100 * m[f'{other}_coverage_{c}'])}"
        for c in (80, 90)
        if f"{prefix}coverage_{c}" in m
    )


def _score_records(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``--score --format csv``: one row per (source, model) of the live scores."""
    return [
        {"source": r["source"], "series": r["series"], "model": model, "scored_now": r["scored"]}
        | live
        for r in results
        if "live" in r
        for model, live in r["live"].items()
    ]


def _step_records(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``--format csv``: one row per forecast step (quantiles stay in the JSON format)."""
    keep = ("source", "series", "run_id", "last_candle", "last_close", "added", "stale", "gap")
    return [
        {k: r[k] for k in keep}
        | {k: v for k, v in step.items() if k not in ("quantiles", "calibrated_quantiles")}
        for r in results
        if "forecast" in r
        for step in r["forecast"]
    ]


@app.command()
def forecast(
    run: Annotated[
        list[Path] | None,
        typer.Option("--run", "-r", help="Run folder from `cryptocast train` (repeatable)."),
    ] = None,
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config", "-c", help="Config whose latest completed run to use (repeatable)."
        ),
    ] = None,
    set_: SetOpt = None,
    data_dir: DataDirOpt = Path("data"),
    exchange_url: ExchangeUrlOpt = None,
    no_fetch: Annotated[
        bool, typer.Option("--no-fetch", help="Use the stored candles; do not call the exchange.")
    ] = False,
    allow_stale: Annotated[
        bool,
        typer.Option(
            "--allow-stale", help="Forecast from old data anyway; rows are flagged stale."
        ),
    ] = False,
    allow_old_model: Annotated[
        bool,
        typer.Option(
            "--allow-old-model",
            help="Forecast with a model older than forecast.max_model_age (default 14 candles, "
            "at least 3 days).",
        ),
    ] = False,
    allow_gaps: Annotated[
        bool,
        typer.Option(
            "--allow-gaps",
            help="Forecast from a window spanning a gap over features.gap_tolerance; rows "
            "are flagged gap.",
        ),
    ] = False,
    score: Annotated[
        bool,
        typer.Option(
            "--score", help="Also fill realised closes of past forecasts and print live accuracy."
        ),
    ] = False,
    timeframe: Annotated[
        str | None,
        typer.Option("--timeframe", "-t", help="Timeframe you expect; must match the checkpoint."),
    ] = None,
    symbol: Annotated[
        list[str] | None,
        typer.Option(
            "--symbol",
            help="Only this series of a pooled run (repeatable; default: every evaluated symbol).",
        ),
    ] = None,
    grace: Annotated[
        str | None,
        typer.Option(
            "--grace",
            help="How long after a candle closed it may be missing (e.g. 30min; default a "
            "tenth of a candle).",
        ),
    ] = None,
    lock_timeout: Annotated[
        float, typer.Option("--lock-timeout", help="Seconds to wait for a concurrent run.")
    ] = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print results as JSON (= --format json).")
    ] = False,
    fmt: FormatOpt = "table",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    now: Annotated[
        str | None,
        typer.Option("--now", envvar="CRYPTOCAST_NOW", hidden=True, help="Clock override (UTC)."),
    ] = None,
) -> None:
    """Fetch new candles, predict the next horizon candles with a trained run, append to the log.

    The log is data/forecasts/{exchange}/{BASE}-{QUOTE}_{timeframe}.parquet, one row per step.
    A pooled run forecasts each of its evaluated symbols. Rerunning for the same candle adds
    nothing. Exit 0 when every series worked; otherwise the
    error's code (3 gap in the window, 5 stale data, 6 locked, 7 checkpoint or no run of the
    config, 10 model too old, ...; 8 when only some series failed). Lines start with the UTC time.
    """
    from cryptocast.api import forecast_each
    from cryptocast.errors import ConfigError, CryptocastError, PartialFailure

    stamp_errors()
    if as_json and fmt not in ("table", "json"):
        raise ConfigError(f"--json is --format json; pass --json or --format {fmt}, not both")
    fmt = use_format("json" if as_json else fmt, console)
    jobs: list[tuple[str, Path]] = [("run", p) for p in run or []]
    jobs += [("config", p) for p in config or []]
    if not jobs:
        raise ConfigError(
            "nothing to forecast; pass --run runs/NAME-TIMESTAMP or --config configs/X.yaml"
        )
    # the same for every series: the data, the clock and what a forecast may be made from
    options: dict[str, Any] = {
        "data_dir": data_dir, "fetch": not no_fetch, "exchange_url": exchange_url,
        "allow_stale": allow_stale, "allow_old_model": allow_old_model, "allow_gaps": allow_gaps,
        "timeframe": timeframe, "now": now, "grace": grace, "score": score,
        "lock_timeout": lock_timeout, "symbols": symbol,
    }  # fmt: skip
    results: list[dict[str, Any]] = []
    errors: list[tuple[str, CryptocastError]] = []
    n_series = 0
    for kind, path in jobs:
        try:  # each series of the run (a pooled run: each evaluated symbol, or --symbol)
            if kind == "config":  # its newest completed run, with --set applied
                done, failed = forecast_each(config=path, overrides=set_, **options), []
            else:
                done, failed = forecast_each(path, **options), []
        except PartialFailure as err:
            done, failed = list(err.done or []), list(err.failed)
        except CryptocastError as err:
            done, failed = [], [(None, err)]
        n_series += len(done) + len(failed)
        for sym, err in failed:
            where = f"{path} {sym}" if sym else str(path)
            errors.append((where, err))
            named = {"symbol": sym} if sym else {}
            results.append({"source": str(path), **named, "error": str(err),
                            "exit_code": err.exit_code})  # fmt: skip
            if len(jobs) > 1 or len(done) + len(failed) > 1:
                print_error(f"{where}: {err}")
        for res in done:
            results.append({"source": str(path), **res.to_dict()})
            if not quiet and fmt == "table":
                _print_result(res, score)
    if fmt == "json" and not quiet:
        typer.echo(json.dumps(results, indent=2))
    elif fmt == "csv" and not quiet:  # one row per scored model with --score, else per step
        rows = _score_records(results) if score else _step_records(results)
        emit(rows, list(dict.fromkeys(k for r in rows for k in r)), fmt)
    if not errors:
        return
    if len(errors) == n_series:
        raise errors[0][1]
    raise PartialFailure(
        f"{len(errors)} of {n_series} forecasts failed ({', '.join(p for p, _ in errors)}); "
        "see the messages above"
    )


def _print_result(res: Any, score: bool) -> None:
    """One series' dated line, its notes and (``--score``) its live accuracy."""
    console.print(_line(res), soft_wrap=True, highlight=False)
    for note in res.notes:  # what the job repaired, e.g. repeated rows of the log
        console.print(f"{utc_stamp()}   note: {note}", soft_wrap=True, highlight=False)
    if score:
        for line in _score_lines(res):
            console.print(line, soft_wrap=True, highlight=False)
