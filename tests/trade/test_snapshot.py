"""Snapshots of the simulated broker (a live run's restart point): linked and trailing orders too."""

from __future__ import annotations

import pickle

from finchan.trade._snapshot import broker_state, restore_broker
from finchan.trade.bar import Bar
from finchan.trade.broker import SimBroker
from finchan.trade.orders import Order
from finchan.trade.portfolio import Portfolio


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


class _Run:
    """What a snapshot refers to but does not hold (the run's Env)."""


class _Account:
    """The account's parts a snapshot reads: the broker and the recorded series."""

    def __init__(self, broker: SimBroker) -> None:
        self.broker = broker
        self.times = [0.0]
        self.equity = [broker.portfolio.equity]
        self.prices: dict[str, list[float]] = {}


class _Strategy:
    """A strategy's attributes: here, references to orders that close as bars come."""


def test_incremental_snapshots_restore_the_broker_at_every_cut_with_each_order_once() -> None:
    """Each snapshot pickles what closed since the previous one (its part) and a core.

    A core plus the parts before it restore a broker that goes on exactly as
    the one never stopped; an order the strategy and the OCO links still hold
    after it closed is one object again, not a copy per part.
    """
    from finchan.trade._snapshot import Snapshots, load_snapshot

    straight = SimBroker(100_000.0)
    _orders(straight)
    for b in BARS:
        straight.process_bar(b)

    run, broker = _Run(), SimBroker(100_000.0)
    _orders(broker)
    account, strategy = _Account(broker), _Strategy()
    strategy.entry = broker.get_order(1)  # the bracket's entry: fills on bar 1
    strategy.peer = broker.get_order(5)  # the OCO peer of the trailing order
    snapshots = Snapshots()
    cores, parts, archived = [], [], []
    for b in BARS:
        broker.process_bar(b)
        core, number, part = snapshots.take(run, account, strategy)
        assert number == len(parts)  # parts are numbered from 0, one per snapshot
        cores.append(core)
        parts.append(part)
        archived.append([o.id for o in pickle.loads(part)["orders"]])
    # every order is in exactly one part, the one after it closed
    assert archived == [[1], [4, 5], [], [], [2, 3], []]
    assert sorted(oid for ids in archived for oid in ids) == [1, 2, 3, 4, 5]
    for cut in range(1, len(BARS)):
        state = load_snapshot(run, cores[cut - 1], parts[:cut])
        assert state["parts"] == cut
        after = SimBroker(100_000.0)
        restore_broker(after, state["broker"])
        held = state["strategy"]
        assert held["entry"] is after.get_order(1)
        assert held["peer"] is after.get_order(5)
        for b in BARS[cut:]:
            after.process_bar(b)
        assert _outcome(after) == _outcome(straight), cut
        assert after.portfolio.cash == straight.portfolio.cash
        assert len(after.portfolio.trades) == len(straight.portfolio.trades)
        new = after.submit(Order("X", "SELL", 1))
        assert new.id == len(straight.orders) + 1


def test_a_snapshot_missing_a_part_is_refused_not_restored_short() -> None:
    import pytest

    from finchan.trade._snapshot import Snapshots, load_snapshot

    run, broker = _Run(), SimBroker(100_000.0)
    _orders(broker)
    account, strategy = _Account(broker), _Strategy()
    snapshots = Snapshots()
    parts = []
    for b in BARS[:3]:
        broker.process_bar(b)
        core, _, part = snapshots.take(run, account, strategy)
        parts.append(part)
    with pytest.raises(ValueError, match="stands on 3 parts, 2 found"):
        load_snapshot(run, core, parts[:2])


class _TaggedPortfolio(Portfolio):
    """A user's portfolio subclass: its own attribute lives in a __dict__."""

    def __init__(self, cash: float) -> None:
        super().__init__(cash)
        self.tag = "mine"


def test_a_portfolio_subclass_keeps_its_own_attributes_and_every_closed_trade() -> None:
    from finchan.trade._snapshot import Snapshots, load_snapshot

    run = _Run()
    broker = SimBroker(100_000.0, portfolio=_TaggedPortfolio(100_000.0))
    _orders(broker)
    account, strategy = _Account(broker), _Strategy()
    snapshots = Snapshots()
    parts = []
    for b in BARS:
        broker.process_bar(b)
        core, _, part = snapshots.take(run, account, strategy)
        parts.append(part)
    broker.submit(Order("X", "SELL", 5))  # flat again: the round trip closes
    broker.process_bar(bar(7, 96.0, 97.0, 95.5, 96.5))
    core, _, part = snapshots.take(run, account, strategy)
    parts.append(part)
    assert broker.portfolio.positions["X"].qty == 0
    state = load_snapshot(run, core, parts)
    portfolio = state["broker"]["portfolio"]
    assert type(portfolio) is _TaggedPortfolio and portfolio.tag == "mine"
    assert [t.to_row() for t in portfolio.trades] == [t.to_row() for t in broker.portfolio.trades]
    assert len(portfolio.trades) == 1
    assert (portfolio.cash, portfolio.realized_pnl) == (broker.portfolio.cash,
                                                         broker.portfolio.realized_pnl)
