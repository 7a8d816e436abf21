"""The indicator catalogue: name -> causal, scale-free columns computed with the ``ta`` package.

Every entry takes a candle frame with a RangeIndex (``open high low close volume``) and its own
keyword parameters, and returns named columns. Rules each entry follows:

- ``ta`` is always called with ``fillna=False``: its fill is a backward fill, which copies future
  values into the warm-up rows. Warm-up stays NaN and ``features.compute_features`` drops it.
- Six entries (PSAR, ADX, ATR, CCI, MFI, Aroon) run ``cryptocast.features.ta_ports``: the same formulas
  as ta on arrays, since ta's per-row pandas loops cost ~8 s per hourly series (tests compare
  each port with ta itself).
- ``ta`` is always called on a RangeIndex frame: with pandas 3 its PSAR writes by label, which on
  a DatetimeIndex silently gives wrong values (``compute_indicator`` resets the index).
- Price-like outputs (moving averages, MACD, Ichimoku lines, VWAP, PSAR, ATR) are divided by the
  close, so a scaler fit on 2018-2020 prices still makes sense at 2022 prices.
- Nothing looks ahead: no ``shift(-k)``, no centred windows, no whole-series statistics
  (tests/test_features.py checks every entry on prefixes of the data).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import pandas as pd

from cryptocast.errors import ConfigError
from cryptocast.features import ta_ports as P


def _a(s: pd.Series) -> np.ndarray:
    return s.to_numpy("float64")


Indicator = Callable[..., dict[str, pd.Series]]
CATALOGUE: dict[str, Indicator] = {}


def _register(name: str) -> Callable[[Indicator], Indicator]:
    def deco(fn: Indicator) -> Indicator:
        CATALOGUE[name] = fn
        return fn

    return deco


def indicator_params(name: str) -> dict[str, object]:
    """Parameters of catalogue entry ``name`` with their defaults."""
    sig = inspect.signature(CATALOGUE[name])
    return {k: p.default for k, p in sig.parameters.items() if k != "df"}


def resolve_params(name: str, params: dict[str, object]) -> dict[str, object]:
    """Defaults overlaid with ``params``; ConfigError naming the valid names / parameters."""
    if name not in CATALOGUE:
        raise ConfigError(
            f"unknown indicator {name!r}; valid indicators: {', '.join(sorted(CATALOGUE))}"
        )
    valid = indicator_params(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        listed = ", ".join(f"{k}={v}" for k, v in valid.items()) or "(none)"
        raise ConfigError(
            f"indicator {name!r}: unknown parameter {unknown[0]!r}; valid parameters: {listed}"
        )
    out = dict(valid)
    for k, v in params.items():
        default = valid[k]
        if isinstance(default, int) and not isinstance(v, int) or isinstance(v, bool):
            raise ConfigError(f"indicator {name!r}: parameter {k} must be an integer, got {v!r}")
        if isinstance(default, (int, float)) and v <= 0:  # type: ignore[operator]
            raise ConfigError(f"indicator {name!r}: parameter {k} must be > 0, got {v!r}")
        out[k] = v
    return out


def column_prefix(name: str, params: dict[str, object]) -> str:
    """``rsi`` + ``{window: 14}`` -> ``rsi_14`` (parameter values in signature order)."""
    values = [params[k] for k in indicator_params(name)]
    return "_".join([name, *(f"{v:g}" if isinstance(v, float) else str(v) for v in values)])


def compute_indicator(df: pd.DataFrame, name: str, params: dict[str, object]) -> pd.DataFrame:
    """Run one catalogue entry on ``df`` (any index) and return its columns on a RangeIndex."""
    resolved = resolve_params(name, params)
    frame = df.reset_index(drop=True)  # ta must see a RangeIndex (PSAR writes by label)
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = CATALOGUE[name](frame, **resolved)
    prefix = column_prefix(name, resolved)
    out = pd.DataFrame({f"{prefix}_{k}" if k else prefix: v.to_numpy() for k, v in cols.items()})
    return out.replace([np.inf, -np.inf], np.nan).astype("float64")


# ---- momentum ----------------------------------------------------------------------------------
@_register("rsi")
def _rsi(df: pd.DataFrame, window: int = 14) -> dict[str, pd.Series]:
    from ta.momentum import RSIIndicator

    return {"": RSIIndicator(df.close, window, fillna=False).rsi() / 100.0}


@_register("stoch")
def _stoch(df: pd.DataFrame, window: int = 14, smooth_window: int = 3) -> dict[str, pd.Series]:
    from ta.momentum import StochasticOscillator

    so = StochasticOscillator(df.high, df.low, df.close, window, smooth_window, fillna=False)
    return {"k": so.stoch() / 100.0, "d": so.stoch_signal() / 100.0}


@_register("roc")
def _roc(df: pd.DataFrame, window: int = 12) -> dict[str, pd.Series]:
    from ta.momentum import ROCIndicator

    return {"": ROCIndicator(df.close, window, fillna=False).roc() / 100.0}


@_register("williams_r")
def _williams_r(df: pd.DataFrame, lbp: int = 14) -> dict[str, pd.Series]:
    from ta.momentum import WilliamsRIndicator

    return {"": WilliamsRIndicator(df.high, df.low, df.close, lbp, fillna=False).williams_r() / 100}


# ---- trend -------------------------------------------------------------------------------------
@_register("sma")
def _sma(df: pd.DataFrame, window: int = 20) -> dict[str, pd.Series]:
    from ta.trend import SMAIndicator

    return {"": SMAIndicator(df.close, window, fillna=False).sma_indicator() / df.close - 1}


@_register("ema")
def _ema(df: pd.DataFrame, window: int = 20) -> dict[str, pd.Series]:
    from ta.trend import EMAIndicator

    return {"": EMAIndicator(df.close, window, fillna=False).ema_indicator() / df.close - 1}


@_register("macd")
def _macd(
    df: pd.DataFrame, window_fast: int = 12, window_slow: int = 26, window_sign: int = 9
) -> dict[str, pd.Series]:
    from ta.trend import MACD

    m = MACD(df.close, window_slow, window_fast, window_sign, fillna=False)
    return {
        "line": m.macd() / df.close,
        "signal": m.macd_signal() / df.close,
        "diff": m.macd_diff() / df.close,
    }


@_register("adx")
def _adx(df: pd.DataFrame, window: int = 14) -> dict[str, pd.Series]:
    adx = pd.Series(P.adx_values(_a(df.high), _a(df.low), _a(df.close), window), index=df.index)
    # ta fills its first 2*window rows with 0.0 instead of NaN: mark them as warm-up.
    adx.iloc[: 2 * window] = np.nan
    # Only adx() is offered: ta's adx_pos/adx_neg leave the LAST row at 0 until the next candle
    # arrives, so they are not causal.
    return {"": adx / 100.0}


@_register("cci")
def _cci(df: pd.DataFrame, window: int = 20, constant: float = 0.015) -> dict[str, pd.Series]:
    cci = P.cci_values(_a(df.high), _a(df.low), _a(df.close), window, constant)
    return {"": pd.Series(cci / 100.0, index=df.index)}


@_register("aroon")
def _aroon(df: pd.DataFrame, window: int = 25) -> dict[str, pd.Series]:
    up = P.aroon_values(_a(df.high), window, use_max=True)
    down = P.aroon_values(_a(df.low), window, use_max=False)
    return {
        "up": pd.Series(up / 100.0, index=df.index),
        "down": pd.Series(down / 100.0, index=df.index),
    }


@_register("ichimoku")
def _ichimoku(
    df: pd.DataFrame, window1: int = 9, window2: int = 26, window3: int = 52
) -> dict[str, pd.Series]:
    from ta.trend import IchimokuIndicator

    # visual=False: visual=True shifts the spans forward and fills with the whole-series mean.
    ich = IchimokuIndicator(df.high, df.low, window1, window2, window3, visual=False, fillna=False)
    span_b = ich.ichimoku_b()
    span_b.iloc[: window3 - 1] = np.nan  # ta computes span B with min_periods=0
    return {
        "conv": ich.ichimoku_conversion_line() / df.close - 1,
        "base": ich.ichimoku_base_line() / df.close - 1,
        "a": ich.ichimoku_a() / df.close - 1,
        "b": span_b / df.close - 1,
    }


@_register("psar")
def _psar(df: pd.DataFrame, step: float = 0.02, max_step: float = 0.2) -> dict[str, pd.Series]:
    sar = P.psar_values(_a(df.high), _a(df.low), _a(df.close), step, max_step)
    dist = pd.Series(sar, index=df.index) / df.close - 1
    dist.iloc[:2] = np.nan  # the first two values are the closes themselves
    return {"": dist}


# ---- volatility --------------------------------------------------------------------------------
@_register("bollinger")
def _bollinger(df: pd.DataFrame, window: int = 20, window_dev: int = 2) -> dict[str, pd.Series]:
    from ta.volatility import BollingerBands

    bb = BollingerBands(df.close, window, window_dev, fillna=False)
    return {"pband": bb.bollinger_pband(), "wband": bb.bollinger_wband() / 100.0}


@_register("atr")
def _atr(df: pd.DataFrame, window: int = 14) -> dict[str, pd.Series]:
    atr = P.atr_values(_a(df.high), _a(df.low), _a(df.close), window)
    return {"": pd.Series(atr, index=df.index) / df.close}


@_register("keltner")
def _keltner(df: pd.DataFrame, window: int = 20, window_atr: int = 10) -> dict[str, pd.Series]:
    from ta.volatility import KeltnerChannel

    kc = KeltnerChannel(df.high, df.low, df.close, window, window_atr, fillna=False)
    return {"pband": kc.keltner_channel_pband(), "wband": kc.keltner_channel_wband() / 100.0}


# ---- volume ------------------------------------------------------------------------------------
@_register("obv")
def _obv(df: pd.DataFrame, window: int = 20) -> dict[str, pd.Series]:
    from ta.volume import OnBalanceVolumeIndicator

    # OBV itself is a running sum that grows without bound; its change over the trailing window
    # divided by the volume traded in that window is in [-1, 1] and means the same in any year.
    obv = OnBalanceVolumeIndicator(df.close, df.volume, fillna=False).on_balance_volume()
    return {"": (obv - obv.shift(window)) / df.volume.rolling(window).sum()}


@_register("mfi")
def _mfi(df: pd.DataFrame, window: int = 14) -> dict[str, pd.Series]:
    mfi = P.mfi_values(_a(df.high), _a(df.low), _a(df.close), _a(df.volume), window)
    return {"": pd.Series(mfi / 100.0, index=df.index)}


@_register("cmf")
def _cmf(df: pd.DataFrame, window: int = 20) -> dict[str, pd.Series]:
    from ta.volume import ChaikinMoneyFlowIndicator

    cmf = ChaikinMoneyFlowIndicator(df.high, df.low, df.close, df.volume, window, fillna=False)
    return {"": cmf.chaikin_money_flow()}


@_register("vwap")
def _vwap(df: pd.DataFrame, window: int = 14) -> dict[str, pd.Series]:
    from ta.volume import VolumeWeightedAveragePrice

    vwap = VolumeWeightedAveragePrice(df.high, df.low, df.close, df.volume, window, fillna=False)
    return {"": vwap.volume_weighted_average_price() / df.close - 1}


@_register("volume_ratio")
def _volume_ratio(df: pd.DataFrame, window: int = 20) -> dict[str, pd.Series]:
    # log of volume relative to its trailing mean: volume levels drift by 10x over the years.
    return {"": np.log1p(df.volume) - np.log1p(df.volume.rolling(window).mean())}
