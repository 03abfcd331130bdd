"""Redis stream messages to bars by position (finchan.trade.exts._stream_messages), no server."""

from __future__ import annotations

from datetime import UTC

import pytest

from finchan.trade.exts._stream_messages import BAR_FIELDS, Malformed, MessageParser
from finchan.trade.exts.redis_stream import _PutBars


def _parser(symbols=None, **renamed):
    fields = {name: renamed.get(name, name).encode() for name in BAR_FIELDS}
    return MessageParser(fields, symbols or {}, UTC)


def _flat(**values):
    return [item for name, value in values.items() for item in (name.encode(), value.encode())]


def _values(bar):
    return (bar.symbol, bar.timestamp, bar.open, bar.high, bar.low, bar.close, bar.volume)


def test_messages_of_any_field_order_give_the_same_bar():
    to_bar = _parser().to_bar
    first = _flat(symbol="ACME", ts="60.0", open="1.5", high="2.0", low="1.0", close="1.75",
                  volume="10")  # fmt: skip
    shuffled = _flat(close="1.75", volume="10", low="1.0", ts="60.0", symbol="ACME", high="2.0",
                     open="1.5")  # fmt: skip
    bars = [to_bar(None, b"k", flat) for flat in (first, shuffled, first)]
    assert [_values(bar) for bar in bars] == [("ACME", 60.0, 1.5, 2.0, 1.0, 1.75, 10.0)] * 3


def test_a_repeated_field_counts_with_its_last_value_as_in_a_dict():
    flat = [*_flat(symbol="X", ts="60", open="1", high="3", low="1", close="2"), b"close", b"2.5"]
    bar = _parser().to_bar(None, b"k", flat)
    assert _values(bar) == ("X", 60.0, 1.0, 3.0, 1.0, 2.5, 0.0)


def test_renamed_fields_and_the_symbol_from_the_stream_key():
    to_bar = _parser({b"bars.ACME": "ACME"}, close="c", ts="time").to_bar
    bar = to_bar(None, b"bars.ACME", _flat(time="120", open="1", high="2", low="0.5", c="1.5"))
    assert _values(bar) == ("ACME", 120.0, 1.0, 2.0, 0.5, 1.5, 0.0)


@pytest.mark.parametrize(
    ("flat", "reason"),
    [
        (_flat(symbol="X", ts="60", open="1", high="2", low="1"), "no 'close' field"),
        (_flat(symbol="X", ts="60", open="1", high="2", low="1", close="nope"), "close 'nope' is not a number"),
        (_flat(symbol="X", ts="60", open="1", high="inf", low="1", close="1"), "high is inf"),
        (_flat(ts="60", open="1", high="2", low="1", close="1"), "no 'symbol' field"),
        (_flat(symbol="X", datetime="soon", open="1", high="2", low="1", close="1"), "not ISO 8601"),
    ],
)
def test_a_malformed_message_says_what_is_wrong(flat, reason):
    with pytest.raises(Malformed, match=reason):
        _parser().to_bar(None, b"k", flat)


def test_a_datetime_without_zone_is_read_in_the_configured_zone():
    flat = _flat(symbol="X", datetime="1970-01-01T00:02:00", open="1", high="2", low="1", close="1")
    bar = _parser().to_bar(None, b"k", flat)
    assert bar.timestamp == 120.0


class _At:
    def __init__(self, ts, name):
        self.timestamp, self.name = ts, name


def test_bars_at_gives_every_bar_of_a_time_in_put_order_until_a_marker_passes_it():
    put = _PutBars()
    assert put.add([_At(1, "a1"), _At(2, "a2"), _At(2, "a2b")]) == 2
    assert put.add([_At(3, "b3"), _At(2, "b2")]) == 3  # out of order: still found
    assert [b.name for b in put.at(2)] == ["a2", "a2b", "b2"]
    put.drop_before(2)
    assert put.at(1) == [] and [b.name for b in put.at(2)] == ["a2", "a2b", "b2"]
    put.drop_before(3)
    assert put.at(2) == [] and [b.name for b in put.at(3)] == ["b3"]
