"""The live dispatcher: real sources on the wall clock, with asyncio.

Sources run as asyncio tasks and put events as they happen. Events are
dispatched in time order, ties in put order, when their time has come (an
event put for a later time waits for it). Callbacks run one at a time, in the
loop: an ``async`` callback is awaited before the next event is dispatched, so
handlers never interleave; work that must not hold up dispatch belongs in a
task the callback starts.

The run ends on SIGINT or SIGTERM, on :meth:`Dispatcher.stop`, or when every
source is exhausted and nothing is pending. Then ``SYSTEM_EXITING`` is
dispatched, sources are stopped and their tasks cancelled, and extension
cleanups run. A second SIGINT exits at once with status 130.

The hot path: due events are dispatched in a plain loop, without a coroutine
or task per event (a callback's awaitable is awaited in turn). After
``_SLICE`` seconds of dispatching the loop yields once, so that sources keep
reading and their I/O (acknowledgements, commits) completes while a backlog is
dispatched. Waiting for the next event is one future the next ``eq_put``
resolves: one loop iteration from a source's put to its dispatch.

Events put together in time order (a source's batch) take one place in the
heap between them (a ``_Run``), keyed by the time of its next event and the
put's sequence number: the order is the same as with one place each (the
run's events were all put before anything put later), and the heap stays as
small as the number of batches, not of events.
"""

from __future__ import annotations

import asyncio
import threading
import time
from heapq import heappop, heappush, heapreplace
from typing import TYPE_CHECKING, Any

from finchan._mode import RunMode
from finchan._process import quiet_gc
from finchan.dispatcher._base import Dispatcher, logger
from finchan.errors import RunError
from finchan.event import Event
from finchan.interface.event_source import AbsEventSource

if TYPE_CHECKING:
    from finchan.env import Env

__all__ = ["LiveDispatcher"]

# how long stopping sources may take before their tasks are abandoned
_SOURCE_STOP_TIMEOUT = 1.0

# seconds of dispatching before the loop lets the other tasks run: long enough
# to cost nothing per event, short enough that a source's read and its
# commits overlap the dispatch of a backlog
_SLICE = 0.002


class _Run:
    """Events put together, in time order: one heap entry that stands for the next of them."""

    __slots__ = ("events", "pos")

    def __init__(self, events: tuple[Event, ...]) -> None:
        self.events = events
        self.pos = 0


class _LiveQueue:
    """The ``event_queue`` of live sources."""

    __slots__ = ("_dispatcher",)

    def __init__(self, dispatcher: LiveDispatcher) -> None:
        self._dispatcher = dispatcher

    def put(self, event: Event) -> None:
        self._dispatcher.eq_put(event)

    put_nowait = put

    def put_threadsafe(self, event: Event) -> None:
        self._dispatcher.eq_put_threadsafe(event)


class LiveDispatcher(Dispatcher):
    """Dispatch events from live sources on the wall clock.

    Parameters
    ----------
    env:
        the Env.
    stop_check_interval:
        the longest the dispatcher sleeps without looking at its stop flag and
        its sources (signals and ``stop()`` wake it at once anyway).
    on_callback_error:
        ``"log"`` (default in live: a running system must keep managing its
        positions when one handler fails) or ``"stop"``.
    """

    run_mode = RunMode.LIVE

    def __init__(
        self,
        env: Env,
        stop_check_interval: float = 1.0,
        on_callback_error: str = "log",
    ) -> None:
        super().__init__(env, on_callback_error=on_callback_error)
        if not stop_check_interval > 0:
            raise ValueError(f"stop_check_interval must be > 0, got {stop_check_interval!r}")
        self.stop_check_interval = float(stop_check_interval)
        self._queue = _LiveQueue(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        # the future the idle dispatch loop awaits (None while it dispatches)
        self._waiter: asyncio.Future[None] | None = None
        self._tasks: dict[AbsEventSource, asyncio.Task[Any]] = {}
        # events put from other threads and not yet in the heap
        self._from_threads = 0
        self._from_threads_lock = threading.Lock()

    @property
    def now_ts(self) -> float:
        return time.time()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The running event loop (None outside a run)."""
        return self._loop

    # -- queue ------------------------------------------------------------------
    def eq_put(self, *events: Event) -> None:
        if len(events) > 1 and not self._exiting:
            stamps = [event.timestamp for event in events]
            if stamps == sorted(stamps):
                heap: list[Any] = self._heap  # entries hold an Event or a _Run
                heappush(heap, (stamps[0], next(self._seq), _Run(events)))
            else:
                super().eq_put(*events)
        else:
            super().eq_put(*events)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def eq_put_threadsafe(self, *events: Event) -> None:
        """``eq_put`` from a thread other than the loop's."""
        if self._loop is None:
            raise RunError("the live dispatcher is not running")
        # counted until the loop has put them: a source that marks itself
        # exhausted right after must not end the run before they are in
        with self._from_threads_lock:
            self._from_threads += 1
        self._loop.call_soon_threadsafe(self._put_from_thread, events)

    def _put_from_thread(self, events: tuple[Event, ...]) -> None:
        try:
            self.eq_put(*events)
        finally:
            with self._from_threads_lock:
                self._from_threads -= 1

    def stop(self) -> None:
        super().stop()
        self._wake_up()

    def _wake_up(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # always through the self-pipe: from a signal handler (which runs in
        # the loop's thread while it sleeps in select) a plain set_result
        # would only be seen when the select times out
        loop.call_soon_threadsafe(self._wake_now)

    def _wake_now(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- the mode's part of the lifecycle -----------------------------------------
    def _drive_lifecycle(self, lifecycle: Any) -> None:
        asyncio.run(self._in_loop(lifecycle))

    async def _in_loop(self, lifecycle: Any) -> None:
        self._loop = asyncio.get_running_loop()
        await lifecycle

    def _close(self) -> None:
        self._loop = None
        self._waiter = None

    def _run_scope(self) -> Any:
        # a live source allocates per message as a backtest does per bar; without
        # it the collector's full passes over every module's objects cost a
        # third of a Redis stream's bar (bench/live.py)
        return quiet_gc()

    def _source_started(self, source: AbsEventSource) -> None:
        self._spawn(source)

    def _spawn(self, source: AbsEventSource) -> None:
        self._tasks[source] = asyncio.get_running_loop().create_task(
            self._source_task(source), name=f"finchan source {source.name}"
        )

    async def _source_task(self, source: AbsEventSource) -> None:
        try:
            await source.gen_events(self._queue)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._source_failed(source, exc)
            self._wake_up()
        else:
            # it may have been the last one: the loop need not wait its timeout
            self._wake_now()

    def _start_source_while_running(self, source: AbsEventSource) -> None:
        self._start_source(source)
        self._spawn(source)

    def _stop_source_while_running(self, source: AbsEventSource) -> None:
        self._stop_source(source)
        task = self._tasks.pop(source, None)
        if task is not None:
            task.cancel()

    async def _sources_stopped(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_SOURCE_STOP_TIMEOUT)
            for task in pending:
                logger.warning("%s did not stop within %ss", task.get_name(), _SOURCE_STOP_TIMEOUT)

    def _nothing_more_can_happen(self) -> bool:
        return (
            not self._heap
            and not self._from_threads
            and all(s.exhausted for s in self._sources)
        )

    async def _dispatch_loop(self) -> None:
        heap = self._heap
        loop = asyncio.get_running_loop()
        clock = time.time
        while not self._stop_requested:
            timeout = self.stop_check_interval
            if heap:
                delay = heap[0][0] - clock()
                if delay <= 0:
                    await self._dispatch_due()
                    continue
                timeout = min(timeout, delay)
            elif self._sources and self._nothing_more_can_happen():
                break
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, self._wake_now)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None

    async def _dispatch_due(self) -> None:
        """Dispatch the due events for up to ``_SLICE`` seconds, then yield once.

        :meth:`Dispatcher._dispatch` inlined (an expiry check only for events
        that expire): no coroutine per event.
        """
        heap: list[Any] = self._heap  # entries hold an Event or a _Run
        clock = time.time
        get_callbacks = self._subscribers.get
        observers = self.observers
        failed = self.callback_failed
        summary = self.summary
        now = clock()
        until = now + _SLICE
        while heap and heap[0][0] <= now and not self._stop_requested:
            entry = heap[0]
            event: Any = entry[2]
            if event.__class__ is _Run:
                run = event
                event = run.events[run.pos]
                run.pos += 1
                if run.pos < len(run.events):
                    heapreplace(heap, (run.events[run.pos].timestamp, entry[1], run))
                else:
                    heappop(heap)
            else:
                heappop(heap)
            summary.events += 1
            if event.expire and self._is_expired(event):
                continue
            if observers:
                for observe in observers:
                    observe(event)
            for callback in get_callbacks(event.name, ()):
                try:
                    result = callback(event)
                    if result is not None and hasattr(result, "__await__"):
                        await self._await(result)
                except Exception as exc:
                    failed(callback, event, exc)
            now = clock()
            if now >= until:
                # let the sources read and their I/O complete (see the module docstring)
                await asyncio.sleep(0)
                return
