"""Technical indicators, incremental (one bar at a time) and vectorised (numpy).

Every indicator comes in two forms that agree to 1e-9:

- a class fed one value per bar, O(1) per update: ``SMA(10).update(close)``;
- a function over a whole array: ``sma(closes, 10)``.

Conventions shared by both forms (and by backtrader 1.9.78):

- Warm-up is ``float("nan")``: an update returns NaN, and a vectorised result
  holds NaN, until the indicator has enough data. ``.ready`` says when the
  values are real. NaN keeps every result a ``float`` (no ``Optional`` on the
  hot path) and lines up with numpy; comparisons with NaN are False, so a
  cross test during warm-up sees no signal.
- Exponential averages (EMA, and Wilder's smoothing in RSI and ATR) are seeded
  with the simple mean of their first ``period`` inputs.
- Inputs are finite floats; NaN or inf in the input gives unspecified output.

Where they live: the incremental classes of the first eight in
``_indicators_incremental.py``, their vectorised functions here, the rest
(oscillators, trend, volume, channels, TA-Lib) in ``_indicators_more.py``;
import every one from here.

Example
-------
>>> fast = SMA(3)
>>> [fast.update(x) for x in (1.0, 2.0, 3.0, 4.0)][2:]
[2.0, 3.0]
"""

from __future__ import annotations

from math import fsum
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from finchan.errors import ConfigError, DataError
from finchan.trade._indicators_incremental import (
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    BollingerBands,
    Highest,
    Lowest,
    _as_series,
    _check_period,
)

__all__ = [
    "ATR",
    "EMA",
    "MACD",
    "RSI",
    "SMA",
    "BollingerBands",
    "Highest",
    "Lowest",
    "atr",
    "bollinger_bands",
    "ema",
    "highest",
    "lowest",
    "macd",
    "rsi",
    "sma",
]


# ---------------------------------------------------------------------------
# vectorised forms
# ---------------------------------------------------------------------------


def _nan_like(x: np.ndarray) -> np.ndarray:
    return np.full(x.shape[0], np.nan)


def _smooth(x: np.ndarray, period: int, alpha: float) -> np.ndarray:
    """Exponential smoothing of ``x`` seeded at index ``period - 1`` with the SMA."""
    out = _nan_like(x)
    if x.shape[0] < period:
        return out
    import pandas as pd  # heavy; only the vectorised averages need its ewm kernel

    tail = x[period - 1 :].copy()
    tail[0] = fsum(x[:period].tolist()) / period
    out[period - 1 :] = pd.Series(tail).ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return out


def sma(values: Any, period: int) -> np.ndarray:
    """Simple moving average; NaN for the first ``period - 1`` entries.

    Each mean is a direct sum of its window (no running cumulative sum, whose
    rounding grows with the length of the series).
    """
    x = _as_series("sma", values)
    n = _check_period("sma", period)
    out = _nan_like(x)
    if x.shape[0] >= n:
        out[n - 1 :] = sliding_window_view(x, n).sum(axis=1) / n
    return out


def ema(values: Any, period: int, alpha: float | None = None) -> np.ndarray:
    """Exponential moving average seeded with the SMA of the first ``period`` values.

    Same formula and warm-up as :class:`EMA`; NaN for the first
    ``period - 1`` entries.
    """
    x = _as_series("ema", values)
    n = _check_period("ema", period)
    if alpha is None:
        alpha = 2.0 / (n + 1.0)
    elif not 0.0 < alpha <= 1.0:
        raise ConfigError(f"ema: alpha must be in (0, 1], got {alpha!r}")
    return _smooth(x, n, alpha)


def rsi(values: Any, period: int = 14) -> np.ndarray:
    """Wilder's RSI (see :class:`RSI`); NaN for the first ``period`` entries."""
    x = _as_series("rsi", values)
    n = _check_period("rsi", period)
    out = _nan_like(x)
    if x.shape[0] <= n:
        return out
    d = np.diff(x)
    up = _smooth(np.where(d > 0.0, d, 0.0), n, 1.0 / n)[n - 1 :]
    down = _smooth(np.where(d < 0.0, -d, 0.0), n, 1.0 / n)[n - 1 :]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 100.0 - 100.0 / (1.0 + up / down)
    r = np.where(down == 0.0, np.where(up > 0.0, 100.0, 50.0), r)
    out[n:] = r
    return out


def atr(high: Any, low: Any, close: Any, period: int = 14) -> np.ndarray:
    """Wilder's average true range (see :class:`ATR`); NaN for the first ``period`` entries."""
    h = _as_series("atr", high, "high")
    lo = _as_series("atr", low, "low")
    c = _as_series("atr", close, "close")
    if not h.shape == lo.shape == c.shape:
        raise DataError(
            f"atr: high, low and close must have the same length, got "
            f"{h.shape[0]}, {lo.shape[0]}, {c.shape[0]}"
        )
    n = _check_period("atr", period)
    out = _nan_like(c)
    if c.shape[0] <= n:
        return out
    pc = c[:-1]
    tr = np.maximum(h[1:], pc) - np.minimum(lo[1:], pc)
    out[1:] = _smooth(tr, n, 1.0 / n)
    return out


def bollinger_bands(
    values: Any, period: int = 20, k: float = 2.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bollinger bands ``(mid, upper, lower)``, population std (see :class:`BollingerBands`).

    NaN for the first ``period - 1`` entries.
    """
    x = _as_series("bollinger_bands", values)
    n = _check_period("bollinger_bands", period)
    mid = sma(x, n)
    width = _nan_like(x)
    m = x.shape[0] - n + 1
    if m > 0:
        mean = mid[n - 1 :]
        # two-pass variance, one window offset at a time: exact like the
        # incremental form, without an (m, n) temporary
        m2 = np.zeros(m)
        for j in range(n):
            dev = x[j : j + m] - mean
            m2 += dev * dev
        width[n - 1 :] = k * np.sqrt(m2 / n)
    return mid, mid + width, mid - width


def macd(
    values: Any, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MACD ``(macd, signal, hist)`` (see :class:`MACD`).

    ``macd`` is NaN for the first ``slow - 1`` entries, ``signal`` and
    ``hist`` for the first ``slow + signal - 2``.
    """
    x = _as_series("macd", values)
    f = _check_period("macd", fast, "fast")
    s = _check_period("macd", slow, "slow")
    g = _check_period("macd", signal, "signal")
    line = ema(x, f) - ema(x, s)
    sig = _nan_like(x)
    if x.shape[0] >= s:
        sig[s - 1 :] = ema(line[s - 1 :], g)
    return line, sig, line - sig


def _rolling_extreme(owner: str, values: Any, period: int, op: np.ufunc) -> np.ndarray:
    x = _as_series(owner, values)
    n = _check_period(owner, period)
    out = _nan_like(x)
    size = x.shape[0]
    if size < n:
        return out
    # doubling: after the loop ext[i] = op over x[i : i + w], w the largest power
    # of two <= n; two overlapping such windows cover any window of length n,
    # so the whole thing is O(size * log n) array operations
    ext = x
    w = 1
    while 2 * w <= n:
        ext = op(ext[:-w], ext[w:])
        w *= 2
    m = size - n + 1
    out[n - 1 :] = op(ext[:m], ext[n - w : n - w + m])
    return out


def highest(values: Any, period: int) -> np.ndarray:
    """Rolling maximum of the last ``period`` values; NaN for the first ``period - 1``."""
    return _rolling_extreme("highest", values, period, np.maximum)


def lowest(values: Any, period: int) -> np.ndarray:
    """Rolling minimum of the last ``period`` values; NaN for the first ``period - 1``."""
    return _rolling_extreme("lowest", values, period, np.minimum)


# The indicators added beside the first eight live in their own module, which
# builds on the helpers above; they are loaded on first use (PEP 562), so that
# either module can be imported first.
if TYPE_CHECKING:
    from finchan.trade._indicators_more import (
        ADX,
        CCI,
        OBV,
        ROC,
        VWAP,
        DonchianChannels,
        KeltnerChannels,
        Momentum,
        ParabolicSAR,
        StdDev,
        Stochastic,
        TALib,
        WilliamsR,
        ZScore,
        adx,
        cci,
        donchian_channels,
        keltner_channels,
        momentum,
        obv,
        parabolic_sar,
        roc,
        stddev,
        stochastic,
        vwap,
        williams_r,
        zscore,
    )

__all__ += [
    "ADX",
    "CCI",
    "OBV",
    "ROC",
    "VWAP",
    "DonchianChannels",
    "KeltnerChannels",
    "Momentum",
    "ParabolicSAR",
    "StdDev",
    "Stochastic",
    "TALib",
    "WilliamsR",
    "ZScore",
    "adx",
    "cci",
    "donchian_channels",
    "keltner_channels",
    "momentum",
    "obv",
    "parabolic_sar",
    "roc",
    "stddev",
    "stochastic",
    "vwap",
    "williams_r",
    "zscore",
]
_MORE = frozenset(__all__[__all__.index("ADX") :])


def __getattr__(name: str) -> Any:
    if name in _MORE:
        from finchan.trade import _indicators_more

        value = getattr(_indicators_more, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
