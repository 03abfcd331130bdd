"""Timer event source and scheduler (the built-in extension ``finchan.exts.timer_source``).

The extension publishes a :class:`Scheduler` with ``env.set_ext_obj``::

    sched = env.get_ext_obj("finchan.exts.timer_source")
    sched.run_every(3).to(5).seconds().do(func)       # func(env, *args, **kwargs)
    sched.run_every(1).days().offset("09:30").do(func)
    sched.run_once(dt).do(func)

Units: seconds, minutes, hours, days, weeks, months, years. ``.to(n)`` draws
each step at random in ``[step, n]`` from a generator seeded with the
config's ``seed`` (or this extension's ``seed`` option), so a backtest repeats
exactly. Without an offset the first run is one step after now; with an
offset it is the first matching time at or after now. Offsets by unit:

========  ==========================  ===========================
unit      offset format               example
========  ==========================  ===========================
minutes   ``SS`` (second)             ``"30"``
hours     ``MM[:SS]``                 ``"15"``, ``"15:30"``
days      ``HH:MM[:SS]``              ``"09:30"``
weeks     ``WEEKDAY [HH:MM[:SS]]``    ``"friday 09:31"``
months    ``DD [HH:MM[:SS]]``         ``"15 09:30"`` (clamped to month end)
years     ``MM-DD [HH:MM[:SS]]``      ``"07-21 09:30"``
========  ==========================  ===========================

Calendar units step in wall-clock time of the Env's time zone. Timer events
are named :data:`TIMER_EVENT`; the scheduler subscribes to them and calls the
job's function, so a job's function runs like any callback (plain or async,
errors handled by the dispatcher's policy).

Options: ``seed`` (int, default the config's ``seed``), ``frequency`` (live:
the longest the source sleeps between checks, seconds, default 1).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from dateutil.relativedelta import relativedelta

from finchan._time import from_timestamp, to_timestamp
from finchan.event import Event
from finchan.interface.event_source import AbsEventSource

if TYPE_CHECKING:
    from finchan.env import Env

__all__ = ["TIMER_EVENT", "Job", "Scheduler", "TimerSource", "ext_name", "load_finchan_ext"]

ext_name = "finchan.exts.timer_source"
required_exts: list[str] = []

#: name of the events the timer source produces (one per job run)
TIMER_EVENT = "timer_source.timer"

logger = logging.getLogger(__name__)

_UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months", "years")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _parse_clock(text: str, what: str) -> tuple[int, int, int]:
    parts = text.split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"bad {what} {text!r}")
    values = [int(p) for p in parts] + [0] * (3 - len(parts))
    hour, minute, second = values
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"bad {what} {text!r}")
    return hour, minute, second


class Job:
    """A scheduled function; built with the fluent API, armed by :meth:`do`."""

    def __init__(self, scheduler: Scheduler, step: int | None, once_at: Any = None) -> None:
        self.scheduler = scheduler
        self.id = next(scheduler._job_ids)
        self.min_step = step
        self.max_step = step
        self.unit: str | None = "once" if once_at is not None else None
        self.once_at = once_at
        self.offset_text: str | None = None
        self.tags: set[Hashable] = set()
        self.func: Callable[..., Any] | None = None
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self.next_ts: float | None = None
        self.last_ts: float | None = None
        self.runs = 0
        self.cancelled = False
        self._anchor: datetime | None = None
        self._units_from_anchor = 0

    # -- fluent configuration -------------------------------------------------------
    def to(self, max_step: int) -> Job:
        """Each step is drawn at random in ``[step, max_step]`` (seeded)."""
        if self.min_step is None:
            raise ValueError("to() applies to run_every() jobs")
        if int(max_step) < self.min_step:
            raise ValueError(f"to({max_step}) is below the step {self.min_step}")
        self.max_step = int(max_step)
        return self

    def _set_unit(self, unit: str) -> Job:
        if self.unit == "once":
            raise ValueError("a run_once() job has no unit")
        self.unit = unit
        return self

    def seconds(self) -> Job:
        return self._set_unit("seconds")

    def minutes(self) -> Job:
        return self._set_unit("minutes")

    def hours(self) -> Job:
        return self._set_unit("hours")

    def days(self) -> Job:
        return self._set_unit("days")

    def weeks(self) -> Job:
        return self._set_unit("weeks")

    def months(self) -> Job:
        return self._set_unit("months")

    def years(self) -> Job:
        return self._set_unit("years")

    def offset(self, text: str) -> Job:
        """Align runs to a time within the unit (see the module docstring)."""
        self.offset_text = str(text).strip()
        return self

    at = offset  # the original's name

    def tag(self, *tags: Hashable) -> Job:
        """Tag the job, for :meth:`Scheduler.clear`."""
        for tag in tags:
            if not isinstance(tag, Hashable):
                raise TypeError(f"tags must be hashable, got {tag!r}")
        self.tags.update(tags)
        return self

    def do(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
        """Arm the job: ``func(env, *args, **kwargs)`` runs at each run time."""
        if self.unit is None:
            raise ValueError("choose a unit first: run_every(n).seconds() ... .years()")
        if not callable(func):
            raise TypeError(f"{func!r} is not callable")
        self.func, self.args, self.kwargs = func, args, kwargs
        self._schedule_first()
        self.scheduler._add(self)
        return self

    # -- time arithmetic ---------------------------------------------------------------
    def _step(self) -> int:
        assert self.min_step is not None and self.max_step is not None
        if self.max_step == self.min_step:
            return self.min_step
        return self.scheduler.random.randint(self.min_step, self.max_step)

    def _delta(self, units: int) -> relativedelta | timedelta:
        if self.unit in ("seconds", "minutes", "hours"):
            return timedelta(**{self.unit: units})
        return relativedelta(**{cast(str, self.unit): units})

    def _aligned_base(self, now: datetime) -> datetime:
        """The latest time <= now that matches the offset (may be a unit earlier)."""
        text = self.offset_text or ""
        unit = self.unit
        if unit == "seconds":
            raise ValueError("offset() does not apply to seconds")
        if unit == "minutes":
            second = int(text.lstrip(":"))
            if not 0 <= second <= 59:
                raise ValueError(f"bad second offset {text!r}")
            base = now.replace(second=second, microsecond=0)
            return base if base <= now else base - timedelta(minutes=1)
        if unit == "hours":
            parts = text.split(":")
            minute = int(parts[0])
            second = int(parts[1]) if len(parts) > 1 else 0
            if not (0 <= minute <= 59 and 0 <= second <= 59):
                raise ValueError(f"bad minute offset {text!r}")
            base = now.replace(minute=minute, second=second, microsecond=0)
            return base if base <= now else base - timedelta(hours=1)
        words = text.split()
        clock = (0, 0, 0)
        if words and ":" in words[-1]:
            clock = _parse_clock(words.pop(), "time of day")
        hour, minute, second = clock
        if unit == "days":
            if words:
                raise ValueError(f"bad day offset {text!r}: use HH:MM[:SS]")
            base = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
            earlier: datetime = base - relativedelta(days=1)
            return base if base <= now else earlier
        if unit == "weeks":
            if len(words) != 1:
                raise ValueError(f"bad week offset {text!r}: use WEEKDAY [HH:MM[:SS]]")
            matches = [i for i, day in enumerate(_WEEKDAYS) if day.startswith(words[0].lower())]
            if len(words[0]) < 3 or len(matches) != 1:
                raise ValueError(f"bad weekday {words[0]!r}")
            base = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
            base -= relativedelta(days=(base.weekday() - matches[0]) % 7)
            earlier = base - relativedelta(weeks=1)
            return base if base <= now else earlier
        if unit == "months":
            if len(words) != 1 or not words[0].isdigit() or not 1 <= int(words[0]) <= 31:
                raise ValueError(f"bad month offset {text!r}: use DD [HH:MM[:SS]]")
            base = now.replace(day=1, hour=hour, minute=minute, second=second, microsecond=0)
            base += relativedelta(day=int(words[0]))
            earlier = base - relativedelta(months=1, day=int(words[0]))
            return base if base <= now else earlier
        if unit == "years":
            try:
                month_text, day_text = words[0].split("-") if len(words) == 1 else ("", "")
                month, day = int(month_text), int(day_text)
            except ValueError:
                raise ValueError(f"bad year offset {text!r}: use MM-DD [HH:MM[:SS]]") from None
            base = now.replace(
                month=1, day=1, hour=hour, minute=minute, second=second, microsecond=0
            ) + relativedelta(month=month, day=day)
            earlier = base - relativedelta(years=1, month=month, day=day)
            return base if base <= now else earlier
        raise ValueError(f"offset() does not apply to {unit}")

    def _schedule_first(self) -> None:
        env = self.scheduler.env
        now_ts = env.now_ts
        if self.unit == "once":
            self.next_ts = max(to_timestamp(self.once_at, env.tz), now_ts)
            return
        now = from_timestamp(now_ts, env.tz)
        if self.offset_text:
            base = self._aligned_base(now)
            if base < now:
                base = (
                    base + self._delta(1)
                    if self.unit not in ("months", "years")
                    else (self._next_calendar(base, 1))
                )
            self._anchor = base
            self._units_from_anchor = 0
            self.next_ts = base.timestamp()
        else:
            self._anchor = now
            self._units_from_anchor = self._step()
            self.next_ts = (now + self._delta(self._units_from_anchor)).timestamp()

    def _next_calendar(self, base: datetime, units: int) -> datetime:
        day = base.day if self.offset_text else None
        delta = relativedelta(**{cast(str, self.unit): units})
        if day is not None and self.unit in ("months", "years"):
            words = self.offset_text.split()  # type: ignore[union-attr]
            wanted = int(words[0]) if self.unit == "months" else int(words[0].split("-")[1])
            delta = relativedelta(**{self.unit: units}, day=wanted)
        shifted: datetime = base + delta
        return shifted

    def _advance(self) -> None:
        """Move to the next run (or finish a run_once job)."""
        self.runs += 1
        self.last_ts = self.next_ts
        if self.unit == "once":
            self.next_ts = None
            return
        assert self._anchor is not None
        # counted from the anchor, so month ends and DST do not drift the schedule
        self._units_from_anchor += self._step()
        if self.unit in ("months", "years"):
            self.next_ts = self._next_calendar(self._anchor, self._units_from_anchor).timestamp()
        else:
            self.next_ts = (self._anchor + self._delta(self._units_from_anchor)).timestamp()

    @property
    def next_run(self) -> datetime | None:
        """When the job runs next (None when done or cancelled)."""
        if self.next_ts is None or self.cancelled:
            return None
        return from_timestamp(self.next_ts, self.scheduler.env.tz)

    def __repr__(self) -> str:
        func = getattr(self.func, "__qualname__", self.func)
        return f"<Job {self.id} every {self.min_step} {self.unit} {func} next={self.next_run}>"


class Scheduler:
    """Creates jobs and keeps them; published as the timer extension's object."""

    def __init__(self, env: Env, seed: int = 0) -> None:
        self.env = env
        self.random = random.Random(seed)
        self._job_ids = itertools.count(1)
        self._heap: list[tuple[float, int, Job]] = []
        self._jobs: dict[int, Job] = {}
        # backtest: time up to which events were already handed to the dispatcher
        self._filled_until: float | None = None
        self._wake: asyncio.Event | None = None

    # -- public API -----------------------------------------------------------------
    def run_every(self, step: int = 1) -> Job:
        """A periodic job every ``step`` units (choose the unit next)."""
        if int(step) < 1:
            raise ValueError(f"run_every({step}): the step must be >= 1")
        return Job(self, int(step))

    def run_once(self, dt: Any) -> Job:
        """A job that runs once at ``dt`` (or now, if ``dt`` has passed)."""
        return Job(self, None, once_at=dt)

    def cancel(self, job: Job) -> None:
        """Cancel a job; its pending runs do not happen."""
        job.cancelled = True
        self._jobs.pop(job.id, None)

    def clear(self, tag: Hashable | None = None) -> None:
        """Cancel the jobs with ``tag``, or every job if ``tag`` is None."""
        for job in list(self._jobs.values()):
            if tag is None or tag in job.tags:
                self.cancel(job)

    cancel_all_jobs = clear

    @property
    def jobs(self) -> list[Job]:
        """The active jobs, by id."""
        return list(self._jobs.values())

    # -- what the TimerSource asks ------------------------------------------------------
    def fill_window(self, limit_ts: float, put: Callable[[Event], Any]) -> None:
        """Backtest: ``put`` a timer event for every run before ``limit_ts``.

        Jobs added later whose runs fall before ``limit_ts`` are queued on the
        dispatcher directly, since this window was already handed out.
        """
        self._collect(limit_ts, put)
        self._filled_until = limit_ts

    def put_due(self, now_ts: float, put: Callable[[Event], Any]) -> None:
        """Live: ``put`` a timer event for every run due by ``now_ts``."""
        self._collect(now_ts, put)

    def next_due_ts(self) -> float | None:
        """When the next run of an active job is due (None if there is none)."""
        self._drop_dead()
        return self._heap[0][0] if self._heap else None

    def wake_on_new_jobs(self, wake: asyncio.Event | None) -> None:
        """Live: set ``wake`` whenever a job is added (None: stop doing so)."""
        self._wake = wake

    # -- internals --------------------------------------------------------------------
    def _add(self, job: Job) -> None:
        self._jobs[job.id] = job
        heapq.heappush(self._heap, (cast(float, job.next_ts), job.id, job))
        if self._filled_until is not None:
            # the current window was already handed out: hand this job's runs in it directly
            events: list[Event] = []
            self._collect(self._filled_until, events.append)
            self.env.dispatcher.eq_put(*events)
        if self._wake is not None:
            self._wake.set()

    def _collect(self, limit_ts: float, put: Callable[[Event], Any]) -> None:
        heap, env = self._heap, self.env
        while heap and heap[0][0] < limit_ts:
            ts, _, job = heapq.heappop(heap)
            if job.cancelled or job.next_ts != ts:
                continue
            put(Event(env, TIMER_EVENT, dt=ts, job=job))
            job._advance()
            if job.next_ts is None:
                self._jobs.pop(job.id, None)
            else:
                heapq.heappush(heap, (job.next_ts, job.id, job))

    def _drop_dead(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)

    def _on_timer(self, event: Event) -> Any:
        job: Job = event.kwargs["job"]
        if job.cancelled or job.func is None:
            return None
        return job.func(self.env, *job.args, **job.kwargs)


class TimerSource(AbsEventSource):
    """The event source that turns the scheduler's jobs into timer events."""

    def __init__(self, env: Env, scheduler: Scheduler, frequency: float = 1.0) -> None:
        self.env = env
        self.scheduler = scheduler
        self.frequency = float(frequency)

    @property
    def name(self) -> str:
        return "timer_source"

    @property
    def exhausted(self) -> bool:  # type: ignore[override]
        return self.scheduler.next_due_ts() is None

    async def gen_events(self, event_queue: Any, limit_dt: datetime | None = None) -> None:
        sched = self.scheduler
        if limit_dt is not None:  # backtest: everything before the window's end
            limit = limit_dt.timestamp()
            sched.fill_window(limit, event_queue.put)
            return
        wake = asyncio.Event()
        sched.wake_on_new_jobs(wake)
        while True:
            sched.put_due(time.time(), event_queue.put)
            delay = self.frequency
            due = sched.next_due_ts()
            if due is not None:
                delay = min(delay, max(0.0, due - time.time()))
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), delay)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self.scheduler.wake_on_new_jobs(None)


def load_finchan_ext(env: Env) -> None:
    from finchan.config import TimerSourceOptions, validate_ext_options

    options = validate_ext_options(env, ext_name, TimerSourceOptions)
    seed = env.seed if options.seed is None else options.seed
    scheduler = Scheduler(env, seed=seed)
    source = TimerSource(env, scheduler, frequency=options.frequency)
    env.dispatcher.register_event_source(source)
    env.dispatcher.subscribe(TIMER_EVENT, scheduler._on_timer)
    env.set_ext_obj(ext_name, scheduler)


def unload_finchan_ext(env: Env) -> None:
    scheduler = env.get_ext_obj(ext_name, None)
    if scheduler is not None:
        scheduler.clear()
