"""Trailing stops, lot sizes and order_target_value: hand-computed cases."""

from __future__ import annotations

from typing import Any

import pytest

from finchan.errors import ConfigError
from finchan.trade import Strategy, backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.bar import Bar
from finchan.trade.broker import SimBroker
from finchan.trade.orders import Order, OrderStatus


def bar(t: int, o: float, h: float, lo: float, c: float, symbol: str = "X") -> Bar:
    return Bar(None, symbol, 60.0 * t, o, h, lo, c, 1_000.0)


def _long(**kw: Any) -> SimBroker:
    """A broker holding 10 X bought at 100, last close 100."""
    broker = SimBroker(100_000.0, **kw)
    broker.process_bar(bar(0, 100.0, 100.5, 99.5, 100.0))
    broker.submit(Order("X", "BUY", 10))
    broker.process_bar(bar(1, 100.0, 100.5, 99.5, 100.0))
    return broker


# -- trailing stops ----------------------------------------------------------------------------


def test_trailing_sell_stop_starts_below_the_last_close_and_only_moves_up() -> None:
    broker = _long()
    order = broker.submit(Order("X", "SELL", 10, "TRAILING_STOP", trail_amount=2.0))
    assert order.status is OrderStatus.ACCEPTED and order.stop == 98.0
    broker.process_bar(bar(2, 100.0, 103.0, 99.0, 102.5))  # not hit; trails the close
    assert order.stop == 100.5
    broker.process_bar(bar(3, 102.0, 102.2, 101.0, 101.0))  # a lower close: stays
    assert order.stop == 100.5
    notices = broker.process_bar(bar(4, 101.0, 101.5, 99.0, 99.5))  # touched: fills at the stop
    assert [(n.status, n.fill.price) for n in notices] == [(OrderStatus.FILLED, 100.5)]


def test_trailing_buy_stop_in_percent_follows_the_closes_down_and_fills_a_gap_at_the_open() -> None:
    broker = SimBroker(100_000.0)
    broker.process_bar(bar(0, 100.0, 100.5, 99.5, 100.0))
    order = broker.submit(Order("X", "BUY", 5, "TRAILING_STOP", trail_percent=0.01))
    assert order.stop == pytest.approx(101.0)
    broker.process_bar(bar(1, 99.0, 99.5, 95.0, 96.0))
    assert order.stop == pytest.approx(96.0 * 1.01)
    notices = broker.process_bar(bar(2, 98.0, 99.0, 97.5, 98.5))  # opens above the stop
    assert [(n.status, n.fill.price) for n in notices] == [(OrderStatus.FILLED, 98.0)]


def test_trailing_stop_limit_moves_its_limit_with_the_stop() -> None:
    broker = _long()
    order = broker.submit(
        Order("X", "SELL", 10, "TRAILING_STOP_LIMIT", limit=97.0, trail_amount=2.0)
    )
    assert (order.stop, order.limit) == (98.0, 97.0)
    broker.process_bar(bar(2, 100.0, 104.0, 99.5, 104.0))
    assert (order.stop, order.limit) == (102.0, 101.0)
    # gaps below the stop and below the limit: triggered, no fill, and it
    # still trails (backtrader), then it is a plain limit order
    assert broker.process_bar(bar(3, 100.5, 100.8, 100.0, 100.2)) == ()
    assert broker.is_triggered(order.id) and (order.stop, order.limit) == (102.0, 101.0)
    notices = broker.process_bar(bar(4, 100.5, 101.5, 100.0, 101.2))
    assert [(n.status, n.fill.price) for n in notices] == [(OrderStatus.FILLED, 101.0)]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {"trail_amount": 1.0, "trail_percent": 0.01},
            "needs exactly one of trail_amount, trail_percent",
        ),
        ({}, "TRAILING_STOP order needs exactly one of trail_amount, trail_percent"),
        ({"trail_amount": -1.0}, "trail_amount must be a positive number, not -1.0"),
        ({"trail_percent": 1.5}, "trail_percent must be a fraction in (0, 1), not 1.5"),
        (
            {"trail_amount": 1.0, "stop": 99.0},
            "TRAILING_STOP order sets its own stop; stop must be None, not 99.0",
        ),
        (
            {"trail_amount": 1.0, "limit": 99.0},
            "TRAILING_STOP order takes no limit price (TRAILING_STOP_LIMIT does)",
        ),
        ({"trail_amount": 200.0}, "the trail puts the stop at -100, not a positive price"),
    ],
)
def test_bad_trailing_orders_are_rejected_with_a_reason(
    kwargs: dict[str, Any], reason: str
) -> None:
    broker = _long()
    order = broker.submit(Order("X", "SELL", 1, "TRAILING_STOP", **kwargs))
    assert order.status is OrderStatus.REJECTED and reason in order.reason


def test_a_trailing_order_needs_a_bar_and_trail_needs_a_trailing_type() -> None:
    broker = SimBroker(1_000.0)
    order = broker.submit(Order("X", "BUY", 1, "TRAILING_STOP", trail_amount=1.0))
    assert order.reason == "TRAILING_STOP order needs a bar of X before it (it trails the close)"
    order = _long().submit(Order("X", "SELL", 1, "STOP", stop=90.0, trail_amount=1.0))
    assert order.reason == "trail_amount and trail_percent need a trailing order type, not STOP"


# -- lots ---------------------------------------------------------------------------------------


def test_lot_size_and_minimum_are_enforced_per_symbol() -> None:
    broker = SimBroker(100_000.0, lots={"X": (0.001, 0.01)})
    broker.process_bar(bar(0, 100.0, 100.5, 99.5, 100.0))
    assert broker.lot("X") == (0.001, 0.01) and broker.lot("Y") == (1.0, 0.0)
    assert broker.submit(Order("X", "BUY", 0.025)).status is OrderStatus.ACCEPTED
    assert broker.submit(Order("X", "BUY", 0.0255)).reason == (
        "qty 0.0255 is not a multiple of the lot size 0.001 of X"
    )
    assert (
        broker.submit(Order("X", "BUY", 0.005)).reason == "qty 0.005 is below the minimum 0.01 of X"
    )
    notices = broker.process_bar(bar(1, 100.0, 100.5, 99.5, 100.0))
    assert [n.fill.qty for n in notices] == [0.025]


def test_bad_lots_raise_config_error() -> None:
    with pytest.raises(ConfigError, match=r"lots\['X'\]: size must be > 0 and minimum >= 0"):
        SimBroker(lots={"X": (0.0, 1.0)})
    with pytest.raises(ConfigError, match=r"lots\['X'\]: unknown key\(s\) step"):
        SimBroker(lots={"X": {"step": 0.1}})


# -- order_target_value --------------------------------------------------------------------------


class Targets(Strategy):
    plan: list[tuple[int, float]] = []
    seen: list[tuple[float, float]] = []

    def on_start(self) -> None:
        self.n = 0

    def on_bar(self, bar: Any) -> None:
        for at, value in self.plan:
            if self.n == at:
                order = self.order_target_value(bar.symbol, value)
                type(self).seen.append((bar.close, order.qty if order is not None else 0.0))
        self.n += 1


def test_order_target_value_trades_the_value_gap_in_whole_units_like_backtrader() -> None:
    bars = make_bars(20)
    Targets.plan = [(1, 10_000.0), (5, 4_000.0), (9, 4_000.0), (12, 0.0)]
    Targets.seen = []
    result = backtest(Targets, {"SYN": bars}, cash=100_000, report=False)
    (c1, q1), (c5, q5), (c9, q9), (_, q12) = Targets.seen
    assert q1 == 10_000.0 // c1 == 100.0
    # the value gap floored (backtrader): 59 units, where a target of
    # floor(4000 / close) = 40 units would have sold 60
    assert q5 == (100.0 * c5 - 4_000.0) // c5 == 59.0
    assert q9 == 0.0 and abs(41.0 * c9 - 4_000.0) < c9  # less than a unit away: no order
    assert q12 == 41.0 and result.open_positions == {}  # 0 closes the whole position
    assert list(result.fills["side"]) == ["BUY", "SELL", "SELL"]


def test_order_target_value_and_percent_round_to_the_lot_size() -> None:
    bars = make_bars(10)
    Targets.plan = [(1, 1_000.0)]
    Targets.seen = []
    result = backtest(
        Targets, {"SYN": bars}, cash=10_000, lots={"SYN": (0.001, 0.01)}, report=False
    )
    close, qty = Targets.seen[0]
    assert qty == round(int(1_000.0 / close / 0.001) * 0.001, 12) and qty != int(qty)
    assert result.fills["qty"].tolist() == [qty]
