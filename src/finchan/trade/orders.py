"""Orders and fills of the trading kit.

An :class:`Order` is built by a strategy and handed to a broker
(:class:`~finchan.trade.broker.SimBroker`), which numbers it, validates it and
updates it in place as it fills; a :class:`Fill` records one execution.

Order states::

    SUBMITTED --> ACCEPTED --> PARTIALLY_FILLED --> FILLED
         |            |               |
         v            +---------------+--> CANCELLED | EXPIRED | REJECTED
      REJECTED

``SUBMITTED`` is the state of an order not yet given to a broker; a broker
answers ``submit`` with ``ACCEPTED`` or ``REJECTED`` (``reason`` says why).
``FILLED``, ``CANCELLED``, ``EXPIRED`` and ``REJECTED`` are final.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

__all__ = [
    "FINAL_STATUSES",
    "Fill",
    "Order",
    "OrderStatus",
    "OrderType",
    "Side",
    "TimeInForce",
]


class Side(StrEnum):
    """Direction of an order or a fill."""

    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    """How an order is matched (see ``docs/broker.md`` for the exact rules)."""

    MARKET = "MARKET"
    LIMIT = "LIMIT"
    STOP = "STOP"
    STOP_LIMIT = "STOP_LIMIT"
    #: a stop that follows the price (backtrader's ``StopTrail``)
    TRAILING_STOP = "TRAILING_STOP"
    #: a stop-limit whose stop and limit follow the price (``StopTrailLimit``)
    TRAILING_STOP_LIMIT = "TRAILING_STOP_LIMIT"


class TimeInForce(StrEnum):
    """How long an unfilled order stays in the book."""

    #: good till cancelled
    GTC = "GTC"
    #: until the end of the calendar day of the order's ``created_ts``
    DAY = "DAY"


class OrderStatus(StrEnum):
    """Life-cycle state of an :class:`Order`."""

    SUBMITTED = "SUBMITTED"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class Order:
    """An order to buy or sell ``qty`` units of ``symbol``.

    Parameters
    ----------
    symbol:
        the instrument.
    side:
        :class:`Side` (or ``"BUY"`` / ``"SELL"``).
    qty:
        quantity in units, positive.
    type:
        :class:`OrderType` (or its string value); ``MARKET`` by default.
    limit:
        limit price, required by ``LIMIT`` and ``STOP_LIMIT``.
    stop:
        stop (trigger) price, required by ``STOP`` and ``STOP_LIMIT``.
    tif:
        :class:`TimeInForce`; ``GTC`` by default.
    created_ts:
        POSIX time of the decision. The order only meets bars that open
        strictly later. ``None``: the broker uses the time of the last bar it
        processed.
    trail_amount, trail_percent:
        distance of a trailing order's stop from the price, in price units or
        as a fraction (``0.02`` is 2 %); exactly one, for ``TRAILING_STOP``
        and ``TRAILING_STOP_LIMIT`` only. The broker sets ``stop`` (and moves
        ``stop`` and ``limit``) as the price goes (see docs/broker.md).

    Attributes set by the broker: ``id`` (sequential per broker, from 1; 0
    before submission), ``status``, ``filled_qty``, ``avg_fill_price``,
    ``commission`` (total paid), ``reason`` (why it was rejected, cancelled or
    expired; ``""`` otherwise).

    Example
    -------
    >>> from finchan.trade.orders import Order
    >>> Order("AAPL", "BUY", 10, type="LIMIT", limit=150.0)
    <Order #0 BUY 10 AAPL LIMIT limit=150.0 GTC SUBMITTED filled=0>
    """

    __slots__ = (
        "avg_fill_price",
        "commission",
        "created_ts",
        "filled_qty",
        "id",
        "limit",
        "qty",
        "reason",
        "side",
        "status",
        "stop",
        "symbol",
        "tif",
        "trail_amount",
        "trail_percent",
        "type",
    )

    #: column names of :meth:`to_row`
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "order_id",
        "created",
        "symbol",
        "side",
        "qty",
        "type",
        "limit",
        "stop",
        "tif",
        "status",
        "filled_qty",
        "avg_price",
        "commission",
        "reason",
    )

    def __init__(
        self,
        symbol: str,
        side: Side | str,
        qty: float,
        type: OrderType | str = OrderType.MARKET,
        limit: float | None = None,
        stop: float | None = None,
        tif: TimeInForce | str = TimeInForce.GTC,
        created_ts: float | None = None,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
    ) -> None:
        self.id = 0
        self.symbol = symbol
        # strings are normalised (and checked) by the broker, which rejects
        # bad values with a reason instead of raising in strategy code
        self.side = side
        self.qty = qty
        self.type = type
        self.limit = limit
        self.stop = stop
        self.tif = tif
        self.created_ts = created_ts
        self.trail_amount = trail_amount
        self.trail_percent = trail_percent
        self.status = OrderStatus.SUBMITTED
        self.filled_qty = 0.0
        self.avg_fill_price = 0.0
        self.commission = 0.0
        self.reason = ""
        # broker's working state

    @property
    def remaining_qty(self) -> float:
        """Quantity still to fill (0 once the order is final)."""
        if self.status in FINAL_STATUSES:
            return 0.0
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        """True while the order can still fill (``ACCEPTED`` or ``PARTIALLY_FILLED``)."""
        return self.status is OrderStatus.ACCEPTED or self.status is OrderStatus.PARTIALLY_FILLED

    def to_row(self) -> tuple:
        """The order as a tuple in the order of :attr:`COLUMNS` (``created`` is POSIX seconds)."""
        return (
            self.id,
            self.created_ts,
            self.symbol,
            str(self.side),
            self.qty,
            str(self.type),
            self.limit,
            self.stop,
            str(self.tif),
            str(self.status),
            self.filled_qty,
            self.avg_fill_price,
            self.commission,
            self.reason,
        )

    def __repr__(self) -> str:
        prices = ""
        if self.limit is not None:
            prices += f" limit={self.limit}"
        if self.stop is not None:
            prices += f" stop={self.stop}"
        if self.trail_amount is not None:
            prices += f" trail_amount={self.trail_amount}"
        if self.trail_percent is not None:
            prices += f" trail_percent={self.trail_percent}"
        reason = f" ({self.reason})" if self.reason else ""
        return (
            f"<Order #{self.id} {self.side} {self.qty} {self.symbol} {self.type}{prices} "
            f"{self.tif} {self.status} filled={self.filled_qty:g}{reason}>"
        )


#: the states an order never leaves (filled, cancelled, rejected, expired)
FINAL_STATUSES = frozenset(
    (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED)
)


@dataclass(slots=True)
class Fill:
    """One execution of an order.

    ``timestamp`` is POSIX seconds: the open time of the bar the fill happened
    in (with ``fill_at="close"``, the bar whose close was used).
    """

    order_id: int
    symbol: str
    side: Side
    qty: float
    price: float
    commission: float
    timestamp: float

    #: column names of :meth:`to_row`
    COLUMNS: ClassVar[tuple[str, ...]] = (
        "datetime",
        "symbol",
        "side",
        "qty",
        "price",
        "commission",
        "order_id",
    )

    def to_row(self) -> tuple:
        """The fill as a tuple in the order of :attr:`COLUMNS` (``datetime`` is POSIX seconds)."""
        return (
            self.timestamp,
            self.symbol,
            str(self.side),
            self.qty,
            self.price,
            self.commission,
            self.order_id,
        )
