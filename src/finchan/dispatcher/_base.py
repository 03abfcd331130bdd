"""What both dispatchers share: subscriptions, sources, the error policy, stopping."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from finchan._time import from_timestamp
from finchan.errors import CallbackError, FinchanError, RunError
from finchan.interface.event_source import AbsEventSource

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.event import Event

__all__ = ["Callback", "Dispatcher", "RunSummary"]

logger = logging.getLogger("finchan.dispatcher")

Callback = Callable[["Event"], Any]

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

    def __init__(self, run_mode: str) -> None:
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

    run_mode = ""

    def __init__(self, env: Env, *, on_callback_error: str = "log") -> None:
        if on_callback_error not in CALLBACK_ERROR_POLICIES:
            raise ValueError(f"on_callback_error must be one of {CALLBACK_ERROR_POLICIES}")
        self.env = env
        self.on_callback_error = on_callback_error
        self._subscribers: dict[str, tuple[Callback, ...]] = {}
        self._sources: list[AbsEventSource] = []
        self._running = False
        self._exiting = False
        self._stop_requested = False
        self._failure: FinchanError | None = None
        self._signal_count = 0
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
    def subscribe(self, name: str, callback: Callback, prepend: bool = False) -> Callback:
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

    def unsubscribe(self, name: str, callback: Callback) -> bool:
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
        self, name: str, callback: Callback, prepend: bool = False
    ) -> Iterator[Callback]:
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
        """Queue events for dispatch (from callbacks, extensions, sources)."""
        raise NotImplementedError

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

    def run(self) -> RunSummary:
        """Run the whole lifecycle and return its summary."""
        raise NotImplementedError

    # -- errors -------------------------------------------------------------
    def _callback_failed(self, callback: Callback, event: Event, exc: BaseException) -> None:
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
                logger.warning("second interrupt: exiting now, cleanups skipped")
                logging.shutdown()
                os._exit(130)
            logger.warning("got %s: stopping", signal.Signals(signum).name)
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
