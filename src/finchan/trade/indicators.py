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

Example
-------
>>> fast = SMA(3)
>>> [fast.update(x) for x in (1.0, 2.0, 3.0, 4.0)][2:]
[2.0, 3.0]
"""

from __future__ import annotations

from collections import deque
from math import fsum, nan, sqrt
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from finchan.errors import ConfigError, DataError

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


def _check_period(owner: str, period: Any, name: str = "period") -> int:
    # bool is an int subclass; SMA(True) is a bug, not a period of 1
    if isinstance(period, bool) or not isinstance(period, int | np.integer) or period < 1:
        raise ConfigError(f"{owner}: {name} must be an integer >= 1, got {period!r}")
    return int(period)


def _as_series(owner: str, values: Any, name: str = "values") -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{owner}: {name} must be 1-D, got shape {arr.shape}")
    return arr


# ---------------------------------------------------------------------------
# incremental forms
# ---------------------------------------------------------------------------


class SMA:
    """Simple moving average of the last ``period`` values.

    A running sum over a ring buffer, re-summed exactly with ``math.fsum``
    each time the ring wraps: O(1) amortised, and the float drift of the
    running sum is bounded by about ``2 * period`` roundings however long the
    series. At every wrap the value equals ``fsum(window) / period``, the
    correctly rounded mean (what backtrader computes on every bar).

    Parameters
    ----------
    period : int
        Window length, >= 1.

    Attributes
    ----------
    value : float
        Last value, NaN during warm-up (the first ``period - 1`` updates).
    ready : bool
        True once ``period`` values have been seen.
    """

    __slots__ = ("_buf", "_div", "_i", "_n", "_sum", "period", "ready", "value")

    def __init__(self, period: int) -> None:
        n = _check_period("SMA", period)
        self.period = n
        self._n = n
        self._buf = [0.0] * n
        self._i = 0
        self._sum = 0.0
        # dividing by NaN yields NaN during warm-up without a branch per update
        self._div = nan
        self.ready = False
        self.value = nan

    def update(self, x: float) -> float:
        """Add one value and return the mean of the last ``period`` (NaN in warm-up)."""
        buf = self._buf
        i = self._i
        s = self._sum + x - buf[i]
        buf[i] = x
        i += 1
        if i == self._n:
            i = 0
            s = fsum(buf)
            if not self.ready:
                self.ready = True
                self._div = float(self._n)
        self._i = i
        self._sum = s
        v = s / self._div
        self.value = v
        return v


class EMA:
    """Exponential moving average, seeded with the SMA of the first ``period`` values.

    ``ema = prev * (1 - alpha) + x * alpha`` with ``alpha = 2 / (period + 1)``
    unless given, the formula and seed of backtrader's ``EMA``. The first
    value comes at the ``period``-th update.

    Parameters
    ----------
    period : int
        Seed length (and, without ``alpha``, the span), >= 1.
    alpha : float, optional
        Smoothing factor in (0, 1]; ``1 / period`` gives Wilder's smoothing.

    Attributes
    ----------
    value : float
        Last value, NaN during warm-up.
    ready : bool
        True once the seed is complete.
    """

    __slots__ = ("_a", "_b", "_seed", "alpha", "period", "ready", "value")

    def __init__(self, period: int, alpha: float | None = None) -> None:
        self.period = _check_period("EMA", period)
        if alpha is None:
            alpha = 2.0 / (period + 1.0)
        elif not 0.0 < alpha <= 1.0:
            raise ConfigError(f"EMA: alpha must be in (0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self._a = self.alpha
        self._b = 1.0 - self.alpha
        self._seed: list[float] = []
        self.ready = False
        self.value = nan

    def update(self, x: float) -> float:
        """Add one value and return the average (NaN during warm-up)."""
        if self.ready:
            v = self.value * self._b + x * self._a
            self.value = v
            return v
        seed = self._seed
        seed.append(x)
        if len(seed) < self.period:
            return nan
        v = fsum(seed) / self.period
        self._seed = []
        self.ready = True
        self.value = v
        return v


def _rsi_from(avg_up: float, avg_down: float) -> float:
    # backtrader's RSI formula; its RSI_Safe values for the x/0 and 0/0 cases
    if avg_down == 0.0:
        return 100.0 if avg_up > 0.0 else 50.0
    return 100.0 - 100.0 / (1.0 + avg_up / avg_down)


class RSI:
    """Relative strength index with Wilder's smoothing (``alpha = 1 / period``).

    Up and down moves are ``max(diff, 0)`` and ``max(-diff, 0)`` of
    consecutive values; each is smoothed like :class:`EMA` with
    ``alpha = 1 / period``, seeded with the mean of the first ``period`` moves.
    ``RSI = 100 - 100 / (1 + avg_up / avg_down)``; 100 when ``avg_down`` is 0
    and ``avg_up`` is not, 50 when both are 0 (backtrader's ``RSI_Safe``).
    The first value comes at update ``period + 1``.

    Parameters
    ----------
    period : int
        Smoothing period, >= 1 (14 is usual).
    """

    __slots__ = ("_a", "_b", "_down", "_downs", "_prev", "_up", "_ups", "period", "ready", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("RSI", period)
        # the smoothing is inlined rather than two EMA objects: RSI runs per bar
        self._a = 1.0 / self.period
        self._b = 1.0 - self._a
        self._ups: list[float] = []
        self._downs: list[float] = []
        self._up = self._down = nan
        self._prev = nan
        self.ready = False
        self.value = nan

    def update(self, x: float) -> float:
        """Add one value and return the RSI in [0, 100] (NaN during warm-up)."""
        d = x - self._prev
        self._prev = x
        up_move = d if d > 0.0 else 0.0
        down_move = -d if d < 0.0 else 0.0
        if self.ready:
            a = self._a
            b = self._b
            up = self._up = self._up * b + up_move * a
            down = self._down = self._down * b + down_move * a
        elif d != d:  # first value: no move yet
            return nan
        else:
            self._ups.append(up_move)
            self._downs.append(down_move)
            if len(self._ups) < self.period:
                return nan
            up = self._up = fsum(self._ups) / self.period
            down = self._down = fsum(self._downs) / self.period
            self._ups = self._downs = []
            self.ready = True
        v = _rsi_from(up, down)
        self.value = v
        return v


class ATR:
    """Average true range with Wilder's smoothing (``alpha = 1 / period``).

    True range needs the previous close:
    ``max(high, prev_close) - min(low, prev_close)``, so the first bar has
    none; the average is seeded with the mean of the first ``period`` true
    ranges and the first value comes at update ``period + 1`` (backtrader).

    Parameters
    ----------
    period : int
        Smoothing period, >= 1 (14 is usual).
    """

    __slots__ = ("_a", "_b", "_prev_close", "_ranges", "period", "ready", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("ATR", period)
        self._a = 1.0 / self.period
        self._b = 1.0 - self._a
        self._ranges: list[float] = []
        self._prev_close = nan
        self.ready = False
        self.value = nan

    def update(self, high: float, low: float, close: float) -> float:
        """Add one bar and return the ATR (NaN during warm-up)."""
        pc = self._prev_close
        self._prev_close = close
        tr = (high if high > pc else pc) - (low if low < pc else pc)
        if self.ready:
            v = self.value * self._b + tr * self._a
        elif pc != pc:  # first bar: no previous close
            return nan
        else:
            self._ranges.append(tr)
            if len(self._ranges) < self.period:
                return nan
            v = fsum(self._ranges) / self.period
            self._ranges = []
            self.ready = True
        self.value = v
        return v


class BollingerBands:
    """Bollinger bands: ``SMA(period) +/- k * std`` over the same window.

    ``std`` is the population standard deviation (divides by ``period``, not
    ``period - 1``), as in backtrader's ``BollingerBands`` (its default) and
    Bollinger's own definition. Running sums of ``x - K`` and ``(x - K)**2``
    give the mean and variance in O(1) per bar; the shift ``K`` is reset to
    the window mean and the sums recomputed exactly with ``math.fsum`` each
    time the ring wraps, so neither cancellation nor drift can grow.

    Parameters
    ----------
    period : int
        Window length, >= 1 (20 is usual).
    k : float
        Width of the bands in standard deviations (2.0 is usual).

    Attributes
    ----------
    mid, upper, lower : float
        Last values, NaN during warm-up.
    value : tuple of float
        ``(mid, upper, lower)``, as returned by :meth:`update`.
    """

    __slots__ = (
        "_buf",
        "_i",
        "_s1",
        "_s2",
        "_shift",
        "k",
        "lower",
        "mid",
        "period",
        "ready",
        "upper",
        "value",
    )

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        self.period = _check_period("BollingerBands", period)
        self.k = float(k)
        self._buf = [0.0] * self.period
        self._i = 0
        self._shift = self._s1 = self._s2 = 0.0
        self.ready = False
        self.mid = self.upper = self.lower = nan
        self.value = (nan, nan, nan)

    def update(self, x: float) -> tuple[float, float, float]:
        """Add one value and return ``(mid, upper, lower)`` (NaNs during warm-up)."""
        n = self.period
        buf = self._buf
        i = self._i
        old = buf[i]
        buf[i] = x
        i += 1
        self._i = i
        if i == n:
            self._i = 0
            shift = self._shift = fsum(buf) / n
            devs = [v - shift for v in buf]
            s1 = self._s1 = fsum(devs)
            s2 = self._s2 = fsum([d * d for d in devs])
            self.ready = True
        elif self.ready:
            shift = self._shift
            d_new = x - shift
            d_old = old - shift
            s1 = self._s1 = self._s1 + d_new - d_old
            s2 = self._s2 = self._s2 + d_new * d_new - d_old * d_old
        else:
            return self.value
        mean = shift + s1 / n
        m2 = s2 - s1 * s1 / n
        width = self.k * sqrt(m2 / n) if m2 > 0.0 else 0.0
        self.mid = mean
        self.upper = mean + width
        self.lower = mean - width
        self.value = (mean, self.upper, self.lower)
        return self.value


class MACD:
    """Moving average convergence divergence.

    ``macd = EMA(fast) - EMA(slow)``, ``signal = EMA(macd, signal)``,
    ``hist = macd - signal``; every EMA seeded with the SMA of its first
    inputs, as in backtrader. ``macd`` is defined from update ``slow``,
    ``signal`` and ``hist`` from update ``slow + signal - 1``.

    Parameters
    ----------
    fast, slow, signal : int
        Periods, >= 1 (12, 26, 9 are usual).

    Attributes
    ----------
    macd, signal, hist : float
        Last values, NaN during warm-up.
    value : tuple of float
        ``(macd, signal, hist)``, as returned by :meth:`update`.
    """

    __slots__ = ("_fast", "_signal", "_slow", "hist", "macd", "ready", "signal", "value")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self._fast = EMA(_check_period("MACD", fast, "fast"))
        self._slow = EMA(_check_period("MACD", slow, "slow"))
        self._signal = EMA(_check_period("MACD", signal, "signal"))
        self.ready = False
        self.macd = self.signal = self.hist = nan
        self.value = (nan, nan, nan)

    def update(self, x: float) -> tuple[float, float, float]:
        """Add one value and return ``(macd, signal, hist)`` (NaNs during warm-up)."""
        f = self._fast.update(x)
        s = self._slow.update(x)
        if not self._slow.ready:
            return self.value
        m = f - s
        sig = self._signal.update(m)
        self.ready = self._signal.ready
        self.macd = m
        self.signal = sig
        self.hist = m - sig
        self.value = (m, sig, self.hist)
        return self.value


class Highest:
    """Highest of the last ``period`` values, O(1) amortised (monotonic deque).

    The deque holds the values that can still become the window's extreme,
    best first, with the bar number at which each one leaves the window.

    Parameters
    ----------
    period : int
        Window length, >= 1.

    Attributes
    ----------
    value : float
        Last value, NaN during warm-up (the first ``period - 1`` updates).
    ready : bool
        True once ``period`` values have been seen.
    """

    __slots__ = ("_count", "_ends", "_sign", "_vals", "period", "ready", "value")

    #: +1 keeps the maximum; Lowest flips it (negation is exact in floats)
    _SIGN = 1.0

    def __init__(self, period: int) -> None:
        self.period = _check_period(type(self).__name__, period)
        self._sign = self._SIGN
        self._vals: deque[float] = deque()
        self._ends: deque[int] = deque()
        self._count = 0
        self.ready = False
        self.value = nan

    def update(self, x: float) -> float:
        """Add one value and return the window's extreme (NaN during warm-up)."""
        y = x * self._sign
        vals = self._vals
        ends = self._ends
        while vals and vals[-1] <= y:
            vals.pop()
            ends.pop()
        c = self._count
        vals.append(y)
        ends.append(c + self.period)
        if ends[0] <= c:
            vals.popleft()
            ends.popleft()
        c += 1
        self._count = c
        if c < self.period:
            return nan
        self.ready = True
        v = vals[0] * self._sign
        self.value = v
        return v


class Lowest(Highest):
    """Lowest of the last ``period`` values, O(1) amortised (monotonic deque).

    Parameters
    ----------
    period : int
        Window length, >= 1.
    """

    __slots__ = ()

    _SIGN = -1.0


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
