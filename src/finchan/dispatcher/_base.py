"""What both dispatchers share: subscriptions, sources, the queue, the run lifecycle.

The lifecycle of a run is written once, in :meth:`Dispatcher.run`; a mode
writes only how it waits for and walks through events (:meth:`Dispatcher._dispatch_loop`)
and how an awaitable is awaited (synchronously in backtest, in the event loop
in live). In order:

1. reset the run's state (summary, failure, stop flag);
2. enter the lifespan the Env hands over: extension ``setup`` in load order
   (if one fails, those set up before it are cleaned up, and the run ends);
3. start the sources in registration order (one failing ends the run: those
   started are stopped);
4. dispatch ``SYSTEM_STARTED``;
5. the mode's loop, until a stop request, a failure, the end of data or time;
6. dispatch ``SYSTEM_EXITING``, only if ``SYSTEM_STARTED`` was dispatched
   (always, once it was: also after a failure or Ctrl-C);
7. stop the started sources, in reverse;
8. leave the lifespan: extension ``cleanup`` in reverse load order;
9. raise the first failure, if any (a Ctrl-C propagates as itself).

Size: just over 500 lines because the lifecycle above, the queue, the
subscriptions and the signal handling are one state machine; the modes'
own parts are in ``_backtrack.py`` and ``_live.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import datetime
from heapq import heappush
from time import perf_counter
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from finchan._mode import RunMode
from finchan._time import from_timestamp
from finchan.errors import CallbackError, FinchanError, RunError
from finchan.event import Event, SysEvents
from finchan.interface.event_source import AbsEventSource

if TYPE_CHECKING:
    from finchan.env import Env

__all__ = ["Callback", "Dispatcher", "Lifespan", "RunSummary"]

logger = logging.getLogger("finchan.dispatcher")


def _exit_now() -> NoReturn:
    """The second Ctrl-C: exit 130 at once, whatever the main thread was doing.

    This runs inside a signal handler, possibly nested in the middle of a
    write to stderr (CPython's buffered writer runs handlers while it holds
    its lock). Going through ``logging`` there raises "reentrant call" and,
    if that escaped, the exit would be lost and a blocked callback would go
    on blocking. So the line goes to the file descriptor directly and
    ``os._exit`` runs whatever happens before it.
    """
    try:
        os.write(2, b"second interrupt: exiting now, cleanups skipped\n")
    finally:
        os._exit(130)


Callback = Callable[[Event], Any]
# what subscribe accepts and returns: any callable, so that a handler of an
# Event subclass (``def on_bar(bar: Bar)``) can be subscribed to its events
_C = TypeVar("_C", bound=Callable[..., Any])

#: what the Env hands to :meth:`Dispatcher.run`: called with the Env, it gives an
#: async context manager entered before the sources start (extension setup) and
#: left after they stopped (extension cleanup), starlette's lifespan pattern
Lifespan = Callable[["Env"], AbstractAsyncContextManager[Any]]

#: values of the ``on_callback_error`` option
CALLBACK_ERROR_POLICIES = ("log", "stop")


class RunSummary:
    """What a finished run reports: counts, simulated span, how it ended."""

    __slots__ = (
        "callback_errors",
        "end_ts",
        "events",
        "interrupted",
        "run_mode",
        "start_ts",
        "wall_seconds",
    )

    def __init__(self, run_mode: RunMode) -> None:
        self.run_mode = run_mode
        self.events = 0
        self.start_ts: float | None = None
        self.end_ts: float | None = None
        self.wall_seconds = 0.0
        self.interrupted = False
        self.callback_errors = 0

    def __repr__(self) -> str:
        return (
            f"<RunSummary {self.run_mode} events={self.events} "
            f"interrupted={self.interrupted} callback_errors={self.callback_errors}>"
        )


def describe_callable(func: Any) -> str:
    """``module.qualname`` of a callback, for error messages."""
    target = getattr(func, "func", func)  # functools.partial
    module = getattr(target, "__module__", None) or "?"
    name = getattr(target, "__qualname__", None) or repr(target)
    return f"{module}.{name}"


class Dispatcher:
    """Base of the dispatchers: subscriptions, event sources, stop requests.

    Subscribers of one event name are called in subscription order;
    ``prepend=True`` puts a subscriber before the others. A subscriber added
    or removed while an event is being dispatched takes effect from the next
    event (the dispatcher iterates an immutable snapshot).

    When a subscriber raises, the error is logged with the callback, the event
    name and the time. With ``on_callback_error="log"`` the other subscribers
    and the run go on; with ``"stop"`` the run stops after the current event:
    ``SYSTEM_EXITING`` is dispatched, cleanups run, and :meth:`run` raises
    :class:`~finchan.errors.CallbackError`.
    """

    run_mode: RunMode

    def __init__(self, env: Env, *, on_callback_error: str = "log") -> None:
        if on_callback_error not in CALLBACK_ERROR_POLICIES:
            raise ValueError(f"on_callback_error must be one of {CALLBACK_ERROR_POLICIES}")
        self.env = env
        self.on_callback_error = on_callback_error
        self._subscribers: dict[str, tuple[Callback, ...]] = {}
        #: called with every event about to reach its callbacks, before them (a live
        #: run's journal); the backtest's hot loop does not call them
        self.observers: list[Callable[[Event], Any]] = []
        self._sources: list[AbsEventSource] = []
        self._running = False
        self._exiting = False
        self._stop_requested = False
        self._failure: FinchanError | None = None
        self._signal_count = 0
        #: events put by eq_put, keyed by (time, put sequence)
        self._heap: list[tuple[float, int, Event]] = []
        self._seq = itertools.count()
        self.summary = RunSummary(self.run_mode)

    # -- time -------------------------------------------------------------
    @property
    def now_ts(self) -> float:
        """Current time as POSIX seconds."""
        raise NotImplementedError

    @property
    def now(self) -> datetime:
        """Current time (simulated in backtest, wall clock in live), aware, in the Env's zone."""
        return from_timestamp(self.now_ts, self.env.tz)

    # -- subscriptions ------------------------------------------------------
    def subscribe(self, name: str, callback: _C, prepend: bool = False) -> _C:
        """Call ``callback(event)`` for every event named ``name``; returns ``callback``.

        ``callback`` may be a plain function or a coroutine function. Returning
        the callback lets ``subscribe`` be used as a decorator factory::

            @functools.partial(env.dispatcher.subscribe, "quote")
            def on_quote(event): ...
        """
        if not isinstance(name, str):
            raise TypeError(f"event name must be a str, not {type(name).__name__}")
        if not callable(callback):
            raise TypeError(f"callback for {name!r} is not callable: {callback!r}")
        current = self._subscribers.get(name, ())
        self._subscribers[name] = (callback, *current) if prepend else (*current, callback)
        return callback

    def unsubscribe(self, name: str, callback: Callable[..., Any]) -> bool:
        """Stop calling ``callback`` for ``name``; False if it was not subscribed."""
        current = self._subscribers.get(name, ())
        if callback not in current:
            return False
        remaining = list(current)
        remaining.remove(callback)
        if remaining:
            self._subscribers[name] = tuple(remaining)
        else:
            del self._subscribers[name]
        return True

    @contextmanager
    def subscribed(
        self, name: str, callback: _C, prepend: bool = False
    ) -> Iterator[_C]:
        """Context manager: ``callback`` is subscribed inside the ``with`` block only."""
        self.subscribe(name, callback, prepend)
        try:
            yield callback
        finally:
            self.unsubscribe(name, callback)

    def subscribers(self, name: str) -> tuple[Callback, ...]:
        """The callbacks of ``name``, in call order."""
        return self._subscribers.get(name, ())

    # -- sources ------------------------------------------------------------
    def register_event_source(self, event_source: AbsEventSource) -> bool:
        """Add a source. Allowed while running: it is started and asked from then on."""
        if not isinstance(event_source, AbsEventSource):
            raise TypeError(f"event source must be an AbsEventSource, not {event_source!r}")
        if event_source in self._sources:
            return False
        self._sources.append(event_source)
        if self._running:
            self._start_source_while_running(event_source)
        return True

    def deregister_event_source(self, event_source: AbsEventSource) -> bool:
        """Remove a source; a running one is stopped. False if it was not registered."""
        if event_source not in self._sources:
            return False
        self._sources.remove(event_source)
        if self._running:
            self._stop_source_while_running(event_source)
        return True

    @property
    def event_sources(self) -> tuple[AbsEventSource, ...]:
        return tuple(self._sources)

    @property
    def is_wired(self) -> bool:
        """Whether anything was given to run: a source, a subscriber or a queued event."""
        return bool(self._sources or self._subscribers or self._heap)

    def _start_source_while_running(self, source: AbsEventSource) -> None:
        self._start_source(source)

    def _stop_source_while_running(self, source: AbsEventSource) -> None:
        self._stop_source(source)

    def _start_source(self, source: AbsEventSource) -> None:
        try:
            source.start()
        except FinchanError:
            raise
        except Exception as exc:
            raise RunError(
                f"event source {source.name} failed to start: {type(exc).__name__}: {exc}"
            ) from exc

    def _stop_source(self, source: AbsEventSource) -> None:
        try:
            source.stop()
        except Exception as exc:
            logger.error(
                "event source %s failed to stop: %s: %s", source.name, type(exc).__name__, exc
            )

    # -- the queue ----------------------------------------------------------
    def eq_put(self, *events: Event) -> None:
        """Queue events for dispatch (from callbacks, extensions, sources).

        Dispatched in time order, ties in put order. Events put once
        ``SYSTEM_EXITING`` is under way are dropped (logged at debug level):
        nothing would dispatch them.
        """
        if self._exiting:
            logger.debug(
                "run is exiting: dropped %d event(s) put after SYSTEM_EXITING", len(events)
            )
            return
        heap, seq = self._heap, self._seq
        for event in events:
            heappush(heap, (event.timestamp, next(seq), event))

    def _is_expired(self, event: Event) -> bool:
        """An event whose time is already past; True (and a warning) if it must be skipped."""
        late = self.now_ts - event.timestamp
        if event.expire and late > event.expire:
            logger.warning(
                "skipped expired event %r: due %s, now %s (expire %ss)",
                event.name,
                event.dt.isoformat(),
                self.now.isoformat(),
                event.expire,
            )
            return True
        return False

    # -- stopping -----------------------------------------------------------
    def stop(self) -> None:
        """Ask the run to stop: the current event finishes, then ``SYSTEM_EXITING``."""
        self._stop_requested = True

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    @property
    def failure(self) -> FinchanError | None:
        """Why the current or last run failed (None while it goes well)."""
        return self._failure

    # -- the lifecycle ------------------------------------------------------------
    def run(self, lifespan: Lifespan | None = None) -> RunSummary:
        """Run the whole lifecycle (see the module docstring) and return its summary.

        ``lifespan`` is what :meth:`Env.run <finchan.env.Env.run>` hands over:
        the extensions' setup and cleanup around the run. Raises the run's
        first failure (a :class:`~finchan.errors.FinchanError`) once every
        cleanup has run.
        """
        if self._running:
            raise RunError("the dispatcher is already running")
        self._reset()
        summary = self.summary
        wall_start = perf_counter()
        try:
            with self._signals_handled(wake=self._wake_up), self._run_scope():
                self._drive_lifecycle(self._lifecycle(lifespan))
        finally:
            summary.wall_seconds = perf_counter() - wall_start
            self._close()
        if self._failure is not None:
            raise self._failure
        return summary

    def _reset(self) -> None:
        self.summary = RunSummary(self.run_mode)
        self._failure = None
        self._stop_requested = False
        self._exiting = False

    async def _lifecycle(self, lifespan: Lifespan | None) -> None:
        context = lifespan(self.env) if lifespan is not None else None
        if context is not None:
            try:
                await self._await(context.__aenter__())
            except BaseException as exc:
                # setup failed; the lifespan has cleaned up what it had set up
                self._note_failure(exc)
                raise
        error: BaseException | None = None
        try:
            await self._run_sources()
        except BaseException as exc:
            error = exc
            self._note_failure(exc)
            raise
        finally:
            if context is not None:
                try:
                    await self._await(
                        context.__aexit__(
                            type(error) if error else None,
                            error,
                            error.__traceback__ if error else None,
                        )
                    )
                except FinchanError as exc:
                    if exc is not error and self._failure is None:
                        self._failure = exc

    async def _run_sources(self) -> None:
        started: list[AbsEventSource] = []
        started_dispatched = False
        self._running = True
        try:
            for source in list(self._sources):
                self._start_source(source)
                started.append(source)
                self._source_started(source)
            start_ts = self._begin()
            started_dispatched = True
            # dispatched directly, not queued: whatever the sources put is after it
            await self._dispatch(Event(self.env, SysEvents.SYSTEM_STARTED, dt=start_ts))
            await self._dispatch_loop()
        finally:
            self._running = False
            self._exiting = True
            self.summary.end_ts = end_ts = self.now_ts
            try:
                if started_dispatched:
                    await self._dispatch(Event(self.env, SysEvents.SYSTEM_EXITING, dt=end_ts))
            finally:
                for source in reversed(started):
                    # a source deregistered during the run was stopped then
                    if source in self._sources:
                        self._stop_source(source)
                await self._sources_stopped()

    async def _dispatch(self, event: Event) -> None:
        """Call one event's callbacks, in order, awaiting what they return.

        The reference form of dispatching one event; the backtest keeps a
        synchronous copy in its hot loop (see its module docstring).
        """
        if self._is_expired(event):
            return
        if self.observers:
            for observe in self.observers:
                observe(event)
        for callback in self._subscribers.get(event.name, ()):
            try:
                result = callback(event)
                if result is not None and hasattr(result, "__await__"):
                    await self._await(result)
            except Exception as exc:
                self.callback_failed(callback, event, exc)

    # -- what a mode writes ----------------------------------------------------------
    def _drive_lifecycle(self, lifecycle: Any) -> None:
        """Run the lifecycle coroutine to its end (synchronously, or in an event loop)."""
        raise NotImplementedError

    async def _await(self, awaitable: Awaitable[Any]) -> Any:
        """Await an awaitable of the run (setup, cleanup, a callback's result)."""
        return await awaitable

    def _begin(self) -> float:
        """Called once the sources started; returns the time of ``SYSTEM_STARTED``."""
        self.summary.start_ts = now = self.now_ts
        return now

    async def _dispatch_loop(self) -> None:
        """Dispatch events until stopped, failed, or nothing more can happen."""
        raise NotImplementedError

    def _source_started(self, source: AbsEventSource) -> None:
        """A source started at the beginning of the run (live spawns its task)."""

    async def _sources_stopped(self) -> None:
        """Every started source was stopped (live ends their tasks)."""

    def _run_scope(self) -> contextlib.AbstractContextManager[Any]:
        """Process-wide settings held for the whole run (the backtest's GC tuning)."""
        return contextlib.nullcontext()

    def _wake_up(self) -> None:
        """Wake a loop waiting for events (a stop request, a signal)."""

    def _close(self) -> None:
        """Release what the run held (event loops)."""

    # -- errors -------------------------------------------------------------
    def callback_failed(self, callback: Callback, event: Event, exc: BaseException) -> None:
        """Handle an exception of a user function called for ``event``, as a subscriber's.

        The dispatcher calls it for its subscribers; code that calls user
        functions on their behalf (the simulated account calling a strategy's
        ``on_order``/``on_fill``) calls it too, so that ``on_callback_error``
        applies the same way: counted, logged, and with ``stop`` the run ends
        with a :class:`~finchan.errors.CallbackError` whose cause is ``exc``.
        """
        self.summary.callback_errors += 1
        message = (
            f"callback {describe_callable(callback)} failed on event {event.name!r} "
            f"at {self.now.isoformat()}: {type(exc).__name__}: {exc}"
        )
        if self.on_callback_error == "stop":
            # the run raises this as its error: whoever runs it reports it once
            logger.info("stopping: %s", message)
        else:
            logger.error(message)
        logger.debug("traceback of the failed callback", exc_info=exc)
        if self.on_callback_error == "stop" and self._failure is None:
            self._failure = CallbackError(message)
            # raised by run(): its traceback then shows the callback's own
            # file and line (notebooks, debuggers, pytest)
            self._failure.__cause__ = exc
            self._stop_requested = True

    def _note_failure(self, exc: BaseException) -> None:
        """Record an exception escaping the run, so cleanups can tell it failed."""
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            self.summary.interrupted = True
        elif self._failure is None:
            self._failure = (
                exc if isinstance(exc, FinchanError) else RunError(f"{type(exc).__name__}: {exc}")
            )

    def _source_failed(self, source: AbsEventSource, exc: BaseException) -> None:
        if isinstance(exc, FinchanError):
            failure: FinchanError = exc
        else:
            failure = RunError(f"event source {source.name} failed: {type(exc).__name__}: {exc}")
            logger.debug("traceback of the failed source", exc_info=exc)
        logger.error(str(failure))
        if self._failure is None:
            self._failure = failure
        self._stop_requested = True

    # -- signals ------------------------------------------------------------
    @contextmanager
    def _signals_handled(self, wake: Callable[[], None] | None = None) -> Iterator[None]:
        """SIGINT/SIGTERM stop the run; a second SIGINT exits at once with 130.

        A plain ``signal.signal`` handler rather than the event loop's: it runs
        even while a callback blocks the loop, which is exactly when a second
        Ctrl-C must work.
        """
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            self._signal_count += 1
            if signum == signal.SIGINT and self._signal_count > 1:
                _exit_now()
            try:
                logger.warning("got %s: stopping", signal.Signals(signum).name)
            except RuntimeError:
                # the handler interrupted a write to the same stream (the
                # buffered writer runs handlers while holding its lock): the
                # line is lost, the stop must not be
                pass
            self.summary.interrupted = True
            self.stop()
            if wake is not None:
                wake()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)
