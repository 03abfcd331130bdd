"""SimBroker: each fill rule and order state on small hand-made bar series."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import math
from pathlib import Path

import pytest

from finchan.errors import ConfigError, RunError
from finchan.trade.bar import Bar
from finchan.trade.broker import (
    BpsSlippage,
    FixedPerOrder,
    Notice,
    PercentOfValue,
    PerShare,
    SimBroker,
    TickSlippage,
)
from finchan.trade.orders import Fill, Order, OrderStatus, OrderType, Side, TimeInForce

T0 = dt.datetime(2024, 3, 4, 14, 0, tzinfo=dt.UTC).timestamp()


def bar(i: int, o: float, h: float, low: float, c: float, v: float = 1000.0, sym: str = "X"):
    """The i-th one-minute bar from T0."""
    return Bar(None, sym, T0 + 60.0 * i, o, h, low, c, v)


def run(broker: SimBroker, *bars) -> list[Notice]:
    notices: list[Notice] = []
    for b in bars:
        notices.extend(broker.process_bar(b))
    return notices


def fills(notices) -> list[tuple]:
    return [(n.fill.timestamp, n.fill.side, n.fill.qty, n.fill.price) for n in notices if n.fill]


def started(**kw) -> SimBroker:
    """A broker that has seen bar 0 (close 100), ready for orders."""
    broker = SimBroker(kw.pop("cash", 100_000.0), **kw)
    broker.process_bar(bar(0, 100.0, 100.5, 99.5, 100.0))
    return broker


# -- market orders ---------------------------------------------------------------------------


def test_market_buy_fills_at_next_bar_open() -> None:
    broker = started()
    order = broker.submit(Order("X", Side.BUY, 10))
    assert order.status is OrderStatus.ACCEPTED
    notices = run(broker, bar(1, 101.0, 102.0, 100.0, 101.5))
    assert fills(notices) == [(T0 + 60, Side.BUY, 10, 101.0)]
    assert notices[0].status is OrderStatus.FILLED
    assert (order.status, order.filled_qty, order.avg_fill_price) == (OrderStatus.FILLED, 10, 101.0)
    assert broker.portfolio.cash == 100_000.0 - 1010.0
    assert broker.portfolio.equity == 100_000.0 - 1010.0 + 10 * 101.5


def test_market_sell_fills_at_next_bar_open() -> None:
    broker = started()
    broker.submit(Order("X", "BUY", 10))
    run(broker, bar(1, 101.0, 102.0, 100.0, 101.5))
    broker.submit(Order("X", "SELL", 10))
    assert fills(run(broker, bar(2, 99.0, 99.5, 98.0, 98.5))) == [(T0 + 120, Side.SELL, 10, 99.0)]
    assert broker.portfolio.qty("X") == 0
    assert broker.portfolio.cash == 100_000.0 - 20.0


def test_order_never_meets_a_bar_opening_at_or_before_its_created_ts() -> None:
    # two symbols at one time: an order on Y decided during X's bar at t
    # must not fill on Y's bar at t, which is handled after
    broker = SimBroker(10_000.0)
    broker.process_bar(bar(0, 100.0, 100.0, 100.0, 100.0, sym="Y"))
    broker.process_bar(bar(1, 50.0, 51.0, 49.0, 50.0, sym="X"))
    order = broker.submit(Order("Y", "BUY", 1))
    assert order.created_ts == T0 + 60
    assert run(broker, bar(1, 100.0, 101.0, 99.0, 100.0, sym="Y")) == []
    assert fills(run(broker, bar(2, 102.0, 103.0, 101.0, 102.0, sym="Y"))) == [
        (T0 + 120, Side.BUY, 1, 102.0)
    ]


def test_close_mode_fills_market_order_at_signal_bar_close() -> None:
    broker = started(fill_at="close")
    order = broker.submit(Order("X", "BUY", 10))
    notices = run(broker, bar(1, 101.0, 102.0, 100.0, 101.5))
    # reported with the next bar, priced and stamped at the signal bar
    assert fills(notices) == [(T0, Side.BUY, 10, 100.0)]
    assert order.status is OrderStatus.FILLED
    assert broker.portfolio.equity == 100_000.0 + 10 * 1.5


def test_close_mode_only_changes_market_orders() -> None:
    broker = started(fill_at="close")
    broker.submit(Order("X", "BUY", 10, "LIMIT", limit=99.0))
    assert fills(run(broker, bar(1, 100.0, 100.0, 98.0, 99.5))) == [(T0 + 60, Side.BUY, 10, 99.0)]


def test_close_mode_rejects_market_order_before_any_bar_of_its_symbol() -> None:
    broker = SimBroker(fill_at="close")
    order = broker.submit(Order("X", "BUY", 10))
    assert order.status is OrderStatus.REJECTED
    assert order.reason == "fill_at='close' needs a bar of X before the order"


# -- limit orders ----------------------------------------------------------------------------


def test_limit_buy_fills_at_limit_when_low_reaches_it() -> None:
    broker = started()
    broker.submit(Order("X", "BUY", 10, OrderType.LIMIT, limit=99.0))
    assert fills(run(broker, bar(1, 100.0, 100.5, 98.5, 99.5))) == [(T0 + 60, Side.BUY, 10, 99.0)]


def test_limit_buy_fills_at_open_when_bar_gaps_below_limit() -> None:
    broker = started()
    broker.submit(Order("X", "BUY", 10, "LIMIT", limit=99.0))
    assert fills(run(broker, bar(1, 97.0, 98.0, 96.0, 97.5))) == [(T0 + 60, Side.BUY, 10, 97.0)]


def test_limit_buy_stays_open_until_low_reaches_limit() -> None:
    broker = started()
    order = broker.submit(Order("X", "BUY", 10, "LIMIT", limit=99.0))
    assert run(broker, bar(1, 100.0, 101.0, 99.01, 100.0)) == []
    assert order.status is OrderStatus.ACCEPTED
    assert broker.open_orders("X") == [order]
    assert fills(run(broker, bar(2, 100.0, 100.0, 99.0, 99.5))) == [(T0 + 120, Side.BUY, 10, 99.0)]
    assert broker.open_orders() == []


def test_limit_sell_fills_at_limit_when_high_reaches_it() -> None:
    broker = started(allow_short=True)
    broker.submit(Order("X", "SELL", 10, "LIMIT", limit=101.0))
    assert fills(run(broker, bar(1, 100.0, 101.5, 99.5, 100.0))) == [
        (T0 + 60, Side.SELL, 10, 101.0)
    ]


def test_limit_sell_fills_at_open_when_bar_gaps_above_limit() -> None:
    broker = started(allow_short=True)
    broker.submit(Order("X", "SELL", 10, "LIMIT", limit=101.0))
    assert fills(run(broker, bar(1, 103.0, 104.0, 102.0, 103.0))) == [
        (T0 + 60, Side.SELL, 10, 103.0)
    ]


# -- stop orders -----------------------------------------------------------------------------


def test_stop_buy_fills_at_stop_when_high_reaches_it() -> None:
    broker = started()
    broker.submit(Order("X", "BUY", 10, "STOP", stop=101.0))
    assert run(broker, bar(1, 100.0, 100.9, 99.0, 100.5)) == []
    assert fills(run(broker, bar(2, 100.5, 101.2, 100.0, 101.1))) == [
        (T0 + 120, Side.BUY, 10, 101.0)
    ]


def test_stop_buy_fills_at_open_when_bar_gaps_above_stop() -> None:
    broker = started()
    broker.submit(Order("X", "BUY", 10, "STOP", stop=101.0))
    assert fills(run(broker, bar(1, 102.5, 103.0, 102.0, 102.2))) == [
        (T0 + 60, Side.BUY, 10, 102.5)
    ]


def test_stop_sell_fills_at_stop_when_low_reaches_it() -> None:
    broker = started(allow_short=True)
    broker.submit(Order("X", "SELL", 10, "STOP", stop=99.0))
    assert fills(run(broker, bar(1, 100.0, 100.2, 98.7, 99.2))) == [(T0 + 60, Side.SELL, 10, 99.0)]


def test_stop_sell_fills_at_open_when_bar_gaps_below_stop() -> None:
    broker = started(allow_short=True)
    broker.submit(Order("X", "SELL", 10, "STOP", stop=99.0))
    assert fills(run(broker, bar(1, 97.0, 98.0, 96.5, 97.5))) == [(T0 + 60, Side.SELL, 10, 97.0)]


# -- stop-limit orders -----------------------------------------------------------------------


def test_stop_limit_buy_gapping_above_stop_fills_at_open_under_limit() -> None:
    broker = started()
    broker.submit(Order("X", "BUY", 10, "STOP_LIMIT", limit=102.0, stop=101.0))
    assert fills(run(broker, bar(1, 101.5, 103.0, 101.0, 102.5))) == [
        (T0 + 60, Side.BUY, 10, 101.5)
    ]


def test_stop_limit_buy_gapping_above_limit_triggers_then_waits_as_limit() -> None:
    broker = started()
    order = broker.submit(Order("X", "BUY", 10, "STOP_LIMIT", limit=102.0, stop=101.0))
    assert run(broker, bar(1, 103.0, 104.0, 102.5, 103.5)) == []
    # triggered: the stop no longer matters, only the limit
    assert order.status is OrderStatus.ACCEPTED
    assert fills(run(broker, bar(2, 103.0, 103.0, 101.8, 102.0))) == [
        (T0 + 120, Side.BUY, 10, 102.0)
    ]


def test_stop_limit_buy_touched_within_bar_fills_at_stop_when_limit_is_above() -> None:
    broker = started()
    broker.submit(Order("X", "BUY", 10, "STOP_LIMIT", limit=101.5, stop=101.0))
    assert fills(run(broker, bar(1, 100.0, 101.2, 99.5, 100.8))) == [(T0 + 60, Side.BUY, 10, 101.0)]


def test_stop_limit_buy_touched_on_down_bar_fills_at_limit_below_stop_if_close_is_under() -> None:
    # open > close: backtrader assumes the high (the trigger) came first, and
    # takes the close as proof that the price came back to the limit
    broker = started()
    broker.submit(Order("X", "BUY", 10, "STOP_LIMIT", limit=100.0, stop=101.0))
    assert fills(run(broker, bar(1, 100.5, 101.2, 99.0, 99.8))) == [(T0 + 60, Side.BUY, 10, 100.0)]


def test_stop_limit_buy_touched_on_up_bar_with_limit_below_stop_waits_for_next_bar() -> None:
    broker = started()
    order = broker.submit(Order("X", "BUY", 10, "STOP_LIMIT", limit=100.0, stop=101.0))
    # low 99 is under the limit, but on an up bar it came before the trigger
    assert run(broker, bar(1, 100.2, 101.2, 99.0, 100.9)) == []
    assert fills(run(broker, bar(2, 100.5, 100.6, 99.9, 100.1))) == [
        (T0 + 120, Side.BUY, 10, 100.0)
    ]
    assert order.status is OrderStatus.FILLED


def test_stop_limit_sell_touched_on_up_bar_fills_at_limit_if_close_is_over() -> None:
    broker = started(allow_short=True)
    broker.submit(Order("X", "SELL", 10, "STOP_LIMIT", limit=100.0, stop=99.0))
    assert fills(run(broker, bar(1, 99.5, 100.5, 98.8, 100.2))) == [(T0 + 60, Side.SELL, 10, 100.0)]


def test_stop_limit_sell_touched_within_bar_fills_at_stop_when_limit_is_below() -> None:
    broker = started(allow_short=True)
    broker.submit(Order("X", "SELL", 10, "STOP_LIMIT", limit=98.5, stop=99.0))
    assert fills(run(broker, bar(1, 100.0, 100.2, 98.8, 99.5))) == [(T0 + 60, Side.SELL, 10, 99.0)]


# -- time in force ---------------------------------------------------------------------------


def _midnight() -> float:
    return dt.datetime(2024, 3, 5, tzinfo=dt.UTC).timestamp()


def test_day_order_expires_at_first_bar_of_next_utc_day() -> None:
    broker = SimBroker(10_000.0)
    broker.process_bar(Bar(None, "X", _midnight() - 120, 100, 100, 100, 100, 1000))
    order = broker.submit(Order("X", "BUY", 1, "LIMIT", limit=90.0, tif=TimeInForce.DAY))
    assert broker.process_bar(Bar(None, "X", _midnight() - 60, 100, 100, 99, 99, 1000)) == ()
    # the next day's first bar would fill it, but the order is gone first
    notices = broker.process_bar(Bar(None, "X", _midnight(), 85, 86, 84, 85, 1000))
    assert notices == [Notice(order, OrderStatus.EXPIRED, None)]
    assert (order.status, order.reason) == (OrderStatus.EXPIRED, "day order expired")
    assert broker.open_orders() == []


def test_day_order_fills_on_its_own_day() -> None:
    broker = started()
    order = broker.submit(Order("X", "BUY", 1, "LIMIT", limit=99.0, tif="DAY"))
    run(broker, *(bar(i, 100, 100, 99.5, 100) for i in range(1, 5)))
    run(broker, bar(5, 100, 100, 98.0, 99))
    assert order.status is OrderStatus.FILLED


def test_gtc_order_stays_open_across_days() -> None:
    broker = SimBroker(10_000.0)
    broker.process_bar(Bar(None, "X", _midnight() - 60, 100, 100, 100, 100, 1000))
    order = broker.submit(Order("X", "BUY", 1, "LIMIT", limit=90.0))
    for day in range(3):
        broker.process_bar(Bar(None, "X", _midnight() + 86400 * day, 100, 100, 99, 99, 1000))
    assert order.status is OrderStatus.ACCEPTED
    broker.process_bar(Bar(None, "X", _midnight() + 86400 * 3, 100, 100, 89, 99, 1000))
    assert order.status is OrderStatus.FILLED


def test_day_market_order_fills_on_next_day_bar() -> None:
    broker = SimBroker(10_000.0)
    broker.process_bar(Bar(None, "X", _midnight() - 60, 100, 100, 100, 100, 1000))
    order = broker.submit(Order("X", "BUY", 1, tif="DAY"))
    broker.process_bar(Bar(None, "X", _midnight(), 101, 101, 101, 101, 1000))
    assert (order.status, order.avg_fill_price) == (OrderStatus.FILLED, 101)


def test_day_boundary_follows_the_tz_option() -> None:
    # 23:00 UTC on 4 March is 18:00 in New York: the day there ends at 05:00 UTC
    broker = SimBroker(10_000.0, tz="America/New_York")
    broker.process_bar(Bar(None, "X", _midnight() - 3600, 100, 100, 100, 100, 1000))
    order = broker.submit(Order("X", "BUY", 1, "LIMIT", limit=90.0, tif="DAY"))
    broker.process_bar(Bar(None, "X", _midnight() + 4 * 3600, 100, 100, 99, 99, 1000))
    assert order.status is OrderStatus.ACCEPTED
    broker.process_bar(Bar(None, "X", _midnight() + 5 * 3600, 100, 100, 99, 99, 1000))
    assert order.status is OrderStatus.EXPIRED


def test_day_order_submitted_before_any_bar_lives_through_the_first_bars_day() -> None:
    broker = SimBroker(10_000.0)
    order = broker.submit(Order("X", "BUY", 1, "LIMIT", limit=90.0, tif="DAY"))
    broker.process_bar(Bar(None, "X", _midnight() - 60, 100, 100, 99, 99, 1000))
    assert order.status is OrderStatus.ACCEPTED
    broker.process_bar(Bar(None, "X", _midnight(), 100, 100, 99, 99, 1000))
    assert order.status is OrderStatus.EXPIRED


# -- volume limit and partial fills ----------------------------------------------------------


def test_volume_limit_fills_partially_across_bars() -> None:
    broker = started(volume_limit=0.1)
    order = broker.submit(Order("X", "BUY", 250))
    n1 = run(broker, bar(1, 100.0, 101.0, 99.0, 100.0, v=1000))
    assert [(n.status, n.fill.qty) for n in n1] == [(OrderStatus.PARTIALLY_FILLED, 100.0)]
    n2 = run(broker, bar(2, 102.0, 103.0, 101.0, 102.0, v=1000))
    assert [(n.status, n.fill.qty) for n in n2] == [(OrderStatus.PARTIALLY_FILLED, 100.0)]
    n3 = run(broker, bar(3, 104.0, 105.0, 103.0, 104.0, v=1000))
    assert [(n.status, n.fill.qty, n.fill.price) for n in n3] == [(OrderStatus.FILLED, 50.0, 104.0)]
    assert order.filled_qty == 250
    assert order.avg_fill_price == pytest.approx((100 * 100 + 100 * 102 + 50 * 104) / 250)
    assert broker.portfolio.qty("X") == 250


def test_volume_limit_is_shared_by_the_orders_of_a_symbol() -> None:
    broker = started(volume_limit=0.1)
    first = broker.submit(Order("X", "BUY", 80))
    second = broker.submit(Order("X", "BUY", 80))
    run(broker, bar(1, 100.0, 101.0, 99.0, 100.0, v=1000))
    assert (first.filled_qty, second.filled_qty) == (80, 20)
    run(broker, bar(2, 100.0, 101.0, 99.0, 100.0, v=1000))
    assert (first.status, second.status, second.filled_qty) == (
        OrderStatus.FILLED,
        OrderStatus.FILLED,
        80,
    )


def test_volume_limit_rounds_down_to_whole_units() -> None:
    broker = started(volume_limit=0.29)
    order = broker.submit(Order("X", "BUY", 1000))
    run(broker, bar(1, 100.0, 101.0, 99.0, 100.0, v=100))  # 28.999999999999996 -> 29
    run(broker, bar(2, 100.0, 101.0, 99.0, 100.0, v=3))  # 0.87 -> nothing
    assert order.filled_qty == 29


def test_partially_filled_stop_fills_the_rest_at_next_open() -> None:
    broker = started(volume_limit=0.1)
    order = broker.submit(Order("X", "BUY", 150, "STOP", stop=101.0))
    run(broker, bar(1, 100.0, 101.5, 99.5, 101.2, v=1000))
    # the next bar never reaches the stop again, the rest fills at its open
    n = run(broker, bar(2, 100.5, 100.8, 100.0, 100.2, v=1000))
    assert fills(n) == [(T0 + 120, Side.BUY, 50.0, 100.5)]
    assert order.avg_fill_price == pytest.approx((100 * 101.0 + 50 * 100.5) / 150)


def test_quirks_partially_filled_stop_needs_the_stop_price_again() -> None:
    broker = started(volume_limit=0.1, backtrader_quirks=True)
    order = broker.submit(Order("X", "BUY", 150, "STOP", stop=101.0))
    run(broker, bar(1, 100.0, 101.5, 99.5, 101.2, v=1000))
    assert run(broker, bar(2, 100.5, 100.8, 100.0, 100.2, v=1000)) == []
    assert fills(run(broker, bar(3, 100.5, 101.1, 100.0, 100.2, v=1000))) == [
        (T0 + 180, Side.BUY, 50.0, 101.0)
    ]
    assert order.status is OrderStatus.FILLED


def test_close_mode_cancels_what_the_volume_limit_leaves() -> None:
    broker = SimBroker(100_000.0, fill_at="close", volume_limit=0.1)
    broker.process_bar(bar(0, 100.0, 100.5, 99.5, 100.0, v=500))
    order = broker.submit(Order("X", "BUY", 80))
    notices = run(broker, bar(1, 101.0, 102.0, 100.0, 101.5, v=5000))
    assert [(n.status, n.fill and n.fill.qty) for n in notices] == [
        (OrderStatus.PARTIALLY_FILLED, 50.0),
        (OrderStatus.CANCELLED, None),
    ]
    assert (order.filled_qty, order.reason) == (50.0, "unfilled at the close (volume_limit)")


# -- cash checks -----------------------------------------------------------------------------


def test_buy_over_cash_is_rejected_at_submission_with_reason() -> None:
    broker = started(cash=1_000.0)
    order = broker.submit(Order("X", "BUY", 11))  # 11 * close 100 = 1100
    assert order.status is OrderStatus.REJECTED
    assert order.reason == "insufficient cash: BUY 11 X at 100 needs 1100.00, 1000.00 available"
    assert order.id == 1
    assert broker.open_orders() == []


def test_submission_check_values_limit_and_stop_orders_at_their_prices() -> None:
    broker = started(cash=1_000.0)
    assert broker.submit(Order("X", "BUY", 11, "LIMIT", limit=90.0)).status == "ACCEPTED"
    assert broker.submit(Order("X", "BUY", 9, "STOP", stop=112.0)).status == "REJECTED"


def test_orders_submitted_at_one_time_share_the_cash() -> None:
    broker = started(cash=1_000.0)
    assert broker.submit(Order("X", "BUY", 6)).status is OrderStatus.ACCEPTED
    second = broker.submit(Order("X", "BUY", 5))
    assert second.status is OrderStatus.REJECTED
    assert second.reason.endswith("needs 500.00, 400.00 available")
    # at the next bar the batch starts afresh (the first order is still open)
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0))
    assert broker.submit(Order("X", "BUY", 4)).status is OrderStatus.ACCEPTED


def test_sell_then_buy_at_one_time_reuses_the_sale_proceeds() -> None:
    broker = started(cash=1_000.0)
    broker.submit(Order("X", "BUY", 10))
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0))
    broker.process_bar(bar(1, 100.0, 100.0, 100.0, 100.0, sym="Y"))
    assert broker.portfolio.cash == 0.0
    assert broker.submit(Order("X", "SELL", 10)).status is OrderStatus.ACCEPTED
    assert broker.submit(Order("Y", "BUY", 10)).status is OrderStatus.ACCEPTED


def test_market_buy_is_rejected_at_fill_when_the_open_gaps_above_the_cash() -> None:
    broker = started(cash=1_000.0)
    order = broker.submit(Order("X", "BUY", 10))  # 10 * close 100: accepted
    notices = run(broker, bar(1, 100.5, 101.0, 100.0, 100.5))
    assert notices == [Notice(order, OrderStatus.REJECTED, None)]
    assert (
        order.reason
        == "insufficient cash at fill: BUY 10 X at 100.5 needs 1005.00, 1000.00 available"
    )
    assert broker.fills == []


def test_without_check_submit_cash_is_checked_at_fill_only() -> None:
    broker = started(cash=1_000.0, check_submit=False)
    order = broker.submit(Order("X", "BUY", 20))
    assert order.status is OrderStatus.ACCEPTED
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0))
    assert order.status is OrderStatus.REJECTED
    assert order.reason.startswith("insufficient cash at fill:")


def test_commission_counts_in_the_cash_check() -> None:
    broker = started(cash=1_000.0, commission=FixedPerOrder(1.0))
    assert broker.submit(Order("X", "BUY", 10)).reason == (
        "insufficient cash: BUY 10 X at 100 needs 1001.00, 1000.00 available"
    )


# -- shorting --------------------------------------------------------------------------------


def test_sell_beyond_position_is_rejected_when_shorting_is_off() -> None:
    broker = started()
    broker.submit(Order("X", "BUY", 10))
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0))
    order = broker.submit(Order("X", "SELL", 15))
    assert order.status is OrderStatus.REJECTED
    assert order.reason == "would sell short (X position 10, sell 15); allow_short is off"
    assert broker.submit(Order("X", "SELL", 10)).status is OrderStatus.ACCEPTED


def test_shorting_off_is_checked_again_at_fill() -> None:
    broker = started(check_submit=False)
    broker.submit(Order("X", "BUY", 10))
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0))
    order = broker.submit(Order("X", "SELL", 15))
    notices = run(broker, bar(2, 101.0, 101.0, 101.0, 101.0))
    # the part that closes the long fills, the part that would go short not
    assert [(n.status, n.fill and n.fill.qty) for n in notices] == [
        (OrderStatus.PARTIALLY_FILLED, 10),
        (OrderStatus.REJECTED, None),
    ]
    assert order.filled_qty == 10
    assert broker.portfolio.qty("X") == 0


def test_protective_stop_and_take_profit_together_are_both_accepted_without_shorting() -> None:
    broker = started()
    broker.submit(Order("X", "BUY", 10))
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0))
    stop = broker.submit(Order("X", "SELL", 10, type="STOP", stop=95.0))
    target = broker.submit(Order("X", "SELL", 10, type="LIMIT", limit=110.0))
    assert (stop.status, target.status) == (OrderStatus.ACCEPTED, OrderStatus.ACCEPTED)
    # a bar reaching both: the stop (submitted first) closes the position, the
    # take-profit would open a short and is rejected at fill
    run(broker, bar(2, 100.0, 111.0, 94.0, 100.0))
    assert stop.status is OrderStatus.FILLED and stop.avg_fill_price == 95.0
    assert target.status is OrderStatus.REJECTED
    assert broker.portfolio.qty("X") == 0


def test_entry_with_its_take_profit_placed_together_is_accepted_without_shorting() -> None:
    broker = started()
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0))
    entry = broker.submit(Order("X", "BUY", 10))
    exit_ = broker.submit(Order("X", "SELL", 10, type="LIMIT", limit=120.0))
    beyond = broker.submit(Order("X", "SELL", 11, type="LIMIT", limit=130.0))
    assert (entry.status, exit_.status) == (OrderStatus.ACCEPTED, OrderStatus.ACCEPTED)
    assert beyond.status is OrderStatus.REJECTED
    assert beyond.reason == "would sell short (X position 10, sell 11); allow_short is off"


def test_short_sale_adds_proceeds_to_cash_when_shorting_is_on() -> None:
    broker = started(allow_short=True)
    broker.submit(Order("X", "SELL", 10))
    run(broker, bar(1, 100.0, 100.0, 100.0, 98.0))
    assert broker.portfolio.qty("X") == -10
    assert broker.portfolio.cash == 101_000.0
    assert broker.portfolio.equity == 101_000.0 - 980.0


def test_buy_flipping_a_short_to_long_fills_in_one_piece() -> None:
    broker = started(allow_short=True)
    broker.submit(Order("X", "SELL", 10))
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0))
    broker.submit(Order("X", "BUY", 25))
    assert fills(run(broker, bar(2, 99.0, 99.0, 99.0, 99.0))) == [(T0 + 120, Side.BUY, 25, 99.0)]
    assert broker.portfolio.qty("X") == 15


# -- commission models -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (PerShare(0.01), 0.5),
        (PerShare(0.005, minimum=1.0), 1.0),
        (PercentOfValue(0.001), 50 * 101.0 * 0.001),
        (PercentOfValue(0.0001, minimum=2.0), 2.0),
        (FixedPerOrder(4.95), 4.95),
    ],
)
def test_commission_models_charge_the_fill_and_the_cash(model, expected) -> None:
    broker = started(commission=model)
    order = broker.submit(Order("X", "BUY", 50))
    (notice,) = run(broker, bar(1, 101.0, 101.0, 101.0, 101.0))
    assert notice.fill.commission == pytest.approx(expected)
    assert order.commission == notice.fill.commission
    assert broker.portfolio.cash == pytest.approx(100_000.0 - 50 * 101.0 - expected)


def test_minimum_commission_applies_once_per_order_over_partial_fills() -> None:
    broker = started(commission=PerShare(0.01, minimum=1.0), volume_limit=0.1)
    order = broker.submit(Order("X", "BUY", 150))
    run(broker, *(bar(i, 100.0, 100.0, 100.0, 100.0, v=500) for i in (1, 2, 3)))
    assert [f.commission for f in broker.fills] == [1.0, 0.0, pytest.approx(0.5)]
    assert order.commission == pytest.approx(1.5)


def test_fixed_fee_is_paid_on_the_first_partial_fill_only() -> None:
    broker = started(commission=FixedPerOrder(5.0), volume_limit=0.1)
    broker.submit(Order("X", "BUY", 150))
    run(broker, *(bar(i, 100.0, 100.0, 100.0, 100.0, v=1000) for i in (1, 2)))
    assert [f.commission for f in broker.fills] == [5.0, 0.0]


def test_percent_commission_matches_backtrader_float_for_float() -> None:
    # backtrader: abs(size) * commission * price
    assert PercentOfValue(0.001)(37, 101.2345) == 37 * 0.001 * 101.2345


# -- slippage models -------------------------------------------------------------------------


def test_bps_slippage_moves_market_fills_against_the_trader() -> None:
    broker = started(slippage=BpsSlippage(10), allow_short=True)
    broker.submit(Order("X", "BUY", 1))
    broker.submit(Order("Y", "SELL", 1, created_ts=T0))
    run(broker, bar(1, 100.0, 101.0, 99.0, 100.0), bar(1, 50.0, 51.0, 49.0, 50.0, sym="Y"))
    assert [f.price for f in broker.fills] == [100.0 * 1.001, 50.0 * 0.999]


def test_tick_slippage_moves_market_fills_by_ticks() -> None:
    broker = started(slippage=TickSlippage(2, 0.05), allow_short=True)
    broker.submit(Order("X", "SELL", 1))
    run(broker, bar(1, 100.0, 101.0, 99.0, 100.0))
    assert broker.fills[0].price == 99.9


def test_slippage_never_takes_a_fill_outside_the_bar() -> None:
    broker = started(slippage=TickSlippage(1, 1.0))
    broker.submit(Order("X", "BUY", 1))
    run(broker, bar(1, 100.0, 100.4, 99.0, 100.0))
    assert broker.fills[0].price == 100.4


def test_slipped_limit_fill_at_open_never_passes_the_limit() -> None:
    broker = started(slippage=BpsSlippage(50))
    broker.submit(Order("X", "BUY", 1, "LIMIT", limit=99.2))
    run(broker, bar(1, 99.0, 100.0, 98.0, 99.5))
    assert broker.fills[0].price == 99.2  # 99 * 1.005 = 99.495, capped


def test_limit_fill_at_the_limit_price_is_not_slipped() -> None:
    broker = started(slippage=BpsSlippage(50))
    broker.submit(Order("X", "BUY", 1, "LIMIT", limit=99.0))
    run(broker, bar(1, 100.0, 100.0, 98.0, 99.5))
    assert broker.fills[0].price == 99.0


def test_stop_fill_within_the_bar_is_slipped_from_the_stop() -> None:
    broker = started(slippage=TickSlippage(1, 0.1))
    broker.submit(Order("X", "BUY", 1, "STOP", stop=101.0))
    run(broker, bar(1, 100.0, 102.0, 99.0, 101.5))
    assert broker.fills[0].price == 101.1


def test_slipped_limit_sell_stays_inside_the_bar_unless_quirks() -> None:
    # limit far below a bar whose low is 99.8: the slipped open (99.5) is
    # under the low; finchan stops at the low, backtrader at the limit
    for quirks, price in ((False, 99.8), (True, 100.0 - 0.5)):
        broker = started(slippage=TickSlippage(1, 0.5), allow_short=True, backtrader_quirks=quirks)
        broker.submit(Order("X", "SELL", 1, "LIMIT", limit=95.0))
        run(broker, bar(1, 100.0, 100.5, 99.8, 100.2))
        assert broker.fills[0].price == price


def test_slipped_stop_limit_fill_stays_under_the_limit_unless_quirks() -> None:
    for quirks, price in ((False, 101.0), (True, 101.2)):
        broker = started(slippage=TickSlippage(1, 0.2), backtrader_quirks=quirks)
        broker.submit(Order("X", "BUY", 1, "STOP_LIMIT", limit=101.0, stop=101.0))
        run(broker, bar(1, 100.0, 102.0, 99.0, 101.5))
        assert broker.fills[0].price == price


# -- cancel ----------------------------------------------------------------------------------


def test_cancel_removes_an_open_order() -> None:
    broker = started()
    order = broker.submit(Order("X", "BUY", 1, "LIMIT", limit=90.0))
    assert broker.cancel(order.id) is True
    assert (order.status, order.reason) == (OrderStatus.CANCELLED, "cancelled")
    assert broker.open_orders() == []
    assert run(broker, bar(1, 80.0, 80.0, 80.0, 80.0)) == []


def test_cancel_of_a_final_or_unknown_order_returns_false() -> None:
    broker = started()
    order = broker.submit(Order("X", "BUY", 1))
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0))
    assert broker.cancel(order.id) is False
    assert broker.cancel(999) is False
    assert order.status is OrderStatus.FILLED


def test_cancel_keeps_what_a_partially_filled_order_filled() -> None:
    broker = started(volume_limit=0.01)
    order = broker.submit(Order("X", "BUY", 25))
    run(broker, bar(1, 100.0, 100.0, 100.0, 100.0, v=1000))
    assert broker.cancel(order.id) is True
    assert (order.status, order.filled_qty) == (OrderStatus.CANCELLED, 10)
    assert broker.portfolio.qty("X") == 10


# -- validation, ids, notices, records -------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"qty": 0}, "qty must be a positive number, not 0"),
        ({"qty": -5}, "qty must be a positive number, not -5"),
        ({"qty": math.nan}, "qty must be a positive number, not nan"),
        ({"type": "LIMIT"}, "LIMIT order needs a positive limit price, not None"),
        ({"type": "STOP", "limit": 5.0}, "STOP order needs a positive stop price, not None"),
        (
            {"type": "STOP_LIMIT", "stop": 5.0},
            "STOP_LIMIT order needs a positive limit price, not None",
        ),
        ({"type": "LIMIT", "limit": -1.0}, "LIMIT order needs a positive limit price, not -1.0"),
        ({"side": "BYU"}, "side must be BUY or SELL, not 'BYU'"),
        ({"type": "ICEBERG"}, "type must be one of MARKET, LIMIT, STOP, STOP_LIMIT, TRAILING_STOP, TRAILING_STOP_LIMIT, not 'ICEBERG'"),
        ({"tif": "IOC"}, "tif must be GTC or DAY, not 'IOC'"),
        ({"created_ts": "now"}, "created_ts must be POSIX seconds (a number), not 'now'"),
    ],
)
def test_invalid_orders_are_rejected_with_a_reason(kwargs, reason) -> None:
    broker = started()
    fields = {"symbol": "X", "side": "BUY", "qty": 1, **kwargs}
    order = broker.submit(Order(**fields))
    assert (order.status, order.reason) == (OrderStatus.REJECTED, reason)
    assert broker.open_orders() == []


def test_order_strings_are_normalised_to_enums() -> None:
    order = started().submit(Order("X", "SELL", 1, "STOP", stop=90.0, tif="DAY"))
    assert (order.side, order.type, order.tif) == (Side.SELL, OrderType.STOP, TimeInForce.DAY)
    assert order.status is OrderStatus.REJECTED  # flat, shorting off


def test_order_ids_are_sequential_per_broker() -> None:
    first, second = started(), started()
    assert [first.submit(Order("X", "BUY", q)).id for q in (1, 0, 2)] == [1, 2, 3]
    assert second.submit(Order("X", "BUY", 1)).id == 1
    assert [o.id for o in first.orders] == [1, 2, 3]
    assert first.get_order(2).status is OrderStatus.REJECTED


def test_submitting_an_order_twice_raises() -> None:
    broker = started()
    order = broker.submit(Order("X", "BUY", 1))
    with pytest.raises(RunError, match="order #1 was already submitted"):
        broker.submit(order)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fill_at": "open"}, "fill_at must be 'next_open' or 'close', not 'open'"),
        ({"volume_limit": 0}, "volume_limit must be in (0, 1] or None, not 0"),
        ({"volume_limit": 1.5}, "volume_limit must be in (0, 1] or None, not 1.5"),
        ({"commission": 0.001}, "commission must be callable or None, not 0.001"),
        ({"slippage": 5}, "slippage must be callable or None, not 5"),
        ({"tz": "Mars/Olympus"}, "unknown time zone tz='Mars/Olympus'"),
    ],
)
def test_bad_broker_options_raise_config_error(kwargs, message) -> None:
    with pytest.raises(ConfigError) as info:
        SimBroker(**kwargs)
    assert str(info.value) == f"SimBroker: {message}"


def test_process_bar_returns_an_empty_tuple_when_nothing_happens() -> None:
    broker = started()
    assert broker.process_bar(bar(1, 100, 100, 100, 100)) == ()
    broker.submit(Order("X", "BUY", 1, "LIMIT", limit=50.0))
    assert broker.process_bar(bar(2, 100, 100, 100, 100)) == ()


def test_notices_follow_submission_order_within_a_bar() -> None:
    broker = started(allow_short=True)
    a = broker.submit(Order("X", "BUY", 1, "LIMIT", limit=99.0))
    b = broker.submit(Order("X", "SELL", 2))
    c = broker.submit(Order("X", "BUY", 3, "LIMIT", limit=50.0, tif="DAY"))
    notices = run(broker, bar(1, 100.0, 100.0, 98.0, 99.0))
    assert [(n.order.id, n.status, n.fill.price) for n in notices] == [
        (a.id, OrderStatus.FILLED, 99.0),
        (b.id, OrderStatus.FILLED, 100.0),
    ]
    assert broker.open_orders() == [c]


def test_records_convert_to_the_documented_rows() -> None:
    broker = started()
    order = broker.submit(Order("X", "BUY", 2, "LIMIT", limit=99.0))
    run(broker, bar(1, 100.0, 100.0, 98.0, 99.0))
    assert dict(zip(Order.COLUMNS, order.to_row())) == {
        "order_id": 1,
        "created": T0,
        "symbol": "X",
        "side": "BUY",
        "qty": 2,
        "type": "LIMIT",
        "limit": 99.0,
        "stop": None,
        "tif": "GTC",
        "status": "FILLED",
        "filled_qty": 2,
        "avg_price": 99.0,
        "commission": 0.0,
        "reason": "",
    }
    assert broker.fills == [Fill(1, "X", Side.BUY, 2, 99.0, 0.0, T0 + 60)]
    assert broker.fills[0].to_row() == (T0 + 60, "X", "BUY", 2, 99.0, 0.0, 1)
    assert Fill.COLUMNS == ("datetime", "symbol", "side", "qty", "price", "commission", "order_id")


# -- the shared reference ----------------------------------------------------------------------


_MAKE_BARS = Path("/work/shared/data/make_bars.py")


def _make_bars_module():
    spec = importlib.util.spec_from_file_location("make_bars", _MAKE_BARS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not _MAKE_BARS.exists(), reason=f"needs {_MAKE_BARS}")
def test_sma_cross_reproduces_the_shared_reference_fills() -> None:
    # data/README.md: SMA 10/30 cross, market orders of 100 at the next open;
    # four engines agree on these fills, byte for byte
    import numpy as np

    frame = _make_bars_module().make_bars(100_000)
    stamps = (
        frame["datetime"].to_numpy().astype("datetime64[s]").astype("int64").astype(float).tolist()
    )
    close = frame["close"].to_numpy()
    sums = np.cumsum(np.r_[0.0, close])
    fast = np.full(len(close), np.nan)
    slow = np.full(len(close), np.nan)
    fast[9:] = (sums[10:] - sums[:-10]) / 10
    slow[29:] = (sums[30:] - sums[:-30]) / 30
    diff = fast - slow
    sign = np.where(np.abs(diff) <= 1e-9, 0, np.sign(diff)).tolist()
    rows = zip(stamps, *(frame[c].tolist() for c in ("open", "high", "low", "close", "volume")))
    broker = SimBroker(1_000_000.0)
    last = 0
    for i, row in enumerate(rows):
        broker.process_bar(Bar(None, "S", *row))
        s = sign[i]
        if i < 29 or not s:
            continue
        held = broker.portfolio.qty("S")
        if last == -1 and s == 1 and held == 0:
            broker.submit(Order("S", "BUY", 100))
        elif last == 1 and s == -1 and held > 0:
            broker.submit(Order("S", "SELL", 100))
        last = s
    lines = ["datetime,side,price"]
    for f in broker.fills:
        when = dt.datetime.fromtimestamp(f.timestamp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        lines.append(f"{when},{f.side},{f.price:.4f}")
    text = "\n".join(lines) + "\n"
    assert len(broker.fills) == 3872
    assert len(broker.portfolio.trades) == 1936
    assert round(broker.portfolio.equity, 2) == 998_438.97
    assert hashlib.md5(text.encode()).hexdigest() == "521403d73729284c35b6b7d91e642d0c"


def test_numpy_quantities_and_prices_are_accepted() -> None:
    import numpy as np

    broker = started()
    order = broker.submit(Order("X", "BUY", np.int64(3), "LIMIT", limit=np.float64(99.5)))
    assert order.status is OrderStatus.ACCEPTED
    run(broker, bar(1, 99.0, 100.0, 98.0, 99.0))
    assert (order.filled_qty, broker.portfolio.qty("X")) == (3, 3)
