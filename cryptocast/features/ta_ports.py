"""Array ports of the ``ta`` indicators whose ta code loops over pandas scalars row by row.

ta 0.11 computes PSAR, ATR, CCI, MFI and Aroon with per-row Python calls on pandas objects
(``Series.iloc`` reads and writes, ``rolling().apply(lambda)``): together ~8 s per 48k-row
hourly series, most of the feature budget. These functions follow ta's formulas step by step on
NumPy arrays instead; tests/test_features.py checks each against ta itself on real candles.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _rolling(x: np.ndarray, window: int) -> np.ndarray:
    """(n - window + 1, window) trailing windows of ``x`` (a view, no copy)."""
    return sliding_window_view(x, window)


def _pad(values: np.ndarray, n: int) -> np.ndarray:
    """Right-align ``values`` in a length-``n`` array of NaN (the first rows are warm-up)."""
    out = np.full(n, np.nan)
    if len(values):
        out[n - len(values) :] = values
    return out


def psar_values(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, step: float, max_step: float
) -> np.ndarray:
    """Parabolic SAR, line for line ``ta.trend.PSARIndicator.psar`` (on a RangeIndex).

    ta's loop takes ~6 s for 48k candles and, on a DatetimeIndex with pandas 3, writes some
    values by label (new rows) instead of by position; this gives ta's RangeIndex numbers.
    """
    h, lo = high.tolist(), low.tolist()
    psar = [float(x) for x in close]
    up, af = True, step
    up_high, down_low = h[0], lo[0]
    for i in range(2, len(psar)):
        reversal = False
        if up:
            p = psar[i - 1] + af * (up_high - psar[i - 1])
            if lo[i] < p:
                reversal, p, down_low, af = True, up_high, lo[i], step
            else:
                if h[i] > up_high:
                    up_high, af = h[i], min(af + step, max_step)
                if lo[i - 2] < p:
                    p = lo[i - 2]
                elif lo[i - 1] < p:
                    p = lo[i - 1]
        else:
            p = psar[i - 1] - af * (psar[i - 1] - down_low)
            if h[i] > p:
                reversal, p, up_high, af = True, down_low, h[i], step
            else:
                if lo[i] < down_low:
                    down_low, af = lo[i], min(af + step, max_step)
                if h[i - 2] > p:
                    p = h[i - 2]
                elif h[i - 1] > p:
                    p = h[i - 1]
        psar[i] = p
        up = up != reversal
    return np.asarray(psar, dtype="float64")


def atr_values(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Wilder's ATR as ``ta.volatility.AverageTrueRange`` (its 0.0 warm-up rows become NaN)."""
    prev = np.concatenate([[np.nan], close[:-1]])
    tr = np.fmax(np.fmax(high - low, np.abs(high - prev)), np.abs(low - prev))
    n = len(close)
    out = np.full(n, np.nan)
    if n < window:
        return out
    trl = tr.tolist()
    a = float(np.mean(tr[0:window]))
    out[window - 1] = a
    vals = [a]
    for i in range(window, n):  # the recursion is sequential; plain floats keep it cheap
        a = (a * (window - 1) + trl[i]) / float(window)
        vals.append(a)
    out[window - 1 :] = vals
    return out


def cci_values(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int, constant: float
) -> np.ndarray:
    """Commodity Channel Index as ``ta.trend.CCIIndicator`` (mean absolute deviation)."""
    tp = (high + low + close) / 3.0
    n = len(tp)
    if n < window:
        return np.full(n, np.nan)
    w = _rolling(tp, window)  # (n-window+1, window)
    mean = w.mean(axis=1)
    mad = np.abs(w - mean[:, None]).mean(axis=1)
    return _pad((tp[window - 1 :] - mean) / (constant * mad), n)


def mfi_values(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, window: int
) -> np.ndarray:
    """Money Flow Index (0-100) as ``ta.volume.MFIIndicator``."""
    tp = (high + low + close) / 3.0
    prev = np.concatenate([[np.nan], tp[:-1]])
    up_down = np.where(tp > prev, 1, np.where(tp < prev, -1, 0))
    mfr = tp * volume * up_down
    n = len(tp)
    if n < window:
        return np.full(n, np.nan)
    w = _rolling(mfr, window)
    pos = np.where(w >= 0.0, w, 0.0).sum(axis=1)
    neg = np.abs(np.where(w < 0.0, w, 0.0).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _pad(100 - (100 / (1 + pos / neg)), n)


def aroon_values(x: np.ndarray, window: int, use_max: bool) -> np.ndarray:
    """Aroon up (``use_max``) or down (0-100) as ``ta.trend.AroonIndicator`` over window + 1."""
    n = len(x)
    if n < window + 1:
        return np.full(n, np.nan)
    w = _rolling(x, window + 1)
    pos = w.argmax(axis=1) if use_max else w.argmin(axis=1)
    return _pad(pos.astype("float64") / window * 100, n)


def adx_values(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """ADX (0-100) as ``ta.trend.ADXIndicator.adx``, with its Wilder sums and 0.0 warm-up rows.

    ta leaves the last smoothed sum at 0 (its loops stop one short); ``adx`` never reads that
    entry for the current row, so the value is still causal (ta's adx_pos/adx_neg are not).
    """
    n, w = len(close), window
    m = n - (w - 1)
    if m <= w:
        return np.full(n, np.nan)
    prev = np.concatenate([[np.nan], close[:-1]])
    ddm = np.amax([high, prev], axis=0) - np.amin([low, prev], axis=0)  # row 0 is NaN, as in ta
    up = np.concatenate([[np.nan], high[1:] - high[:-1]])
    down = np.concatenate([[np.nan], low[:-1] - low[1:]])
    pos = np.where((up > down) & (up > 0), up, 0.0)
    neg = np.where((down > up) & (down > 0), down, 0.0)

    def wilder_sum(x: np.ndarray) -> np.ndarray:
        s = np.zeros(m)
        s[0] = x[1 : w + 1].sum()  # ta: the first `window` non-NaN values
        xl, acc = x.tolist(), s[0]
        for i in range(1, m - 1):
            acc = acc - (acc / float(w)) + xl[w + i]
            s[i] = acc
        return s

    trs, dip_s, din_s = wilder_sum(ddm), wilder_sum(pos), wilder_sum(neg)
    with np.errstate(divide="ignore", invalid="ignore"):
        dip = np.where(trs != 0, 100 * (dip_s / trs), 0.0)
        din = np.where(trs != 0, 100 * (din_s / trs), 0.0)
        dx = np.where(dip + din != 0, 100 * np.abs((dip - din) / (dip + din)), 0.0)
    adx = np.zeros(m)
    adx[w] = dx[0:w].mean()
    dxl, acc = dx.tolist(), adx[w]
    for i in range(w + 1, m):
        acc = ((acc * (w - 1)) + dxl[i - 1]) / float(w)
        adx[i] = acc
    return np.concatenate([np.zeros(w - 1), adx])
