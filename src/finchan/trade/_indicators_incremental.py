"""The incremental indicators: one value per bar, O(1) work per update.

Re-exported by :mod:`finchan.trade.indicators` (import them from there), whose
docstring gives the shared conventions (NaN warm-up, ``.ready``, ``.value``).
"""

from __future__ import annotations

from collections import deque
from math import fsum, nan, sqrt
from typing import Any

import numpy as np

from finchan.errors import ConfigError, DataError


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
