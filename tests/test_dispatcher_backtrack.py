"""Backtest dispatch: ordering, emitted events, subscriptions, expiry, stopping, errors."""

import asyncio
from datetime import UTC, datetime

import pytest

from finchan.errors import CallbackError, ConfigError, RunError
from finchan.event import Event, SysEvents
from finchan.interface.event_source import AbsEventSource

T0 = datetime(2020, 1, 1, tzinfo=UTC).timestamp()


class ListSource(AbsEventSource):
    """Puts given (offset seconds, name) events through gen_events."""

    def __init__(self, env, items, label="src"):
        self.env = env
        self.items = sorted(items, key=lambda item: item[0])
        self.pos = 0
        self.label = label
        self.windows = []

    @property
    def name(self):
        return self.label

    async def gen_events(self, event_queue, limit_dt=None):
        limit = limit_dt.timestamp()
        self.windows.append(limit - T0)
        while self.pos < len(self.items) and T0 + self.items[self.pos][0] < limit:
            offset, name = self.items[self.pos]
            event_queue.put(Event(self.env, name, dt=T0 + offset, tag=f"{self.label}:{name}"))
            self.pos += 1
        self.exhausted = self.pos >= len(self.items)


class BatchSource(AbsEventSource):
    """The events_until fast path."""

    def __init__(self, env, offsets, name="batch"):
        self.env = env
        self.pending = [Event(env, name, dt=T0 + o, tag=f"batch:{o}") for o in sorted(offsets)]

    def events_until(self, limit_ts):
        out = [e for e in self.pending if e.timestamp < limit_ts]
        self.pending = self.pending[len(out) :]
        self.exhausted = not self.pending
        return out

    def first_timestamp(self):
        return self.pending[0].timestamp if self.pending else None


def backtest_env(make_env, **dispatcher):
    options = {"start_dt": T0, "time_step": 10, **dispatcher}
    return make_env({"dispatcher.backtest": options})


def journal_of(env, *names):
    journal = []
    for name in names:
        env.dispatcher.subscribe(
            name, lambda e: journal.append((e.timestamp - T0, e.name, e.kwargs.get("tag")))
        )
    return journal


def test_events_run_in_time_order_across_sources_and_windows(make_env):
    env = backtest_env(make_env)
    env.dispatcher.register_event_source(ListSource(env, [(25, "a"), (3, "a"), (14, "a")], "one"))
    env.dispatcher.register_event_source(ListSource(env, [(4, "a"), (14, "b"), (30, "a")], "two"))
    journal = journal_of(env, "a", "b")
    env.run()
    assert journal == [
        (3, "a", "one:a"),
        (4, "a", "two:a"),
        (14, "a", "one:a"),
        (14, "b", "two:b"),
        (25, "a", "one:a"),
        (30, "a", "two:a"),
    ]


def test_events_with_equal_time_run_in_put_order(make_env):
    env = backtest_env(make_env)
    items = [(5, f"e{i}") for i in range(6)]
    env.dispatcher.register_event_source(ListSource(env, items, "s"))
    journal = journal_of(env, *[f"e{i}" for i in range(6)])
    env.run()
    assert [name for _, name, _ in journal] == [f"e{i}" for i in range(6)]


def test_system_started_first_and_exiting_last(make_env):
    env = backtest_env(make_env)
    env.dispatcher.register_event_source(ListSource(env, [(0, "a"), (9, "a")]))
    journal = journal_of(env, "a", SysEvents.SYSTEM_STARTED, SysEvents.SYSTEM_EXITING)
    env.run()
    names = [name for _, name, _ in journal]
    assert names == [SysEvents.SYSTEM_STARTED, "a", "a", SysEvents.SYSTEM_EXITING]
    assert journal[0][0] == 0 and journal[-1][0] == 9


def test_emitted_events_are_ordered_by_time_then_put_order(make_env):
    env = backtest_env(make_env)
    env.dispatcher.register_event_source(ListSource(env, [(5, "src"), (5, "other"), (6, "late")]))
    journal = journal_of(env, "src", "other", "late", "emitted", "future", "past")

    def emit(event):
        env.dispatcher.eq_put(
            Event(env, "emitted", tag="now"),
            Event(env, "future", dt=T0 + 5.5, tag="5.5"),
            Event(env, "past", dt=T0 + 1, tag="past"),
        )

    env.dispatcher.subscribe("src", emit)
    env.run()
    assert journal == [
        (5, "src", "src:src"),
        (1, "past", "past"),  # ordered by its time: before everything still pending
        (5, "other", "src:other"),
        (5, "emitted", "now"),  # at now, after the events put before it
        (5.5, "future", "5.5"),
        (6, "late", "src:late"),
    ]
    # the clock never goes back: the late event ran at 5, after the events put before it
    assert env.dispatcher.now_ts - T0 == 6


def test_emitted_events_beyond_the_window_wait_for_their_time(make_env):
    env = backtest_env(make_env, time_step=10)
    env.dispatcher.register_event_source(ListSource(env, [(1, "tick"), (35, "tick")]))
    journal = journal_of(env, "tick", "later")
    env.dispatcher.subscribe(
        "tick",
        lambda e: e.timestamp - T0 == 1 and env.dispatcher.eq_put(Event(env, "later", dt=T0 + 22)),
    )
    env.run()
    assert [(t, n) for t, n, _ in journal] == [(1, "tick"), (22, "later"), (35, "tick")]


def test_emitted_event_ties_with_source_events_follow_put_order(make_env):
    env = backtest_env(make_env, time_step=10)
    env.dispatcher.register_event_source(ListSource(env, [(1, "first"), (15, "src15")]))
    journal = journal_of(env, "first", "src15", "emitted15")
    # emitted at t=1, before the source puts its t=15 event (window 10-20): it goes first
    env.dispatcher.subscribe(
        "first", lambda e: env.dispatcher.eq_put(Event(env, "emitted15", dt=T0 + 15))
    )
    env.run()
    assert [n for _, n, _ in journal] == ["first", "emitted15", "src15"]


def test_prepend_puts_a_subscriber_first_and_unsubscribe_removes_it(make_env):
    env = backtest_env(make_env)
    env.dispatcher.register_event_source(ListSource(env, [(1, "x"), (2, "x")]))
    calls = []

    def first(e):
        calls.append("first")

    def second(e):
        calls.append("second")

    def head(e):
        calls.append("head")
        env.dispatcher.unsubscribe("x", head)

    env.dispatcher.subscribe("x", first)
    env.dispatcher.subscribe("x", second)
    env.dispatcher.subscribe("x", head, prepend=True)
    assert env.dispatcher.subscribers("x") == (head, first, second)
    env.run()
    assert calls == ["head", "first", "second", "first", "second"]
    assert env.dispatcher.unsubscribe("x", head) is False


def test_subscribed_context_manager_scopes_a_subscription(make_env):
    env = backtest_env(make_env)
    calls = []
    with env.dispatcher.subscribed("x", calls.append):
        assert env.dispatcher.subscribers("x") == (calls.append,)
    assert env.dispatcher.subscribers("x") == ()


def test_subscribe_rejects_non_callables_and_non_string_names(make_env):
    env = backtest_env(make_env)
    with pytest.raises(TypeError, match="not callable"):
        env.dispatcher.subscribe("x", 3)
    with pytest.raises(TypeError, match="must be a str"):
        env.dispatcher.subscribe(5, print)
    with pytest.raises(TypeError, match="AbsEventSource"):
        env.dispatcher.register_event_source(object())


def test_expired_events_are_skipped_with_a_warning(make_env, caplog):
    env = backtest_env(make_env)
    env.dispatcher.register_event_source(ListSource(env, [(10, "go")]))
    journal = journal_of(env, "stale", "fresh")
    env.dispatcher.subscribe(
        "go",
        lambda e: env.dispatcher.eq_put(
            Event(env, "stale", dt=T0 + 2, expire=5, tag="stale"),
            Event(env, "fresh", dt=T0 + 8, expire=5, tag="fresh"),
        ),
    )
    env.run()
    assert journal == [(8, "fresh", "fresh")]
    assert "skipped expired event 'stale'" in caplog.text


def test_end_dt_is_exclusive_and_a_date_includes_its_day(make_env):
    env = make_env({"dispatcher.backtest": {"start_dt": T0, "end_dt": T0 + 20, "time_step": 7}})
    env.dispatcher.register_event_source(
        ListSource(env, [(5, "a"), (19.5, "a"), (20, "a"), (40, "a")])
    )
    journal = journal_of(env, "a")
    env.run()
    assert [t for t, _, _ in journal] == [5, 19.5]

    env = make_env({"dispatcher.backtest": {"start_dt": "2020-01-01", "end_dt": "2020-01-01"}})
    env.dispatcher.register_event_source(ListSource(env, [(86399, "a"), (86400, "a")]))
    journal = journal_of(env, "a")
    env.run()
    assert [t for t, _, _ in journal] == [86399]


def test_run_ends_when_sources_are_exhausted(make_env):
    env = backtest_env(make_env, time_step=1)
    source = ListSource(env, [(0, "a"), (4.5, "a")])
    env.dispatcher.register_event_source(source)
    summary = env.run()
    assert summary.events == 2
    assert source.windows == [1, 2, 3, 4, 5]
    assert summary.end_ts - T0 == 4.5


def test_batch_sources_merge_with_put_sources_and_give_the_start(make_env):
    env = make_env({"dispatcher.backtest": {"time_step": 10}})
    env.dispatcher.register_event_source(BatchSource(env, [3, 12, 12.5]))
    env.dispatcher.register_event_source(ListSource(env, [(12, "batch"), (40, "batch")]))
    journal = journal_of(env, "batch", SysEvents.SYSTEM_STARTED)
    env.run()
    assert [(t, tag) for t, _, tag in journal] == [
        (3, None),
        (3, "batch:3"),
        (12, "batch:12"),
        (12, "src:batch"),
        (12.5, "batch:12.5"),
        (40, "src:batch"),
    ]


def test_missing_start_without_a_source_that_knows_its_start_is_a_config_error(make_env):
    env = make_env()
    env.dispatcher.register_event_source(ListSource(env, [(1, "a")]))
    with pytest.raises(ConfigError, match="dispatcher.backtrack.start_dt: required"):
        env.run()


def test_async_callbacks_and_async_sources_that_really_await(make_env):
    env = backtest_env(make_env)

    class SlowSource(ListSource):
        async def gen_events(self, event_queue, limit_dt=None):
            await asyncio.sleep(0)
            await super().gen_events(event_queue, limit_dt)

    env.dispatcher.register_event_source(SlowSource(env, [(1, "a"), (2, "a")]))
    seen = []

    async def handler(event):
        await asyncio.sleep(0)
        seen.append(event.timestamp - T0)
        env.dispatcher.eq_put(Event(env, "after", tag="x"))

    async def quick(event):  # finishes without suspending
        seen.append("quick")

    env.dispatcher.subscribe("a", handler)
    env.dispatcher.subscribe("after", quick)
    env.run()
    assert seen == [1, "quick", 2, "quick"]


def test_stop_from_a_callback_ends_the_run_after_the_current_event(make_env):
    env = backtest_env(make_env)
    env.dispatcher.register_event_source(ListSource(env, [(i, "a") for i in range(10)]))
    journal = journal_of(env, "a", SysEvents.SYSTEM_EXITING)
    env.dispatcher.subscribe("a", lambda e: e.timestamp - T0 == 3 and e.env.stop())
    summary = env.run()
    assert [t for t, _, _ in journal] == [0, 1, 2, 3, 3]
    assert journal[-1][1] == SysEvents.SYSTEM_EXITING
    assert summary.events == 4


def test_callback_error_logged_and_run_goes_on_with_log_policy(make_env, caplog):
    env = backtest_env(make_env, on_callback_error="log")
    env.dispatcher.register_event_source(ListSource(env, [(1, "a"), (2, "a")]))
    after = []

    def bad(event):
        raise ZeroDivisionError("division by zero")

    env.dispatcher.subscribe("a", bad)
    env.dispatcher.subscribe("a", lambda e: after.append(e.timestamp - T0))
    summary = env.run()
    assert after == [1, 2]
    assert summary.callback_errors == 2
    assert (
        "callback test_dispatcher_backtrack.test_callback_error_logged_and_run_goes_on_with_log_policy"
        ".<locals>.bad failed on event 'a' at 2020-01-01T00:00:01+00:00: "
        "ZeroDivisionError: division by zero"
    ) in caplog.text


def test_callback_error_stops_the_run_with_stop_policy(make_env):
    env = backtest_env(make_env)  # "stop" is the backtest default
    env.dispatcher.register_event_source(ListSource(env, [(1, "a"), (2, "a")]))
    journal = journal_of(env, "a", SysEvents.SYSTEM_EXITING)

    def bad(event):
        raise KeyError("price")

    env.dispatcher.subscribe("a", bad)
    with pytest.raises(
        CallbackError, match=r"failed on event 'a' at 2020-01-01T00:00:01\+00:00: KeyError"
    ):
        env.run()
    assert [n for _, n, _ in journal] == ["a", SysEvents.SYSTEM_EXITING]


def test_a_failing_source_stops_the_run_naming_the_source(make_env):
    env = backtest_env(make_env)

    class Broken(ListSource):
        async def gen_events(self, event_queue, limit_dt=None):
            raise OSError("feed went away")

    env.dispatcher.register_event_source(Broken(env, [], "broken-feed"))
    with pytest.raises(RunError, match="event source broken-feed failed: OSError: feed went away"):
        env.run()


def test_sources_registered_while_running_are_asked_from_the_next_window(make_env):
    env = backtest_env(make_env, time_step=10)
    env.dispatcher.register_event_source(ListSource(env, [(1, "a"), (25, "a")], "first"))
    late = ListSource(env, [(5, "b"), (15, "b")], "late")
    journal = journal_of(env, "a", "b")
    env.dispatcher.subscribe("a", lambda e: env.dispatcher.register_event_source(late))
    env.run()
    # registered at t=1 (window 0-10 already filled): its t=5 event comes in the next window, late
    assert [(t, n) for t, n, _ in journal] == [(1, "a"), (5, "b"), (15, "b"), (25, "a")]


def test_trace_process_time_advances_now_by_real_processing_time(make_env):
    env = backtest_env(make_env, trace_process_time=True)
    env.dispatcher.register_event_source(ListSource(env, [(1, "a")]))
    seen = []

    def slow(event):
        import time

        start = event.env.now_ts
        deadline = time.perf_counter() + 0.01
        while time.perf_counter() < deadline:
            pass
        seen.append(event.env.now_ts - start)

    env.dispatcher.subscribe("a", slow)
    env.run()
    assert seen[0] >= 0.01


def test_source_events_put_in_the_past_run_first_without_moving_the_clock_back(make_env, caplog):
    env = backtest_env(make_env, time_step=10)

    class Backdating(ListSource):
        async def gen_events(self, event_queue, limit_dt=None):
            await super().gen_events(event_queue, limit_dt)
            if limit_dt.timestamp() - T0 == 20:  # second window: two events dated in the first
                event_queue.put(Event(self.env, "old", dt=T0 + 8, tag="old-kept"))
                event_queue.put(Event(self.env, "old", dt=T0 + 1, expire=3, tag="old-expired"))

    env.dispatcher.register_event_source(Backdating(env, [(9, "a"), (12, "a")]))
    journal = journal_of(env, "a", "old")
    clock = []
    env.dispatcher.subscribe("old", lambda e: clock.append(e.env.now_ts - T0))
    env.run()
    assert [(t, tag) for t, _, tag in journal] == [(9, "src:a"), (8, "old-kept"), (12, "src:a")]
    assert clock == [9]  # the late event ran at the current time, 9
    assert "skipped expired event 'old'" in caplog.text


class CountingBatchSource(BatchSource):
    """A BatchSource that records the window limits it was asked for."""

    def __init__(self, env, offsets, name="batch"):
        super().__init__(env, offsets, name)
        self.limits = []

    def events_until(self, limit_ts):
        self.limits.append(limit_ts - T0)
        return super().events_until(limit_ts)


def test_empty_windows_are_jumped_over_to_the_next_pending_event(make_env):
    # issue 10: a tiny time_step without end_dt stepped through every empty
    # window (here 20,000 of them; over years of data it never ends)
    env = backtest_env(make_env, time_step=0.001)
    source = CountingBatchSource(env, [0, 3, 20])
    env.dispatcher.register_event_source(source)
    journal = journal_of(env, "batch")
    summary = env.run()
    assert [(t, tag) for t, _, tag in journal] == [(0, "batch:0"), (3, "batch:3"), (20, "batch:20")]
    assert summary.events == 3
    # one window per event and one empty window after each gap's start
    assert len(source.limits) == 5
    for event_offset, limit in zip([0, 3, 20], source.limits[::2], strict=True):
        # the window holding the event, aligned to the time_step grid
        assert limit - 0.001 <= event_offset < limit
        assert abs(limit - round(limit, 3)) < 1e-6  # seconds near 2020 carry ~1e-7 of float


def test_the_jump_goes_to_an_emitted_event_before_the_sources_next_one(make_env):
    env = backtest_env(make_env, time_step=0.001)
    source = CountingBatchSource(env, [0, 50])
    env.dispatcher.register_event_source(source)
    journal = journal_of(env, "batch", "later")
    env.dispatcher.subscribe(
        "batch",
        lambda e: e.timestamp == T0 and env.dispatcher.eq_put(Event(env, "later", dt=T0 + 7)),
    )
    env.run()
    assert [(t, n) for t, n, _ in journal] == [(0, "batch"), (7, "later"), (50, "batch")]
    # the window of 7 held only the emitted event: from it, straight to 50
    assert len(source.limits) == 4
    assert 7 < source.limits[2] <= 7.001 + 1e-6
    assert 50 < source.limits[3] <= 50.001 + 1e-6


def test_the_jump_stops_at_end_dt(make_env):
    env = backtest_env(make_env, time_step=0.001, end_dt=T0 + 30)
    source = CountingBatchSource(env, [0, 3, 40])
    env.dispatcher.register_event_source(source)
    journal = journal_of(env, "batch")
    summary = env.run()
    assert [t for t, _, _ in journal] == [0, 3]
    assert summary.events == 2
    # the window holding 40 is cut at end_dt: asked up to end_dt, not beyond
    assert source.limits[-1] == 30
    assert len(source.limits) == 5


def test_a_source_that_cannot_tell_its_next_time_is_still_asked_every_window(make_env):
    env = backtest_env(make_env, time_step=1)
    batch = CountingBatchSource(env, [0, 9])
    listed = ListSource(env, [(4.5, "a")])
    env.dispatcher.register_event_source(batch)
    env.dispatcher.register_event_source(listed)
    env.run()
    assert listed.windows == [1, 2, 3, 4, 5]
    # once the ListSource is exhausted, the batch source's next time is known
    assert batch.limits == [1, 2, 3, 4, 5, 6, 10]


class EagerSource(AbsEventSource):
    """Puts all its events at the first ask, also those of later windows."""

    def __init__(self, env, offsets):
        self.env = env
        self.offsets = offsets
        self.asked = 0

    async def gen_events(self, event_queue, limit_dt=None):
        self.asked += 1
        if self.asked == 1:
            for offset in self.offsets:
                event_queue.put(Event(self.env, "a", dt=T0 + offset))
        self.exhausted = True


def test_events_a_source_put_for_later_windows_only_wait_for_their_window(make_env):
    # a window whose buffered events were all for later windows used to fail
    # with an IndexError; now the run jumps to the first of them
    env = backtest_env(make_env, time_step=0.001)
    env.dispatcher.register_event_source(EagerSource(env, [1, 50, 3]))
    journal = journal_of(env, "a")
    summary = env.run()
    assert [t for t, _, _ in journal] == [1, 3, 50]
    assert summary.events == 3
