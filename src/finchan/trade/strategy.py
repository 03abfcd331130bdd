"""The strategy API: one class that runs unchanged in backtest and live.

A strategy subclasses :class:`Strategy`, declares its parameters with their
defaults in ``params`` and implements the hooks it needs::

    class SmaCross(Strategy):
        params = {"fast": 10, "slow": 30, "qty": 100}

        def on_start(self):
            self.fast = SMA(self.params.fast)
            self.slow = SMA(self.params.slow)

        def on_bar(self, bar):
            ...
            self.buy(bar.symbol, self.params.qty)

Hooks, all optional: ``on_start()`` (at ``SYSTEM_STARTED``), ``on_bar(bar)``
(every bar of every symbol, after the broker matched its orders against it),
``on_order(order)`` (every state change: accepted, rejected, partially filled,
filled, cancelled, expired), ``on_fill(fill)``, ``on_stop()`` (at
``SYSTEM_EXITING``). For each notice of a bar, ``on_order`` comes before
``on_fill``; all notices of a bar come before its ``on_bar``.

Orders: :meth:`Strategy.buy`, :meth:`Strategy.sell` (market, or limit/stop/
stop-limit from ``limit=``/``stop=``), :meth:`Strategy.order_target`,
:meth:`Strategy.order_target_percent`, :meth:`Strategy.cancel`. An order is
decided at ``now`` and meets only later bars.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from finchan.errors import ConfigError
from finchan.trade.orders import Order, OrderStatus, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.trade.bar import Bar
    from finchan.trade.broker import SimBroker
    from finchan.trade.orders import Fill

__all__ = ["Params", "Strategy"]


class Params:
    """A strategy's parameters: ``params.fast`` and ``params["fast"]``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return f"Params({inner})"


def _coerce(owner: str, name: str, default: Any, value: Any) -> Any:
    """Check an override against the type of its default (ints stay ints)."""
    if default is None or value is None:
        return value
    kind = type(default)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, kind):
        return value
    raise ConfigError(
        f"{owner}: parameter {name!r} must be {kind.__name__} like its default "
        f"{default!r}, got {value!r}"
    )


class _ParamsField:
    """``params`` of a strategy class: the defaults on the class, the run's values on an instance.

    ``SmaCross.params`` is the dict the class declares; ``self.params`` is the
    :class:`Params` that :meth:`Strategy.bind` gave (the defaults before
    that). One attribute, two views, and no instance attribute hiding the
    class's declaration.
    """

    __slots__ = ("defaults",)

    def __init__(self, defaults: Mapping[str, Any]) -> None:
        self.defaults = dict(defaults)

    def __get__(self, instance: Strategy | None, owner: type | None = None) -> Any:
        if instance is None:
            return self.defaults
        bound = instance.__dict__.get("_bound_params")
        return bound if bound is not None else Params(self.defaults)


class Strategy:
    """Base class of strategies (see the module docstring)."""

    if TYPE_CHECKING:
        # the declared defaults (a dict) on the class, the run's Params on an
        # instance: see _ParamsField; Any so both spellings type-check
        params: ClassVar[Any]
    else:
        params = _ParamsField({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = cls.__dict__.get("params")
        if isinstance(declared, Mapping):
            # the class body's plain dict becomes the two-view attribute
            cls.params = _ParamsField(declared)

    # set by bind()
    env: Env
    broker: SimBroker
    log: logging.Logger

    # -- construction --------------------------------------------------------------
    @classmethod
    def resolve_params(cls, overrides: Mapping[str, Any] | None = None) -> Params:
        """Defaults merged with ``overrides``; unknown names or wrong types raise ConfigError."""
        defaults = dict(cls.params)
        values = dict(defaults)
        for name, value in (overrides or {}).items():
            if name not in defaults:
                known = ", ".join(defaults) or "none"
                raise ConfigError(f"{cls.__name__}: unknown parameter {name!r} (known: {known})")
            values[name] = _coerce(cls.__name__, name, defaults[name], value)
        return Params(values)

    def bind(self, env: Env, broker: SimBroker, params: Params) -> None:
        """Attach the strategy to a run (done by the strategy extension)."""
        self.env = env
        self.broker = broker
        self._bound_params = params
        self.log = logging.getLogger(f"strategy.{type(self).__name__}")
        self._last_close = broker._last_bars  # symbol -> last bar seen by the broker

    # -- hooks -------------------------------------------------------------------------
    def on_start(self) -> None:
        """Called once at ``SYSTEM_STARTED``."""

    def on_bar(self, bar: Bar) -> None:
        """Called for every bar, after the broker matched open orders against it."""

    def on_order(self, order: Order) -> None:
        """Called at every state change of one of this strategy's orders."""

    def on_fill(self, fill: Fill) -> None:
        """Called for every fill (partial or complete)."""

    def on_stop(self) -> None:
        """Called once at ``SYSTEM_EXITING``."""

    # -- state ---------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The run's current time (simulated in backtest)."""
        return self.env.now

    @property
    def cash(self) -> float:
        return self.broker.portfolio.cash

    @property
    def equity(self) -> float:
        """Cash plus positions at their last prices."""
        return self.broker.portfolio.equity

    def position(self, symbol: str) -> float:
        """Signed quantity held in ``symbol`` (0.0 when flat)."""
        return self.broker.portfolio.qty(symbol)

    # -- orders ---------------------------------------------------------------------------
    def _submit(
        self,
        side: Side,
        symbol: str,
        qty: float,
        limit: float | None,
        stop: float | None,
        tif: str | TimeInForce,
    ) -> Order:
        if limit is None:
            kind = OrderType.MARKET if stop is None else OrderType.STOP
        else:
            kind = OrderType.LIMIT if stop is None else OrderType.STOP_LIMIT
        order = Order(
            symbol, side, qty, kind, limit, stop, TimeInForce(tif), created_ts=self.env.now_ts
        )
        self.broker.submit(order)
        self.on_order(order)
        return order

    def buy(
        self,
        symbol: str,
        qty: float,
        limit: float | None = None,
        stop: float | None = None,
        tif: str = "GTC",
    ) -> Order:
        """Buy ``qty``: market, or limit (``limit=``), stop (``stop=``), stop-limit (both)."""
        return self._submit(Side.BUY, symbol, qty, limit, stop, tif)

    def sell(
        self,
        symbol: str,
        qty: float,
        limit: float | None = None,
        stop: float | None = None,
        tif: str = "GTC",
    ) -> Order:
        """Sell ``qty``: market, or limit, stop, stop-limit like :meth:`buy`."""
        return self._submit(Side.SELL, symbol, qty, limit, stop, tif)

    def order_target(self, symbol: str, qty: float) -> Order | None:
        """Market order bringing the position to ``qty`` (signed); None if already there."""
        delta = qty - self.position(symbol)
        if delta > 0:
            return self.buy(symbol, delta)
        if delta < 0:
            return self.sell(symbol, -delta)
        return None

    def order_target_percent(self, symbol: str, pct: float) -> Order | None:
        """Market order bringing the position to ``pct`` of equity (0.5 is 50 %).

        Sized at the symbol's last close, rounded towards zero to whole units.
        """
        bar = self._last_close.get(symbol)
        if bar is None:
            raise ConfigError(f"order_target_percent({symbol!r}): no price seen for {symbol!r} yet")
        target = math.trunc(self.equity * pct / bar.close)
        return self.order_target(symbol, float(target))

    def cancel(self, order: Order) -> bool:
        """Cancel an open order; False if it was no longer open."""
        cancelled = self.broker.cancel(order.id)
        if cancelled:
            self.on_order(order)
        return cancelled

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.broker.open_orders(symbol)

    @staticmethod
    def is_final(order: Order) -> bool:
        """True once an order can change no more (filled, cancelled, rejected, expired)."""
        return order.status in (
            OrderStatus.FILLED,
            OrderStatus.CANCELLED,
            OrderStatus.REJECTED,
            OrderStatus.EXPIRED,
        )
