"""OCO groups and brackets: each rule on a hand-made case (docs/broker.md, "Linked orders")."""

from __future__ import annotations

from typing import Any

import pytest

from finchan.trade import Strategy, backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.bar import Bar
from finchan.trade.broker import SimBroker
from finchan.trade.orders import Order, OrderStatus

FILLED, CANCELLED = OrderStatus.FILLED, OrderStatus.CANCELLED
PARTIAL, ACCEPTED = OrderStatus.PARTIALLY_FILLED, OrderStatus.ACCEPTED


def bar(t: int, o: float, h: float, lo: float, c: float, v: float = 1_000.0, s: str = "X") -> Bar:
    return Bar(None, s, 60.0 * t, o, h, lo, c, v)


def _broker(**kw: Any) -> SimBroker:
    broker = SimBroker(100_000.0, **kw)
    broker.process_bar(bar(0, 100.0, 100.5, 99.5, 100.0))
    return broker


def _bracket(broker: SimBroker, qty: float = 10, limit: float | None = 99.0) -> tuple:
    entry = Order("X", "BUY", qty, "MARKET" if limit is None else "LIMIT", limit=limit)
    stop = Order("X", "SELL", qty, "STOP", stop=97.0)
    take = Order("X", "SELL", qty, "LIMIT", limit=103.0)
    return broker.submit_bracket(entry, stop, take)


def _seen(notices: Any) -> list[tuple[int, OrderStatus]]:
    return [(n.order.id, n.status) for n in notices]


# -- OCO ---------------------------------------------------------------------------------------


def test_oco_of_three_the_first_fill_cancels_the_other_two_in_id_order() -> None:
    broker = _broker()
    a = broker.submit(Order("X", "BUY", 5, "LIMIT", limit=98.0))
    b = broker.submit(Order("X", "BUY", 5, "STOP", stop=101.0))
    c = broker.submit(Order("X", "BUY", 5, "LIMIT", limit=97.0))
    assert broker.link_oco(b, a) == [] and broker.link_oco(c, a) == []
    notices = broker.process_bar(bar(1, 100.0, 101.5, 99.8, 101.2))  # b triggers
    assert _seen(notices) == [(b.id, FILLED), (a.id, CANCELLED), (c.id, CANCELLED)]
    assert a.reason == c.reason == f"cancelled: linked order #{b.id} filled"
    assert broker.open_orders() == [] and broker.portfolio.qty("X") == 5


def test_oco_a_partial_fill_cancels_the_others_and_the_filling_order_goes_on() -> None:
    broker = _broker(volume_limit=0.01)  # 10 units a bar
    a = broker.submit(Order("X", "BUY", 25, "LIMIT", limit=100.5))
    b = broker.submit(Order("X", "BUY", 25, "LIMIT", limit=90.0))
    broker.link_oco(b, a)
    notices = broker.process_bar(bar(1, 100.0, 100.5, 99.8, 100.2))
    assert _seen(notices) == [(a.id, PARTIAL), (b.id, CANCELLED)]
    notices = broker.process_bar(bar(2, 100.0, 100.5, 99.8, 100.2))
    assert _seen(notices) == [(a.id, PARTIAL)] and a.filled_qty == 20


def test_oco_cancelling_one_cancels_the_group_and_a_dissolved_group_links_nothing() -> None:
    broker = _broker()
    a = broker.submit(Order("X", "BUY", 5, "LIMIT", limit=98.0))
    b = broker.submit(Order("X", "BUY", 5, "LIMIT", limit=97.0))
    broker.link_oco(b, a)
    assert broker.cancel_linked(b.id) == [b, a]
    assert (a.status, b.status) == (CANCELLED, CANCELLED)
    # backtrader's rule: joining a group that is gone leaves the order alone
    c = broker.submit(Order("X", "BUY", 5, "LIMIT", limit=96.0))
    assert broker.link_oco(c, a) == [] and c.is_open
    assert broker.cancel_linked(c.id) == [c]


def test_oco_a_member_rejected_at_submission_cancels_the_group() -> None:
    broker = _broker()
    a = broker.submit(Order("X", "BUY", 5, "LIMIT", limit=98.0))
    b = broker.submit(Order("X", "BUY", 5_000, "LIMIT", limit=98.0))  # too little cash
    assert b.status is OrderStatus.REJECTED
    assert broker.link_oco(b, a) == [a] and a.status is CANCELLED
    assert broker.open_orders() == []


def test_oco_linking_errors_are_clear() -> None:
    broker = _broker()
    a = broker.submit(Order("X", "BUY", 5, "LIMIT", limit=98.0))
    with pytest.raises(ValueError, match="was not submitted to this broker"):
        broker.link_oco(Order("X", "BUY", 1), a)
    with pytest.raises(ValueError, match="cannot be linked to itself"):
        broker.link_oco(a, a)
    b = broker.submit(Order("X", "BUY", 5, "LIMIT", limit=97.0))
    broker.link_oco(b, a)
    with pytest.raises(ValueError, match=f"order #{b.id} is already in an OCO group"):
        broker.link_oco(b, a)


# -- brackets ----------------------------------------------------------------------------------


def test_bracket_children_wait_for_the_parent_and_skip_its_fill_bar() -> None:
    broker = _broker()
    entry, stop, take = _bracket(broker)
    assert (entry.id, stop.id, take.id) == (1, 2, 3)
    assert stop.status is take.status is ACCEPTED
    assert broker.open_orders() == [entry]  # the exits wait outside the book
    # fills the entry; reaches both exits too, which are not live yet
    notices = broker.process_bar(bar(1, 99.0, 104.0, 96.0, 100.0))
    assert _seen(notices) == [(1, FILLED)]
    assert broker.open_orders() == [stop, take]
    notices = broker.process_bar(bar(2, 100.0, 100.5, 96.5, 97.5))  # the stop
    assert _seen(notices) == [(2, FILLED), (3, CANCELLED)]
    assert take.reason == "cancelled: linked order #2 filled"
    assert broker.open_orders() == [] and broker.portfolio.qty("X") == 0


def test_bracket_take_profit_fill_cancels_the_stop() -> None:
    broker = _broker()
    _entry, _stop, take = _bracket(broker, limit=None)  # market entry
    assert _seen(broker.process_bar(bar(1, 100.0, 100.5, 99.5, 100.0))) == [(1, FILLED)]
    notices = broker.process_bar(bar(2, 100.0, 103.5, 99.5, 103.0))
    assert _seen(notices) == [(3, FILLED), (2, CANCELLED)]
    assert take.avg_fill_price == 103.0


def test_bracket_parent_partial_fill_keeps_children_waiting_until_complete() -> None:
    broker = _broker(volume_limit=0.004)  # 4 units a bar
    entry, stop, take = _bracket(broker, qty=10)
    notices = broker.process_bar(bar(1, 99.0, 99.5, 96.0, 99.0))  # below the stop too
    assert _seen(notices) == [(1, PARTIAL)] and broker.open_orders() == [entry]
    assert _seen(broker.process_bar(bar(2, 99.0, 99.5, 96.0, 99.0))) == [(1, PARTIAL)]
    assert _seen(broker.process_bar(bar(3, 99.0, 99.5, 98.0, 99.0))) == [(1, FILLED)]
    assert broker.open_orders() == [stop, take] and stop.qty == take.qty == 10
    # an exit's partial fill cancels nothing; its completion cancels the other
    notices = broker.process_bar(bar(4, 103.5, 104.0, 103.0, 103.5))
    assert _seen(notices) == [(3, PARTIAL)] and stop.is_open
    broker.process_bar(bar(5, 103.5, 104.0, 103.0, 103.5))
    notices = broker.process_bar(bar(6, 103.5, 104.0, 103.0, 103.5))
    assert _seen(notices) == [(3, FILLED), (2, CANCELLED)]


def test_bracket_parent_cancelled_after_a_partial_fill_cancels_the_children() -> None:
    broker = _broker(volume_limit=0.004)
    entry, stop, take = _bracket(broker, qty=10)
    broker.process_bar(bar(1, 99.0, 99.5, 98.0, 99.0))
    assert entry.filled_qty == 4
    assert broker.cancel_linked(entry.id) == [entry, stop, take]
    assert stop.reason == take.reason == "cancelled: linked order #1 filled"
    assert broker.portfolio.qty("X") == 4 and broker.open_orders() == []
    assert broker.process_bar(bar(2, 96.0, 104.0, 95.0, 100.0)) == ()


def test_bracket_parent_cancelled_or_expired_before_filling_takes_the_children() -> None:
    broker = _broker()
    entry, stop, take = _bracket(broker)
    assert broker.cancel(entry.id) is True
    assert (stop.status, stop.reason) == (CANCELLED, "cancelled: linked order #1 closed")
    assert take.status is CANCELLED and not broker.cancel(stop.id)
    broker2 = _broker()
    entry = Order("X", "BUY", 10, "LIMIT", limit=90.0, tif="DAY")
    entry, stop, take = broker2.submit_bracket(
        entry, Order("X", "SELL", 10, "STOP", stop=85.0, tif="DAY"), None
    )
    assert take is None
    notices = broker2.process_bar(bar(24 * 60 + 1, 100.0, 100.5, 99.5, 100.0))  # next day
    assert _seen(notices) == [(1, OrderStatus.EXPIRED), (2, CANCELLED)]


def test_bracket_parent_rejected_rejects_the_children_and_a_rejected_child_cancels_all() -> None:
    broker = _broker()
    entry, stop, take = _bracket(broker, qty=5_000)  # too little cash
    assert entry.status is stop.status is take.status is OrderStatus.REJECTED
    assert stop.reason == "bracket order #1 rejected" and (stop.id, take.id) == (2, 3)
    bad = Order("X", "SELL", 10, "STOP", stop=-1.0)
    entry, stop, take = broker.submit_bracket(
        Order("X", "BUY", 10, "LIMIT", limit=99.0), bad, Order("X", "SELL", 10, "LIMIT", limit=103)
    )
    assert stop.status is OrderStatus.REJECTED
    assert (entry.status, entry.reason) == (CANCELLED, "cancelled: bracket order #5 rejected")
    assert take.status is OrderStatus.REJECTED and broker.open_orders() == []


def test_cancelling_a_waiting_exit_cancels_the_entry_and_the_other_exit() -> None:
    broker = _broker()
    entry, stop, take = _bracket(broker)
    assert broker.cancel_linked(take.id) == [take, entry, stop]  # backtrader's _bracketize
    assert broker.open_orders() == [] and entry.reason == "cancelled: linked order #3 closed"


def test_a_bracket_of_orders_already_submitted_is_refused() -> None:
    from finchan.errors import RunError

    broker = _broker()
    used = broker.submit(Order("X", "SELL", 1, "STOP", stop=90.0))
    with pytest.raises(RunError, match=f"order #{used.id} was already submitted"):
        broker.submit_bracket(Order("X", "BUY", 1), used, None)
    assert len(broker.orders) == 1


def test_cancelling_an_exit_cancels_its_sibling() -> None:
    broker = _broker()
    _entry, stop, take = _bracket(broker, limit=None)
    broker.process_bar(bar(1, 100.0, 100.5, 99.5, 100.0))
    assert broker.cancel_linked(stop.id) == [stop, take]
    assert broker.open_orders() == [] and broker.portfolio.qty("X") == 10


def test_trailing_stop_exit_starts_at_the_decision_close_and_trails_once_live() -> None:
    broker = _broker()
    entry, stop, _ = broker.submit_bracket(
        Order("X", "BUY", 10, "LIMIT", limit=99.0),
        Order("X", "SELL", 10, "TRAILING_STOP", trail_amount=1.0),
        None,
    )
    assert stop.stop == 99.0  # last close 100 - 1
    broker.process_bar(bar(1, 100.0, 101.0, 99.5, 100.8))  # entry not reached
    assert stop.stop == 99.0  # a waiting exit does not trail
    broker.process_bar(bar(2, 99.0, 99.5, 98.8, 99.2))  # entry fills at 99.0
    assert entry.status is FILLED and stop.stop == 99.0
    broker.process_bar(bar(3, 99.5, 101.5, 99.4, 101.2))
    assert stop.stop == pytest.approx(100.2)


def test_sell_bracket_mirrors_with_a_short_entry() -> None:
    class Short(Strategy):
        def on_start(self) -> None:
            self.placed: tuple = ()

        def on_bar(self, bar: Any) -> None:
            if not self.placed:
                c = bar.close
                self.placed = self.sell_bracket("X", 10, None, round(c + 0.5, 2), round(c - 0.5, 2))

    result = backtest(Short, {"X": make_bars(400, seed=3)}, cash=100_000.0, allow_short=True,
                      report=False)
    orders = result.orders.set_index("order_id")
    assert list(orders["side"]) == ["SELL", "BUY", "BUY"]
    assert list(orders["type"]) == ["MARKET", "STOP", "LIMIT"]
    assert orders.loc[1, "status"] == "FILLED"
    assert sorted(orders.loc[[2, 3], "status"]) == ["CANCELLED", "FILLED"]
    assert result._account.broker.portfolio.qty("X") == 0


def test_strategy_notices_of_a_bracket_come_in_the_documented_order() -> None:
    seen: list[tuple[int, str]] = []

    class Once(Strategy):
        def on_bar(self, bar: Any) -> None:
            if not seen:
                self.buy_bracket("X", 10, None, round(bar.close - 0.3, 4), round(bar.close + 0.3, 4))

        def on_order(self, order: Order) -> None:
            seen.append((order.id, str(order.status)))

    backtest(Once, {"X": make_bars(300, seed=1)}, cash=100_000.0, report=False)
    # submission: entry, stop, take; then the entry's fill; then an exit's
    # fill and, in the same bar's notices, its sibling's cancellation
    assert seen[:4] == [(1, "ACCEPTED"), (2, "ACCEPTED"), (3, "ACCEPTED"), (1, "FILLED")]
    assert seen[4:] in ([(2, "FILLED"), (3, "CANCELLED")], [(3, "FILLED"), (2, "CANCELLED")])


def test_bracket_argument_errors() -> None:
    class Bad(Strategy):
        params = {"case": 0}

        def on_bar(self, bar: Any) -> None:
            if self.params.case == 0:
                self.buy_bracket("X", 1, None, 90.0, None, stop_trail_amount=1.0)
            else:
                self.sell_bracket("X", 1)

    with pytest.raises(Exception, match=r"buy_bracket\('X'\): a trailing stop sets its own"):
        backtest(Bad, {"X": make_bars(5, seed=1)}, report=False)
    with pytest.raises(Exception, match=r"sell_bracket\('X'\): needs stop_loss, take_profit"):
        backtest(Bad, {"X": make_bars(5, seed=1)}, params={"case": 1}, report=False)


def test_without_linked_orders_the_broker_keeps_its_plain_matching_loop() -> None:
    broker = _broker()
    broker.submit(Order("X", "BUY", 1))
    broker.process_bar(bar(1, 100.0, 100.5, 99.5, 100.0))
    assert broker._links is None and broker._match == broker._match_order


def test_orders_of_a_symbol_matched_alone_do_not_meet_its_bar_again_in_a_group() -> None:
    # X alone has orders when its bar of t=2 comes (matched on its own); Y's
    # bar of t=2 then finds books and matches the group: X's trailing stop
    # must not trail on its bar and then fill on it
    broker = SimBroker(100_000.0)
    day = {t: [bar(t, 100, 100.5, 99.5, 100, s="X"), bar(t, 50, 50, 50, 50, s="Y")] for t in (0, 1)}
    day[2] = [bar(2, 100.0, 103.0, 101.4, 102.8, s="X"), bar(2, 50, 50, 50, 50, s="Y")]
    broker.bars_at = lambda ts: day[int(ts // 60)]
    for b in day[0]:
        broker.process_bar(b)
    broker.submit(Order("X", "BUY", 10))
    for b in day[1]:
        broker.process_bar(b)
    stop = broker.submit(Order("X", "SELL", 10, "TRAILING_STOP", trail_amount=1.5))
    assert broker.process_bar(day[2][0]) == ()
    assert stop.stop == pytest.approx(101.3)  # trailed on the close 102.8
    assert broker.process_bar(day[2][1]) == () and stop.is_open


def test_linked_order_notices_are_the_same_in_two_runs_of_three_symbols() -> None:
    runs: list[list[tuple]] = []

    class Recorder(Strategy):
        def on_start(self) -> None:
            self.log_: list[tuple] = []
            runs.append(self.log_)
            self.k = 0

        def on_bar(self, bar: Any) -> None:
            s = bar.symbol
            if self.position(s) == 0 and not self.open_orders(s):
                self.k += 1
                c = bar.close
                if self.k % 2:
                    self.buy_bracket(s, 7, round(c - 0.05, 4), round(c - 0.3, 4), round(c + 0.3, 4))
                else:
                    first = self.buy(s, 7, limit=round(c - 0.1, 4))
                    self.buy(s, 7, stop=round(c + 0.1, 4), oco=first)
            elif self.position(s) and not self.open_orders(s):
                self.sell(s, self.position(s))

        def on_order(self, order: Order) -> None:
            self.log_.append((order.id, order.symbol, str(order.status), order.reason))

    data = {s: make_bars(1_000, seed=k) for k, s in enumerate(("A", "B", "C"))}
    tables = []
    for _ in range(2):
        result = backtest(Recorder, data, cash=1_000_000.0, volume_limit=0.002, report=False)
        tables.append(result.orders.to_csv(index=False))
    assert tables[0] == tables[1] and runs[0] == runs[1] and len(runs[0]) > 500
    orders = result.orders
    assert (orders["reason"].str.startswith("cancelled: linked order")).sum() >= 50
