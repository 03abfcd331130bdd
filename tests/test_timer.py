"""The timer extension in backtest: exact simulated times for every part of the API."""

import itertools
from datetime import datetime

import pytest

from finchan.exts.timer_source import TIMER_EVENT


def timer_env(make_env, start="2020-01-01 00:00:00", end="2020-01-02 00:00", seed=0, tz="UTC"):
    env = make_env(
        {
            "seed": seed,
            "timezone": tz,
            "dispatcher.backtest": {"start_dt": start, "end_dt": end, "time_step": 3600},
        }
    )
    env.load_exts("finchan.exts.timer_source")
    return env, env.get_ext_obj("finchan.exts.timer_source")


def run_with(env, schedule):
    """Call schedule(scheduler) at SYSTEM_STARTED; return the fire times of each tag."""
    fired: dict[str, list[str]] = {}
    sched = env.get_ext_obj("finchan.exts.timer_source")

    def record(env, tag):
        fired.setdefault(tag, []).append(env.now.strftime("%Y-%m-%d %H:%M:%S"))

    env.dispatcher.subscribe("system_event.system_started", lambda e: schedule(sched, record))
    env.run()
    return fired


@pytest.mark.parametrize(
    ("unit", "step", "expected"),
    [
        ("seconds", 20, ["00:00:20", "00:00:40", "00:01:00"]),
        ("minutes", 25, ["00:25:00", "00:50:00", "01:15:00"]),
        ("hours", 7, ["07:00:00", "14:00:00", "21:00:00"]),
    ],
)
def test_each_clock_unit_steps_from_now(make_env, unit, step, expected):
    env, _ = timer_env(make_env)
    fired = run_with(env, lambda s, rec: getattr(s.run_every(step), unit)().do(rec, "t"))
    assert [t[11:] for t in fired["t"][:3]] == expected


@pytest.mark.parametrize(
    ("unit", "end", "expected"),
    [
        (
            "days",
            "2020-01-04",
            ["2020-01-02", "2020-01-03", "2020-01-04"],
        ),  # a date end includes its day
        ("weeks", "2020-01-20", ["2020-01-08", "2020-01-15"]),
        ("months", "2020-04-01 00:00", ["2020-02-01", "2020-03-01"]),
        ("years", "2022-01-02", ["2021-01-01", "2022-01-01"]),
    ],
)
def test_each_calendar_unit(make_env, unit, end, expected):
    env, _ = timer_env(make_env, end=end)
    fired = run_with(env, lambda s, rec: getattr(s.run_every(1), unit)().do(rec, "t"))
    assert [t[:10] for t in fired["t"]] == expected


@pytest.mark.parametrize(
    ("unit", "offset", "start", "end", "expected"),
    [
        (
            "minutes",
            "30",
            "2020-01-01 00:00:10",
            "2020-01-01 00:03",
            ["00:00:30", "00:01:30", "00:02:30"],
        ),
        ("hours", "15:30", "2020-01-01 00:20:00", "2020-01-01 03:00", ["01:15:30", "02:15:30"]),
        (
            "days",
            "09:30",
            "2020-01-01 12:00:00",
            "2020-01-04 00:00",
            ["2020-01-02 09:30:00", "2020-01-03 09:30:00"],
        ),
        ("days", "09:30", "2020-01-01 09:30:00", "2020-01-02 00:00", ["2020-01-01 09:30:00"]),
        (
            "weeks",
            "friday 16:00",
            "2020-01-01 00:00:00",
            "2020-01-18",
            ["2020-01-03 16:00:00", "2020-01-10 16:00:00", "2020-01-17 16:00:00"],
        ),
        (
            "months",
            "31 08:00",
            "2020-01-01 00:00:00",
            "2020-05-01",
            [
                "2020-01-31 08:00:00",
                "2020-02-29 08:00:00",
                "2020-03-31 08:00:00",
                "2020-04-30 08:00:00",
            ],
        ),
        (
            "years",
            "07-21 10:00",
            "2020-08-01 00:00:00",
            "2022-12-31",
            ["2021-07-21 10:00:00", "2022-07-21 10:00:00"],
        ),
    ],
)
def test_offsets_align_runs(make_env, unit, offset, start, end, expected):
    env, _ = timer_env(make_env, start=start, end=end)
    fired = run_with(
        env, lambda s, rec: getattr(s.run_every(1), unit)().offset(offset).do(rec, "t")
    )
    got = fired["t"] if len(expected[0]) > 8 else [t[11:] for t in fired["t"]]
    assert got == expected


def test_offsets_follow_the_env_time_zone_across_dst(make_env):
    env, _ = timer_env(
        make_env, start="2020-03-06 00:00", end="2020-03-10 00:00", tz="America/New_York"
    )
    fired: list[str] = []
    env.dispatcher.subscribe(
        "system_event.system_started",
        lambda e: (
            env.get_ext_obj("finchan.exts.timer_source")
            .run_every(1)
            .days()
            .offset("09:30")
            .do(lambda env: fired.append(env.now.isoformat()))
        ),
    )
    env.run()
    assert fired == [
        "2020-03-06T09:30:00-05:00",
        "2020-03-07T09:30:00-05:00",
        "2020-03-08T09:30:00-04:00",
        "2020-03-09T09:30:00-04:00",
    ]


def test_to_draws_seeded_random_steps_in_range(make_env):
    def steps(seed):
        env, _ = timer_env(make_env, seed=seed, end="2020-01-01 06:00")
        fired = run_with(env, lambda s, rec: s.run_every(3).to(15).minutes().do(rec, "t"))
        times = [datetime.fromisoformat(t) for t in fired["t"]]
        first = (times[0] - datetime(2020, 1, 1)).total_seconds() / 60
        return [first] + [(b - a).total_seconds() / 60 for a, b in itertools.pairwise(times)]

    first, again, other = steps(1), steps(1), steps(2)
    assert first == again
    assert first != other
    assert all(3 <= step <= 15 and step == int(step) for step in first + other)
    assert len(set(first)) > 3


def test_run_once_tags_clear_and_cancel(make_env):
    env, _ = timer_env(make_env)
    kept = {}

    def schedule(s, rec):
        s.run_once("2020-01-01 05:00").do(rec, "once")
        s.run_once("2019-01-01").do(rec, "past-once")  # already past: runs now
        kept["job"] = s.run_every(1).hours().tag("hourly").do(rec, "cancelled")
        s.run_every(2).hours().tag("two", "clearable").do(rec, "cleared")
        s.run_every(6).hours().do(rec, "six")
        s.run_once("2020-01-01 03:30").do(lambda env: (s.cancel(kept["job"]), s.clear("clearable")))

    fired = run_with(env, schedule)
    assert fired["once"] == ["2020-01-01 05:00:00"]
    assert fired["past-once"] == ["2020-01-01 00:00:00"]
    assert fired["cancelled"] == [f"2020-01-01 0{h}:00:00" for h in (1, 2, 3)]
    assert fired["cleared"] == ["2020-01-01 02:00:00"]
    assert fired["six"] == ["2020-01-01 06:00:00", "2020-01-01 12:00:00", "2020-01-01 18:00:00"]


def test_job_functions_get_args_and_may_be_async(make_env):
    env, sched = timer_env(make_env, end="2020-01-01 00:01")
    got = []

    async def job(env, a, b=0):
        got.append((env.now.second, a, b))

    env.dispatcher.subscribe(
        "system_event.system_started", lambda e: sched.run_every(30).seconds().do(job, "x", b=2)
    )
    env.run()
    assert got == [(30, "x", 2)]


def test_a_job_added_mid_window_still_fires_on_time(make_env):
    env, sched = timer_env(make_env, end="2020-01-01 02:00")
    fired = []

    def add_later(env):
        sched.run_once("2020-01-01 00:40").do(lambda env: fired.append(env.now.strftime("%H:%M")))

    env.dispatcher.subscribe(
        "system_event.system_started", lambda e: sched.run_once("2020-01-01 00:10").do(add_later)
    )
    names = []
    env.dispatcher.subscribe(TIMER_EVENT, lambda e: names.append(e.dt.strftime("%H:%M")))
    env.run()
    assert fired == ["00:40"]
    assert names == ["00:10", "00:40"]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda s: s.run_every(0), "step must be >= 1"),
        (lambda s: s.run_every(5).to(2), "below the step"),
        (lambda s: s.run_every(1).do(print), "choose a unit first"),
        (lambda s: s.run_every(1).seconds().offset("10").do(print), "does not apply to seconds"),
        (lambda s: s.run_every(1).days().offset("25:00").do(print), "bad time of day"),
        (lambda s: s.run_every(1).weeks().offset("someday").do(print), "bad weekday"),
        (lambda s: s.run_every(1).months().offset("40").do(print), "bad month offset"),
        (lambda s: s.run_every(1).days().tag([1]), "hashable"),
    ],
)
def test_bad_schedules_are_refused_with_a_reason(make_env, build, message):
    _, sched = timer_env(make_env)
    with pytest.raises((ValueError, TypeError), match=message):
        build(sched)


def test_timer_callback_example_is_deterministic_with_process_time(make_env):
    def run():
        env = make_env(
            {
                "seed": 3,
                "enabled_backtest_exts": ["finchan.exts.timer_callback"],
                "backtest_exts": {"finchan.exts.timer_callback": {"process_time": 3}},
                "dispatcher.backtest": {
                    "start_dt": "2017-03-04 12:00:00",
                    "end_dt": "2017-03-07 12:00:00",
                },
            }
        )
        env.run()
        stats = env.get_ext_obj("finchan.exts.timer_callback")
        return stats

    first, second = run(), run()
    assert first.calls == second.calls and len(first.calls) > 300
    assert [(b - a).total_seconds() for a, b in zip(first.calls, first.finished)] == [3.0] * len(
        first.finished
    )
