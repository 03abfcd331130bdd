"""The live dispatcher in-process: thread-fed sources, ordering, ending, errors."""

import asyncio
import threading
import time

import pytest

from finchan.errors import RunError
from finchan.event import Event, SysEvents
from finchan.interface.event_source import AbsEventSource

pytestmark = pytest.mark.timeout(30)


class ThreadFed(AbsEventSource):
    """A feed whose events come from another thread through put_threadsafe."""

    def __init__(self, env, names):
        self.env = env
        self.names = names
        self.stopped = False

    async def gen_events(self, event_queue, limit_dt=None):
        def feed():
            for name in self.names:
                event_queue.put_threadsafe(Event(self.env, name))
            self.exhausted = True
            event_queue.put_threadsafe(Event(self.env, "feed.done"))

        threading.Thread(target=feed).start()
        await asyncio.Event().wait()  # runs until cancelled at the end of the run

    def stop(self):
        self.stopped = True


def live_env(make_env, **options):
    return make_env({"run_mode": "live", "dispatcher.live": {"stop_check_interval": 0.2, **options}})


def test_thread_fed_events_arrive_in_order_and_the_run_ends_when_sources_are_exhausted(make_env):
    env = live_env(make_env)
    source = ThreadFed(env, [f"e{i}" for i in range(5)])
    env.dispatcher.register_event_source(source)
    seen = []
    for name in [SysEvents.SYSTEM_STARTED, *source.names, "feed.done", SysEvents.SYSTEM_EXITING]:
        env.dispatcher.subscribe(name, lambda e: seen.append(e.name))
    summary = env.run()
    assert seen == [SysEvents.SYSTEM_STARTED, "e0", "e1", "e2", "e3", "e4", "feed.done",
                    SysEvents.SYSTEM_EXITING]
    assert source.stopped and summary.events == 6


def test_future_events_wait_for_their_time_and_async_callbacks_are_awaited_in_turn(make_env):
    env = live_env(make_env)
    seen = []

    async def slow(event):
        await asyncio.sleep(0.05)
        seen.append(("slow done", event.name))

    def start(event):
        now = event.env.now_ts
        env.dispatcher.eq_put(Event(env, "later", dt=now + 0.3), Event(env, "soon", dt=now + 0.1))

    def stop(event):
        seen.append(("stop", round(event.env.now_ts - event.timestamp, 1)))
        event.env.stop()

    env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, start)
    env.dispatcher.subscribe("soon", slow)
    env.dispatcher.subscribe("soon", lambda e: seen.append(("after slow", e.name)))
    env.dispatcher.subscribe("later", stop)
    started = time.monotonic()
    env.run()
    assert seen == [("slow done", "soon"), ("after slow", "soon"), ("stop", 0.0)]
    assert time.monotonic() - started >= 0.3  # "later" waited for its time


def test_a_failing_live_source_stops_the_run_naming_it(make_env):
    env = live_env(make_env)

    class Broken(AbsEventSource):
        name = "broken-feed"

        async def gen_events(self, event_queue, limit_dt=None):
            raise ConnectionError("feed went away")

    env.dispatcher.register_event_source(Broken())
    with pytest.raises(RunError, match="event source broken-feed failed: ConnectionError: feed went away"):
        env.run()


def test_eq_put_threadsafe_outside_a_run_is_refused(make_env):
    env = live_env(make_env)
    with pytest.raises(RunError, match="not running"):
        env.dispatcher.eq_put_threadsafe(Event(env, "x"))


def test_a_long_run_of_due_events_lets_other_tasks_run_while_it_is_dispatched(make_env):
    # a source reading while a backlog is dispatched (its reads, its commits)
    env = live_env(make_env)
    n = 2000
    dispatched = []
    ran_at = []

    async def other_task():
        ran_at.append(len(dispatched))

    def start(event):
        env.dispatcher.eq_put(*[Event(env, "tick", dt=event.timestamp) for _ in range(n)])
        asyncio.get_running_loop().create_task(other_task())

    def tick(event):
        until = time.perf_counter() + 20e-6  # 2,000 x 20 us: several of the loop's slices
        while time.perf_counter() < until:
            pass
        dispatched.append(event)
        if len(dispatched) == n:
            env.stop()

    env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, start)
    env.dispatcher.subscribe("tick", tick)
    env.run()
    assert len(dispatched) == n
    assert ran_at and ran_at[0] < n, ran_at


def test_events_put_together_keep_time_order_and_put_order_of_ties_with_single_puts(make_env):
    # a batch in time order takes one place in the heap; the order must be that of
    # one place per event: by time, ties in put order
    env = live_env(make_env)
    seen = []

    def start(event):
        t = event.timestamp - 10  # all due at once
        put = env.dispatcher.eq_put
        put(*[Event(env, name, dt=t + dt) for name, dt in (("a1", 1), ("a2", 2), ("a2'", 2))])
        put(Event(env, "x2", dt=t + 2))
        put(*[Event(env, name, dt=t + dt) for name, dt in (("b1", 1), ("b2", 2), ("b3", 3))])
        put(*[Event(env, name, dt=t + dt) for name, dt in (("c3", 3), ("c0", 0))])  # not in order
        put(Event(env, "stop", dt=t + 4))

    names = ["a1", "a2", "a2'", "x2", "b1", "b2", "b3", "c3", "c0"]
    for name in names:
        env.dispatcher.subscribe(name, lambda e: seen.append(e.name))
    env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, start)
    env.dispatcher.subscribe("stop", lambda e: env.stop())
    summary = env.run()
    assert seen == ["c0", "a1", "b1", "a2", "a2'", "x2", "b2", "b3", "c3"]
    assert summary.events == 10  # the nine and stop
