from datetime import UTC, date, datetime, timedelta, timezone

from finchan.event import Event, SysEvents


def test_sys_event_names_are_the_documented_strings():
    assert SysEvents.SYSTEM_STARTED == "system_event.system_started"
    assert SysEvents.SYSTEM_EXITING == "system_event.system_will_exit"


def test_kwargs_are_a_dict_and_attributes():
    event = Event(None, "quote", dt=datetime(2020, 1, 1, tzinfo=UTC), price=1.5, symbol="X")
    assert event.kwargs == {"price": 1.5, "symbol": "X"}
    assert event.price == 1.5 and event.symbol == "X"
    assert event.name == "quote" and event.expire == 0


def test_missing_attribute_raises_attribute_error():
    event = Event(None, "quote", dt=0.0)
    try:
        event.nothing  # noqa: B018
    except AttributeError as exc:
        assert "nothing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_timestamp_from_every_accepted_time_form():
    expected = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert Event(None, "e", dt=datetime(2020, 1, 2, 3, 4, 5)).timestamp == expected
    assert Event(None, "e", dt=datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)).timestamp == expected
    assert Event(None, "e", dt="2020-01-02T03:04:05").timestamp == expected
    assert Event(None, "e", dt=expected).timestamp == expected
    assert Event(None, "e", dt=int(expected)).timestamp == expected
    assert (
        Event(None, "e", dt=date(2020, 1, 2)).timestamp
        == datetime(2020, 1, 2, tzinfo=UTC).timestamp()
    )
    plus_two = timezone(timedelta(hours=2))
    assert Event(None, "e", dt=datetime(2020, 1, 2, 5, 4, 5, tzinfo=plus_two)).timestamp == expected


def test_naive_datetimes_are_read_in_the_env_time_zone(make_env):
    env = make_env({"timezone": "America/New_York"})
    event = Event(env, "e", dt=datetime(2020, 7, 1, 9, 30))
    assert event.timestamp == datetime(2020, 7, 1, 13, 30, tzinfo=UTC).timestamp()
    assert event.dt.isoformat() == "2020-07-01T09:30:00-04:00"


def test_events_order_by_time_and_compare_equal_by_id():
    early = Event(None, "a", dt=1.0, event_id=7)
    late = Event(None, "b", dt=2.0, event_id=8)
    assert early < late and late > early and early <= late and late >= early
    assert early != late
    assert Event(None, "x", dt=5.0, event_id=7) == early
    assert len({early, Event(None, "y", dt=9.0, event_id=7)}) == 1


def test_event_without_dt_happens_at_env_now(make_env):
    env = make_env({"dispatcher.backtest": {"start_dt": "2021-05-06 07:08:09"}})
    assert Event(env, "e").dt == datetime(2021, 5, 6, 7, 8, 9, tzinfo=UTC)


def test_ids_are_numbered_per_env(make_env):
    first, second = make_env(), make_env()
    assert [Event(first, "e").id for _ in range(3)] == [1, 2, 3]
    assert [Event(second, "e").id for _ in range(2)] == [1, 2]
    assert Event(first, "e", event_id="custom").id == "custom"


def test_repr_names_event_and_time():
    assert repr(Event(None, "tick", dt=0.0, event_id=3)) == (
        "<Event 'tick' id=3 at 1970-01-01T00:00:00+00:00>"
    )
