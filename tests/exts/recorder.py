"""Test extension: records its lifecycle into a shared journal list.

The journal is published as ``env.get_ext_obj("recorder")`` and also printed
to stdout (flushed) when the option ``echo`` is true, so a test driving a
subprocess can wait for lines instead of sleeping.
"""

from finchan.event import SysEvents

ext_name = "recorder"
required_exts = ["finchan.exts.timer_source"]


def _note(env, text):
    env.get_ext_obj(ext_name).append(text)
    if env.get_ext_options(ext_name).get("echo"):
        print(text, flush=True)


def on_started(event):
    env = event.env
    _note(env, f"started {event.dt.isoformat()}")
    options = env.get_ext_options(ext_name)
    sched = env.get_ext_obj("finchan.exts.timer_source")
    every = options.get("every_seconds")
    if every:
        sched.run_every(int(every)).seconds().do(on_timer)
    if options.get("raise_at_start"):
        raise RuntimeError("boom at start")


def on_timer(env):
    _note(env, f"timer {env.now.isoformat()}")
    if env.get_ext_options(ext_name).get("block_on_timer"):
        import time

        _note(env, "blocking")
        time.sleep(60)


def on_timer_event(event):
    # when the timer event was due, and when it was dispatched (wall clock in live)
    if event.env.get_ext_options(ext_name).get("echo"):
        print(f"due {event.dt.isoformat()} dispatched {event.env.now.isoformat()}", flush=True)


def on_exiting(event):
    _note(event.env, "exiting")


def load_finchan_ext(env):
    env.set_ext_obj(ext_name, [])
    _note(env, "load")
    env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, on_started)
    env.dispatcher.subscribe(SysEvents.SYSTEM_EXITING, on_exiting)
    env.dispatcher.subscribe("timer_source.timer", on_timer_event)


def setup(env):
    _note(env, "setup recorder")


def cleanup(env):
    _note(env, "cleanup recorder")
