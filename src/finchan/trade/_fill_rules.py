"""The price rules of the simulated broker: whether and at which price an order fills on a bar.

These are backtrader 1.9.78's BackBroker rules (``docs/broker.md`` states
them one by one, with the places finchan departs from them); they live
apart from the book keeping of :mod:`finchan.trade.broker` so that the
rules can be read, and checked against backtrader, in one place.

:class:`OrderWork` is what the broker tracks about an accepted order
besides the order itself (its expiry, whether its stop triggered, the bar
whose close it trades, ...): the broker's working state, kept by the
broker, not written into the user's :class:`~finchan.trade.orders.Order`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from finchan.trade.orders import Order, OrderType, Side

if TYPE_CHECKING:
    from finchan.trade.bar import Bar

__all__ = ["FillRules", "OrderWork"]

_BUY = Side.BUY
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_TRAIL = OrderType.TRAILING_STOP
_TRAIL_LIMIT = OrderType.TRAILING_STOP_LIMIT


class OrderWork:
    """The broker's working state of one accepted order."""

    __slots__ = ("expires", "filled_value", "limit_offset", "ref_bar", "triggered")

    def __init__(self) -> None:
        #: a DAY order's end (POSIX seconds); -inf: set from the first bar it meets
        self.expires = math.inf
        #: sum of qty * price of its fills: the average price and partial-fill commissions
        self.filled_value = 0.0
        #: a stop or stop-limit whose stop was reached (it trades as market / limit)
        self.triggered = False
        #: the Bar whose close a ``fill_at="close"`` market order trades
        self.ref_bar: Bar | None = None
        #: trailing stop-limit: stop - limit, kept as both move
        self.limit_offset = 0.0

    def __repr__(self) -> str:
        return (
            f"OrderWork(expires={self.expires!r}, filled_value={self.filled_value!r}, "
            f"triggered={self.triggered!r})"
        )


class FillRules:
    """Fill prices of orders on bars, for one broker configuration.

    Parameters
    ----------
    slip:
        the slippage model ``(price, side) -> price`` or None.
    quirks:
        reproduce backtrader's questionable corners (``backtrader_quirks``).
    close_mode:
        market orders trade the close of the bar they were decided on
        (``fill_at="close"``).
    """

    __slots__ = ("close_mode", "quirks", "slip")

    def __init__(
        self, slip: Callable[[float, Side], float] | None, quirks: bool, close_mode: bool
    ) -> None:
        self.slip = slip
        self.quirks = quirks
        self.close_mode = close_mode

    def trail(self, order: Order, work: OrderWork, price: float) -> None:
        """Move a trailing order's stop (and limit) after a bar that did not fill it."""
        # the broker checked at submission: one of the two is set, and the stop
        pct = order.trail_percent
        distance = cast(float, order.trail_amount) if pct is None else price * pct
        current = cast(float, order.stop)
        if order.side is _BUY:
            stop = price + distance
            if stop >= current:
                return
        else:
            stop = price - distance
            if stop <= current:
                return
        order.stop = stop
        if order.type is _TRAIL_LIMIT:
            order.limit = stop - work.limit_offset

    def price(self, order: Order, work: OrderWork, bar: Bar) -> float | None:
        """Fill price of ``order`` on ``bar``, or None; marks stop orders triggered."""
        otype = order.type
        buy = order.side is _BUY
        if otype is _MARKET:
            if self.close_mode:
                ref = cast("Bar", work.ref_bar)  # set at submission in close mode
                cap_bar = bar if self.quirks else ref
                return self.slipped(ref.close, buy, cap_bar.high, cap_bar.low)
            return self.slipped(bar.open, buy, bar.high, bar.low)
        if otype is _LIMIT:
            return self.limit_price(cast(float, order.limit), buy, bar)
        if otype is _STOP:
            if work.triggered:
                # finchan: a stop that triggered is a market order for the rest
                return self.slipped(bar.open, buy, bar.high, bar.low)
            return self.stop_price(order, work, buy, bar)
        if otype is _TRAIL:
            if work.triggered:
                return self.slipped(bar.open, buy, bar.high, bar.low)
            price = self.stop_price(order, work, buy, bar)
            if price is None:
                self.trail(order, work, bar.close)
            return price
        if otype is _TRAIL_LIMIT and not work.triggered:
            price = self.stop_limit_price(order, work, buy, bar)
            if price is None:
                # also when it triggered without filling, as backtrader
                self.trail(order, work, bar.close)
            return price
        if work.triggered:
            return self.limit_price(cast(float, order.limit), buy, bar)
        return self.stop_limit_price(order, work, buy, bar)

    def slipped(
        self, price: float, buy: bool, high: float, low: float, limit: float | None = None
    ) -> float:
        # slippage moves the price against the trader, but never outside the
        # bar's range (backtrader's slip_match=True, slip_out=False) nor past
        # a limit price (slip_limit=True)
        slip = self.slip
        if slip is None:
            return price
        if buy:
            p = slip(price, _BUY)
            cap = high if limit is None or limit > high else limit
            return p if p <= cap else cap
        p = slip(price, Side.SELL)
        floor = low if limit is None or limit < low else limit
        return p if p >= floor else floor

    def limit_price(self, limit: float, buy: bool, bar: Bar) -> float | None:
        popen = bar.open
        if buy:
            if limit >= popen:
                return self.slipped(popen, True, bar.high, bar.low, limit)
            if limit >= bar.low:
                return limit
            return None
        if limit <= popen:
            if self.quirks:
                # backtrader caps a slipped limit sell at the limit only,
                # so the price may fall below the bar's low
                return self.slipped(popen, False, bar.high, limit, limit)
            return self.slipped(popen, False, bar.high, bar.low, limit)
        if limit <= bar.high:
            return limit
        return None

    def stop_price(self, order: Order, work: OrderWork, buy: bool, bar: Bar) -> float | None:
        stop = cast(float, order.stop)  # set: the broker checked at submission
        popen = bar.open
        if buy:
            if popen >= stop:
                price = popen  # gapped through: the open
            elif bar.high >= stop:
                price = stop
            else:
                return None
        elif popen <= stop:
            price = popen
        elif bar.low <= stop:
            price = stop
        else:
            return None
        if not self.quirks:
            work.triggered = True
        return self.slipped(price, buy, bar.high, bar.low)

    def stop_limit_price(self, order: Order, work: OrderWork, buy: bool, bar: Bar) -> float | None:
        # backtrader's _try_exec_stoplimit: a gap through the stop turns the
        # order into a limit order at once; a touch within the bar fills only
        # when the bar's shape says the limit was reachable after the touch
        stop = cast(float, order.stop)  # both set: the broker checked at submission
        limit = cast(float, order.limit)
        popen = bar.open
        pclose = bar.close
        cap = None if self.quirks else limit
        if buy:
            if popen >= stop:
                work.triggered = True
                return self.limit_price(limit, True, bar)
            if bar.high < stop:
                return None
            work.triggered = True
            if limit >= stop:
                return self.slipped(stop, True, bar.high, bar.low, cap)
            if popen > pclose and limit >= pclose:
                # down bar: high (the trigger) came before the close
                return limit
            return None
        if popen <= stop:
            work.triggered = True
            return self.limit_price(limit, False, bar)
        if bar.low > stop:
            return None
        work.triggered = True
        if limit <= stop:
            return self.slipped(stop, False, bar.high, bar.low, cap)
        if popen <= pclose and limit <= pclose:
            return limit
        return None
