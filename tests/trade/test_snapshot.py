"""Snapshots of the simulated broker (a live run's restart point): linked and trailing orders too."""

from __future__ import annotations

import pickle

from finchan.trade._snapshot import broker_state, restore_broker
from finchan.trade.bar import Bar
from finchan.trade.broker import SimBroker
from finchan.trade.orders import Order


def bar(t: int, o: float, h: float, lo: float, c: float) -> Bar:
    return Bar(None, "X", 60.0 * t, o, h, lo, c, 1_000.0)


# bars 1-2 fill the bracket's entry and trail the stop; 3-6 meet the exits
BARS = [
    bar(1, 99.5, 100.0, 98.5, 99.8),
    bar(2, 100.0, 101.5, 99.9, 101.0),
    bar(3, 101.0, 102.0, 100.5, 101.8),
    bar(4, 101.5, 101.6, 99.0, 99.2),
    bar(5, 99.0, 103.5, 98.8, 103.2),
    bar(6, 103.0, 103.1, 96.0, 96.5),
]


def _orders(broker: SimBroker) -> None:
    broker.process_bar(bar(0, 100.0, 100.5, 99.5, 100.0))
    broker.submit_bracket(
        Order("X", "BUY", 10, "LIMIT", limit=99.0),
        Order("X", "SELL", 10, "STOP", stop=97.0),
        Order("X", "SELL", 10, "LIMIT", limit=103.0),
    )
    trail = broker.submit(Order("X", "BUY", 5, "TRAILING_STOP_LIMIT", limit=101.0, trail_amount=1.0))
    day = broker.submit(Order("X", "BUY", 3, "LIMIT", limit=98.0, tif="DAY"))
    broker.link_oco(day, trail)


def _outcome(broker: SimBroker) -> list[tuple]:
    return [o.to_row() for o in broker.orders] + [f.to_row() for f in broker.fills]


def test_a_restored_broker_goes_on_exactly_as_the_one_never_stopped() -> None:
    for cut in range(1, len(BARS)):
        straight = SimBroker(100_000.0)
        _orders(straight)
        for b in BARS:
            straight.process_bar(b)

        before = SimBroker(100_000.0)
        _orders(before)
        for b in BARS[:cut]:
            before.process_bar(b)
        state = pickle.loads(pickle.dumps(broker_state(before)))
        after = SimBroker(100_000.0)  # the same configuration, rebuilt on restart
        restore_broker(after, state)
        for b in BARS[cut:]:
            after.process_bar(b)
        assert _outcome(after) == _outcome(straight), cut
        assert after.portfolio.cash == straight.portfolio.cash
        assert [after.is_triggered(o.id) for o in after.orders] == [
            straight.is_triggered(o.id) for o in straight.orders
        ]
        new = after.submit(Order("X", "SELL", 1))
        assert new.id == len(straight.orders) + 1  # ids go on


def test_the_case_exercises_links_trailing_and_day_orders() -> None:
    broker = SimBroker(100_000.0)
    _orders(broker)
    for b in BARS:
        broker.process_bar(b)
    statuses = [(o.id, str(o.status), o.reason, o.avg_fill_price) for o in broker.orders]
    assert statuses == [
        (1, "FILLED", "", 99.0),  # the bracket's entry, bar 1
        (2, "CANCELLED", "cancelled: linked order #3 filled", 0.0),
        (3, "FILLED", "", 103.0),  # its take-profit, bar 5
        (4, "FILLED", "", 100.8),  # the trailing stop-limit: trailed to 100.8 by bar 1
        (5, "CANCELLED", "cancelled: linked order #4 filled", 0.0),  # its OCO peer
    ]
