"""finchan.trade.orders: Order and Fill values, their states, rows and text."""

from __future__ import annotations

import pytest

from finchan.trade.bar import Bar
from finchan.trade.broker import SimBroker
from finchan.trade.orders import Fill, Order, OrderStatus, OrderType, Side, TimeInForce


def test_a_new_order_has_the_documented_defaults():
    order = Order("AAPL", "BUY", 10, type="LIMIT", limit=150.0)
    assert (order.id, order.status, order.filled_qty, order.avg_fill_price) == (
        0, OrderStatus.SUBMITTED, 0.0, 0.0,
    )
    assert (order.tif, order.stop, order.created_ts, order.reason) == (TimeInForce.GTC, None, None, "")
    assert repr(order) == "<Order #0 BUY 10 AAPL LIMIT limit=150.0 GTC SUBMITTED filled=0>"
    assert Order("X", Side.SELL, 1).type is OrderType.MARKET


def test_enums_are_their_strings():
    assert [str(s) for s in Side] == ["BUY", "SELL"]
    assert [str(t) for t in OrderType] == [
        "MARKET", "LIMIT", "STOP", "STOP_LIMIT", "TRAILING_STOP", "TRAILING_STOP_LIMIT"]
    assert OrderStatus("PARTIALLY_FILLED") is OrderStatus.PARTIALLY_FILLED
    assert TimeInForce.DAY == "DAY"


@pytest.mark.parametrize(
    ("status", "remaining", "is_open"),
    [
        (OrderStatus.SUBMITTED, 6.0, False),
        (OrderStatus.ACCEPTED, 6.0, True),
        (OrderStatus.PARTIALLY_FILLED, 6.0, True),
        (OrderStatus.FILLED, 0.0, False),
        (OrderStatus.CANCELLED, 0.0, False),
        (OrderStatus.REJECTED, 0.0, False),
        (OrderStatus.EXPIRED, 0.0, False),
    ],
)
def test_remaining_qty_and_is_open_follow_the_status(status, remaining, is_open):
    order = Order("X", "BUY", 10)
    order.filled_qty = 4.0
    order.status = status
    assert (order.remaining_qty, order.is_open) == (remaining, is_open)


def test_rows_follow_the_declared_columns():
    order = Order("X", "SELL", 5, type=OrderType.STOP, stop=9.5, tif="DAY", created_ts=60.0)
    row = order.to_row()
    assert len(row) == len(Order.COLUMNS)
    assert dict(zip(Order.COLUMNS, row)) == {
        "order_id": 0, "created": 60.0, "symbol": "X", "side": "SELL", "qty": 5, "type": "STOP",
        "limit": None, "stop": 9.5, "tif": "DAY", "status": "SUBMITTED", "filled_qty": 0.0,
        "avg_price": 0.0, "commission": 0.0, "reason": "",
    }
    fill = Fill(3, "X", Side.BUY, 2.0, 101.5, 0.25, 120.0)
    assert dict(zip(Fill.COLUMNS, fill.to_row())) == {
        "datetime": 120.0, "symbol": "X", "side": "BUY", "qty": 2.0, "price": 101.5,
        "commission": 0.25, "order_id": 3,
    }


def test_an_order_through_its_life_at_the_broker():
    broker = SimBroker(10_000.0)
    broker.process_bar(Bar(None, "X", 0.0, 100, 101, 99, 100, 1000))
    order = broker.submit(Order("X", "BUY", 10))
    assert (order.id, order.status, order.is_open) == (1, OrderStatus.ACCEPTED, True)
    (notice,) = broker.process_bar(Bar(None, "X", 60.0, 100.5, 102, 100, 101, 1000))
    assert (notice.order, notice.status) == (order, OrderStatus.FILLED)
    assert (order.filled_qty, order.avg_fill_price, order.remaining_qty) == (10.0, 100.5, 0.0)
    assert notice.fill == Fill(1, "X", Side.BUY, 10.0, 100.5, 0.0, 60.0)
    assert repr(order) == "<Order #1 BUY 10 X MARKET GTC FILLED filled=10>"


def test_bad_orders_are_rejected_with_a_reason_not_raised():
    broker = SimBroker(10_000.0)
    broker.process_bar(Bar(None, "X", 0.0, 100, 101, 99, 100, 1000))
    sideways = broker.submit(Order("X", "SIDEWAYS", 10))
    negative = broker.submit(Order("X", "BUY", -1))
    assert (sideways.status, sideways.reason) == (
        OrderStatus.REJECTED, "side must be BUY or SELL, not 'SIDEWAYS'")
    assert (negative.status, negative.reason) == (
        OrderStatus.REJECTED, "qty must be a positive number, not -1")
    limit = broker.submit(Order("X", "BUY", 10, type="LIMIT", limit=95.0))
    assert broker.cancel(limit.id) is True
    assert (limit.status, limit.reason, limit.is_open) == (OrderStatus.CANCELLED, "cancelled", False)
    assert repr(limit).endswith("CANCELLED filled=0 (cancelled)>")
