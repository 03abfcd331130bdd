"""More indicators: oscillators, trend, volume, channels, and a TA-Lib bridge.

Re-exported (loaded on first use) by :mod:`finchan.trade.indicators`; read that module's docstring
for the shared conventions (NaN warm-up, ``.ready``, ``.value``). Where TA-Lib
defines an indicator, both forms here follow TA-Lib's formula *and* its
warm-up (the index of its first output), and the tests check them against
TA-Lib to 1e-9 on 10,000 bars. The few places where TA-Lib's C code treats
a tiny denominator as zero use exact zero here; they differ only on
degenerate windows (a range below 1e-8).

Longer than the project's ~500 lines on purpose: fourteen indicators, each
with its class and its vectorised function side by side and checked against
TA-Lib together; split by family (oscillators, trend, volume, channels) when
it grows further.
"""

from __future__ import annotations

import datetime as _dt
from math import fsum, nan, sqrt
from typing import Any

import numpy as np

from finchan.errors import ConfigError, DataError
from finchan.trade.indicators import (
    ATR,
    EMA,
    SMA,
    Highest,
    Lowest,
    _as_series,
    _check_period,
    _nan_like,
    _smooth,
    atr,
    ema,
    highest,
    lowest,
    sma,
)

__all__ = [
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


def _same_length(owner: str, names: str, *arrays: np.ndarray) -> None:
    if len({a.shape[0] for a in arrays}) > 1:
        sizes = ", ".join(str(a.shape[0]) for a in arrays)
        raise DataError(f"{owner}: {names} must have the same length, got {sizes}")


def _hlc(owner: str, high: Any, low: Any, close: Any) -> tuple[np.ndarray, ...]:
    h = _as_series(owner, high, "high")
    lo = _as_series(owner, low, "low")
    c = _as_series(owner, close, "close")
    _same_length(owner, "high, low and close", h, lo, c)
    return h, lo, c


# ---------------------------------------------------------------------------
# Stochastic and Williams %R (TA-Lib STOCH, WILLR)
# ---------------------------------------------------------------------------


def _fast_k(close: float, hh: float, ll: float) -> float:
    # TA-Lib's arithmetic, rounding included: (c - ll) / ((hh - ll) / 100)
    diff = (hh - ll) / 100.0
    return (close - ll) / diff if diff != 0.0 else 0.0


class Stochastic:
    """Slow stochastic oscillator ``(%K, %D)``, TA-Lib's ``STOCH`` with SMA smoothing.

    ``fast %K = 100 * (close - lowest low) / (highest high - lowest low)``
    over ``fastk`` bars (0 when the range is 0), ``%K = SMA(fast %K, slowk)``,
    ``%D = SMA(%K, slowd)``. Both lines start at update
    ``fastk + slowk + slowd - 3`` (TA-Lib gives every output of a function
    the same first index). ``slowk=1`` gives TA-Lib's fast stochastic
    ``STOCHF(fastk, slowd)``.

    Parameters
    ----------
    fastk, slowk, slowd : int
        Periods, >= 1 (5, 3, 3 are TA-Lib's defaults).
    """

    __slots__ = ("_d", "_hh", "_k", "_ll", "d", "k", "ready", "value")

    def __init__(self, fastk: int = 5, slowk: int = 3, slowd: int = 3) -> None:
        fk = _check_period("Stochastic", fastk, "fastk")
        sk = _check_period("Stochastic", slowk, "slowk")
        sd = _check_period("Stochastic", slowd, "slowd")
        self._hh = Highest(fk)
        self._ll = Lowest(fk)
        self._k = SMA(sk)
        self._d = SMA(sd)
        self.ready = False
        self.k = self.d = nan
        self.value = (nan, nan)

    def update(self, high: float, low: float, close: float) -> tuple[float, float]:
        """Add one bar and return ``(%K, %D)`` (NaNs during warm-up)."""
        hh = self._hh.update(high)
        ll = self._ll.update(low)
        if not self._hh.ready:
            return self.value
        k = self._k.update(_fast_k(close, hh, ll))
        if not self._k.ready:
            return self.value
        d = self._d.update(k)
        # %D is ready at update fastk + slowk + slowd - 3, TA-Lib's start of both lines
        if not self._d.ready:
            return self.value
        self.ready = True
        self.k = k
        self.d = d
        self.value = (k, d)
        return self.value


def stochastic(
    high: Any, low: Any, close: Any, fastk: int = 5, slowk: int = 3, slowd: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Slow stochastic ``(%K, %D)`` (see :class:`Stochastic`); NaN for the first
    ``fastk + slowk + slowd - 3`` entries of both."""
    h, lo, c = _hlc("stochastic", high, low, close)
    fk = _check_period("stochastic", fastk, "fastk")
    sk = _check_period("stochastic", slowk, "slowk")
    sd = _check_period("stochastic", slowd, "slowd")
    k_out = _nan_like(c)
    d_out = _nan_like(c)
    start = fk + sk + sd - 3
    if c.shape[0] <= start:
        return k_out, d_out
    hh = highest(h, fk)[fk - 1 :]
    ll = lowest(lo, fk)[fk - 1 :]
    diff = (hh - ll) / 100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        fast = np.where(diff != 0.0, (c[fk - 1 :] - ll) / diff, 0.0)
    k = sma(fast, sk)
    d = _nan_like(k)
    d[sk - 1 :] = sma(k[sk - 1 :], sd)
    k_out[start:] = k[sk + sd - 2 :]
    d_out[start:] = d[sk + sd - 2 :]
    return k_out, d_out


class WilliamsR:
    """Williams %R: ``-100 * (highest high - close) / (highest high - lowest low)``.

    Over the last ``period`` bars, in [-100, 0], 0 when the range is 0;
    TA-Lib's ``WILLR``. First value at update ``period - 1``.

    Parameters
    ----------
    period : int
        Window length, >= 1 (14 is usual).
    """

    __slots__ = ("_hh", "_ll", "period", "ready", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("WilliamsR", period)
        self._hh = Highest(self.period)
        self._ll = Lowest(self.period)
        self.ready = False
        self.value = nan

    def update(self, high: float, low: float, close: float) -> float:
        """Add one bar and return %R (NaN during warm-up)."""
        hh = self._hh.update(high)
        ll = self._ll.update(low)
        if not self._hh.ready:
            return nan
        self.ready = True
        diff = (hh - ll) / -100.0
        v = (hh - close) / diff if diff != 0.0 else 0.0
        self.value = v
        return v


def williams_r(high: Any, low: Any, close: Any, period: int = 14) -> np.ndarray:
    """Williams %R (see :class:`WilliamsR`); NaN for the first ``period - 1`` entries."""
    h, lo, c = _hlc("williams_r", high, low, close)
    n = _check_period("williams_r", period)
    hh = highest(h, n)
    diff = (hh - lowest(lo, n)) / -100.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(diff != 0.0, (hh - c) / diff, np.where(np.isnan(diff), nan, 0.0))


# ---------------------------------------------------------------------------
# ADX / DMI (TA-Lib ADX, PLUS_DI, MINUS_DI)
# ---------------------------------------------------------------------------


class ADX:
    """Average directional index with the directional indicators +DI and -DI.

    Wilder's definitions as TA-Lib computes them: ``+DM = high - prev high``
    when it is positive and larger than ``-DM = prev low - low`` (and the
    mirror; both 0 on a tie); the true range as in :class:`ATR`. DM and TR
    are Wilder sums (the first is the sum of the first ``period - 1``
    values, then ``s = s - s / period + x``), ``+DI = 100 * +DM / TR``,
    ``DX = 100 * |+DI - -DI| / (+DI + -DI)``, and ADX is the mean of the
    first ``period`` DX values, then Wilder-smoothed. A bar whose DX is
    undefined (zero range) leaves ADX unchanged, as in TA-Lib.

    ``plus_di`` and ``minus_di`` start at update ``period`` (TA-Lib's
    ``PLUS_DI``/``MINUS_DI``), ``adx`` at ``2 * period - 1`` (``ADX``);
    ``ready`` refers to ``adx``.

    Parameters
    ----------
    period : int
        Smoothing period, >= 1 (14 is usual).

    Attributes
    ----------
    adx, plus_di, minus_di : float
        Last values, NaN during their warm-ups.
    value : tuple of float
        ``(adx, plus_di, minus_di)``, as returned by :meth:`update`.
    """

    __slots__ = (
        "_count",
        "_dm_m",
        "_dm_p",
        "_prev",
        "_sum_dx",
        "_tr",
        "adx",
        "minus_di",
        "period",
        "plus_di",
        "ready",
        "value",
    )

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("ADX", period)
        self._count = 0
        self._prev = (nan, nan, nan)
        self._dm_p = self._dm_m = self._tr = 0.0
        self._sum_dx = 0.0
        self.ready = False
        self.adx = self.plus_di = self.minus_di = nan
        self.value = (nan, nan, nan)

    def update(self, high: float, low: float, close: float) -> tuple[float, float, float]:
        """Add one bar and return ``(adx, plus_di, minus_di)`` (NaNs during warm-up)."""
        ph, pl, pc = self._prev
        self._prev = (high, low, close)
        i = self._count
        self._count = i + 1
        if i == 0:
            return self.value
        n = self.period
        diff_p = high - ph
        diff_m = pl - low
        tr = high - low
        t = abs(high - pc)
        if t > tr:
            tr = t
        t = abs(low - pc)
        if t > tr:
            tr = t
        if i < n:  # the first period - 1 moves are summed
            if diff_m > 0 and diff_p < diff_m:
                self._dm_m += diff_m
            elif diff_p > 0 and diff_p > diff_m:
                self._dm_p += diff_p
            self._tr += tr
            return self.value
        dm_p = self._dm_p - self._dm_p / n
        dm_m = self._dm_m - self._dm_m / n
        if diff_m > 0 and diff_p < diff_m:
            dm_m += diff_m
        elif diff_p > 0 and diff_p > diff_m:
            dm_p += diff_p
        s_tr = self._tr = self._tr - self._tr / n + tr
        self._dm_p = dm_p
        self._dm_m = dm_m
        dx = nan
        if s_tr != 0.0:
            plus = 100.0 * (dm_p / s_tr)
            minus = 100.0 * (dm_m / s_tr)
            total = minus + plus
            if total != 0.0:
                dx = 100.0 * (abs(minus - plus) / total)
        else:
            plus = minus = 0.0
        self.plus_di = plus
        self.minus_di = minus
        if i < 2 * n - 1:
            if dx == dx:
                self._sum_dx += dx
        elif i == 2 * n - 1:
            if dx == dx:
                self._sum_dx += dx
            self.adx = self._sum_dx / n
            self.ready = True
        elif dx == dx:
            self.adx = (self.adx * (n - 1) + dx) / n
        self.value = (self.adx, plus, minus)
        return self.value


def _wilder_sums(x: np.ndarray, n: int) -> np.ndarray:
    """Wilder sums of ``x[1:]`` as ADX uses them; index ``n`` of the result is the first."""
    # s_t = s_(t-1) * (1 - 1/n) + x_t, seeded with the sum of x[1:n]; as an
    # EMA with alpha = 1/n of x, it is n times the EMA seeded with sum / n
    tail = x[n - 1 :].copy()
    tail[0] = fsum(x[1:n].tolist()) / n
    out = _nan_like(x)
    out[n - 1 :] = _smooth(tail, 1, 1.0 / n) * n
    out[n - 1] = nan
    return out


def adx(
    high: Any, low: Any, close: Any, period: int = 14
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ADX, +DI and -DI (see :class:`ADX`).

    ``plus_di`` and ``minus_di`` are NaN for the first ``period`` entries,
    ``adx`` for the first ``2 * period - 1``.
    """
    h, lo, c = _hlc("adx", high, low, close)
    n = _check_period("adx", period)
    size = c.shape[0]
    a_out, p_out, m_out = _nan_like(c), _nan_like(c), _nan_like(c)
    if size <= n:
        return a_out, p_out, m_out
    import pandas as pd

    diff_p = np.concatenate(([0.0], h[1:] - h[:-1]))
    diff_m = np.concatenate(([0.0], lo[:-1] - lo[1:]))
    minus_move = (diff_m > 0) & (diff_p < diff_m)
    minus_dm = np.where(minus_move, diff_m, 0.0)
    plus_dm = np.where(~minus_move & (diff_p > 0) & (diff_p > diff_m), diff_p, 0.0)
    pc = np.concatenate(([nan], c[:-1]))
    tr = np.maximum(np.maximum(h - lo, np.abs(h - pc)), np.abs(lo - pc))
    s_p = _wilder_sums(plus_dm, n)[n:]
    s_m = _wilder_sums(minus_dm, n)[n:]
    s_tr = _wilder_sums(tr, n)[n:]
    with np.errstate(divide="ignore", invalid="ignore"):
        plus = np.where(s_tr != 0.0, 100.0 * (s_p / s_tr), 0.0)
        minus = np.where(s_tr != 0.0, 100.0 * (s_m / s_tr), 0.0)
        total = minus + plus
        dx = np.where((s_tr != 0.0) & (total != 0.0), 100.0 * (np.abs(minus - plus) / total), nan)
    p_out[n:] = plus
    m_out[n:] = minus
    if size >= 2 * n:
        seed = fsum(v for v in dx[:n].tolist() if v == v) / n
        tail = dx[n - 1 :].copy()
        tail[0] = seed
        # ignore_na: an undefined DX leaves ADX where it was, as in TA-Lib
        smoothed = pd.Series(tail).ewm(alpha=1.0 / n, adjust=False, ignore_na=True).mean()
        a_out[2 * n - 1 :] = smoothed.to_numpy()
    return a_out, p_out, m_out


# ---------------------------------------------------------------------------
# CCI (TA-Lib CCI)
# ---------------------------------------------------------------------------


class CCI:
    """Commodity channel index, TA-Lib's ``CCI``.

    ``tp = (high + low + close) / 3``;
    ``CCI = (tp - mean(tp)) / (0.015 * mean(|tp - mean(tp)|))`` over the last
    ``period`` bars, 0 when the mean deviation is 0. First value at update
    ``period - 1``. The mean deviation has no running form: each update is
    O(period).

    Parameters
    ----------
    period : int
        Window length, >= 1 (14 is TA-Lib's default, 20 is Lambert's).
    """

    __slots__ = ("_buf", "_i", "_seen", "period", "ready", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _check_period("CCI", period)
        self._buf = [0.0] * self.period
        self._i = 0
        self._seen = 0
        self.ready = False
        self.value = nan

    def update(self, high: float, low: float, close: float) -> float:
        """Add one bar and return the CCI (NaN during warm-up)."""
        tp = (high + low + close) / 3.0
        buf = self._buf
        buf[self._i] = tp
        self._i = (self._i + 1) % self.period
        if not self.ready:
            self._seen += 1
            if self._seen < self.period:
                return nan
            self.ready = True
        n = self.period
        mean = fsum(buf) / n
        dev = fsum([abs(v - mean) for v in buf]) / n
        num = tp - mean
        v = num / (0.015 * dev) if dev != 0.0 and num != 0.0 else 0.0
        self.value = v
        return v


def cci(high: Any, low: Any, close: Any, period: int = 14) -> np.ndarray:
    """Commodity channel index (see :class:`CCI`); NaN for the first ``period - 1`` entries."""
    h, lo, c = _hlc("cci", high, low, close)
    n = _check_period("cci", period)
    out = _nan_like(c)
    m = c.shape[0] - n + 1
    if m <= 0:
        return out
    tp = (h + lo + c) / 3.0
    mean = sma(tp, n)[n - 1 :]
    dev = np.zeros(m)
    for j in range(n):  # one window offset at a time: no (m, n) temporary
        dev += np.abs(tp[j : j + m] - mean)
    dev /= n
    num = tp[n - 1 :] - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        out[n - 1 :] = np.where((dev != 0.0) & (num != 0.0), num / (0.015 * dev), 0.0)
    return out


# ---------------------------------------------------------------------------
# OBV (TA-Lib OBV) and session VWAP
# ---------------------------------------------------------------------------


class OBV:
    """On-balance volume, TA-Lib's ``OBV``: starts at the first bar's volume,
    then adds the volume on an up close, subtracts it on a down close and
    keeps it on an unchanged close. No warm-up."""

    __slots__ = ("_prev", "ready", "value")

    def __init__(self) -> None:
        self._prev = nan
        self.ready = False
        self.value = nan

    def update(self, close: float, volume: float) -> float:
        """Add one bar and return the running OBV."""
        prev = self._prev
        self._prev = close
        if not self.ready:
            self.ready = True
            self.value = float(volume)
        elif close > prev:
            self.value += volume
        elif close < prev:
            self.value -= volume
        return self.value


def obv(close: Any, volume: Any) -> np.ndarray:
    """On-balance volume (see :class:`OBV`)."""
    c = _as_series("obv", close, "close")
    v = _as_series("obv", volume, "volume")
    _same_length("obv", "close and volume", c, v)
    if c.shape[0] == 0:
        return _nan_like(c)
    signed = np.concatenate(([v[0]], np.sign(np.diff(c)) * v[1:]))
    return np.cumsum(signed)  # sequential, the order of the incremental sum


def _parse_session_start(owner: str, session_start: str) -> _dt.timedelta:
    try:
        t = _dt.time.fromisoformat(session_start)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{owner}: session_start must be 'HH:MM' or 'HH:MM:SS', got {session_start!r}"
        ) from None
    return _dt.timedelta(hours=t.hour, minutes=t.minute, seconds=t.second)


def _zone(owner: str, tz: str) -> _dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{owner}: unknown time zone {tz!r}") from None


class VWAP:
    """Volume-weighted average price, anchored at each session's start.

    ``sum(tp * volume) / sum(volume)`` over the bars of the current session,
    ``tp = (high + low + close) / 3``. A session starts at ``session_start``
    wall-clock time in ``tz`` every day: a bar belongs to the session of the
    local date of ``bar time - session_start`` (so with ``"09:30"`` a bar at
    09:29 still belongs to the previous day's session). NaN while the
    session's volume is 0. TA-Lib has no VWAP.

    Parameters
    ----------
    session_start : str
        ``"HH:MM"`` or ``"HH:MM:SS"``, local time; ``"00:00"`` anchors at midnight.
    tz : str
        IANA time zone of the sessions, e.g. ``"America/New_York"``.
    """

    __slots__ = ("_end", "_offset", "_pv", "_start", "_tz", "_vol", "ready", "value")

    def __init__(self, session_start: str = "00:00", tz: str = "UTC") -> None:
        self._offset = _parse_session_start("VWAP", session_start)
        self._tz = _zone("VWAP", tz)
        self._start = self._end = nan  # POSIX bounds of the current session
        self._pv = self._vol = 0.0
        self.ready = False
        self.value = nan

    def _enter_session(self, timestamp: float) -> None:
        tz = self._tz
        local = _dt.datetime.fromtimestamp(timestamp, tz).replace(tzinfo=None)
        day = (local - self._offset).date()
        # wall-clock bounds of the session, then back to POSIX seconds
        start = _dt.datetime.combine(day, _dt.time()) + self._offset
        end = start + _dt.timedelta(days=1)
        self._start = start.replace(tzinfo=tz).timestamp()
        self._end = end.replace(tzinfo=tz).timestamp()
        self._pv = self._vol = 0.0

    def update(
        self, high: float, low: float, close: float, volume: float, timestamp: float
    ) -> float:
        """Add one bar (``timestamp`` in POSIX seconds) and return the session VWAP."""
        if not self._start <= timestamp < self._end:
            self._enter_session(timestamp)
        self._pv += (high + low + close) / 3.0 * volume
        self._vol += volume
        if self._vol == 0.0:
            self.value = nan
        else:
            self.ready = True
            self.value = self._pv / self._vol
        return self.value


def vwap(
    high: Any,
    low: Any,
    close: Any,
    volume: Any,
    timestamps: Any,
    session_start: str = "00:00",
    tz: str = "UTC",
) -> np.ndarray:
    """Session-anchored VWAP (see :class:`VWAP`); ``timestamps`` in POSIX seconds."""
    h, lo, c = _hlc("vwap", high, low, close)
    v = _as_series("vwap", volume, "volume")
    ts = _as_series("vwap", timestamps, "timestamps")
    _same_length("vwap", "high, low, close, volume and timestamps", h, v, ts)
    offset = _parse_session_start("vwap", session_start)
    _zone("vwap", tz)
    out = _nan_like(c)
    if c.shape[0] == 0:
        return out
    import pandas as pd

    local = pd.to_datetime(ts, unit="s", utc=True).tz_convert(tz).tz_localize(None)
    day = (local - pd.Timedelta(offset)).floor("D").asi8
    new = np.concatenate(([True], day[1:] != day[:-1]))
    starts = np.flatnonzero(new)
    pv = (h + lo + c) / 3.0 * v
    for a, b in zip(starts.tolist(), [*starts[1:].tolist(), c.shape[0]]):
        cum_v = np.cumsum(v[a:b])
        with np.errstate(divide="ignore", invalid="ignore"):
            out[a:b] = np.where(cum_v != 0.0, np.cumsum(pv[a:b]) / cum_v, nan)
    return out


# ---------------------------------------------------------------------------
# channels
# ---------------------------------------------------------------------------


class DonchianChannels:
    """Donchian channels: highest high and lowest low of the last ``period`` bars.

    ``upper = MAX(high)``, ``lower = MIN(low)`` (TA-Lib's ``MAX``/``MIN``),
    ``mid = (upper + lower) / 2``. First value at update ``period - 1``.

    Parameters
    ----------
    period : int
        Window length, >= 1 (20 is usual).

    Attributes
    ----------
    mid, upper, lower : float
    value : tuple of float
        ``(mid, upper, lower)``, the order of :class:`BollingerBands`.
    """

    __slots__ = ("_hh", "_ll", "lower", "mid", "period", "ready", "upper", "value")

    def __init__(self, period: int = 20) -> None:
        self.period = _check_period("DonchianChannels", period)
        self._hh = Highest(self.period)
        self._ll = Lowest(self.period)
        self.ready = False
        self.mid = self.upper = self.lower = nan
        self.value = (nan, nan, nan)

    def update(self, high: float, low: float) -> tuple[float, float, float]:
        """Add one bar and return ``(mid, upper, lower)`` (NaNs during warm-up)."""
        up = self._hh.update(high)
        dn = self._ll.update(low)
        if not self._hh.ready:
            return self.value
        self.ready = True
        self.upper = up
        self.lower = dn
        self.mid = (up + dn) / 2.0
        self.value = (self.mid, up, dn)
        return self.value


def donchian_channels(
    high: Any, low: Any, period: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Donchian channels ``(mid, upper, lower)``; NaN for the first ``period - 1`` entries."""
    h = _as_series("donchian_channels", high, "high")
    lo = _as_series("donchian_channels", low, "low")
    _same_length("donchian_channels", "high and low", h, lo)
    n = _check_period("donchian_channels", period)
    up = highest(h, n)
    dn = lowest(lo, n)
    return (up + dn) / 2.0, up, dn


class KeltnerChannels:
    """Keltner channels: ``EMA(close, period) +/- k * ATR(atr_period)``.

    The modern (Raschke) form; EMA and ATR are this module's (TA-Lib's
    ``EMA`` and ``ATR``, which the tests check). First value at update
    ``max(period - 1, atr_period)``. TA-Lib has no Keltner channels.

    Parameters
    ----------
    period : int
        EMA period, >= 1 (20 is usual).
    k : float
        Width in ATRs (2.0 is usual).
    atr_period : int
        ATR period, >= 1 (10 is usual).

    Attributes
    ----------
    mid, upper, lower : float
    value : tuple of float
        ``(mid, upper, lower)``.
    """

    __slots__ = ("_atr", "_ema", "k", "lower", "mid", "ready", "upper", "value")

    def __init__(self, period: int = 20, k: float = 2.0, atr_period: int = 10) -> None:
        self._ema = EMA(_check_period("KeltnerChannels", period))
        self._atr = ATR(_check_period("KeltnerChannels", atr_period, "atr_period"))
        self.k = float(k)
        self.ready = False
        self.mid = self.upper = self.lower = nan
        self.value = (nan, nan, nan)

    def update(self, high: float, low: float, close: float) -> tuple[float, float, float]:
        """Add one bar and return ``(mid, upper, lower)`` (NaNs during warm-up)."""
        mid = self._ema.update(close)
        width = self.k * self._atr.update(high, low, close)
        if not (self._ema.ready and self._atr.ready):
            return self.value
        self.ready = True
        self.mid = mid
        self.upper = mid + width
        self.lower = mid - width
        self.value = (mid, self.upper, self.lower)
        return self.value


def keltner_channels(
    high: Any, low: Any, close: Any, period: int = 20, k: float = 2.0, atr_period: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keltner channels ``(mid, upper, lower)`` (see :class:`KeltnerChannels`)."""
    h, lo, c = _hlc("keltner_channels", high, low, close)
    n = _check_period("keltner_channels", period)
    na = _check_period("keltner_channels", atr_period, "atr_period")
    mid = ema(c, n)
    width = float(k) * atr(h, lo, c, na)
    return mid, mid + width, mid - width


# ---------------------------------------------------------------------------
# ROC, momentum, standard deviation, z-score
# ---------------------------------------------------------------------------


class Momentum:
    """Momentum ``x - x[period bars ago]``, TA-Lib's ``MOM``; first value at update ``period``.

    Parameters
    ----------
    period : int
        Lag, >= 1 (10 is usual).
    """

    __slots__ = ("_buf", "_i", "_seen", "period", "ready", "value")

    def __init__(self, period: int = 10) -> None:
        self.period = _check_period(type(self).__name__, period)
        self._buf = [0.0] * self.period
        self._i = 0
        self._seen = 0
        self.ready = False
        self.value = nan

    def _of(self, x: float, old: float) -> float:
        return x - old

    def update(self, x: float) -> float:
        """Add one value and return the indicator (NaN during warm-up)."""
        buf = self._buf
        i = self._i
        old = buf[i]
        buf[i] = x
        self._i = i + 1 if i + 1 < self.period else 0
        if not self.ready:
            self._seen += 1
            if self._seen <= self.period:
                return nan
            self.ready = True
        v = self._of(x, old)
        self.value = v
        return v


class ROC(Momentum):
    """Rate of change in percent, ``(x / x[period bars ago] - 1) * 100``, TA-Lib's ``ROC``.

    0 when the old value is 0 (TA-Lib). First value at update ``period``.

    Parameters
    ----------
    period : int
        Lag, >= 1 (10 is usual).
    """

    __slots__ = ()

    def _of(self, x: float, old: float) -> float:
        return (x / old - 1.0) * 100.0 if old != 0.0 else 0.0


def momentum(values: Any, period: int = 10) -> np.ndarray:
    """Momentum (see :class:`Momentum`); NaN for the first ``period`` entries."""
    x = _as_series("momentum", values)
    n = _check_period("momentum", period)
    out = _nan_like(x)
    out[n:] = x[n:] - x[:-n]
    return out


def roc(values: Any, period: int = 10) -> np.ndarray:
    """Rate of change in percent (see :class:`ROC`); NaN for the first ``period`` entries."""
    x = _as_series("roc", values)
    n = _check_period("roc", period)
    out = _nan_like(x)
    old = x[:-n]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[n:] = np.where(old != 0.0, (x[n:] / old - 1.0) * 100.0, 0.0)
    return out


class StdDev:
    """Population standard deviation of the last ``period`` values, TA-Lib's ``STDDEV``.

    Divides by ``period`` (TA-Lib, and Bollinger's bands). Kept exactly like
    :class:`BollingerBands`: running sums of deviations from a shift that is
    reset to the window mean, with an exact ``math.fsum`` re-sum each time the
    ring wraps. (TA-Lib itself uses ``E[x^2] - E[x]^2`` over running sums,
    whose cancellation costs it about 1e-10 on prices near 100; the tests
    allow for that.) First value at update ``period - 1``.

    Parameters
    ----------
    period : int
        Window length, >= 1.

    Attributes
    ----------
    mean : float
        Mean of the same window.
    value : float
        The standard deviation.
    """

    __slots__ = ("_buf", "_i", "_s1", "_s2", "_shift", "mean", "period", "ready", "value")

    def __init__(self, period: int = 20) -> None:
        self.period = _check_period(type(self).__name__, period)
        self._buf = [0.0] * self.period
        self._i = 0
        self._shift = self._s1 = self._s2 = 0.0
        self.ready = False
        self.mean = nan
        self.value = nan

    def _moments(self, x: float) -> bool:
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
            return False
        self.mean = shift + s1 / n
        m2 = s2 - s1 * s1 / n
        self.value = sqrt(m2 / n) if m2 > 0.0 else 0.0
        return True

    def update(self, x: float) -> float:
        """Add one value and return the standard deviation (NaN during warm-up)."""
        self._moments(x)
        return self.value


class ZScore(StdDev):
    """Rolling z-score ``(x - mean) / std`` over the last ``period`` values.

    Population standard deviation (:class:`StdDev`); 0 when the window is
    flat (then ``x`` is the mean). First value at update ``period - 1``.
    TA-Lib has none; the tests compare it with ``(x - SMA) / STDDEV``.

    Attributes
    ----------
    std : float
        The standard deviation of the window.
    """

    __slots__ = ("std",)

    def __init__(self, period: int = 20) -> None:
        super().__init__(period)
        self.std = nan

    def update(self, x: float) -> float:
        """Add one value and return its z-score in the window (NaN during warm-up)."""
        if not self._moments(x):
            return nan
        std = self.std = self.value
        v = (x - self.mean) / std if std != 0.0 else 0.0
        self.value = v
        return v


def _rolling_std(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    mean = sma(x, n)
    std = _nan_like(x)
    m = x.shape[0] - n + 1
    if m > 0:
        mu = mean[n - 1 :]
        m2 = np.zeros(m)
        for j in range(n):  # two-pass variance, one offset at a time (as bollinger_bands)
            dev = x[j : j + m] - mu
            m2 += dev * dev
        std[n - 1 :] = np.sqrt(m2 / n)
    return mean, std


def stddev(values: Any, period: int = 20) -> np.ndarray:
    """Population standard deviation (see :class:`StdDev`); NaN for the first ``period - 1``."""
    x = _as_series("stddev", values)
    return _rolling_std(x, _check_period("stddev", period))[1]


def zscore(values: Any, period: int = 20) -> np.ndarray:
    """Rolling z-score (see :class:`ZScore`); NaN for the first ``period - 1`` entries."""
    x = _as_series("zscore", values)
    mean, std = _rolling_std(x, _check_period("zscore", period))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std != 0.0, (x - mean) / std, np.where(np.isnan(std), nan, 0.0))


# ---------------------------------------------------------------------------
# Parabolic SAR (TA-Lib SAR)
# ---------------------------------------------------------------------------


class ParabolicSAR:
    """Wilder's parabolic stop and reverse, step for step TA-Lib's ``SAR``.

    The first direction comes from the first two bars (short if the low fell
    more than the high rose, TA-Lib's ``MINUS_DM`` test); the SAR starts at
    the first bar's low (long) or high (short), the extreme point at the
    second bar's high or low. Then each bar: a penetration of the SAR
    reverses it to the extreme point; otherwise the acceleration factor
    grows by ``acceleration`` (up to ``maximum``) with each new extreme and
    ``sar += af * (ep - sar)``, clamped to the last two bars' range. First
    value at update 1.

    The recursion branches on every bar, so :func:`parabolic_sar` runs this
    same step over the arrays rather than a separate numpy formula.

    Parameters
    ----------
    acceleration : float
        Step of the acceleration factor (0.02 is usual).
    maximum : float
        Its cap (0.2 is usual); ``acceleration`` above it is lowered to it.

    Attributes
    ----------
    long : bool
        Direction after the last update.
    """

    __slots__ = (
        "_acc",
        "_af",
        "_ep",
        "_max",
        "_ph",
        "_pl",
        "_sar",
        "_seen",
        "long",
        "ready",
        "value",
    )

    def __init__(self, acceleration: float = 0.02, maximum: float = 0.2) -> None:
        acc = float(acceleration)
        mx = float(maximum)
        if not (acc >= 0.0 and mx >= 0.0):
            raise ConfigError(
                f"ParabolicSAR: acceleration and maximum must be >= 0, got {acceleration!r}, "
                f"{maximum!r}"
            )
        self._acc = min(acc, mx)
        self._max = mx
        self._af = self._acc
        self._seen = 0
        self._ph = self._pl = nan
        self._ep = self._sar = nan
        self.long = True
        self.ready = False
        self.value = nan

    def update(self, high: float, low: float) -> float:
        """Add one bar and return the SAR for it (NaN on the first bar)."""
        if self._seen == 0:
            self._seen = 1
            self._ph, self._pl = high, low
            return nan
        prev_high, prev_low = self._ph, self._pl
        if self._seen == 1:
            self._seen = 2
            diff_p = high - prev_high
            diff_m = prev_low - low
            self.long = not (diff_m > 0 and diff_p < diff_m)
            if self.long:
                self._ep, self._sar = high, prev_low
            else:
                self._ep, self._sar = low, prev_high
            # TA-Lib's first pass compares the second bar with itself
            prev_high, prev_low = high, low
            self.ready = True
        self._ph, self._pl = high, low
        sar, ep, af = self._sar, self._ep, self._af
        acc, mx = self._acc, self._max
        if self.long:
            if low <= sar:
                self.long = False
                sar = max(ep, prev_high, high)
                out = sar
                af = acc
                ep = low
                sar = max(sar + af * (ep - sar), prev_high, high)
            else:
                out = sar
                if high > ep:
                    ep = high
                    af = min(af + acc, mx)
                sar = min(sar + af * (ep - sar), prev_low, low)
        elif high >= sar:
            self.long = True
            sar = min(ep, prev_low, low)
            out = sar
            af = acc
            ep = high
            sar = min(sar + af * (ep - sar), prev_low, low)
        else:
            out = sar
            if low < ep:
                ep = low
                af = min(af + acc, mx)
            sar = max(sar + af * (ep - sar), prev_high, high)
        self._sar, self._ep, self._af = sar, ep, af
        self.value = out
        return out


def parabolic_sar(
    high: Any, low: Any, acceleration: float = 0.02, maximum: float = 0.2
) -> np.ndarray:
    """Parabolic SAR (see :class:`ParabolicSAR`); NaN for the first entry."""
    h = _as_series("parabolic_sar", high, "high")
    lo = _as_series("parabolic_sar", low, "low")
    _same_length("parabolic_sar", "high and low", h, lo)
    step = ParabolicSAR(acceleration, maximum).update
    return np.array([step(a, b) for a, b in zip(h.tolist(), lo.tolist())], dtype=np.float64)


# ---------------------------------------------------------------------------
# the TA-Lib bridge
# ---------------------------------------------------------------------------

#: memory of the default window for TA-Lib functions with an unstable period,
#: in multiples of their lookback: RSI/ATR/ADX(14) and EMA(30) then agree with
#: a full-history run to ~1e-13 (tested); slower ones (KAMA, MAMA, T3) need more
_SETTLE = 30


class TALib:
    """Any TA-Lib function as an incremental indicator.

    ``TALib("RSI", timeperiod=14).update(close)`` keeps the last ``window``
    inputs in a ring buffer (twice the window, so the latest ``window``
    values are always one contiguous numpy view, with no copy) and calls
    TA-Lib on that view each update, returning the last output.

    Cost: O(window) per update inside TA-Lib's C code plus a few microseconds
    of call overhead; memory ``2 * window`` floats per input. Prefer the
    native classes of :mod:`finchan.trade.indicators` where they exist; they
    are O(1).

    Exactness: for functions whose value depends only on the last
    ``lookback + 1`` bars (SMA, MAX, WILLR, CCI, STOCH with SMA, BBANDS with
    SMA, candlestick patterns, ...) the result is TA-Lib's full-history value
    (to float rounding: TA-Lib's running sums then start later). Functions
    TA-Lib flags with an *unstable period* (EMA, RSI, ATR, ADX, KAMA, ...)
    remember their whole history; over a window they give TA-Lib's value on
    the last ``window`` bars, which converges to the full-history value as
    the window grows. The default window, ``lookback + 1 + 30 * lookback``,
    makes RSI, EMA, ATR and ADX agree with a full run to far below 1e-9;
    pass a larger ``window`` for the slow-forgetting ones. Composite
    functions built on EMAs that TA-Lib does not flag (MACD, TRIX, DEMA,
    TEMA, APO/PPO with an EMA) get the same default. Path-dependent ones
    (OBV, AD, ADOSC, SAR, SAREXT) are refused unless ``window`` is given:
    use :class:`OBV` and :class:`ParabolicSAR`.

    Parameters
    ----------
    function : str
        TA-Lib function name, any case (``"RSI"``, ``"stoch"``).
    window : int, optional
        Inputs kept and passed to TA-Lib, >= ``lookback + 1``.
    **params
        The function's parameters (``timeperiod=14``); a name TA-Lib does
        not know raises :class:`~finchan.errors.ConfigError`.

    Attributes
    ----------
    inputs : tuple of str
        Input names in the order :meth:`update` takes them.
    outputs : tuple of str
        Output names; :meth:`update` returns a float for one output, a tuple
        for several.
    lookback : int
        TA-Lib's warm-up: the first value comes at update ``lookback``.
    window : int
    exact : bool
        True when the window reproduces TA-Lib's full-history values.
    """

    _MEMORY_FLAGS = ("Function has an unstable period",)
    # EMA-based composites TA-Lib does not flag as unstable
    _EMA_BASED = frozenset(
        {"APO", "DEMA", "MACD", "MACDEXT", "MACDFIX", "PPO", "STOCHRSI", "T3", "TEMA", "TRIX"}
    )

    def __init__(self, function: str, *, window: int | None = None, **params: Any) -> None:
        try:
            import talib
            from talib import abstract
        except ImportError:
            raise ConfigError(
                "TALib: the TA-Lib bridge needs the 'ta-lib' package (pip install ta-lib)"
            ) from None
        name = str(function).upper()
        if name not in talib.get_functions():
            raise ConfigError(f"TALib: TA-Lib has no function {function!r}")
        info = abstract.Function(name).info  # type: ignore[attr-defined]
        known = dict(info["parameters"])
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ConfigError(
                f"TALib({name!r}): unknown parameter(s) {', '.join(unknown)}; "
                f"{name} takes {', '.join(known) or 'none'}"
            )
        known.update(params)
        try:
            abstract_fn = abstract.Function(name, **known)  # type: ignore[attr-defined]
            lookback = int(abstract_fn.lookback)
        except Exception as exc:
            raise ConfigError(f"TALib({name!r}): bad parameters {params!r}: {exc}") from None
        flags = info.get("function_flags") or []
        names: list[str] = []
        for value in info["input_names"].values():
            names.extend([value] if isinstance(value, str) else value)
        self.function = name
        self.params = known
        self.inputs = tuple(names)
        self.outputs = tuple(info["output_names"])
        self.lookback = lookback
        path_dependent = "Output is path-dependent" in flags
        memory = any(f in flags for f in self._MEMORY_FLAGS) or name in self._EMA_BASED
        if window is None:
            if path_dependent:
                raise ConfigError(
                    f"TALib({name!r}): TA-Lib marks {name} path-dependent (each value depends "
                    f"on the whole history), so a bounded window cannot reproduce it; use the "
                    f"native indicator (OBV, ParabolicSAR) or pass window= to accept the value "
                    f"over the last window bars"
                )
            window = lookback + 1 + (_SETTLE * lookback if memory else 0)
        if isinstance(window, bool) or not isinstance(window, int) or window < lookback + 1:
            raise ConfigError(
                f"TALib({name!r}): window must be an integer >= lookback + 1 = {lookback + 1}, "
                f"got {window!r}"
            )
        self.window = window
        self.exact = not (memory or path_dependent)
        self._fn = getattr(talib, name)
        self._buf = np.zeros((len(names), 2 * window))
        self._count = 0
        self._multi = len(self.outputs) > 1
        self.ready = False
        self.value: float | tuple[float, ...] = (
            tuple(nan for _ in self.outputs) if self._multi else nan
        )

    def update(self, *values: float) -> float | tuple[float, ...]:
        """Add one bar's inputs (in the order of :attr:`inputs`) and return the last output."""
        if len(values) != len(self.inputs):
            raise DataError(
                f"TALib({self.function!r}).update takes {len(self.inputs)} value(s) "
                f"({', '.join(self.inputs)}), got {len(values)}"
            )
        w = self.window
        c = self._count
        i = c % w
        buf = self._buf
        # each value is written twice, so buf[:, i + 1 + w - m : i + 1 + w]
        # holds the latest m values contiguously whatever i is
        buf[:, i] = values
        buf[:, i + w] = values
        c += 1
        self._count = c
        if c <= self.lookback:
            return self.value
        m = c if c < w else w
        lo = i + 1 + w - m
        out = self._fn(*(buf[r, lo : lo + m] for r in range(len(self.inputs))), **self.params)
        self.ready = True
        if self._multi:
            self.value = tuple(float(o[-1]) for o in out)
        else:
            self.value = float(out[-1])
        return self.value
