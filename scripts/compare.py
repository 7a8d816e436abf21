"""Our walk-forward backtests on the reference test period, written up as the comparison pages.

One command, three modes (``scripts/comparison/``); each runs (or, with ``--reuse``, reads) the
backtest of its config on a copy of the reference candles and renders its page from the reports'
``summary.json`` alone -- nothing is typed in by hand:

- ``price`` (``make compare``): ``configs/compare.yaml`` over >= 3 training seeds, beside the
  figures published by Seabe et al. (2023) -> ``<report_dir>/comparison.md``, and
  ``docs/comparison.md`` with ``--update-docs`` (``make compare UPDATE_DOCS=1``);
- ``probabilistic`` (``make compare-prob``): ``configs/compare_prob.yaml``, quantile models
  against rw_ewma under each calibration method -> ``docs/probabilistic.md``;
- ``volatility`` (``make compare-vol``): ``configs/compare_vol.yaml``, realized volatility
  over >= 3 training seeds against vol_persistence/HAR/EWMA/GARCH and the HAR family -> the
  results section of ``docs/volatility.md``;
- ``pooled`` (``make compare-global``): ``configs/compare_global*.yaml``, pooled ("global") models
  beside per-series ones, without and with the ten training-only pairs, over >= 3 seeds -> the
  results section of ``docs/global.md``.

Usage::

    python scripts/compare.py price                    # 3 seeds -> reports/compare/comparison.md
    python scripts/compare.py price --update-docs      # ... and docs/comparison.md
    python scripts/compare.py price --reuse            # reuse reports/compare/seed-N (same config)
    python scripts/compare.py price --seeds 0,1,2,3,4 --set train.epochs=4
    python scripts/compare.py probabilistic --calibrations cqr
    python scripts/compare.py volatility --reuse       # 3 seeds; reuse reports/compare_vol/seed-N
    python scripts/compare.py pooled --plan 1d-price   # daily price only, alone and universe

Every mode takes ``--config``, ``--data-dir``, ``--report``, ``--workers``, ``--reuse`` and
``--set KEY=VALUE``; ``python scripts/compare.py MODE --help`` lists the rest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a plain script from any directory

from scripts.comparison import pooled, price, probabilistic, volatility  # noqa: E402  (the path above)

MODES = {
    "price": price,
    "probabilistic": probabilistic,
    "volatility": volatility,
    "pooled": pooled,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--config", default=None, help="default: the mode's configs/compare*.yaml")
    shared.add_argument("--data-dir", type=Path, default=None, help="default: a copy of ../shared")
    shared.add_argument("--report", type=Path, default=None, help="default: backtest.report_dir")
    shared.add_argument("--workers", type=int, default=None)
    shared.add_argument("--reuse", action="store_true", help="read reports if their config matches")
    shared.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    modes = p.add_subparsers(dest="mode", required=True, metavar="MODE")
    for name, mode in MODES.items():
        sub = modes.add_parser(
            name, parents=[shared], help=mode.HELP, description=mode.__doc__.split("\n\n")[0]
        )
        mode.add_arguments(sub)
    args = p.parse_args(argv)
    args.config = args.config or str(REPO / "configs" / MODES[args.mode].CONFIG)
    return args


def main(argv: list[str] | None = None) -> int:
    from cryptocast.errors import CryptocastError

    args = parse_args(argv)
    try:
        return MODES[args.mode].run(args)
    except CryptocastError as err:  # one line, as the CLI does
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
