"""The interface of an event source: where events come from.

A source is registered with ``env.dispatcher.register_event_source(source)``,
usually in an extension's ``load_finchan_ext``. The dispatcher calls
:meth:`AbsEventSource.start` before the first event and
:meth:`AbsEventSource.stop` after the last, and asks for events:

* **backtest**: once per ``time_step`` window, ``await gen_events(event_queue,
  limit_dt)``; the source puts every event it has before ``limit_dt`` with
  ``event_queue.put(event)`` and returns. When it will never have more, it sets
  ``self.exhausted = True`` so a backtest without ``end_dt`` can end.
* **live**: ``await gen_events(event_queue)`` runs as an asyncio task until the
  source is stopped (the task is cancelled at the end of the run). A source
  fed by another thread calls ``event_queue.put_threadsafe(event)``.

``event_queue.put(event)`` is a plain call in both modes: it never blocks
and returns nothing (do not ``await`` it as with an ``asyncio.Queue``). In
backtest it is ``list.append`` itself.

Sources that already hold sorted history may instead implement the faster
:meth:`AbsEventSource.events_until`, which hands the dispatcher a whole list
per window and costs no coroutine or method call per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from finchan.event import Event

__all__ = ["AbsEventSource", "EventQueue"]


class EventQueue(Protocol):
    """What a source puts its events into."""

    def put(self, event: Event) -> Any:
        """Queue ``event`` (a plain call, never awaited)."""

    def put_threadsafe(self, event: Event) -> None:
        """Queue ``event`` from another thread (live mode)."""


class AbsEventSource:
    """Base class of event sources.

    Subclasses implement :meth:`gen_events` (the documented way) or
    :meth:`events_until` (the batch fast path for sorted history), and may
    override :meth:`start` and :meth:`stop`.
    """

    #: set to True by a source that will produce no more events (backtest)
    exhausted: bool = False

    @property
    def name(self) -> str:
        """Name of the source, used in logs and error messages."""
        return type(self).__name__

    def start(self) -> None:
        """Called once before the first event is dispatched."""

    def stop(self) -> None:
        """Called once after the last event was dispatched, also when the run failed."""

    async def gen_events(self, event_queue: EventQueue, limit_dt: datetime | None = None) -> None:
        """Put events into ``event_queue``.

        Backtest: every event before ``limit_dt``, then return. Live
        (``limit_dt is None``): run until stopped.
        """
        if type(self).events_until is AbsEventSource.events_until:
            raise NotImplementedError(f"{self.name} implements neither gen_events nor events_until")
        if limit_dt is None:
            raise NotImplementedError(f"{self.name} is a history source; it has no live mode")
        for event in self.events_until(limit_dt.timestamp()):
            event_queue.put(event)

    def events_until(self, limit_ts: float) -> Sequence[Event]:
        """Fast path: the events before POSIX time ``limit_ts``, in time order.

        The dispatcher owns the returned list afterwards. Not implemented by
        default; a source that implements it is not asked for ``gen_events``
        in backtest.
        """
        raise NotImplementedError

    def first_timestamp(self) -> float | None:
        """Time of the first event this source will produce, if known.

        A backtest configured without ``start_dt`` starts at the earliest of these.
        After an empty window the backtest asks again (the time of the *next*
        event) to jump over windows with nothing in them; None from a source
        that is not exhausted means "unknown" and the backtest steps window by
        window.
        """
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
