"""Commission and slippage models of the simulated broker.

A commission model is a callable ``model(qty, price) -> float``: the
commission of an order of ``qty`` filled at ``price`` in one piece (the
broker charges a later partial fill what the whole filled quantity costs
minus what was paid, so minimums and fixed fees apply once per order). A
slippage model is a callable ``model(price, side) -> float``: the worse
price. Any callable with these signatures works; these are the ones the
``finchan.exts.sim_broker`` options build (docs/broker.md).
"""

from __future__ import annotations

from finchan.trade.orders import Side

__all__ = ["BpsSlippage", "FixedPerOrder", "PerShare", "PercentOfValue", "TickSlippage"]

_BUY = Side.BUY


# -- commission models ----------------------------------------------------------------------


class PerShare:
    """Commission per unit traded, with an optional minimum per order.

    Example
    -------
    >>> PerShare(0.005, minimum=1.0)(100, 50.0), PerShare(0.005, minimum=1.0)(1000, 50.0)
    (1.0, 5.0)
    """

    __slots__ = ("minimum", "rate")

    def __init__(self, rate: float, minimum: float = 0.0) -> None:
        self.rate = rate
        self.minimum = minimum

    def __call__(self, qty: float, price: float) -> float:
        comm = qty * self.rate
        return comm if comm >= self.minimum else self.minimum

    def __repr__(self) -> str:
        return f"PerShare({self.rate!r}, minimum={self.minimum!r})"


class PercentOfValue:
    """Commission as a fraction of the traded value (``0.001`` is 0.1 %), optional minimum.

    ``PercentOfValue(r)`` charges ``qty * price * r``, like backtrader's
    ``broker.setcommission(commission=r)``.

    Example
    -------
    >>> PercentOfValue(0.001)(100, 50.0)
    5.0
    """

    __slots__ = ("minimum", "rate")

    def __init__(self, rate: float, minimum: float = 0.0) -> None:
        self.rate = rate
        self.minimum = minimum

    def __call__(self, qty: float, price: float) -> float:
        # backtrader's operand order, so that both give the same float
        comm = qty * self.rate * price
        return comm if comm >= self.minimum else self.minimum

    def __repr__(self) -> str:
        return f"PercentOfValue({self.rate!r}, minimum={self.minimum!r})"


class FixedPerOrder:
    """A fixed fee per order, whatever its size (paid once, on its first fill).

    Example
    -------
    >>> FixedPerOrder(4.95)(100, 50.0)
    4.95
    """

    __slots__ = ("amount",)

    def __init__(self, amount: float) -> None:
        self.amount = amount

    def __call__(self, qty: float, price: float) -> float:
        return self.amount

    def __repr__(self) -> str:
        return f"FixedPerOrder({self.amount!r})"


# -- slippage models ------------------------------------------------------------------------


class BpsSlippage:
    """Slippage of ``bps`` basis points of the price, against the trader.

    ``BpsSlippage(10)`` is backtrader's ``set_slippage_perc(0.001)``.

    Example
    -------
    >>> BpsSlippage(10)(100.0, "BUY"), BpsSlippage(10)(100.0, "SELL")
    (100.1, 99.9)
    """

    __slots__ = ("_frac", "bps")

    def __init__(self, bps: float) -> None:
        self.bps = bps
        self._frac = bps / 10_000.0

    def __call__(self, price: float, side: Side) -> float:
        if side == _BUY:
            return price * (1.0 + self._frac)
        return price * (1.0 - self._frac)

    def __repr__(self) -> str:
        return f"BpsSlippage({self.bps!r})"


class TickSlippage:
    """Slippage of ``ticks * tick_size`` price units, against the trader.

    ``TickSlippage(2, 0.01)`` is backtrader's ``set_slippage_fixed(0.02)``.

    Example
    -------
    >>> TickSlippage(2, 0.01)(100.0, "BUY"), TickSlippage(2, 0.01)(100.0, "SELL")
    (100.02, 99.98)
    """

    __slots__ = ("_amount", "tick_size", "ticks")

    def __init__(self, ticks: float = 1, tick_size: float = 0.01) -> None:
        self.ticks = ticks
        self.tick_size = tick_size
        self._amount = ticks * tick_size

    def __call__(self, price: float, side: Side) -> float:
        if side == _BUY:
            return price + self._amount
        return price - self._amount

    def __repr__(self) -> str:
        return f"TickSlippage({self.ticks!r}, {self.tick_size!r})"
