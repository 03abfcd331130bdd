"""Contracts, margin, leverage and short borrow costs: the broker of a margin account.

A symbol trades as a stock (the default: the notional is paid in cash) unless
a :class:`ContractSpec` says otherwise:

- ``multiplier``: units of the underlying per contract; P&L, value and
  notional are ``qty * price * multiplier`` (commission models still see
  ``qty`` and ``price`` only, as backtrader's ``CommInfoBase``).
- ``margin`` (futures): initial margin per contract, a fixed amount, with
  ``maintenance_margin`` (default: ``margin``). No notional is paid: opening
  takes the margin from free cash and the position's P&L settles into the
  account, as backtrader's ``CommInfoBase(margin=..., mult=..., stocklike=False)``.
- ``leverage`` (CFD/FX): like ``margin``, with an initial margin per unit of
  ``price * multiplier / leverage`` at the current price, and a maintenance
  margin of ``maintenance_ratio`` (default 0.5) times that.
- ``borrow_rate``: annual rate charged on a short position, ``days * |qty| *
  avg_price * multiplier * borrow_rate / 365`` at the symbol's first bar of
  each later calendar day (backtrader's ``interest`` on shorts).

Free cash of the account (backtrader's ``broker.getcash()``) is ``cash +
unrealised P&L of margin positions - margin in use``; an order or fill that
would take it below zero is rejected as for a cash account.

Margin calls (``margin_call=True``, the default): after every bar, when equity
is below the maintenance margin of the open margin positions, the broker
submits market orders closing whole positions, the largest maintenance margin
first (ties by symbol), until the maintenance margin of the positions left is
covered by equity. They fill like any market order (the next bar's open) and
carry the reason ``"margin call"``. ``docs/broker.md`` works an example.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from finchan.errors import ConfigError
from finchan.trade.broker import Notice, SimBroker
from finchan.trade.orders import Order, Side

if TYPE_CHECKING:
    from finchan.trade.bar import Bar
from finchan.trade.portfolio import Portfolio, Position

__all__ = ["CONTRACT_KEYS", "ContractSpec", "MarginBroker", "MarginPortfolio", "parse_contracts"]

#: the keys of one symbol's contract options
CONTRACT_KEYS = (
    "multiplier",
    "margin",
    "maintenance_margin",
    "leverage",
    "maintenance_ratio",
    "borrow_rate",
)

#: the symbol key whose terms apply to every symbol not named
DEFAULT_KEY = "*"

MARGIN_CALL = "margin call"


@dataclass(frozen=True, slots=True)
class ContractSpec:
    """The trading terms of one symbol (see the module docstring).

    Example
    -------
    >>> es = ContractSpec(multiplier=50, margin=12_000, maintenance_margin=11_000)
    >>> es.initial(4_000.0), es.maintenance(4_000.0), es.is_margin
    (12000.0, 11000.0, True)
    >>> ContractSpec(leverage=30).initial(1.1)
    0.03666666666666667
    """

    multiplier: float = 1.0
    margin: float | None = None
    maintenance_margin: float | None = None
    leverage: float | None = None
    maintenance_ratio: float | None = None
    borrow_rate: float = 0.0

    def __post_init__(self) -> None:
        for key in CONTRACT_KEYS:
            value = getattr(self, key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{key} must be a number, not {value!r}")
            if not math.isfinite(value) or value < 0 or (value == 0 and key != "borrow_rate"):
                bound = ">= 0" if key == "borrow_rate" else "> 0"
                raise ConfigError(f"{key} must be a finite number {bound}, not {value!r}")
            object.__setattr__(self, key, float(value))
        if self.margin is not None and self.leverage is not None:
            raise ConfigError("margin (futures) and leverage (CFD/FX) exclude each other")
        if self.maintenance_margin is not None:
            if self.margin is None:
                raise ConfigError("maintenance_margin needs margin")
            if self.maintenance_margin > self.margin:
                raise ConfigError(
                    f"maintenance_margin {self.maintenance_margin:g} exceeds margin {self.margin:g}"
                )
        if self.maintenance_ratio is not None:
            if self.leverage is None:
                raise ConfigError("maintenance_ratio needs leverage")
            if self.maintenance_ratio > 1.0:
                raise ConfigError(f"maintenance_ratio must be <= 1, not {self.maintenance_ratio!r}")

    @property
    def is_margin(self) -> bool:
        """Whether the symbol trades on margin (P&L settles, no notional paid)."""
        return self.margin is not None or self.leverage is not None

    def initial(self, price: float) -> float:
        """Initial margin of one contract at ``price`` (0 for a cash instrument)."""
        if self.margin is not None:
            return self.margin
        if self.leverage is not None:
            return price * self.multiplier / self.leverage
        return 0.0

    def maintenance(self, price: float) -> float:
        """Maintenance margin of one contract at ``price`` (0 for a cash instrument)."""
        if self.margin is not None:
            m = self.maintenance_margin
            return self.margin if m is None else m
        if self.leverage is not None:
            ratio = 0.5 if self.maintenance_ratio is None else self.maintenance_ratio
            return price * self.multiplier / self.leverage * ratio
        return 0.0


def parse_contracts(value: Any, where: str = "contracts") -> dict[str, ContractSpec]:
    """``{symbol: ContractSpec}`` from ``{symbol: {key: value}}`` (or specs).

    The symbol ``"*"`` gives the terms of every symbol not named. Unknown keys
    and bad values raise :class:`ConfigError` naming the symbol and the valid keys.

    Example
    -------
    >>> parse_contracts({"ES": {"multiplier": 50, "margin": 12000}})["ES"].multiplier
    50.0
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping of symbol to contract terms, not {value!r}")
    out: dict[str, ContractSpec] = {}
    for symbol, terms in value.items():
        if isinstance(terms, ContractSpec):
            out[str(symbol)] = terms
            continue
        if not isinstance(terms, Mapping):
            raise ConfigError(
                f"{where}.{symbol}: expected a mapping with keys {', '.join(CONTRACT_KEYS)}, "
                f"not {terms!r}"
            )
        unknown = [k for k in terms if k not in CONTRACT_KEYS]
        if unknown:
            raise ConfigError(
                f"{where}.{symbol}: unknown key {unknown[0]!r} (valid: {', '.join(CONTRACT_KEYS)})"
            )
        try:
            out[str(symbol)] = ContractSpec(**terms)
        except ConfigError as exc:
            raise ConfigError(f"{where}.{symbol}: {exc}") from None
    return out


class MarginPortfolio(Portfolio):
    """A :class:`Portfolio` whose symbols may have contract terms.

    ``equity`` is ``cash + sum(stock-like qty * price * multiplier) +
    sum(unrealised P&L of margin positions)``; :attr:`borrow_cost` is the
    borrow interest paid so far (already out of cash).
    """

    __slots__ = ("_default", "_specs", "borrow_cost")

    def __init__(self, cash: float = 100_000.0, specs: Mapping[str, ContractSpec] | None = None):
        super().__init__(cash)
        self._specs = dict(specs or {})
        self._default = self._specs.pop(DEFAULT_KEY, None)
        #: borrow interest charged on shorts so far
        self.borrow_cost = 0.0

    def spec(self, symbol: str) -> ContractSpec | None:
        """The contract terms of ``symbol`` (None: a plain stock)."""
        spec = self._specs.get(symbol)
        return spec if spec is not None else self._default

    def _new_position(self, symbol: str, price: float) -> Position:
        pos = Position(symbol, price)
        spec = self.spec(symbol)
        if spec is not None:
            pos.mult = spec.multiplier
            pos.settles = spec.is_margin
        return pos

    def _revalue(self) -> float:
        return sum(
            p.qty * p.mult * (p.last_price - p.avg_price)
            if p.settles
            else p.qty * p.last_price * p.mult
            for p in self._open.values()
        )

    def mark(self, symbol: str, price: float) -> None:
        pos = self.positions.get(symbol)
        if pos is None:
            return
        qty = pos.qty
        if qty:
            self._mv += qty * pos.mult * (price - pos.last_price)
            pos._t_bars += 1
        pos.last_price = price

    def margin_used(self) -> float:
        """Initial margin of the open margin positions at their last prices."""
        total = 0.0
        for pos in self._open.values():
            if pos.settles:
                total += abs(pos.qty) * self.spec(pos.symbol).initial(pos.last_price)  # type: ignore[union-attr]
        return total

    def maintenance_margin(self) -> float:
        """Maintenance margin of the open margin positions at their last prices."""
        return sum(req for req, _ in self._maintenance_by_symbol())

    def _maintenance_by_symbol(self) -> list[tuple[float, str]]:
        out = []
        for pos in self._open.values():
            if pos.settles:
                spec = self.spec(pos.symbol)
                out.append((abs(pos.qty) * spec.maintenance(pos.last_price), pos.symbol))  # type: ignore[union-attr]
        return out

    @property
    def free_cash(self) -> float:
        """Cash an order may use: cash + margin positions' P&L - margin in use."""
        unreal = 0.0
        for pos in self._open.values():
            if pos.settles:
                unreal += pos.qty * pos.mult * (pos.last_price - pos.avg_price)
        return self.cash + unreal - self.margin_used()

    def charge(self, amount: float) -> None:
        """Take a borrow cost out of cash."""
        self.cash -= amount
        self.borrow_cost += amount


class MarginBroker(SimBroker):
    """A :class:`SimBroker` for an account with contract terms per symbol.

    Parameters
    ----------
    cash:
        starting cash.
    contracts:
        ``{symbol: ContractSpec or mapping}``; ``"*"`` for every other symbol.
    margin_call:
        close positions when equity falls below the maintenance margin
        (the rule of the module docstring).
    **options:
        the :class:`SimBroker` options.

    Example
    -------
    >>> from finchan.trade.bar import Bar
    >>> broker = MarginBroker(20_000.0, contracts={"ES": {"multiplier": 50, "margin": 10_000}})
    >>> _ = broker.process_bar(Bar(None, "ES", 0.0, 4000, 4001, 3999, 4000, 1000))
    >>> broker.submit(Order("ES", "BUY", 1)).status.value
    'ACCEPTED'
    >>> _ = broker.process_bar(Bar(None, "ES", 60.0, 4000, 4010, 3990, 4004, 1000))
    >>> pf = broker.portfolio
    >>> pf.equity, pf.margin_used(), pf.free_cash
    (20200.0, 10000.0, 10200.0)
    """

    __slots__ = ("_borrow_day", "_call_orders", "margin_call")

    def __init__(
        self,
        cash: float = 100_000.0,
        *,
        contracts: Mapping[str, Any] | None = None,
        margin_call: bool = True,
        **options: Any,
    ) -> None:
        specs = parse_contracts(contracts)
        if options.get("portfolio") is None:
            options["portfolio"] = MarginPortfolio(cash, specs)
        elif not isinstance(options["portfolio"], MarginPortfolio):
            raise ConfigError("MarginBroker: portfolio must be a MarginPortfolio")
        super().__init__(cash, **options)
        self.margin_call = margin_call
        # symbol -> the open margin-call order closing it
        self._call_orders: dict[str, Order] = {}
        # symbol -> calendar day (ordinal) its borrow cost was last charged or its position changed
        self._borrow_day: dict[str, int] = {}

    # -- funds -------------------------------------------------------------------------------
    def _funds(
        self,
        symbol: str,
        pos: float,
        qty: float,
        closing: float,
        buy: bool,
        price: float,
        settle: bool,
    ) -> tuple:
        pf: MarginPortfolio = self.portfolio  # type: ignore[assignment]
        free = pf.free_cash
        spec = pf.spec(symbol)
        if spec is None or not spec.is_margin:
            mult = 1.0 if spec is None else spec.multiplier
            return free, (qty * price if buy else -qty * price) * mult
        position = pf.positions.get(symbol)
        if settle and closing and position is not None:
            # at a fill backtrader first settles the closed part from the last
            # close to the fill price; at submit it does not
            sign = 1.0 if pos > 0 else -1.0
            free += sign * closing * position.mult * (price - position.last_price)
        # the opening part takes its margin, the closing part frees its own
        return free, (qty - 2.0 * closing) * spec.initial(price)

    def _batch_funds(self, symbol: str, pos: float, signed: float, price: float) -> tuple:
        qty = abs(signed)
        closing = 0.0
        if pos != 0.0 and (pos > 0.0) != (signed > 0.0):
            closing = qty if qty < abs(pos) else abs(pos)
        return self._funds(symbol, pos, qty, closing, signed > 0.0, price, False)

    def _fill_funds(
        self, symbol: str, qty: float, closing: float, buy: bool, price: float
    ) -> tuple:
        pos = self.portfolio.qty(symbol)
        return self._funds(symbol, pos, qty, closing, buy, price, True)

    # -- the bar loop --------------------------------------------------------------------------
    def process_bar(self, bar: Bar) -> Sequence[Notice]:
        """As :meth:`SimBroker.process_bar`, with borrow costs first and margin calls after."""
        pf: MarginPortfolio = self.portfolio  # type: ignore[assignment]
        symbol = bar.symbol
        spec = pf.spec(symbol)
        day = 0
        if spec is not None and spec.borrow_rate:
            day = _dt.datetime.fromtimestamp(bar.timestamp, self._tz).toordinal()
            pos = pf.positions.get(symbol)
            last = self._borrow_day.get(symbol)
            if pos is not None and pos.qty < 0.0 and last is not None and day > last:
                pf.charge(
                    (day - last) * -pos.qty * pos.avg_price * pos.mult * (spec.borrow_rate / 365.0)
                )
        notices = super().process_bar(bar)
        if day and pf.qty(symbol) != 0.0:
            self._borrow_day[symbol] = day
        if self.margin_call and pf._open:
            calls = self._margin_calls(bar.timestamp)
            if calls:
                notices = [*notices, *calls]
        return notices

    def _margin_calls(self, ts: float) -> list[Notice]:
        pf: MarginPortfolio = self.portfolio  # type: ignore[assignment]
        requirements = pf._maintenance_by_symbol()
        if not requirements:
            return []
        need = sum(req for req, _ in requirements)
        equity = pf.equity
        if equity >= need:
            return []
        out: list[Notice] = []
        for req, symbol in sorted(requirements, key=lambda r: (-r[0], r[1])):
            if equity >= need:
                break
            need -= req
            pending = self._call_orders.get(symbol)
            if pending is not None and pending.is_open:
                continue  # being closed already
            qty = pf.positions[symbol].qty
            order = Order(symbol, Side.SELL if qty > 0.0 else Side.BUY, abs(qty), created_ts=ts)
            self.submit(order)
            if order.is_open:
                order.reason = MARGIN_CALL
                self._call_orders[symbol] = order
            out.append(Notice(order, order.status, None))
        return out
