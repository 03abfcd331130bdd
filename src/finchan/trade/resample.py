"""Several timeframes in one run: base bars resampled to ``5min``, ``1h``, ``1D``, ``1W`` bars.

A :class:`~finchan.trade.data.BarFeed` with timeframes to resample to (its
``resample=`` option, or a strategy's ``timeframes``) hands each completed
higher-timeframe bar to the run as a :class:`ResampledBar` event named
``"bar.<timeframe>"`` (``"bar.1D"``), in the same window as the base bars.

The rules, which are backtrader 1.9.78's ``resampledata`` for bars stamped
with their close time (finchan stamps a bar with its open time):

- **Periods.** A base bar belongs to the period holding its *close* time
  (open time + the feed's timeframe), in the feed's time zone. Intraday
  periods (``5min``, ``1h``: a whole number of minutes dividing a day) are
  aligned to local midnight: ``[10:00, 10:05)``. A day is a *trading day*
  ending at ``session_end`` (local time; default midnight): with
  ``session_end="16:00"`` the day ``D`` holds the bars closing in
  ``(D-1 16:00, D 16:00]``, so a bar after the close belongs to the next
  trading day, as in futures calendars. A week is the ISO week (Monday to
  Sunday) of its trading days.
- **When a bar is delivered.** A period is complete, and its bar delivered,
  when the run's clock reaches the period's end: at the first base bar, of
  any symbol, whose close time reaches it (the 15:59 bar of a 16:00 session
  completes its hour and its day, for every symbol, also one whose last
  minutes are missing). Without such a bar (an early close, a gap over the
  whole end), at the first base bar after it. The last open periods are
  delivered when the feed is exhausted. A week ends on Sunday's session end,
  so for exchange hours it is delivered with the next Monday's first bar.
- **Order.** A resampled bar comes after every base bar of the time it is
  delivered at (so after the base bar that completes it); several of one
  time come by timeframe, shortest first, then in the order their symbols'
  base bars came. Its ``timestamp`` is that delivery time, so ``now`` in
  the hook is the open time of the completing base bar and an order decided
  on it meets the symbol's *next* base bar, like any other order.
- **What it holds.** ``open`` of the first base bar, ``high``/``low`` over
  them, ``close`` of the last, ``volume`` summed; ``start`` the open time
  of its first base bar, ``end`` the period's end (POSIX seconds), and
  ``timeframe`` its label.

Resampling costs nothing when unused: a feed without timeframes never calls
into this module.

Size: just over 500 lines because backtrader's resampling rules, written
out above, are one algorithm with their quirks; the vectorised form
(:func:`resample_frame`) checks it.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from finchan.errors import ConfigError
from finchan.trade.bar import BAR_EVENT, Bar, _orphan_ids

__all__ = [
    "ResampledBar",
    "Resampler",
    "Timeframe",
    "parse_timeframe",
    "resample_frame",
    "resampled_event",
]

_DAY = 86_400
_INF = float("inf")
_TF = re.compile(r"^\s*(\d+)\s*(min|h|D|W)\s*$")


class ResampledBar(Bar):
    """A bar of a higher timeframe, built from the base bars of one period.

    ``timestamp`` (and ``dt``) is when it was delivered, the open time of
    the base bar that completed it; ``start`` is the open time of its first
    base bar and ``end`` the end of its period (POSIX seconds); ``timeframe``
    its label (``"1D"``). Base bars have ``timeframe`` ``None``.
    """

    __slots__ = ("end", "start", "timeframe")

    start: float
    end: float

    @property
    def kwargs(self) -> dict[str, Any]:
        return {**super().kwargs, "timeframe": self.timeframe, "start": self.start, "end": self.end}

    def __repr__(self) -> str:
        start = _dt.datetime.fromtimestamp(self.start, self.dt.tzinfo).isoformat()
        return (
            f"<ResampledBar {self.timeframe} {self.symbol} {start} o={self.open} h={self.high} "
            f"l={self.low} c={self.close} v={self.volume}>"
        )


class Timeframe:
    """A timeframe to resample to: ``kind`` is ``"intraday"``, ``"day"`` or ``"week"``."""

    __slots__ = ("kind", "label", "seconds")

    def __init__(self, label: str, kind: str, seconds: int) -> None:
        self.label = label
        self.kind = kind
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"Timeframe({self.label!r})"


def parse_timeframe(text: Any) -> Timeframe:
    """The :class:`Timeframe` of ``"5min"``, ``"1h"``, ``"1D"`` or ``"1W"``.

    Minutes and hours must divide a day; days and weeks come one at a time.
    The label is canonical: ``"60min"`` is ``"1h"``.

    Example
    -------
    >>> parse_timeframe("60min").label, parse_timeframe("1D").kind
    ('1h', 'day')
    """
    match = _TF.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"timeframe {text!r}: expected a number and a unit min, h, D or W "
            "(such as '5min', '1h', '1D', '1W')"
        )
    count, unit = int(match.group(1)), match.group(2)
    if count < 1:
        raise ConfigError(f"timeframe {text!r}: the count must be at least 1")
    if unit in ("D", "W"):
        if count != 1:
            raise ConfigError(
                f"timeframe {text!r}: days and weeks resample one at a time (1{unit})"
            )
        return Timeframe(
            f"1{unit}", "day" if unit == "D" else "week", _DAY * (1 if unit == "D" else 7)
        )
    minutes = count * (60 if unit == "h" else 1)
    if 1440 % minutes:
        raise ConfigError(f"timeframe {text!r}: intraday timeframes must divide a day")
    if minutes == 1440:
        raise ConfigError(f"timeframe {text!r}: write a day as '1D'")
    label = f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}min"
    return Timeframe(label, "intraday", minutes * 60)


def resampled_event(timeframe: str) -> str:
    """The event name of the bars of ``timeframe``: ``"bar.1D"``."""
    return f"{BAR_EVENT}.{parse_timeframe(timeframe).label}"


def _session_seconds(session_end: Any) -> int:
    """``session_end`` ("16:00", a time, None for midnight) as seconds in (0, 86400]."""
    if session_end is None:
        return _DAY
    if isinstance(session_end, _dt.time):
        value = session_end
    else:
        try:
            value = _dt.time.fromisoformat(str(session_end).strip())
        except ValueError:
            raise ConfigError(
                f"session_end: expected a local time such as '16:00', got {session_end!r}"
            ) from None
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    if value.microsecond:
        raise ConfigError(f"session_end: {session_end!r} has a fraction of a second")
    return seconds or _DAY


class _Open:
    """The period being built for one symbol and timeframe."""

    __slots__ = ("close", "end", "high", "key", "low", "open", "seq", "start", "symbol", "volume")

    def __init__(self, key: float, end: float, bar: Bar, seq: int) -> None:
        # seq: the symbol's rank, which orders bars delivered together
        self.key = key
        self.symbol = bar.symbol
        self.end = end  # local seconds of the period's end
        self.start = bar.timestamp
        self.open = bar.open
        self.high = bar.high
        self.low = bar.low
        self.close = bar.close
        self.volume = bar.volume
        self.seq = seq


class Resampler:
    """Turns windows of base bars into base bars interleaved with resampled bars.

    Parameters
    ----------
    env:
        the Env whose event ids the resampled bars take (None outside a run).
    timeframes:
        labels to resample to (``["5min", "1D"]``).
    base_seconds:
        length of a base bar (the feed's timeframe).
    tz:
        the feed's time zone: days and weeks are its local days and weeks.
    session_end:
        local time at which a trading day ends (``"16:00"``); None: midnight.
    symbols:
        the feed's symbols in input order: bars of one timeframe delivered at
        one time come in this order (other symbols after, as first seen).
    """

    def __init__(
        self,
        env: Any,
        timeframes: Iterable[str],
        base_seconds: float,
        tz: _dt.tzinfo,
        session_end: Any = None,
        symbols: Sequence[str] = (),
    ) -> None:
        self.env = env
        self.tz = tz
        self.base_seconds = base_seconds
        self.session_end = _session_seconds(session_end)
        self._utc = tz.utcoffset(None) is not None and not tz.utcoffset(None)
        self.timeframes: list[Timeframe] = []
        # per timeframe: symbol -> the period being built
        self._open: list[dict[str, _Open]] = []
        self._next_end: list[float] = []
        self._rank = {symbol: rank for rank, symbol in enumerate(symbols)}
        self._last_ts: float | None = None
        self.add(timeframes)

    @property
    def labels(self) -> list[str]:
        """The timeframes resampled to, shortest first."""
        return [tf.label for tf in self.timeframes]

    def add(self, timeframes: Iterable[str]) -> None:
        """Resample to these timeframes too (before the run starts)."""
        if self._last_ts is not None:
            raise ConfigError("resample: timeframes cannot be added once bars have been read")
        known = {tf.label for tf in self.timeframes}
        for text in timeframes:
            tf = parse_timeframe(text)
            if tf.label in known:
                continue
            if tf.seconds <= self.base_seconds or tf.seconds % self.base_seconds:
                raise ConfigError(
                    f"resample: {tf.label} is not a whole multiple of the feed's timeframe "
                    f"({self.base_seconds:g} s)"
                )
            if tf.kind == "intraday" and self.session_end % tf.seconds:
                raise ConfigError(
                    f"resample: session_end {_clock(self.session_end)} is not on a "
                    f"{tf.label} boundary"
                )
            known.add(tf.label)
            self.timeframes.append(tf)
        self.timeframes.sort(key=lambda tf: tf.seconds)
        self._open = [{} for _ in self.timeframes]
        # per timeframe: the earliest end of its open periods (local seconds)
        self._next_end = [_INF for _ in self.timeframes]

    # -- period keys, a window at a time ------------------------------------------------------

    def _local(self, ts: np.ndarray) -> np.ndarray:
        """Local wall-clock seconds (naive, as if UTC) of POSIX seconds ``ts``."""
        if self._utc:
            return ts
        import pandas as pd

        stamps = pd.to_datetime(np.round(ts * 1e9).astype(np.int64), utc=True)
        local = stamps.tz_convert(self.tz).tz_localize(None)
        return local.asi8 / 1e9

    def _keys(self, close: np.ndarray, tf: Timeframe) -> tuple[np.ndarray, np.ndarray]:
        """Period number and local end of each close time."""
        se = self.session_end
        if tf.kind == "intraday":
            key = np.ceil(close / tf.seconds)
            return key, key * tf.seconds
        # the trading day D holds the closes in (D-1 + se, D + se]
        day = -np.floor_divide(se - close, _DAY)
        if tf.kind == "day":
            return day, day * _DAY + se
        # ISO weeks: day 0 (1970-01-01) is a Thursday; weeks end on Sunday's session end
        week = np.floor_divide(day + 3, 7)
        return week, (week * 7 + 3) * _DAY + se

    def _to_utc(self, local: float) -> float:
        if self._utc:
            return local
        naive = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=local)
        return naive.replace(tzinfo=self.tz).timestamp()

    # -- the window ----------------------------------------------------------------------------

    def process(self, bars: Sequence[Bar], final: bool = False) -> list[Bar]:
        """``bars`` (one window, in time order) with the resampled bars they complete.

        With ``final`` (the feed is exhausted) the periods still open are
        delivered after the last bar.
        """
        out: list[Bar] = []
        n = len(bars)
        if n:
            ts = np.fromiter((b.timestamp for b in bars), dtype=np.float64, count=n)
            close = self._local(ts) + self.base_seconds
            tables = []
            for tf in self.timeframes:
                key, end = self._keys(close, tf)
                tables.append((key.tolist(), end.tolist()))
            self._walk(bars, close.tolist(), tables, out)
        if final:
            self._flush(out)
        return out

    def _walk(
        self,
        bars: Sequence[Bar],
        closes: list[float],
        tables: list[tuple[list, list]],
        out: list[Bar],
    ) -> None:
        pending: list[tuple[int, int, _Open]] = []
        opens = self._open
        next_end = self._next_end
        levels = list(zip(range(len(tables)), opens, tables))
        now = bars[0].timestamp
        clock = closes[0]
        append = out.append
        ranks = self._rank
        for i, bar in enumerate(bars):
            ts = bar.timestamp
            if ts != now:
                self._close_until(clock, pending, now, out)
                now = ts
                clock = closes[i]
            append(bar)
            symbol = bar.symbol
            for rank, states, (keys, ends) in levels:
                key = keys[i]
                state = states.get(symbol)
                if state is None:
                    seq = ranks.get(symbol)
                    if seq is None:
                        seq = ranks[symbol] = len(ranks)
                    end = ends[i]
                    state = states[symbol] = _Open(key, end, bar, seq)
                    if end < next_end[rank]:
                        next_end[rank] = end
                elif state.key != key:
                    # the symbol's first bar of a later period: the open one is
                    # over (and ended by the clock, see _close_until)
                    pending.append((rank, state.seq, state))
                    end = ends[i]
                    state = states[symbol] = _Open(key, end, bar, state.seq)
                    if end < next_end[rank]:
                        next_end[rank] = end
                else:
                    if bar.high > state.high:
                        state.high = bar.high
                    if bar.low < state.low:
                        state.low = bar.low
                    state.close = bar.close
                    state.volume += bar.volume
        self._last_ts = now
        self._close_until(clock, pending, now, out)

    def _close_until(
        self, clock: float, pending: list[tuple[int, int, _Open]], ts: float, out: list[Bar]
    ) -> None:
        """Deliver, at ``ts``, ``pending`` and the periods of every symbol ended by ``clock``.

        ``clock`` is the close time (local) of the base bars at ``ts``: the
        run's time has reached the end of every period ending at or before it,
        whether or not their symbol has a bar now (backtrader's rule too).
        """
        next_end = self._next_end
        for rank, states in enumerate(self._open):
            if clock < next_end[rank]:
                continue
            earliest = _INF
            for symbol, state in list(states.items()):
                if state.end <= clock:
                    pending.append((rank, state.seq, state))
                    del states[symbol]
                elif state.end < earliest:
                    earliest = state.end
            next_end[rank] = earliest
        if pending:
            self._deliver(pending, ts, out)

    def _flush(self, out: list[Bar]) -> None:
        if self._last_ts is None:
            return
        pending = [
            (rank, state.seq, state)
            for rank, states in enumerate(self._open)
            for state in states.values()
        ]
        for states in self._open:
            states.clear()
        self._next_end = [_INF for _ in self.timeframes]
        if pending:
            self._deliver(pending, self._last_ts, out)

    def _deliver(self, pending: list[tuple[int, int, _Open]], ts: float, out: list[Bar]) -> None:
        pending.sort(key=_rank_seq)
        env = self.env
        ids = env.event_ids if env is not None else None
        labels = self.timeframes
        for rank, _, state in pending:
            label = labels[rank].label
            bar = ResampledBar.__new__(ResampledBar)
            bar.env = env
            bar.name = f"{BAR_EVENT}.{label}"
            bar.timestamp = ts
            bar.expire = 0
            bar.id = next(ids) if ids is not None else next(_orphan_ids)
            bar.symbol = state.symbol
            bar.open = state.open
            bar.high = state.high
            bar.low = state.low
            bar.close = state.close
            bar.volume = state.volume
            bar.timeframe = label
            bar.start = state.start
            bar.end = self._to_utc(state.end)
            out.append(bar)
        pending.clear()


def _rank_seq(item: tuple[int, int, _Open]) -> tuple[int, int]:
    return item[0], item[1]


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def resample_frame(bars: Any, timeframe: str, *, session_end: Any = None) -> Any:
    """The bars of ``timeframe`` from a :func:`~finchan.trade.data.load_bars` DataFrame, at once.

    The vectorised form of what a feed delivers during a run, with the same
    periods and values: one row per symbol and period, columns ``symbol``,
    ``start`` (open time of its first bar), ``end`` (the period's end, both
    aware in the bars' time zone), ``open``, ``high``, ``low``, ``close``,
    ``volume``, ordered by ``end`` then by the symbols' first appearance.
    The base timeframe is ``bars.attrs["timeframe"]`` (set by ``load_bars``).

    Example
    -------
    >>> from finchan.trade.data import load_bars
    >>> from finchan.trade._synthetic import make_bars
    >>> daily = resample_frame(load_bars({"SYN": make_bars(3 * 1440)}), "1D")
    >>> daily[["open", "close"]].round(2).values.tolist()
    [[100.0, 96.93], [96.93, 91.57], [91.57, 94.52]]
    """
    import pandas as pd

    base = bars.attrs.get("timeframe")
    if base is None:
        raise ConfigError("resample_frame: bars.attrs['timeframe'] is not set (use load_bars)")
    times = bars["datetime"]
    tz = times.dt.tz if times.dt.tz is not None else _dt.UTC
    base_seconds = pd.Timedelta(base).total_seconds()
    resampler = Resampler(None, [timeframe], base_seconds, tz, session_end)
    tf = resampler.timeframes[0]
    local = times.dt.tz_localize(None).astype("datetime64[ns]").astype("int64").to_numpy() / 1e9
    key, end = resampler._keys(local + resampler.base_seconds, tf)
    frame = pd.DataFrame(
        {
            "symbol": bars["symbol"].to_numpy(),
            "key": key,
            "local_end": end,
            "start": times.to_numpy(),
            **{name: bars[name].to_numpy() for name in ("open", "high", "low", "close", "volume")},
        }
    )
    # a period is a run of a symbol's bars with one key; a bar closing at its
    # period's end closes it (so the hour repeated when daylight saving time
    # ends is two hours, as in a run)
    previous = frame.groupby("symbol", sort=False)[["key", "local_end"]].shift()
    closes = local + resampler.base_seconds
    previous_close = pd.Series(closes).groupby(frame["symbol"], sort=False).shift()
    starts = (frame["key"] != previous["key"]) | (previous_close >= previous["local_end"])
    frame["key"] = starts.groupby(frame["symbol"], sort=False).cumsum()
    groups = frame.groupby(["symbol", "key"], sort=False)
    out = groups.agg(
        local_end=("local_end", "first"),
        start=("start", "first"),
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
    ).reset_index()
    order = {symbol: rank for rank, symbol in enumerate(pd.unique(frame["symbol"]))}
    out["rank"] = out["symbol"].map(order)
    out = out.sort_values(["local_end", "rank"], kind="stable").reset_index(drop=True)
    # as _to_utc (fold=0): an ambiguous end is its first occurrence, a
    # nonexistent one moves forward by the gap
    ends = pd.to_datetime(out["local_end"] * 1e9).dt.tz_localize(
        tz, ambiguous=np.ones(len(out), dtype=bool), nonexistent="shift_forward"
    )
    out["end"] = ends
    out["start"] = pd.to_datetime(out["start"], utc=True).dt.tz_convert(tz)
    columns = ["symbol", "start", "end", "open", "high", "low", "close", "volume"]
    result = out[columns]
    result.attrs["timeframe"] = tf.label
    return result
