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
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from finchan.dispatcher._base import Dispatcher, RunSummary, logger
from finchan.errors import FinchanError, RunError
from finchan.event import Event, SysEvents
from finchan.interface.event_source import AbsEventSource

if TYPE_CHECKING:
    from finchan.env import Env

__all__ = ["LiveDispatcher"]

# how long stopping sources may take before their tasks are abandoned
_SOURCE_STOP_TIMEOUT = 1.0


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

    run_mode = "live_track"

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
        self._heap: list[tuple[float, int, Event]] = []
        self._seq = itertools.count()
        self._queue = _LiveQueue(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: dict[AbsEventSource, asyncio.Task[Any]] = {}
        #: called with every event about to be dispatched (a live run's journal)
        self.observers: list[Callable[[Event], Any]] = []

    @property
    def now_ts(self) -> float:
        return time.time()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The running event loop (None outside a run)."""
        return self._loop

    # -- queue ------------------------------------------------------------------
    def eq_put(self, *events: Event) -> None:
        if self._exiting:
            logger.debug(
                "run is exiting: dropped %d event(s) put after SYSTEM_EXITING", len(events)
            )
            return
        for event in events:
            heappush(self._heap, (event.timestamp, next(self._seq), event))
        if self._wake is not None:
            self._wake.set()

    def eq_put_threadsafe(self, *events: Event) -> None:
        """``eq_put`` from a thread other than the loop's."""
        if self._loop is None:
            raise RunError("the live dispatcher is not running")
        self._loop.call_soon_threadsafe(self.eq_put, *events)

    def stop(self) -> None:
        super().stop()
        self._wake_up()

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        # always through the self-pipe: from a signal handler (which runs in
        # the loop's thread while it sleeps in select) a plain wake.set() would
        # only be seen when the select times out
        loop.call_soon_threadsafe(wake.set)

    # -- run --------------------------------------------------------------------
    def run(self) -> RunSummary:
        if self._running:
            raise RunError("the dispatcher is already running")
        self.summary = RunSummary(self.run_mode)
        self._failure = None
        self._stop_requested = False
        self._exiting = False
        wall_start = time.perf_counter()
        try:
            with self._signals_handled(wake=self._wake_up):
                asyncio.run(self._main())
        finally:
            self.summary.wall_seconds = time.perf_counter() - wall_start
            self._loop = None
            self._wake = None
        if self._failure is not None:
            raise self._failure
        return self.summary

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._heap or self._stop_requested:
            self._wake.set()
        ext_manager = self.env.ext_manager
        try:
            if ext_manager is not None:
                await ext_manager.asetup()
            await self._run_sources_and_dispatch()
        except BaseException as exc:
            self._note_failure(exc)
            raise
        finally:
            if ext_manager is not None:
                try:
                    await ext_manager.acleanup()
                except FinchanError as exc:
                    if self._failure is None:
                        self._failure = exc

    async def _run_sources_and_dispatch(self) -> None:
        self._running = True
        started: list[AbsEventSource] = []
        try:
            self.summary.start_ts = time.time()
            for source in list(self._sources):
                self._start_source(source)
                started.append(source)
                self._spawn(source)
            # dispatched directly, not queued: whatever the sources put is after it
            await self._dispatch_one(Event(self.env, SysEvents.SYSTEM_STARTED))
            await self._dispatch_until_stopped()
        finally:
            self._running = False
            self._exiting = True
            self.summary.end_ts = time.time()
            try:
                await self._dispatch_one(Event(self.env, SysEvents.SYSTEM_EXITING))
            finally:
                await self._stop_sources(started)

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

    def _start_source_while_running(self, source: AbsEventSource) -> None:
        self._start_source(source)
        self._spawn(source)

    def _stop_source_while_running(self, source: AbsEventSource) -> None:
        self._stop_source(source)
        task = self._tasks.pop(source, None)
        if task is not None:
            task.cancel()

    async def _stop_sources(self, started: list[AbsEventSource]) -> None:
        for source in reversed(started):
            self._stop_source(source)
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=_SOURCE_STOP_TIMEOUT)
            for task in pending:
                logger.warning("%s did not stop within %ss", task.get_name(), _SOURCE_STOP_TIMEOUT)

    def _nothing_more_can_happen(self) -> bool:
        return not self._heap and all(s.exhausted for s in self._sources)

    async def _dispatch_until_stopped(self) -> None:
        heap = self._heap
        wake = self._wake
        assert wake is not None
        while not self._stop_requested:
            timeout = self.stop_check_interval
            if heap:
                delay = heap[0][0] - time.time()
                if delay <= 0:
                    await self._dispatch_one(heappop(heap)[2])
                    self.summary.events += 1
                    continue
                timeout = min(timeout, delay)
            elif self._sources and self._nothing_more_can_happen():
                break
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _dispatch_one(self, event: Event) -> None:
        now = time.time()
        if event.expire and now - event.timestamp > event.expire:
            logger.warning(
                "skipped expired event %r: due %s, now %s (expire %ss)",
                event.name,
                event.dt.isoformat(),
                self.now.isoformat(),
                event.expire,
            )
            return
        if self.observers:
            for observe in self.observers:
                observe(event)
        for callback in self._subscribers.get(event.name, ()):
            try:
                result = callback(event)
                if result is not None and hasattr(result, "__await__"):
                    await result
            except Exception as exc:
                self._callback_failed(callback, event, exc)
