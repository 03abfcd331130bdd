"""The feed: :class:`BarFeed` (the event source) and :func:`load_bars` (the whole frame).

Size: the cursor over the inputs and the event source are one hot loop
(the fastest path of a backtest, measured by ``bench/sma_cross.py``);
keeping them together keeps it readable in one place.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Generator, Mapping, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd

from finchan._process import gc_paused
from finchan.errors import ConfigError
from finchan.interface.event_source import AbsEventSource
from finchan.trade._data.inputs import _Inputs, _open_inputs
from finchan.trade._data.options import BarFeedOptions, _timeframe_seconds
from finchan.trade._data.validate import _PRICES, _Block, _Stream
from finchan.trade.bar import BAR_EVENT, Bar

# the records keep the public module's name (log configs and tests filter on it)
_log = logging.getLogger("finchan.trade.data")

_BY_TIME = attrgetter("timestamp")


class _Cursor:
    """Position of the feed in one input: the current block as Python lists."""

    __slots__ = (
        "blocks",
        "close",
        "done",
        "first_seen",
        "high",
        "last_seen",
        "low",
        "open",
        "pos",
        "symbol",
        "symbols",
        "ts",
        "volume",
    )

    def __init__(self, stream: _Stream) -> None:
        self.blocks: Generator[_Block, None, None] | None = stream.blocks()
        self.ts: list[float] | None = None
        self.pos = 0
        self.done = False
        #: first and last bar time read from the input so far (for "no bar" warnings)
        self.first_seen: float | None = None
        self.last_seen: float | None = None

    def load(self) -> bool:
        """Make the next block current; False (and ``done``) at the end of the input."""
        if self.blocks is not None:
            block = next(self.blocks, None)
            if block is not None:
                # whole-chunk conversions: numpy does the arithmetic, tolist()
                # makes the Python floats the Bar objects will hold
                self.ts = ts = (block.ts_ns / 1e9).tolist()
                if self.first_seen is None:
                    self.first_seen = ts[0]
                self.last_seen = ts[-1]
                self.open = block.open.tolist()
                self.high = block.high.tolist()
                self.low = block.low.tolist()
                self.close = block.close.tolist()
                self.volume = block.volume.tolist()
                self.symbol = block.symbol
                self.symbols = block.symbols.tolist() if block.symbols is not None else None
                self.pos = 0
                return True
        self.close_input()
        self.ts = None
        self.done = True
        return False

    def close_input(self) -> None:
        """Close the input and let go of the block's lists.

        The Env holding this cursor lives in reference cycles, freed only by
        the cyclic collector, which a run keeps quiet (finchan._process): the
        lists (a few MB per 100,000 bars) must not wait for it with it.
        """
        if self.blocks is not None:
            self.blocks.close()
            self.blocks = None
        self.open = self.high = self.low = self.close = self.volume = None
        self.symbols = None

    def skip(self, limit_ts: float) -> None:
        """Pass over the bars before ``limit_ts`` without building them."""
        while True:
            ts = self.ts
            if ts is None:
                if self.done or not self.load():
                    return
                ts = self.ts
                assert ts is not None
            stop = len(ts) if ts[-1] < limit_ts else bisect_left(ts, limit_ts, self.pos)
            if stop < len(ts):
                self.pos = stop
                return
            self.ts = None

    def take(self, env: Any, limit_ts: float, out: list[Bar]) -> None:
        """Append the bars before ``limit_ts`` to ``out``."""
        while True:
            ts = self.ts
            if ts is None:
                if self.done or not self.load():
                    return
                ts = self.ts
                assert ts is not None
            pos, end = self.pos, len(ts)
            stop = end if ts[-1] < limit_ts else bisect_left(ts, limit_ts, pos)
            if stop > pos:
                whole = pos == 0 and stop == end
                s = slice(pos, stop)
                _append_bars(
                    out,
                    env,
                    self.symbol,
                    self.symbols if whole or self.symbols is None else self.symbols[s],
                    ts if whole else ts[s],
                    self.open if whole else self.open[s],
                    self.high if whole else self.high[s],
                    self.low if whole else self.low[s],
                    self.close if whole else self.close[s],
                    self.volume if whole else self.volume[s],
                )
            if stop < end:
                self.pos = stop
                return
            self.ts = None  # block used up: let it go before reading the next


def _append_bars(
    out: list[Bar],
    env: Any,
    symbol: str | None,
    symbols: list[str] | None,
    ts: list[float],
    opens: list[float],
    highs: list[float],
    lows: list[float],
    closes: list[float],
    volumes: list[float],
) -> None:
    if env is None:
        # no Env: Bar numbers the bars from its own counter
        syms = symbols if symbols is not None else repeat(symbol)
        out.extend(map(Bar, repeat(None), syms, ts, opens, highs, lows, closes, volumes))
        return
    # The hot loop of loading: Bar.__new__ plus slot stores is ~20% faster than
    # calling Bar(...) (no argument parsing, no id branch); a test checks the
    # result equals Bar(...) slot by slot. The cyclic GC is paused because
    # every Bar is a tracked container: a million of them otherwise trigger
    # repeated collections that cost more than building them.
    new, cls, name, append = Bar.__new__, Bar, BAR_EVENT, out.append
    with gc_paused():
        # ts first and the id counter last: zip stops on ts before drawing an id
        syms = symbols if symbols is not None else repeat(symbol)
        for t, sym, o, h, lo, c, v, i in zip(
            ts, syms, opens, highs, lows, closes, volumes, env.event_ids
        ):
            bar = new(cls)
            bar.env = env
            bar.name = name
            bar.timestamp = t
            bar.expire = 0
            bar.id = i
            bar.symbol = sym
            bar.open = o
            bar.high = h
            bar.low = lo
            bar.close = c
            bar.volume = v
            append(bar)


class BarFeed(AbsEventSource):
    """An event source replaying OHLCV bars from files or DataFrames as ``"bar"`` events.

    Parameters
    ----------
    env:
        the Env whose event ids the bars take (``None`` outside a run: bars
        number themselves).
    inputs:
        a path (CSV: ``.csv``/``.txt``, Parquet: ``.parquet``/``.pq``; CSV may be
        compressed, ``.csv.gz``), a DataFrame, a list of them, or a mapping
        ``{symbol: path or DataFrame}``.
    options, **kwargs:
        a :class:`~finchan.trade.data.BarFeedOptions` (or a mapping of its
        fields) and/or its fields as keywords, which win; an unknown name is
        a :class:`~finchan.errors.ConfigError`. The fields:
    symbols:
        one symbol per input (default: the file stem, ``data/AAPL.csv`` ->
        ``AAPL``; DataFrames need one). With ``symbol_column``: the symbols to
        keep, others are skipped.
    symbol_column:
        column holding each row's symbol (one input, several symbols); such an
        input must be in time order, rows of equal time in any symbol order.
    columns:
        ``{bar column: input column}`` for names that differ from
        ``datetime, open, high, low, close, volume``, e.g.
        ``{"datetime": "Date", "close": "Adj Close"}``. Names match exactly,
        else ignoring case. Without a volume column bars get volume 0. A
        DataFrame's DatetimeIndex serves as the datetime column.
    timezone:
        zone of naive times in the inputs and of naive ``start``/``end``
        (times with an offset keep it).
    timeframe:
        bar length (``"1min"``, ``"1h"``, ``"1D"``); kept for reports, a bar's
        time is its open time.
    start, end:
        keep bars with ``start <= time <= end`` (datetime, ISO text or POSIX seconds).
    chunk_size:
        rows read and converted at once per input.
    file_format:
        ``"csv"`` or ``"parquet"`` for files whose suffix says neither.
    date_format, dayfirst, sep, adjust, sort, allow_nonpositive_prices:
        how files as users have them are read (docs/data.md, "Files as
        downloaded"): ``date_format`` (strftime codes, e.g. ``"%d.%m.%Y"``),
        ``dayfirst`` (``01/02/2020`` is 1 February), ``sep`` (CSV separator),
        ``adjust`` (``"ohlc"``: scale each bar by ``Adj Close / Close``),
        ``sort`` (default True: a newest-first input is read whole and
        reversed, with a log note; False makes it an error) and
        ``allow_nonpositive_prices`` (default False: a price <= 0 is a data
        error).
    resample:
        higher timeframes (``["1h", "1D"]``) whose bars the feed also
        delivers, as ``"bar.<timeframe>"`` events (see :mod:`finchan.trade.resample`).
    session_end:
        local time (in ``timezone``) at which a trading day ends, ``"16:00"``;
        default midnight. Days of resampled bars end there.

    Notes
    -----
    Bars come in time order; bars of equal time in the order of ``inputs``,
    within one input in the order of its rows. In a backtest with a
    ``start_dt``, bars before it are skipped. Files are opened at once (a
    missing file or column fails here) and read lazily, a chunk at a time;
    every chunk is validated when read and a bad value stops the run with a
    :class:`~finchan.errors.DataError` naming the file, line and column.

    Example
    -------
    >>> import pandas as pd
    >>> from finchan.trade.data import BarFeed
    >>> df = pd.DataFrame({"datetime": ["2020-01-01 09:30", "2020-01-01 09:31"],
    ...                    "open": [10.0, 10.5], "high": [11.0, 11.0],
    ...                    "low": [9.5, 10.0], "close": [10.5, 10.8]})
    >>> feed = BarFeed(None, {"ABC": df})
    >>> [(b.symbol, b.close, b.volume) for b in feed.events_until(float("inf"))]
    [('ABC', 10.5, 0.0), ('ABC', 10.8, 0.0)]
    """

    def __init__(
        self,
        env: Any,
        inputs: _Inputs,
        options: BarFeedOptions | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.env = env
        #: the options as given (:class:`~finchan.trade.data.BarFeedOptions`)
        self.options = opts_given = BarFeedOptions.of(options, **kwargs)
        opts = opts_given.resolve()
        #: bar length as given (``"1min"``) and in seconds
        self.timeframe = timeframe = opts_given.timeframe
        self.timeframe_seconds = _timeframe_seconds(timeframe)
        symbols = opts_given.symbols
        resample, session_end = opts_given.resample, opts_given.session_end
        self._opts = opts
        self._streams = [_Stream(inp, opts) for inp in _open_inputs(inputs, symbols, opts)]
        self._cursors = [_Cursor(stream) for stream in self._streams]
        self._symbols: list[str] | None = None
        self._skip_before: float | None = None
        # the bars last returned by events_until, for bars_at
        self._window: list[Bar] = []
        self.exhausted = False
        self._started = False
        self._emitted = 0
        # the higher timeframes delivered beside the base bars (None: none, no cost)
        self._resampler: Any = None
        self._session_end = session_end
        if resample:
            self.add_timeframes(resample)
        elif session_end is not None:
            from finchan.trade.resample import _session_seconds

            _session_seconds(session_end)  # a bad value fails here, not at the first resample

    @property
    def name(self) -> str:
        """``BarFeed(<inputs>)``, for logs."""
        return f"BarFeed({', '.join(s.inp.label for s in self._streams)})"

    @property
    def symbols(self) -> list[str]:
        """The symbols of the feed, in input order.

        For an input with a symbol column and no ``symbols`` filter this reads
        that column once, on first access.
        """
        if self._symbols is None:
            found: dict[str, None] = {}
            for stream in self._streams:
                if stream.inp.symbol is not None:
                    found[stream.inp.symbol] = None
                elif self._opts.symbol_filter is not None:
                    found.update(dict.fromkeys(self._opts.symbol_filter))
                else:
                    found.update(dict.fromkeys(stream.scan_symbols()))
            self._symbols = list(found)
        return list(self._symbols)

    @property
    def timeframes(self) -> list[str]:
        """The higher timeframes the feed resamples to, shortest first."""
        return self._resampler.labels if self._resampler is not None else []

    def add_timeframes(self, timeframes: Sequence[str]) -> None:
        """Also deliver the bars of ``timeframes`` (``["1D"]``), before the run starts.

        Each completed bar is a :class:`~finchan.trade.resample.ResampledBar`
        event named ``"bar.<timeframe>"``, after the base bar that completes it.
        """
        from finchan.trade.resample import Resampler

        if isinstance(timeframes, str):
            timeframes = [timeframes]
        if self._resampler is None:
            self._resampler = Resampler(
                self.env,
                timeframes,
                self.timeframe_seconds,
                self._opts.tz,
                self._session_end,
                [stream.inp.symbol for stream in self._streams if stream.inp.symbol is not None],
            )
        else:
            self._resampler.add(timeframes)

    def start(self) -> None:
        """Note the run's start: bars before the dispatcher's ``start_dt`` are skipped."""
        start_dt = getattr(getattr(self.env, "dispatcher", None), "start_dt", None)
        if start_dt is not None:
            self._skip_before = start_dt.timestamp()
        self._started = True
        self._emitted = 0

    def events_until(self, limit_ts: float) -> list[Bar]:
        """The bars with ``timestamp < limit_ts`` not yet returned, in time order.

        Sets :attr:`exhausted` once every input is used up.
        """
        out: list[Bar] = []
        contributors = 0
        try:
            if self._skip_before is not None:
                for cursor in self._cursors:
                    cursor.skip(self._skip_before)
                self._skip_before = None
            for cursor in self._cursors:
                if cursor.done:
                    continue
                before = len(out)
                cursor.take(self.env, limit_ts, out)
                contributors += len(out) > before
        except BaseException:
            self._started = False  # a failed run is not "no bar in the span"
            raise
        if contributors > 1:
            # each input's bars are already sorted: timsort merges the runs, and
            # being stable it keeps equal times in input order
            out.sort(key=_BY_TIME)
        self._emitted += len(out)
        if all(cursor.done for cursor in self._cursors):
            self.exhausted = True
        self._window = out
        if self._resampler is not None:
            # the window keeps the base bars only: bars_at serves the broker
            return self._resampler.process(out, self.exhausted)
        return out

    def bars_at(self, ts: float) -> list[Bar]:
        """The bars of every symbol at time ``ts`` among the last :meth:`events_until` gave.

        A window holds every bar of each of its times, so while a bar of the
        window is being dispatched this gives all bars sharing its time (the
        simulated broker matches the orders of several symbols against them
        together).
        """
        window = self._window
        lo = bisect_left(window, ts, key=_BY_TIME)
        return window[lo : bisect_right(window, ts, lo, key=_BY_TIME)]

    def first_timestamp(self) -> float | None:
        """POSIX time of the next bar (the first before any is taken), None if none is left."""
        first = None
        for cursor in self._cursors:
            try:
                if cursor.ts is None and (cursor.done or not cursor.load()):
                    continue
            except BaseException:
                self._started = False
                raise
            assert cursor.ts is not None
            ts = cursor.ts[cursor.pos]
            first = ts if first is None or ts < first else first
        if all(cursor.done for cursor in self._cursors):
            self.exhausted = True
        return first

    def stop(self) -> None:
        """Close the open files; the feed gives no more bars afterwards.

        A backtest that got no bar at all from the feed is warned about: its
        report would be silently empty (``start_dt`` after the data...).
        """
        if self._started and not self._emitted:
            _warn_no_bar(self)
        self._started = False
        for cursor in self._cursors:
            cursor.close_input()
            cursor.ts = None
            cursor.done = True
        self.exhausted = True


def _warn_no_bar(feed: BarFeed) -> None:
    env = feed.env
    if getattr(env, "run_mode", None) != "backtrack":
        return
    dispatcher = env.dispatcher
    tz = feed._opts.tz

    def shown(ts: float | None) -> str:
        stamp = pd.Timestamp(ts, unit="s", tz="UTC") if ts is not None else None
        return "-" if stamp is None else stamp.tz_convert(tz).isoformat()

    start, end = getattr(dispatcher, "start_dt", None), getattr(dispatcher, "end_dt", None)
    span = (
        f"{start.isoformat() if start else 'the data start'} to "
        f"{end.isoformat() if end else 'the data end'}"
    )
    firsts = [c.first_seen for c in feed._cursors if c.first_seen is not None]
    lasts = [c.last_seen for c in feed._cursors if c.last_seen is not None]
    if not firsts:
        data = "the data has no bars"
    elif all(c.done for c in feed._cursors):
        data = f"the data spans {shown(min(firsts))} to {shown(max(lasts))}"
    else:
        data = f"the data starts at {shown(min(firsts))}"
    _log.warning("%s: no bar in the backtest span %s; %s", feed.name, span, data)


def load_bars(
    inputs: _Inputs,
    options: BarFeedOptions | Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Read bar inputs whole into one validated DataFrame.

    Takes the inputs and options of :class:`BarFeed` (but ``resample`` and
    ``session_end``) and applies the same
    validation. The result has the columns ``datetime`` (aware, in
    ``timezone``), ``symbol``, ``open``, ``high``, ``low``, ``close``,
    ``volume`` (floats), rows in the order a BarFeed gives the bars, a
    RangeIndex, and ``attrs["timeframe"]``.

    Example
    -------
    >>> import pandas as pd
    >>> from finchan.trade.data import load_bars
    >>> df = pd.DataFrame({"Date": ["2020-01-02", "2020-01-03"], "Open": [1.0, 2.0],
    ...                    "High": [2.0, 3.0], "Low": [0.5, 1.5], "Close": [1.5, 2.5]})
    >>> load_bars({"X": df}, columns={"datetime": "Date"})["close"].tolist()
    [1.5, 2.5]
    """
    given = BarFeedOptions.of(options, **kwargs)
    for key in ("resample", "session_end"):
        if getattr(given, key) is not None:
            raise ConfigError(
                f"{key}: an option of BarFeed only (load_bars reads the base bars; "
                "resample the frame with finchan.trade.resample.resample_frame)"
            )
    opts = given.resolve()
    symbols, timeframe = given.symbols, given.timeframe
    streams = [_Stream(inp, opts) for inp in _open_inputs(inputs, symbols, opts)]
    blocks = [block for stream in streams for block in stream.blocks()]
    keys = ("ts_ns", *_PRICES, "volume")
    if blocks:
        arrays = {key: np.concatenate([getattr(b, key) for b in blocks]) for key in keys}
        symbol_values = np.concatenate(
            [
                b.symbols if b.symbols is not None else np.full(len(b), b.symbol, dtype=np.object_)
                for b in blocks
            ]
        )
    else:
        arrays = {key: np.empty(0) for key in keys}
        arrays["ts_ns"] = np.empty(0, dtype=np.int64)
        symbol_values = np.empty(0, dtype=object)
    if len(streams) > 1:
        # blocks are in input order, so a stable sort keeps equal times in input order
        order = np.argsort(arrays["ts_ns"], kind="stable")
        arrays = {key: arr[order] for key, arr in arrays.items()}
        symbol_values = symbol_values[order]
    times = pd.DatetimeIndex(arrays["ts_ns"].view("datetime64[ns]")).tz_localize("UTC")
    frame = pd.DataFrame(
        {
            "datetime": times.tz_convert(opts.tz),
            "symbol": symbol_values,
            **{key: arrays[key] for key in (*_PRICES, "volume")},
        }
    )
    frame.attrs["timeframe"] = timeframe
    return frame
