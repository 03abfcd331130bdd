"""A user extension: schedules a timer, emits its own event, publishes a counter.

It subscribes to SYSTEM_STARTED to schedule a job, and each run emits a
``heartbeat.beat`` event that it also subscribes to. Other extensions read its
counter through ``env.get_ext_obj("heartbeat")``.
"""

import logging
from collections import Counter

from finchan.event import Event, SysEvents

ext_name = "heartbeat"
required_exts = ["finchan.exts.timer_source"]
BEAT = "heartbeat.beat"

logger = logging.getLogger(ext_name)


def beat(env):
    env.dispatcher.eq_put(Event(env, BEAT, weekday=env.now.strftime("%A")))


def on_beat(event):
    counter = event.env.get_ext_obj(ext_name)
    counter[event.weekday] += 1
    logger.info("beat on %s", event.weekday)


def schedule(event):
    env = event.env
    options = env.get_ext_options(ext_name)
    sched = env.get_ext_obj("finchan.exts.timer_source")
    if "every_seconds" in options:
        sched.run_every(options["every_seconds"]).seconds().do(beat)
    else:
        sched.run_every(options.get("every_hours", 1)).hours().do(beat)


def load_finchan_ext(env):
    env.set_ext_obj(ext_name, Counter())
    env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, schedule)
    env.dispatcher.subscribe(BEAT, on_beat)
