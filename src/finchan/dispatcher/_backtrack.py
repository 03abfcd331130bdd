"""The backtest dispatcher: history replayed on a simulated clock.

How a run proceeds, and why it is fast
--------------------------------------
Time is cut into windows of ``time_step`` seconds. For each window the
dispatcher asks every source for its events before the window's end (the
``events_until`` fast path hands over a whole list; ``gen_events`` sources put
into a list whose ``put`` *is* ``list.append``). The window is sorted once
(stable, so equal times keep put order) and dispatched in one tight loop.

Events put while dispatching (by callbacks, ``eq_put``) go into a small heap
keyed by ``(time, put sequence)`` and are merged into the window in order. The
whole ordering rule is: by time, ties by the order events were put. Events a
source put for a window were put before anything emitted while that window is
dispatched, and after anything emitted earlier.

No coroutine, task or log record is created per event. A coroutine returned by
a callback or by ``gen_events`` is first run synchronously; only if it really
suspends is it handed to an event loop to finish.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Coroutine, Generator
from datetime import date, datetime, timedelta
from heapq import heappop
from math import floor
from operator import attrgetter, length_hint
from time import perf_counter
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from finchan._mode import RunMode
from finchan._process import quiet_gc
from finchan._time import from_timestamp, to_timestamp
from finchan.dispatcher._base import Callback, Dispatcher, logger
from finchan.errors import ConfigError
from finchan.event import Event
from finchan.interface.event_source import AbsEventSource

if TYPE_CHECKING:
    from finchan.env import Env

__all__ = ["BackTrackDispatcher"]

_timestamp = attrgetter("timestamp")
_INF = float("inf")


class _WindowBuffer(list[Event]):
    """The ``event_queue`` of backtest sources: ``put`` is ``list.append``."""

    __slots__ = ()
    put = list.append
    put_nowait = list.append
    put_threadsafe = list.append


class _Resumed:
    """A coroutine that already ran until its first real suspension.

    Handed to the event loop so the loop can finish it; the loop sees exactly
    what it would have seen had it started the coroutine itself.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the loop (e.g. cancellation)
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


def _end_timestamp(end_dt: Any, tz: Any) -> float:
    # a bare date as end means "through that whole day"
    if isinstance(end_dt, date) and not isinstance(end_dt, datetime):
        return to_timestamp(datetime(end_dt.year, end_dt.month, end_dt.day) + timedelta(days=1), tz)
    return to_timestamp(end_dt, tz)


class BackTrackDispatcher(Dispatcher):
    """Dispatch history on a simulated clock, deterministically.

    Parameters
    ----------
    env:
        the Env.
    start_dt:
        simulated start; ``SYSTEM_STARTED`` happens then. Default: the earliest
        ``first_timestamp()`` of the sources.
    end_dt:
        the run covers ``[start_dt, end_dt)``; a bare date includes that whole
        day. Default: run until every source is exhausted.
    time_step:
        seconds of history asked of the sources at once.
    trace_process_time:
        if true, ``now`` also advances by the real time callbacks take (the
        run is then no longer deterministic).
    on_callback_error:
        ``"stop"`` (default in backtest: a failing strategy gives wrong
        numbers, so fail fast) or ``"log"``.
    """

    run_mode = RunMode.BACKTEST

    def __init__(
        self,
        env: Env,
        start_dt: Any = None,
        end_dt: Any = None,
        time_step: float = 86400,
        trace_process_time: bool = False,
        on_callback_error: str = "stop",
    ) -> None:
        super().__init__(env, on_callback_error=on_callback_error)
        tz = env.tz
        self._start_ts = None if start_dt is None else to_timestamp(start_dt, tz)
        self._end_ts = _INF if end_dt is None else _end_timestamp(end_dt, tz)
        if not time_step > 0:
            raise ValueError(f"time_step must be > 0, got {time_step!r}")
        self.time_step = float(time_step)
        self.trace_process_time = bool(trace_process_time)
        self._now_ts = self._start_ts if self._start_ts is not None else 0.0
        self._t0 = 0.0
        self._buffer = _WindowBuffer()
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- time ---------------------------------------------------------------
    @property
    def now_ts(self) -> float:
        if self.trace_process_time and self._t0:
            return self._now_ts + (perf_counter() - self._t0)
        return self._now_ts

    @property
    def start_dt(self) -> datetime | None:
        return None if self._start_ts is None else from_timestamp(self._start_ts, self.env.tz)

    @property
    def end_dt(self) -> datetime | None:
        return None if self._end_ts == _INF else from_timestamp(self._end_ts, self.env.tz)

    # -- awaitables -----------------------------------------------------------
    def _drive(self, awaitable: Any) -> Any:
        """Run an awaitable to completion; no event loop unless it really suspends."""
        if type(awaitable) is CoroutineType or asyncio.iscoroutine(awaitable):
            try:
                first = awaitable.send(None)
            except StopIteration as stop:
                return stop.value
            awaitable = _Resumed(awaitable, first)
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(awaitable)

    def _finish_callback(self, result: Any, callback: Callback, event: Event) -> None:
        try:
            self._drive(result)
        except Exception as exc:
            self.callback_failed(callback, event, exc)

    # -- the mode's part of the lifecycle ---------------------------------------------
    def _drive_lifecycle(self, lifecycle: Any) -> None:
        # the lifecycle awaits only through _await, which never suspends: one
        # send runs the whole run, without an event loop
        self._drive(lifecycle)

    async def _await(self, awaitable: Any) -> Any:
        return self._drive(awaitable)

    def _run_scope(self) -> Any:
        return quiet_gc()

    def _close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    async def _dispatch(self, event: Event) -> None:
        self._dispatch_one(event)

    def _resolve_start(self) -> float:
        if self._start_ts is not None:
            return self._start_ts
        firsts = [t for t in (s.first_timestamp() for s in self._sources) if t is not None]
        if self._heap:
            firsts.append(self._heap[0][0])
        if not firsts:
            raise ConfigError(
                "dispatcher.backtrack.start_dt: required "
                "(no event source knows when its data starts)"
            )
        return min(firsts)

    def _begin(self) -> float:
        start = self._resolve_start()
        end = self._end_ts
        self.summary.start_ts = self._now_ts = start
        logger.debug(
            "backtest from %s to %s, time_step %ss, %d source(s)",
            from_timestamp(start, self.env.tz).isoformat(),
            "exhaustion" if end == _INF else from_timestamp(end, self.env.tz).isoformat(),
            self.time_step,
            len(self._sources),
        )
        return start

    async def _dispatch_loop(self) -> None:
        end = self._end_ts
        step = self.time_step
        window_start = self._now_ts
        while not self._stop_requested:
            limit = window_start + step
            if limit > end:
                limit = end
            filled = self._fill(limit)
            if filled:
                # False when every buffered event is for a later window
                filled = self._dispatch_window(limit)
            else:
                self._dispatch_heap_until(limit)
            if self._stop_requested or limit >= end:
                break
            if not filled:
                # an empty window: with a tiny time_step and no end_dt, stepping
                # through every empty window of a gap would take forever. Jump to
                # the window holding the next pending event (only here, so the
                # hot loop of busy windows pays nothing)
                nxt = self._next_pending()
                if self._stop_requested:
                    break
                if nxt is not None and nxt != _INF and nxt >= limit + step:
                    skipped = floor((nxt - limit) / step)
                    window_start = limit + skipped * step
                    if window_start > nxt:  # rounding: never start after the event
                        window_start -= step
                    continue
            if not self._buffer and all(s.exhausted for s in self._sources):
                if not self._heap:
                    break
                # nothing but events emitted for later: jump to them
                window_start = max(limit, self._heap[0][0])
                continue
            window_start = limit

    def _next_pending(self) -> float | None:
        """The time of the earliest pending event, None if a source cannot tell.

        Asks every source still running for ``first_timestamp()`` (its next
        event); a source answering None that is not exhausted gives no time, so
        the loop steps window by window as before. ``inf``: nothing pending.
        """
        heap = self._heap
        nxt = heap[0][0] if heap else _INF
        if self._buffer:  # events a source put for later windows (kept sorted)
            nxt = min(nxt, self._buffer[0].timestamp)
        for source in tuple(self._sources):
            if source.exhausted:
                continue
            try:
                ts = source.first_timestamp()
            except Exception as exc:
                self._source_failed(source, exc)
                return None
            if ts is None:
                if source.exhausted:
                    continue
                return None
            if ts < nxt:
                nxt = ts
        return nxt

    def _fill(self, limit: float) -> bool:
        """Ask every source for its events before ``limit``; True if any are buffered."""
        buffer = self._buffer
        limit_dt = None
        for source in tuple(self._sources):
            if source.exhausted:
                continue
            try:
                if type(source).events_until is not AbsEventSource.events_until:
                    batch = source.events_until(limit)
                    if batch:
                        buffer.extend(batch)
                else:
                    if limit_dt is None:
                        limit_dt = from_timestamp(limit, self.env.tz)
                    result = source.gen_events(buffer, limit_dt)
                    if result is not None:
                        self._drive(result)
            except Exception as exc:
                self._source_failed(source, exc)
                return False
        return bool(buffer)

    def _dispatch_window(self, limit: float) -> bool:
        """Dispatch the buffered events before ``limit``; False if there were none."""
        batch = self._buffer
        self._buffer = _WindowBuffer()
        batch.sort(key=_timestamp)
        if batch[-1].timestamp >= limit:
            # a source put events beyond this window: keep them for the next
            cut = bisect_left(batch, limit, key=_timestamp)
            self._buffer.extend(batch[cut:])
            del batch[cut:]
            if not batch:
                self._dispatch_heap_until(limit)
                return False
        # heap entries put before this window was filled win ties against it
        base = next(self._seq)
        heap = self._heap
        stopped = 0  # events of the batch not dispatched because the run stopped
        first = 0
        if self.trace_process_time or batch[0].timestamp < self._now_ts:
            # the general path: events already late when the window starts (a
            # source put them in the past) and processing-time tracing both
            # need the per-event checks of _dispatch_one
            limit_slow = (
                len(batch)
                if self.trace_process_time
                else bisect_left(batch, self._now_ts, key=_timestamp)
            )
            for position in range(limit_slow):
                event = batch[position]
                if heap and heap[0][0] <= event.timestamp:
                    self._dispatch_heap_before(event.timestamp, base)
                if self._stop_requested:
                    stopped = len(batch) - position
                    break
                self._dispatch_one(event)
                self.summary.events += 1
            first = limit_slow
        if first < len(batch) and not self._stop_requested:
            stopped = self._dispatch_in_order(batch if first == 0 else batch[first:], base)
        if stopped == 0 and not self._stop_requested:
            self._dispatch_heap_until(limit)
        return True

    def _dispatch_in_order(self, batch: list[Event], base: int) -> int:
        """The hot loop: events in time order, none earlier than now.

        Returns how many were left undispatched because the run stopped.
        """
        heap = self._heap
        get_callbacks = self._subscribers.get
        failed = self.callback_failed
        events = iter(batch)
        for event in events:
            ts = event.timestamp
            if heap and heap[0][0] <= ts:
                self._dispatch_heap_before(ts, base)
                if self._stop_requested:
                    left = length_hint(events) + 1
                    self.summary.events += len(batch) - left
                    return left
            self._now_ts = ts
            callbacks = get_callbacks(event.name)
            if callbacks:
                for callback in callbacks:
                    try:
                        result = callback(event)
                    except Exception as exc:
                        failed(callback, event, exc)
                    else:
                        if result is not None and hasattr(result, "__await__"):
                            self._finish_callback(result, callback, event)
            if self._stop_requested:
                left = length_hint(events)
                self.summary.events += len(batch) - left
                return left
        self.summary.events += len(batch)
        return 0

    def _dispatch_heap_before(self, ts: float, base: int) -> None:
        """Dispatch the queued events that come before a window event at ``ts``."""
        heap = self._heap
        while heap:
            head_ts, seq, event = heap[0]
            if head_ts > ts or (head_ts == ts and seq >= base):
                break
            heappop(heap)
            self._dispatch_one(event)
            self.summary.events += 1
            if self._stop_requested:
                break

    def _dispatch_heap_until(self, limit: float) -> None:
        heap = self._heap
        dispatched = 0
        while heap and heap[0][0] < limit and not self._stop_requested:
            self._dispatch_one(heappop(heap)[2])
            dispatched += 1
        self.summary.events += dispatched

    def _dispatch_one(self, event: Event) -> None:
        if event.timestamp >= self._now_ts:
            self._now_ts = event.timestamp
        elif self._is_expired(event):
            return
        callbacks = self._subscribers.get(event.name)
        if not callbacks:
            return
        tracing = self.trace_process_time
        if tracing:
            self._t0 = perf_counter()
        for callback in callbacks:
            try:
                result = callback(event)
            except Exception as exc:
                self.callback_failed(callback, event, exc)
            else:
                if result is not None and hasattr(result, "__await__"):
                    self._finish_callback(result, callback, event)
        if tracing:
            self._now_ts += perf_counter() - self._t0
            self._t0 = 0.0
