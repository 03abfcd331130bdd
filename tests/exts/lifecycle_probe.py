"""Test extension: one source and one subscriber that record each lifecycle step.

Options (all false by default) make one step fail: ``fail_setup``,
``fail_cleanup``, ``source_fails_to_start``, ``source_fails_to_produce``,
``callback_fails``; ``stop_on_tick`` asks the run to stop, ``sigint_on_tick``
sends this process a real SIGINT, ``interrupt_on_tick`` raises
KeyboardInterrupt from the callback. The journal is
``env.get_ext_obj("lifecycle_probe")``.
"""

import os
import signal

from finchan.event import Event, SysEvents
from finchan.interface.event_source import AbsEventSource

ext_name = "lifecycle_probe"


def _note(env, step):
    env.get_ext_obj(ext_name).append(step)


class ProbeSource(AbsEventSource):
    """Puts one ``tick`` at the current time, then is exhausted (both modes)."""

    def __init__(self, env, options):
        self.env = env
        self.options = options

    def start(self):
        _note(self.env, "source start")
        if self.options.get("source_fails_to_start"):
            raise OSError("feed unreachable")

    def stop(self):
        _note(self.env, "source stop")

    async def gen_events(self, event_queue, limit_dt=None):
        if self.exhausted:
            return
        if self.options.get("source_fails_to_produce"):
            raise OSError("feed lost")
        self.exhausted = True
        event_queue.put(Event(self.env, "tick", dt=self.env.now_ts))


def on_tick(event):
    env = event.env
    _note(env, "tick")
    options = env.get_ext_options(ext_name)
    if options.get("callback_fails"):
        raise ValueError("bad tick")
    if options.get("stop_on_tick"):
        env.stop()
    if options.get("sigint_on_tick"):
        os.kill(os.getpid(), signal.SIGINT)
    if options.get("interrupt_on_tick"):
        raise KeyboardInterrupt


def load_finchan_ext(env):
    env.set_ext_obj(ext_name, [])
    options = env.get_ext_options(ext_name)
    env.dispatcher.register_event_source(ProbeSource(env, options))
    env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, lambda event: _note(event.env, "started"))
    env.dispatcher.subscribe(SysEvents.SYSTEM_EXITING, lambda event: _note(event.env, "exiting"))
    env.dispatcher.subscribe("tick", on_tick)


def setup(env):
    _note(env, "setup")
    if env.get_ext_options(ext_name).get("fail_setup"):
        raise ValueError("cannot set up")


def cleanup(env):
    _note(env, "cleanup")
    if env.get_ext_options(ext_name).get("fail_cleanup"):
        raise OSError("cannot clean up")
