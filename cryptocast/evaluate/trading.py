"""Trading simulation from one-step forecasts: long/flat (or long/short), fees and slippage.

Timing (no look-ahead): at the close of candle t the model forecasts; the position for the next
candle is the sign of the predicted return (long if > 0; short if < 0 and ``long_short``; flat
otherwise, including a predicted return of exactly 0). It is held from close t to close t+1 and
earns ``position * (next_close / last_close - 1)``.

Costs: ``(fee_bps + slippage_bps) / 1e4`` times ``|position change|``, taken from equity at the
close where the position changes, before the new period's return:
``equity_t+1 = equity_t * (1 - cost_t) * (1 + position_t * r_t)``. The simulation starts flat, so
entering at the first bar pays one fee; there is no forced exit at the end (so always long equals
buy-and-hold, which pays one entry fee). A reversal long -> short costs twice.

Multi-step (H > 1) forecasts trade on step 1 only: the runner passes the step-1 predicted return
and the next candle's close. Each period is one candle; consecutive origins are assumed to be
consecutive candles (the walk-forward test set is).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from cryptocast.config.timeframes import periods_per_year
from cryptocast.errors import DataError


@dataclass(frozen=True)
class TradeStats:
    """Summary of one equity curve. Fractions, not percentages.

    ``turnover`` is the mean |position change| per period (1 for a position flipping in and out
    every other candle is 0.5); ``turnover_annual`` is that times periods per year.
    ``max_drawdown`` is a positive fraction (0.25 = the equity fell 25% from a peak).
    ``hit_rate`` is the share of in-market periods whose NET return (after costs) is > 0 (NaN if
    never in the market); ``n_trades`` counts position changes, the first entry included;
    ``exposure`` is the share of periods in the market.
    """

    total_return: float
    annual_return: float
    annual_vol: float
    sharpe: float
    max_drawdown: float
    turnover: float
    turnover_annual: float
    hit_rate: float
    n_trades: int
    exposure: float
    n_periods: int


@dataclass(frozen=True)
class TradeResult:
    """Strategy and buy-and-hold on the same periods.

    ``equity`` and ``buy_hold_equity`` have n + 1 points: 1.0 at the first decision close, then the
    value after each period. ``returns`` are the strategy's net per-period returns (n,),
    ``positions`` the position held over each period (n,) in {-1, 0, 1}.
    """

    equity: np.ndarray
    returns: np.ndarray
    positions: np.ndarray
    stats: TradeStats
    buy_hold_equity: np.ndarray
    buy_hold: TradeStats

    def to_dict(self) -> dict[str, float]:
        """Flat record for summary.json: strategy stats plus ``bh_``-prefixed buy-and-hold ones."""
        out = dict(asdict(self.stats))
        out.update({f"bh_{k}": v for k, v in asdict(self.buy_hold).items()})
        return out


def _stats(
    equity: np.ndarray, returns: np.ndarray, positions: np.ndarray, ppy: float
) -> TradeStats:
    n = returns.size
    total = float(equity[-1] - 1.0)
    # Geometric annualisation; a wiped-out account (equity <= 0) annualises to -100%.
    annual = float(equity[-1] ** (ppy / n) - 1.0) if equity[-1] > 0 else -1.0
    std = float(np.std(returns, ddof=1)) if n > 1 else 0.0
    mean = float(np.mean(returns))
    # No variation: flat equity has Sharpe 0; a constant non-zero return has none defined (NaN).
    no_var = 0.0 if mean == 0.0 else float("nan")
    sharpe = mean / std * math.sqrt(ppy) if std > 0 else no_var
    peak = np.maximum.accumulate(equity)
    mdd = float(np.max(1.0 - equity / peak))
    changes = np.abs(np.diff(np.concatenate([[0.0], positions])))
    in_market = positions != 0
    hit = float(np.mean(returns[in_market] > 0)) if in_market.any() else float("nan")
    return TradeStats(
        total_return=total,
        annual_return=annual,
        annual_vol=std * math.sqrt(ppy),
        sharpe=float(sharpe),
        max_drawdown=mdd,
        turnover=float(changes.sum() / n),
        turnover_annual=float(changes.sum() / n * ppy),
        hit_rate=hit,
        n_trades=int(np.count_nonzero(changes)),
        exposure=float(in_market.mean()),
        n_periods=int(n),
    )


def positions_from_signal(pred_return, long_short: bool = False) -> np.ndarray:
    """Position per period from the predicted return's sign: 1, 0 (or -1 with ``long_short``)."""
    p = np.asarray(pred_return, dtype=np.float64).reshape(-1)
    pos = (p > 0).astype(np.float64)
    if long_short:
        pos[p < 0] = -1.0
    return pos


def simulate(
    last_close,
    next_close,
    pred_return,
    timeframe: str,
    fee_bps: float = 10.0,
    slippage_bps: float = 5.0,
    long_short: bool = False,
) -> TradeResult:
    """Simulate the sign strategy over consecutive candles and buy-and-hold on the same periods.

    Args:
        last_close: close at each decision time t (n,).
        next_close: close of the next candle t+1 (n,).
        pred_return: predicted return for t -> t+1 (n,); only its sign is used (any monotone
            return: simple, log, or ``y_pred / last_close - 1``); NaN means stay flat.
        timeframe: candle size, for annualisation (``periods_per_year``: 8760 for 1h, 365 for 1d).
        fee_bps: exchange fee per unit of position change, basis points.
        slippage_bps: slippage per unit of position change, basis points.
        long_short: go short on a negative predicted return instead of staying flat.

    Returns:
        ``TradeResult``.

    Raises:
        DataError: arrays of different length, empty, non-finite or non-positive prices.
    """
    lc = np.asarray(last_close, dtype=np.float64).reshape(-1)
    nc = np.asarray(next_close, dtype=np.float64).reshape(-1)
    pr = np.asarray(pred_return, dtype=np.float64).reshape(-1)
    if not (lc.size == nc.size == pr.size) or lc.size == 0:
        raise DataError(
            f"trading simulation needs equal non-empty arrays, got {lc.size}, {nc.size}, {pr.size}"
        )
    if (
        not (np.all(np.isfinite(lc)) and np.all(np.isfinite(nc)))
        or np.any(lc <= 0)
        or np.any(nc <= 0)
    ):
        raise DataError("trading simulation needs finite positive closes; drop rows without y_true")
    ppy = periods_per_year(timeframe)
    cost = (fee_bps + slippage_bps) / 1e4
    r = nc / lc - 1.0  # realised simple return of each candle
    pos = positions_from_signal(np.nan_to_num(pr, nan=0.0), long_short)
    dpos = np.abs(np.diff(np.concatenate([[0.0], pos])))
    growth = (1.0 - cost * dpos) * (1.0 + pos * r)
    equity = np.concatenate([[1.0], np.cumprod(growth)])
    returns = growth - 1.0

    # Buy-and-hold written out on its own (not via the strategy path) so tests can compare them.
    bh_growth = 1.0 + r
    bh_growth[0] *= 1.0 - cost
    bh_equity = np.concatenate([[1.0], np.cumprod(bh_growth)])
    ones = np.ones_like(r)
    return TradeResult(
        equity=equity,
        returns=returns,
        positions=pos,
        stats=_stats(equity, returns, pos, ppy),
        buy_hold_equity=bh_equity,
        buy_hold=_stats(bh_equity, bh_growth - 1.0, ones, ppy),
    )


def simulate_positions(
    last_close,
    next_close,
    positions,
    timeframe: str,
    fee_bps: float = 10.0,
    slippage_bps: float = 5.0,
) -> tuple[np.ndarray, np.ndarray, TradeStats]:
    """Hold ``positions`` (n,) (any size, e.g. a volatility-targeted exposure) over each candle,
    with the costs and timing of ``simulate``. Returns ``(equity (n+1,), returns (n,), stats)``."""
    lc = np.asarray(last_close, dtype=np.float64).reshape(-1)
    nc = np.asarray(next_close, dtype=np.float64).reshape(-1)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1)
    if not (lc.size == nc.size == pos.size) or lc.size == 0 or not np.all(np.isfinite(pos)):
        raise DataError("position simulation needs equal non-empty arrays and finite positions")
    cost = (fee_bps + slippage_bps) / 1e4
    dpos = np.abs(np.diff(np.concatenate([[0.0], pos])))
    growth = (1.0 - cost * dpos) * (1.0 + pos * (nc / lc - 1.0))
    equity = np.concatenate([[1.0], np.cumprod(growth)])
    returns = growth - 1.0
    return equity, returns, _stats(equity, returns, pos, periods_per_year(timeframe))
