"""Events: the one input of a finchan system.

An :class:`Event` has a name (what subscribers subscribe to), a time (kept as a
POSIX ``timestamp``), an optional ``expire`` and free keyword arguments. Events
order by time (``<``, ``>``) and are equal when their ids are equal.

Events are created on the hot path (one per bar, per tick), so the class uses
``__slots__`` and computes nothing it does not need: the datetime of an event
is built only when someone asks for :attr:`Event.dt`.
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from typing import Any

from finchan._time import UTC, from_timestamp, to_timestamp

__all__ = ["Event", "SysEvents"]

# ids of events created without an Env (an Env numbers its own events, so that
# two Envs in one process give each run the same ids it would get alone)
_orphan_ids = itertools.count(1)


class SysEvents:
    """Names of the events finchan itself dispatches.

    ``SYSTEM_STARTED`` is always the first event of a run and ``SYSTEM_EXITING``
    the last, in both modes.
    """

    SYSTEM_STARTED = "system_event.system_started"
    SYSTEM_EXITING = "system_event.system_will_exit"


class Event:
    """An event.

    Parameters
    ----------
    env:
        the :class:`~finchan.env.Env` the event belongs to (``event.env`` in a callback).
    name:
        name of the event; subscribers subscribe to it.
    dt:
        when it occurs: a datetime (naive ones are read in the Env's time zone),
        a date, an ISO string or POSIX seconds. ``None`` means now (``env.now``).
    expire:
        seconds after ``dt`` past which the event is stale and skipped with a
        warning when its turn comes; ``0`` never expires.
    event_id:
        the id; by default the next number of the Env's counter.
    **kwargs:
        payload, available as ``event.kwargs`` and as attributes (``event.price``).

    Example
    -------
    >>> from finchan.event import Event
    >>> e = Event(None, "quote", dt="2020-01-01T09:30:00", price=101.5)
    >>> e.price, e.dt.isoformat()
    (101.5, '2020-01-01T09:30:00+00:00')
    """

    # kwargs live in the instance __dict__, so they are plain attributes. A
    # __getattr__ fallback would be shorter, but any class defining one loses
    # CPython's specialised attribute access, costing ~50 ns per field read on
    # the hot path.
    __slots__ = ("__dict__", "env", "expire", "id", "name", "timestamp")

    def __init__(
        self,
        env: Any,
        name: str,
        dt: Any = None,
        expire: float = 0,
        event_id: Any = None,
        **kwargs: Any,
    ) -> None:
        self.env = env
        self.name = name
        if dt is None:
            self.timestamp = env.now_ts if env is not None else time.time()
        elif dt.__class__ is float:
            self.timestamp = dt
        else:
            self.timestamp = to_timestamp(dt, env.tz if env is not None else UTC)
        self.expire = expire
        if event_id is None:
            event_id = next(env.event_ids if env is not None else _orphan_ids)
        self.id = event_id
        if kwargs:
            self.__dict__.update(kwargs)

    @property
    def kwargs(self) -> dict[str, Any]:
        """The event's keyword arguments (also readable as attributes)."""
        return self.__dict__

    @property
    def dt(self) -> datetime:
        """When the event occurs, as an aware datetime in the Env's time zone."""
        env = self.env
        return from_timestamp(self.timestamp, env.tz if env is not None else UTC)

    def __lt__(self, other: Event) -> bool:
        return self.timestamp < other.timestamp

    def __gt__(self, other: Event) -> bool:
        return self.timestamp > other.timestamp

    def __le__(self, other: Event) -> bool:
        return self.timestamp <= other.timestamp

    def __ge__(self, other: Event) -> bool:
        return self.timestamp >= other.timestamp

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        same: bool = self.id == other.id
        return same

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} id={self.id!r} at {self.dt.isoformat()}>"
