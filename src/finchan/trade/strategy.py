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
(every bar of every symbol, after the broker matched its orders against it;
also the bars of the higher ``timeframes`` the class lists, each after the
base bar that completes it),
``on_order(order)`` (every state change: accepted, rejected, partially filled,
filled, cancelled, expired), ``on_fill(fill)``, ``on_stop()`` (at
``SYSTEM_EXITING``). For each notice of a bar, ``on_order`` comes before
``on_fill``; all notices of a bar come before its ``on_bar``.

History: :meth:`Strategy.history` (the last ``n`` values of a field as a
numpy view) and :meth:`Strategy.bars`, for strategies that set
``history_bars`` (or call :meth:`Strategy.keep_history`); a strategy that
does not pays nothing for them. ``timeframe="1D"`` reads the resampled bars
of a timeframe listed in ``timeframes``.

Orders: :meth:`Strategy.buy`, :meth:`Strategy.sell` (market, or limit/stop/
stop-limit from ``limit=``/``stop=``), :meth:`Strategy.order_target`,
:meth:`Strategy.order_target_percent`, :meth:`Strategy.cancel`. An order is
decided at ``now`` and meets only later bars. Linked orders:
``buy``/``sell(..., oco=other)`` (one-cancels-others) and
:meth:`Strategy.buy_bracket`/:meth:`Strategy.sell_bracket` (an entry whose
stop and take-profit exits go live once it is filled; docs/broker.md).

Size: :class:`Strategy` is the user's whole API (hooks, orders and their
sizing helpers, history, plots, state), documented method by method; its
helpers (:class:`Params`, :class:`StrategyState`) are small. Splitting the
class across mixins would make users read several files to learn one API.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from finchan.errors import ConfigError, RunError
from finchan.trade.orders import FINAL_STATUSES, Order, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    import numpy as np

    from finchan.env import Env
    from finchan.trade._plots import PlotSeries
    from finchan.trade.bar import Bar
    from finchan.trade.broker import SimBroker
    from finchan.trade.history import BarHistory, BarWindow
    from finchan.trade.orders import Fill

__all__ = ["Params", "Strategy", "StrategyState"]


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


def _check_finite(method: str, symbol: str, name: str, value: Any) -> None:
    # NaN compares false both ways: order_target(NaN) would silently do
    # nothing and a NaN price would reach the broker; indicators give NaN
    # while warming up, so this is a strategy bug worth stopping for
    if isinstance(value, float | int) and not isinstance(value, bool) and math.isfinite(value):
        return
    if value is None and name in ("limit", "stop", "trail_amount", "trail_percent"):
        return
    try:
        finite = math.isfinite(value)
    except TypeError:
        raise TypeError(
            f"{method}({symbol!r}): {name} must be a number, not {type(value).__name__} {value!r}"
        ) from None
    if not finite:
        raise ValueError(f"{method}({symbol!r}): {name} must be a finite number, not {value!r}")


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


class StrategyState(MutableMapping[str, Any]):
    """A strategy's own persisted variables: ``self.state["entries"] = 3``.

    A dict with string keys and JSON values (str, numbers, bools, None, lists,
    dicts with string keys). In a backtest it is a plain dict in memory. In a
    live run it is committed with every batch, in the same transaction as the
    batch's journal records and stream positions, and loaded back on restart;
    a run directory gets it as ``state.json``. Values come back as JSON gives
    them (a tuple as a list).

    Example
    -------
    >>> state = StrategyState()
    >>> state["entries"] = 3
    >>> state.to_json()
    '{"entries":3}'
    >>> state.load('{"entries": 4}'); dict(state)
    {'entries': 4}
    """

    __slots__ = ("_data", "_owner")

    def __init__(self, owner: str = "Strategy") -> None:
        self._data: dict[str, Any] = {}
        self._owner = owner

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"{self._owner}.state: keys are strings, not {key!r}")
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __repr__(self) -> str:
        return f"StrategyState({self._data!r})"

    def to_json(self) -> str:
        """The state as compact JSON (keys sorted): what is committed and written."""
        import json

        try:
            return json.dumps(self._data, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise RunError(
                f"{self._owner}.state: {exc}; its values must be JSON "
                "(str, numbers, bool, None, lists, dicts with str keys)"
            ) from None

    def load(self, text: str) -> None:
        """Replace the contents with the JSON ``text`` (a committed state)."""
        import json

        self._data = json.loads(text)


class Strategy:
    """Base class of strategies (see the module docstring)."""

    if TYPE_CHECKING:
        # the declared defaults (a dict) on the class, the run's Params on an
        # instance: see _ParamsField; Any so both spellings type-check
        params: ClassVar[Any]
    else:
        params = _ParamsField({})
    #: bars kept per symbol for :meth:`history` and :meth:`bars`; 0 keeps none
    history_bars: ClassVar[int] = 0
    #: default panel of plotted series by name (see :meth:`plot`)
    plots: ClassVar[dict[str, str]] = {}

    #: higher timeframes whose bars ``on_bar`` also receives (``("1h", "1D")``),
    #: resampled from the base bars; ``bar.timeframe`` tells them apart
    #: (``None`` for a base bar). See docs/strategies.md, "Several timeframes".
    timeframes: ClassVar[tuple[str, ...]] = ()

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
        self._last_bar = broker.last_bar  # symbol -> last bar seen by the broker
        self._history: BarHistory | None = None
        self._tf_history: dict[str, BarHistory] = {}
        self._plotted: dict[tuple[str, str | None], PlotSeries] = {}
        self._strategy_state = StrategyState(type(self).__name__)
        if self.history_bars:
            self.keep_history(self.history_bars)

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
    def state(self) -> StrategyState:
        """The strategy's own persisted variables (see :class:`StrategyState`)."""
        return self._strategy_state

    @state.setter
    def state(self, value: Any) -> None:
        raise AttributeError(
            f"{type(self).__name__}.state is the strategy's persisted state: set its items "
            "(self.state['name'] = value), or keep other variables under another attribute name"
        )

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

    # -- history ---------------------------------------------------------------------------
    def keep_history(self, n: int) -> None:
        """Keep the last ``n`` bars of every symbol from now on (or more, if already asked).

        Called by ``bind`` with the class's ``history_bars``; call it in
        ``on_start`` when the size depends on the parameters. Bars are recorded
        before ``on_bar`` sees them.
        """
        if self._history is None:
            from finchan.trade.bar import BAR_EVENT
            from finchan.trade.history import BarHistory

            self._history = BarHistory(n)
            # prepended: the bar is in the history before any on_bar sees it
            self.env.dispatcher.subscribe(BAR_EVENT, self._history.record, prepend=True)
            # one history per timeframe the class lists, fed by its resampled bars
            for label in self._timeframe_labels():
                kept = self._tf_history[label] = BarHistory(n)
                self.env.dispatcher.subscribe(f"{BAR_EVENT}.{label}", kept.record, prepend=True)
        else:
            self._history.grow(n)
            for kept in self._tf_history.values():
                kept.grow(n)

    @classmethod
    def _timeframe_labels(cls) -> list[str]:
        """The canonical labels of ``timeframes`` (``"60min"`` is ``"1h"``)."""
        if not cls.timeframes:
            return []
        from finchan.trade.resample import parse_timeframe

        wanted = (cls.timeframes,) if isinstance(cls.timeframes, str) else cls.timeframes
        try:
            return list(dict.fromkeys(parse_timeframe(text).label for text in wanted))
        except ConfigError as exc:
            raise ConfigError(f"{cls.__name__}.timeframes: {exc}") from None

    def _kept_for(self, owner: str, timeframe: str | None) -> BarHistory:
        kept = self._kept(owner)
        if timeframe is None:
            return kept
        from finchan.trade.resample import parse_timeframe

        name = type(self).__name__
        try:
            label = parse_timeframe(timeframe).label
        except ConfigError as exc:
            raise ConfigError(f"{name}.{owner}(timeframe={timeframe!r}): {exc}") from None
        found = self._tf_history.get(label)
        if found is None:
            listed = ", ".join(self._tf_history) or "none"
            raise ConfigError(
                f"{name}.{owner}(timeframe={timeframe!r}): {name}.timeframes does not list "
                f"{label!r} (it lists: {listed}); add it there to get its bars and history"
            )
        return found

    def _kept(self, owner: str) -> BarHistory:
        if self._history is None:
            raise ConfigError(
                f"{type(self).__name__}.{owner}: no history is kept; set history_bars = N "
                f"on the strategy class (or call self.keep_history(N) in on_start)"
            )
        return self._history

    def history(
        self, symbol: str, n: int, field: str = "close", timeframe: str | None = None
    ) -> np.ndarray:
        """The last ``n`` values of ``field`` for ``symbol``, oldest first, the current bar last.

        ``field`` is ``open``, ``high``, ``low``, ``close``, ``volume`` or
        ``timestamp``. Fewer than ``n`` values while fewer bars were seen (an
        empty array for a symbol without bars yet). The array is a read-only
        view into a ring buffer, valid until the symbol's next bar: copy it
        (``np.array(...)``) to keep it. ``n`` above the capacity
        (``history_bars``) raises :class:`~finchan.errors.ConfigError`.
        ``timeframe`` (``"1h"``, ``"1D"``...): the resampled bars of a timeframe
        the class lists in ``timeframes`` (each kept ``history_bars`` deep, the
        last one the latest *closed* period); any other is a ConfigError.
        None: the feed's own bars.
        """
        return self._kept_for("history", timeframe).window(symbol, n, field)

    def bars(self, symbol: str, n: int, timeframe: str | None = None) -> BarWindow:
        """The last ``n`` bars of ``symbol``: a :class:`~finchan.trade.history.BarWindow`
        of read-only arrays (``.timestamp``, ``.open``, ..., ``.volume``), like :meth:`history`
        (``timeframe`` too)."""
        return self._kept_for("bars", timeframe).bars(symbol, n)

    # -- drawing -----------------------------------------------------------------------------
    def plotted_series(self) -> list[PlotSeries]:
        """The series recorded by :meth:`plot` so far, in the order they were first plotted."""
        return list(self._plotted.values())

    def plot(
        self, name: str, value: float, *, symbol: str | None = None, panel: str | None = None
    ) -> None:
        """Record ``value`` at ``now`` in the series ``name`` (of ``symbol``) for the report.

        ``panel="price"`` overlays the series on ``symbol``'s price chart
        (``symbol`` is then required); any other text names a panel of its own,
        shared by the series given the same panel; by default the panel comes
        from the class's ``plots`` mapping, else it is ``name``. NaN values
        (indicator warm-ups) are kept in the result and left out of the chart.
        The series land in ``result.indicators``, ``indicators.csv`` and the report.
        """
        series = self._plotted.get((name, symbol))
        if series is None:
            series = self._new_plot(name, symbol, panel)
        elif panel is not None and panel != series.panel:
            raise ConfigError(
                f"plot({name!r}): panel {panel!r} differs from the series' panel {series.panel!r}"
            )
        try:
            series.values.append(value)
        except TypeError:
            raise ConfigError(f"plot({name!r}): value must be a number, got {value!r}") from None
        series.times.append(self.env.now_ts)

    def _new_plot(self, name: str, symbol: str | None, panel: str | None) -> PlotSeries:
        from finchan.trade._plots import PRICE_PANEL, PlotSeries

        if not isinstance(name, str) or not name:
            raise ConfigError(f"plot(): name must be a non-empty string, got {name!r}")
        declared = self.plots.get(name)
        if panel is not None and declared is not None and panel != declared:
            raise ConfigError(
                f"plot({name!r}): panel {panel!r} differs from {declared!r} declared in "
                f"{type(self).__name__}.plots"
            )
        where = panel or declared or name
        if not isinstance(where, str):
            raise ConfigError(f"plot({name!r}): panel must be a string, got {where!r}")
        if where == PRICE_PANEL and symbol is None:
            raise ConfigError(
                f"plot({name!r}): panel 'price' overlays a symbol's price chart; pass symbol="
            )
        series = self._plotted[(name, symbol)] = PlotSeries(name, symbol, where)
        return series

    # -- orders ---------------------------------------------------------------------------
    def _submit(
        self,
        side: Side,
        symbol: str,
        qty: float,
        limit: float | None,
        stop: float | None,
        tif: str | TimeInForce,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        oco: Order | None = None,
        send: bool = True,
    ) -> Order:
        method = "buy" if side is Side.BUY else "sell"
        _check_finite(method, symbol, "qty", qty)
        _check_finite(method, symbol, "limit", limit)
        _check_finite(method, symbol, "stop", stop)
        _check_finite(method, symbol, "trail_amount", trail_amount)
        _check_finite(method, symbol, "trail_percent", trail_percent)
        if trail_amount is not None or trail_percent is not None:
            kind = OrderType.TRAILING_STOP if limit is None else OrderType.TRAILING_STOP_LIMIT
        elif limit is None:
            kind = OrderType.MARKET if stop is None else OrderType.STOP
        else:
            kind = OrderType.LIMIT if stop is None else OrderType.STOP_LIMIT
        # an unknown tif (say "IOC") is the broker's to reject, with a reason
        # the strategy sees in on_order, like any other invalid order field;
        # live: the order is made at its bar's time (the broker's clock), as in a
        # backtest, so that DAY orders expire and orders.csv reads the same in both
        env = self.env
        order = Order(
            symbol,
            side,
            qty,
            kind,
            limit,
            stop,
            tif,
            created_ts=env.now_ts if env.run_mode == "backtrack" else None,
            trail_amount=trail_amount,
            trail_percent=trail_percent,
        )
        if not send:
            return order  # a bracket's order: submitted by buy_bracket/sell_bracket
        self.broker.submit(order)
        self.on_order(order)
        if oco is not None:
            for other in self.broker.link_oco(order, oco):
                self.on_order(other)
        return order

    def buy(
        self,
        symbol: str,
        qty: float,
        limit: float | None = None,
        stop: float | None = None,
        tif: str = "GTC",
        *,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        oco: Order | None = None,
    ) -> Order:
        """Buy ``qty``: market, or limit (``limit=``), stop (``stop=``), stop-limit (both).

        ``trail_amount=`` or ``trail_percent=`` (``0.02`` is 2 %) make a
        trailing stop: the stop starts that far above the symbol's last close
        and follows the closes down (backtrader's ``StopTrail``); with
        ``limit=`` a trailing stop-limit whose limit keeps its distance to the
        stop (``StopTrailLimit``). See docs/broker.md.

        ``oco=other`` puts the order in ``other``'s one-cancels-others group
        (backtrader's ``oco=``): a fill, cancellation, expiry or rejection of
        one member cancels the others (docs/broker.md, "Linked orders").
        """
        return self._submit(
            Side.BUY, symbol, qty, limit, stop, tif, trail_amount, trail_percent, oco
        )

    def sell(
        self,
        symbol: str,
        qty: float,
        limit: float | None = None,
        stop: float | None = None,
        tif: str = "GTC",
        *,
        trail_amount: float | None = None,
        trail_percent: float | None = None,
        oco: Order | None = None,
    ) -> Order:
        """Sell ``qty``: market, or limit, stop, stop-limit, trailing like :meth:`buy`.

        A trailing sell's stop starts ``trail_amount`` (or ``trail_percent``)
        below the last close and follows the closes up.
        """
        return self._submit(
            Side.SELL, symbol, qty, limit, stop, tif, trail_amount, trail_percent, oco
        )

    def order_target(self, symbol: str, qty: float) -> Order | None:
        """Market order bringing the position to ``qty`` (signed); None if already there."""
        _check_finite("order_target", symbol, "qty", qty)
        delta = qty - self.position(symbol)
        if delta > 0:
            return self.buy(symbol, delta)
        if delta < 0:
            return self.sell(symbol, -delta)
        return None

    def order_target_percent(self, symbol: str, pct: float) -> Order | None:
        """Market order bringing the position to ``pct`` of equity (0.5 is 50 %).

        Sized at the symbol's last close, rounded towards zero to whole units
        (or to the symbol's lot size, see the broker's ``lots``); a contract's
        value is ``close * multiplier`` (docs/broker.md).
        """
        _check_finite("order_target_percent", symbol, "pct", pct)
        return self._order_target_amount("order_target_percent", symbol, self.equity * pct)

    def order_target_value(self, symbol: str, value: float) -> Order | None:
        """Market order bringing the position's value to ``value`` (negative: short).

        backtrader's ``order_target_value``: at the symbol's last close ``p``,
        the order is ``|value - position * p| / p`` rounded towards zero to
        whole units (or to the symbol's lot size), a buy when the value is
        below the target, a sell when above; ``value=0`` closes the whole
        position. None when nothing (or less than the lot's minimum) is to trade.
        """
        _check_finite("order_target_value", symbol, "value", value)
        bar = self._last_bar(symbol)
        if bar is None:
            raise ConfigError(f"order_target_value({symbol!r}): no price seen for {symbol!r} yet")
        held = self.position(symbol)
        if value == 0.0:
            return self.order_target(symbol, 0.0)
        price = bar.close
        gap = value - held * price
        if self.broker.lot(symbol)[0] == 1.0:
            qty = float(abs(gap) // price)  # backtrader's getsize: cash // price
        else:
            qty = self._in_lots(symbol, abs(gap) / price)
        if not qty or qty < self.broker.lot(symbol)[1]:
            return None
        return self.buy(symbol, qty) if gap > 0.0 else self.sell(symbol, qty)

    def _in_lots(self, symbol: str, qty: float) -> float:
        """``qty`` rounded towards zero to the symbol's lot size (whole units by default)."""
        size = self.broker.lot(symbol)[0]
        if size == 1.0:
            return float(math.trunc(qty))
        # the epsilon keeps 2.9999999999 lots (float noise) from losing one
        lots = math.trunc(qty / size + math.copysign(1e-9, qty))
        return round(lots * size, 12)

    def _order_target_amount(self, owner: str, symbol: str, value: float) -> Order | None:
        bar = self._last_bar(symbol)
        if bar is None:
            raise ConfigError(f"{owner}({symbol!r}): no price seen for {symbol!r} yet")
        spec = getattr(self.broker.portfolio, "spec", None)  # a MarginPortfolio's terms
        terms = spec(symbol) if spec is not None else None
        price = bar.close if terms is None else bar.close * terms.multiplier
        target = self._in_lots(symbol, value / price)
        if 0.0 < abs(target - self.position(symbol)) < self.broker.lot(symbol)[1]:
            return None
        return self.order_target(symbol, target)

    def buy_bracket(
        self,
        symbol: str,
        qty: float,
        limit: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        tif: str = "GTC",
        *,
        stop_trail_amount: float | None = None,
        stop_trail_percent: float | None = None,
    ) -> tuple[Order, Order | None, Order | None]:
        """A buy with a sell stop below and a sell limit above (backtrader's ``buy_bracket``).

        Returns ``(entry, stop, take)``. The entry is a limit buy at ``limit``
        (market with ``limit=None``); the exits, each of ``qty``, wait until
        the entry is completely filled and meet the bars after that one; the
        exit that fills completely cancels the other. ``stop_loss=None`` or
        ``take_profit=None`` leaves that exit out (its slot is None);
        ``stop_trail_amount=``/``stop_trail_percent=`` make the stop a
        trailing stop (then ``stop_loss`` must be None). ``on_order`` gets
        the three orders in that order. See docs/broker.md, "Brackets".
        """
        return self._bracket(
            Side.BUY, symbol, qty, limit, stop_loss, take_profit, tif,
            stop_trail_amount, stop_trail_percent,
        )

    def sell_bracket(
        self,
        symbol: str,
        qty: float,
        limit: float | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        tif: str = "GTC",
        *,
        stop_trail_amount: float | None = None,
        stop_trail_percent: float | None = None,
    ) -> tuple[Order, Order | None, Order | None]:
        """The mirror of :meth:`buy_bracket`: a sell, a buy stop above and a buy limit below."""
        return self._bracket(
            Side.SELL, symbol, qty, limit, stop_loss, take_profit, tif,
            stop_trail_amount, stop_trail_percent,
        )

    def _bracket(
        self,
        side: Side,
        symbol: str,
        qty: float,
        limit: float | None,
        stop_loss: float | None,
        take_profit: float | None,
        tif: str,
        trail_amount: float | None,
        trail_percent: float | None,
    ) -> tuple[Order, Order | None, Order | None]:
        method = "buy_bracket" if side is Side.BUY else "sell_bracket"
        trailing = trail_amount is not None or trail_percent is not None
        if trailing and stop_loss is not None:
            raise ValueError(f"{method}({symbol!r}): a trailing stop sets its own price; "
                             "give stop_loss or stop_trail_amount/stop_trail_percent, not both")
        if stop_loss is None and take_profit is None and not trailing:
            raise ValueError(f"{method}({symbol!r}): needs stop_loss, take_profit or a stop trail")
        exit_side = Side.SELL if side is Side.BUY else Side.BUY
        parent = self._submit(side, symbol, qty, limit, None, tif, send=False)
        stop = None
        if stop_loss is not None or trailing:
            stop = self._submit(exit_side, symbol, qty, None, stop_loss, tif,
                                trail_amount, trail_percent, send=False)
        take = None
        if take_profit is not None:
            take = self._submit(exit_side, symbol, qty, take_profit, None, tif, send=False)
        self.broker.submit_bracket(parent, stop, take)
        for order in (parent, stop, take):
            if order is not None:
                self.on_order(order)
        return parent, stop, take

    def cancel(self, order: Order) -> bool:
        """Cancel an open order; False if it was no longer open.

        Its linked orders (OCO group, bracket) are cancelled too; ``on_order``
        gets this order, then those in id order.
        """
        cancelled = self.broker.cancel_linked(order.id)
        for done in cancelled:
            self.on_order(done)
        return bool(cancelled)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.broker.open_orders(symbol)

    @staticmethod
    def is_final(order: Order) -> bool:
        """True once an order can change no more (filled, cancelled, rejected, expired)."""
        return order.status in FINAL_STATUSES
