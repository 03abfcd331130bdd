"""The simulated broker's checks of an order at submission, and of its lot sizes.

Each check returns the reason an order is REJECTED (a sentence naming the
field and the bad value) or None; :class:`~finchan.trade.broker.SimBroker`
sets it as the order's ``reason``. The cash and shorting checks of orders
decided at one time need the broker's running totals and stay in the broker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Any

from finchan.errors import ConfigError
from finchan.trade._fill_rules import OrderWork
from finchan.trade.orders import Order, OrderType, Side, TimeInForce

__all__ = ["QTY_EPS", "is_price", "parse_lots", "validate"]

_INF = math.inf
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT
_TRAIL = OrderType.TRAILING_STOP
_TRAIL_LIMIT = OrderType.TRAILING_STOP_LIMIT
#: a quantity this close to another is equal to it (fractional units)
QTY_EPS = 1e-9


def validate(
    order: Order,
    work: OrderWork,
    lots: Mapping[str, tuple[float, float]],
    last_bars: Mapping[str, Any],
    close_mode: bool,
) -> str | None:
    """Why ``order`` cannot be accepted, or None; normalises its enums and sets ``work``.

        ``lots``: the broker's ``(size, minimum)`` per symbol; ``last_bars``: the
    last bar of each symbol (trailing orders and ``fill_at="close"`` market
    orders start from its close); ``close_mode``: ``fill_at="close"``.
    """
    try:
        order.side = Side(order.side)
    except ValueError:
        return f"side must be BUY or SELL, not {order.side!r}"
    try:
        order.type = OrderType(order.type)
    except ValueError:
        return f"type must be one of {', '.join(OrderType)}, not {order.type!r}"
    try:
        order.tif = TimeInForce(order.tif)
    except ValueError:
        return f"tif must be GTC or DAY, not {order.tif!r}"
    if not isinstance(order.created_ts, Real):
        return f"created_ts must be POSIX seconds (a number), not {order.created_ts!r}"
    qty = order.qty
    if not isinstance(qty, Real) or isinstance(qty, bool) or not 0 < qty < _INF:
        return f"qty must be a positive number, not {qty!r}"
    lot = lots.get(order.symbol)
    if lot is not None:
        size, minimum = lot
        if qty < minimum - QTY_EPS:
            return f"qty {qty:g} is below the minimum {minimum:g} of {order.symbol}"
        steps = qty / size
        if abs(steps - round(steps)) > 1e-6:
            return f"qty {qty:g} is not a multiple of the lot size {size:g} of {order.symbol}"
    otype = order.type
    if otype is _TRAIL or otype is _TRAIL_LIMIT:
        return _start_trail(order, work, last_bars)
    if order.trail_amount is not None or order.trail_percent is not None:
        return f"trail_amount and trail_percent need a trailing order type, not {otype}"
    if otype in (_LIMIT, _STOP_LIMIT) and not is_price(order.limit):
        return f"{otype} order needs a positive limit price, not {order.limit!r}"
    if otype in (_STOP, _STOP_LIMIT) and not is_price(order.stop):
        return f"{otype} order needs a positive stop price, not {order.stop!r}"
    if otype is _MARKET and close_mode:
        ref = last_bars.get(order.symbol)
        if ref is None:
            return f"fill_at='close' needs a bar of {order.symbol} before the order"
        work.ref_bar = ref
    return None


def _start_trail(order: Order, work: OrderWork, last_bars: Mapping[str, Any]) -> str | None:
    # backtrader's StopTrail/StopTrailLimit: the stop starts at the last
    # close (of the bar the order is decided on) minus the distance for a
    # sell, plus it for a buy; the limit keeps its distance to the stop
    otype = order.type
    amount, pct = order.trail_amount, order.trail_percent
    if (amount is None) == (pct is None):
        return f"{otype} order needs exactly one of trail_amount, trail_percent"
    if amount is not None and not is_price(amount):
        return f"trail_amount must be a positive number, not {amount!r}"
    if pct is not None and not (is_price(pct) and pct < 1.0):
        return f"trail_percent must be a fraction in (0, 1), not {pct!r}"
    if order.stop is not None:
        return f"{otype} order sets its own stop; stop must be None, not {order.stop!r}"
    if otype is _TRAIL_LIMIT:
        if not is_price(order.limit):
            return f"{otype} order needs a positive limit price, not {order.limit!r}"
    elif order.limit is not None:
        return f"{otype} order takes no limit price (TRAILING_STOP_LIMIT does)"
    ref = last_bars.get(order.symbol)
    if ref is None:
        return f"{otype} order needs a bar of {order.symbol} before it (it trails the close)"
    price = ref.close
    distance = amount if pct is None else price * pct
    stop = price + distance if order.side is _BUY else price - distance
    if not is_price(stop):
        return f"{otype} order: the trail puts the stop at {stop:g}, not a positive price"
    order.stop = stop
    if otype is _TRAIL_LIMIT:
        work.limit_offset = stop - order.limit
    return None


def parse_lots(lots: Mapping[str, Any] | None) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for symbol, spec in (lots or {}).items():
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - {"size", "minimum"})
            if unknown:
                keys = ", ".join(unknown)
                raise ConfigError(f"SimBroker: lots[{symbol!r}]: unknown key(s) {keys}")
            size, minimum = spec.get("size", 1.0), spec.get("minimum", 0.0)
        else:
            try:
                size, minimum = spec
            except (TypeError, ValueError):
                raise ConfigError(
                    f"SimBroker: lots[{symbol!r}] must be (size, minimum) or a mapping, "
                    f"got {spec!r}"
                ) from None
        if not is_price(size) or not (isinstance(minimum, int | float) and 0.0 <= minimum < _INF):
            raise ConfigError(
                f"SimBroker: lots[{symbol!r}]: size must be > 0 and minimum >= 0, got "
                f"size={size!r}, minimum={minimum!r}"
            )
        out[str(symbol)] = (float(size), float(minimum))
    return out


def is_price(value: object) -> bool:
    # numbers.Real also admits numpy scalars, which strategies often compute
    return isinstance(value, Real) and not isinstance(value, bool) and 0.0 < float(value) < _INF
