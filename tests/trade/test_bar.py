"""finchan.trade.bar: the Bar event's fields, ids, kwargs and ordering."""

from __future__ import annotations

from finchan.env import Env
from finchan.event import Event
from finchan.trade.bar import BAR_EVENT, Bar

TS = 1_577_836_800.0  # 2020-01-01T00:00:00Z


def test_a_bar_is_an_event_named_bar_with_its_ohlcv_fields():
    bar = Bar(None, "SYN", TS, 10.0, 12.0, 9.5, 11.0, 500.0, event_id=7)
    assert isinstance(bar, Event) and bar.name == BAR_EVENT == "bar"
    assert (bar.symbol, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        "SYN", 10.0, 12.0, 9.5, 11.0, 500.0,
    )
    assert bar.id == 7 and bar.expire == 0 and bar.timestamp == TS
    assert bar.dt.isoformat() == "2020-01-01T00:00:00+00:00"
    assert bar.kwargs == {"symbol": "SYN", "open": 10.0, "high": 12.0, "low": 9.5,
                          "close": 11.0, "volume": 500.0}
    assert repr(bar) == "<Bar SYN 2020-01-01T00:00:00+00:00 o=10.0 h=12.0 l=9.5 c=11.0 v=500.0>"


def test_ids_come_from_the_envs_counter_and_volume_defaults_to_zero():
    env = Env({"timezone": "Asia/Shanghai"})
    first = Bar(env, "A", TS, 1, 1, 1, 1)
    second = Bar(env, "B", TS + 60, 1, 1, 1, 1)
    assert second.id == first.id + 1 and first.volume == 0.0
    # the Env's zone is the one bar.dt is shown in
    assert first.dt.isoformat() == "2020-01-01T08:00:00+08:00"


def test_bars_order_by_time_and_are_equal_by_id():
    early = Bar(None, "A", TS, 1, 1, 1, 1, event_id=1)
    late = Bar(None, "A", TS + 60, 1, 1, 1, 1, event_id=2)
    assert early < late and late > early and sorted([late, early]) == [early, late]
    assert Bar(None, "Z", TS + 999, 5, 5, 5, 5, event_id=1) == early
    assert len({early, late, Bar(None, "A", TS, 1, 1, 1, 1, event_id=2)}) == 2


def test_a_bar_has_no_instance_dict_beyond_its_slots():
    bar = Bar(None, "A", TS, 1, 1, 1, 1)
    assert set(Bar.__slots__) == {"close", "high", "low", "open", "symbol", "volume"}
    assert bar.__dict__ == {}  # payload lives in slots: kwargs is built on demand
