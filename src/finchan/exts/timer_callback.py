"""Example extension using the timer (the built-in ``finchan.exts.timer_callback``).

At ``SYSTEM_STARTED`` it schedules a job: every 3 to 5 seconds in live mode,
every 3 to 15 minutes in backtest (change with ``step``, ``max_step``,
``unit``). Each run logs, and simulates ``process_time`` seconds of work by
emitting its own ``timer_callback.finished`` event that much later, on the
run's clock (simulated or wall), so the example behaves the same in both
modes and a backtest stays fast and deterministic.

It publishes a :class:`TimerCallbackStats` with ``env.set_ext_obj``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from finchan.env import RunMode
from finchan.event import Event, SysEvents

if TYPE_CHECKING:
    from finchan.env import Env

__all__ = ["FINISHED_EVENT", "TimerCallbackStats", "ext_name", "load_finchan_ext"]

ext_name = "finchan.exts.timer_callback"
required_exts = ["finchan.exts.timer_source"]

#: emitted ``process_time`` seconds after each timer call
FINISHED_EVENT = "timer_callback.finished"

logger = logging.getLogger(__name__)


@dataclass
class TimerCallbackStats:
    """What the example did: when each call started and finished."""

    calls: list[datetime] = field(default_factory=list)
    finished: list[datetime] = field(default_factory=list)


def timer_call(env: Env) -> None:
    stats: TimerCallbackStats = env.get_ext_obj(ext_name)
    options = env.get_ext_options(ext_name)
    now = env.now
    stats.calls.append(now)
    logger.info("timer callback %d at %s", len(stats.calls), now.isoformat())
    process_time = float(options.get("process_time", 0))
    env.dispatcher.eq_put(
        Event(env, FINISHED_EVENT, dt=now + timedelta(seconds=process_time), started=now)
    )


def on_finished(event: Event) -> None:
    env = event.env
    stats: TimerCallbackStats = env.get_ext_obj(ext_name)
    stats.finished.append(env.now)
    logger.info("timer callback started at %s finished", event.kwargs["started"].isoformat())


def add_timer(event: Event) -> None:
    env = event.env
    options = env.get_ext_options(ext_name)
    live = env.run_mode == RunMode.LIVE
    step = int(options.get("step", 3))
    max_step = int(options.get("max_step", 5 if live else 15))
    unit = str(options.get("unit", "seconds" if live else "minutes"))
    scheduler = env.get_ext_obj("finchan.exts.timer_source")
    job = scheduler.run_every(step).to(max_step)
    getattr(job, unit)().tag(ext_name).do(timer_call)
    logger.info("timer job added: every %d to %d %s", step, max_step, unit)


def load_finchan_ext(env: Env) -> None:
    from finchan.config import TimerCallbackOptions, validate_ext_options

    validate_ext_options(env, ext_name, TimerCallbackOptions)  # a typo is an error, not a default
    env.set_ext_obj(ext_name, TimerCallbackStats())
    env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, add_timer)
    env.dispatcher.subscribe(FINISHED_EVENT, on_finished)


def unload_finchan_ext(env: Env) -> None:
    scheduler = env.get_ext_obj("finchan.exts.timer_source", None)
    if scheduler is not None:
        scheduler.clear(ext_name)
