"""A simulated broker: matches orders against bars, like backtrader's BackBroker.

:class:`SimBroker` keeps the open orders of each symbol and, for every bar
given to :meth:`SimBroker.process_bar`, expires, triggers and fills them with
backtrader 1.9.78's rules (``docs/broker.md`` states them one by one), then
marks its :class:`~finchan.trade.portfolio.Portfolio` at the bar's close.

Order of calls in a backtest, per bar: ``process_bar(bar)`` (orders submitted
earlier meet this bar), then the strategy sees the bar and may ``submit`` or
``cancel``. An order never meets a bar that opens at or before its
``created_ts``.

State changes are reported where they happen: ``submit`` returns the order
``ACCEPTED`` or ``REJECTED``; ``cancel`` returns whether it cancelled;
``process_bar`` returns the :class:`Notice` s of that bar (fills, expiries,
rejections at execution), in the order they happened.

Commission models are callables ``model(qty, price) -> float`` giving the
commission of an order of ``qty`` filled at ``price`` in one piece; slippage
models are callables ``model(price, side) -> float`` giving the worse price.

Layout: the price rules (whether and at which price an order fills on a
bar) are in :mod:`finchan.trade._fill_rules`, the checks at submission in
:mod:`finchan.trade._order_checks`, the commission and slippage models in
:mod:`finchan.trade.costs`, OCO groups and brackets in
:mod:`finchan.trade._links`. What stays here is the book (open orders per
symbol, the per-order working state), the batch check of orders decided at
one time and the execution of fills: one state that every method reads and
writes, which is why this module is longer than 500 lines.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from finchan._time import get_tz
from finchan.errors import ConfigError, RunError
from finchan.trade._fill_rules import FillRules, OrderWork
from finchan.trade._links import Links
from finchan.trade._order_checks import QTY_EPS, parse_lots, validate
from finchan.trade.costs import BpsSlippage, FixedPerOrder, PercentOfValue, PerShare, TickSlippage
from finchan.trade.orders import Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from finchan.trade.portfolio import Portfolio

if TYPE_CHECKING:
    from finchan.trade.bar import Bar

__all__ = [
    "BpsSlippage",
    "FixedPerOrder",
    "Notice",
    "PerShare",
    "PercentOfValue",
    "SimBroker",
    "TickSlippage",
]

_INF = math.inf
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_ACCEPTED = OrderStatus.ACCEPTED
_PARTIAL = OrderStatus.PARTIALLY_FILLED
_FILLED = OrderStatus.FILLED
_REJECTED = OrderStatus.REJECTED
# returned by process_bar when nothing happened: no allocation on the idle path
_NO_NOTICES: tuple = ()


# -- notices --------------------------------------------------------------------------------


class Notice(NamedTuple):
    """One state change of an order: the order, its status then, and the fill if any."""

    order: Order
    status: OrderStatus
    fill: Fill | None


# -- the broker -----------------------------------------------------------------------------


class SimBroker:
    """A simulated broker matching orders against OHLCV bars.

    Parameters
    ----------
    cash:
        starting cash of the portfolio it creates (ignored if ``portfolio`` is given).
    commission:
        ``None`` (no commission) or a model ``(qty, price) -> float``
        (:class:`PerShare`, :class:`PercentOfValue`, :class:`FixedPerOrder`).
    slippage:
        ``None`` or a model ``(price, side) -> price`` (:class:`BpsSlippage`,
        :class:`TickSlippage`).
    fill_at:
        ``"next_open"``: market orders fill at the open of the next bar;
        ``"close"``: at the close of the bar they were decided on (backtrader's
        cheat-on-close), reported at the next bar of the symbol.
    volume_limit:
        fraction of each bar's volume the orders of a symbol may take on that
        bar (``0.1`` is 10 %), rounded down to whole units; the rest stays
        open (partial fills). ``None``: unlimited.
    allow_short:
        whether sells may take a position below zero.
    check_submit:
        check cash (and shorting) when an order is submitted, as backtrader's
        ``checksubmit``; cash is checked again at each fill in any case.
    tz:
        time zone whose calendar days bound ``DAY`` orders (name or tzinfo).
    backtrader_quirks:
        reproduce backtrader 1.9.78's questionable corners (see docs/broker.md).
    lots:
        per symbol, ``(size, minimum)`` or ``{"size": ..., "minimum": ...}``:
        orders of that symbol must be a multiple of ``size`` and at least
        ``minimum`` (``{"BTC": (0.0001, 0.001)}``); the sizing helpers round
        to it. Symbols not listed trade any positive quantity and are sized
        in whole units.
    portfolio:
        the :class:`Portfolio` to trade; a new ``Portfolio(cash)`` by default.

    Example
    -------
    >>> from finchan.trade.bar import Bar
    >>> from finchan.trade.orders import Order
    >>> broker = SimBroker(10_000.0)
    >>> _ = broker.process_bar(Bar(None, "X", 0.0, 100, 101, 99, 100, 1000))
    >>> broker.submit(Order("X", "BUY", 10)).status
    <OrderStatus.ACCEPTED: 'ACCEPTED'>
    >>> notices = broker.process_bar(Bar(None, "X", 60.0, 100.5, 102, 100, 101, 1000))
    >>> [(n.status, n.fill.price) for n in notices]
    [(<OrderStatus.FILLED: 'FILLED'>, 100.5)]
    >>> broker.portfolio.cash, broker.portfolio.equity
    (8995.0, 10005.0)
    """

    __slots__ = (
        "_batch_bought",
        "_batch_cash",
        "_batch_pos",
        "_batch_ts",
        "_books",
        "_comm",
        "_group_symbols",
        "_group_ts",
        "_ids",
        "_last_bars",
        "_links",
        "_lots",
        "_match",
        "_now",
        "_orders",
        "_rules",
        "_tz",
        "_volume_limit",
        "_work",
        "allow_short",
        "bars_at",
        "check_submit",
        "fill_at",
        "fills",
        "portfolio",
    )

    def __init__(
        self,
        cash: float = 100_000.0,
        *,
        commission: Callable[[float, float], float] | None = None,
        slippage: Callable[[float, Side], float] | None = None,
        fill_at: str = "next_open",
        volume_limit: float | None = None,
        allow_short: bool = False,
        check_submit: bool = True,
        tz: str | _dt.tzinfo = "UTC",
        backtrader_quirks: bool = False,
        portfolio: Portfolio | None = None,
        lots: Mapping[str, Any] | None = None,
    ) -> None:
        if fill_at not in ("next_open", "close"):
            raise ConfigError(f"SimBroker: fill_at must be 'next_open' or 'close', not {fill_at!r}")
        if volume_limit is not None and not 0.0 < volume_limit <= 1.0:
            raise ConfigError(
                f"SimBroker: volume_limit must be in (0, 1] or None, not {volume_limit!r}"
            )
        if commission is not None and not callable(commission):
            raise ConfigError(f"SimBroker: commission must be callable or None, not {commission!r}")
        if slippage is not None and not callable(slippage):
            raise ConfigError(f"SimBroker: slippage must be callable or None, not {slippage!r}")
        try:
            self._tz = get_tz(tz)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError, TypeError
            raise ConfigError(f"SimBroker: unknown time zone tz={tz!r}") from exc
        self.portfolio = portfolio if portfolio is not None else Portfolio(cash)
        self.fill_at = fill_at
        self._volume_limit = volume_limit
        self._comm = commission
        self.allow_short = allow_short
        self.check_submit = check_submit
        # the price rules (finchan.trade._fill_rules) and the per-order working state
        self._rules = FillRules(slippage, backtrader_quirks, fill_at == "close")
        self._work: dict[int, OrderWork] = {}
        self._lots = parse_lots(lots)
        #: every fill, in execution order
        self.fills: list[Fill] = []
        self._ids = itertools.count(1)
        self._orders: dict[int, Order] = {}
        # open orders per symbol in submission order; a symbol without open
        # orders has no entry, which is the whole idle path of process_bar
        self._books: dict[str, list[Order]] = {}
        self._last_bars: dict[str, Bar] = {}
        self._now = -_INF
        # orders submitted at one time are checked together (backtrader's
        # check_submitted): cash they use and positions they change
        self._batch_ts: float | None = None
        self._batch_cash = 0.0
        self._batch_pos: dict[str, float] = {}
        self._batch_bought: dict[str, float] = {}
        #: ``bars_at(ts)``: the bars of every symbol at time ``ts`` (the bar
        #: source's, set by SimAccount), so that the orders of several symbols
        #: meet the bars of one time together; None: symbol by symbol
        self.bars_at: Callable[[float], Sequence[Bar]] | None = None
        # the time whose bars met the orders of all symbols at once, and those symbols
        self._group_ts = -_INF
        self._group_symbols: set[str] = set()
        # OCO groups and brackets (finchan.trade._links), made at the first
        # linked order: until then the matching loop is the plain one
        self._links: Links | None = None
        self._match = self._match_order

    # -- queries ---------------------------------------------------------------------------

    @property
    def orders(self) -> list[Order]:
        """Every order submitted (rejected ones included), by id."""
        return list(self._orders.values())

    def get_order(self, order_id: int) -> Order | None:
        """The order with this id, or ``None``."""
        return self._orders.get(order_id)

    def lot(self, symbol: str) -> tuple[float, float]:
        """``(size, minimum)`` of ``symbol``'s orders; ``(1.0, 0.0)``, whole units, by default."""
        return self._lots.get(symbol, (1.0, 0.0))

    def last_bar(self, symbol: str) -> Bar | None:
        """The last bar of ``symbol`` the broker has seen (a :class:`~finchan.trade.bar.Bar`),
        ``None`` before the first: what orders sized by value are priced at."""
        return self._last_bars.get(symbol)

    def share_order_ids(self, other: SimBroker) -> None:
        """Number this broker's orders from ``other``'s counter (before any order is submitted).

        Several accounts of one run (one per strategy) then give unique ids
        across the run, as one broker would.
        """
        if self._orders:
            raise RunError("SimBroker.share_order_ids: orders were submitted already")
        self._ids = other._ids

    def is_triggered(self, order_id: int) -> bool:
        """Whether the stop of a stop, stop-limit or trailing order was reached.

        A triggered stop trades as a market order, a triggered stop-limit as
        a limit order; ``False`` for other orders and unknown ids.
        """
        work = self._work.get(order_id)
        return work is not None and work.triggered

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Orders that can still fill, by id; only those of ``symbol`` if given."""
        if symbol is not None:
            return list(self._books.get(symbol, ()))
        return sorted((o for book in self._books.values() for o in book), key=_order_id)

    # -- submit / cancel -------------------------------------------------------------------

    def submit(self, order: Order) -> Order:
        """Number, validate and accept ``order``; return it ``ACCEPTED`` or ``REJECTED``.

        A rejected order has its ``reason`` set: bad quantity, missing or bad
        price for its type, unknown side/type/tif, no bar seen yet for a
        ``fill_at="close"`` market order, and with ``check_submit`` a short
        sale when ``allow_short`` is off or too little cash (see docs/broker.md).

        Raises
        ------
        RunError
            if the order was already submitted (it has an id).
        """
        return self._submit(order, book=True)

    def _submit(self, order: Order, book: bool) -> Order:
        if order.id:
            raise RunError(f"SimBroker.submit: order #{order.id} was already submitted")
        order.id = oid = next(self._ids)
        self._orders[oid] = order
        if order.created_ts is None:
            order.created_ts = self._now
        self._work[oid] = work = OrderWork()
        reason = validate(order, work, self._lots, self._last_bars, self._rules.close_mode)
        if reason is None and self.check_submit:
            reason = self._check_batch(order)
        if reason is not None:
            order.status = _REJECTED
            order.reason = reason
            return order
        if order.tif is TimeInForce.DAY and order.type is not _MARKET:
            # valid until the end of its calendar day; market orders never
            # expire (backtrader), they fill at the next bar whatever its day
            work.expires = self._day_end(order.created_ts)
        order.status = _ACCEPTED
        if not book:
            return order  # a bracket's child: booked when its parent fills
        orders = self._books.get(order.symbol)
        if orders is None:
            self._books[order.symbol] = [order]
        else:
            orders.append(order)
        return order

    def cancel(self, order_id: int) -> bool:
        """Cancel an open order; return ``False`` if it is unknown or already final.

        A linked order (OCO, bracket) cancels its linked orders too; use
        :meth:`cancel_linked` to get them.
        """
        return bool(self.cancel_linked(order_id))

    def cancel_linked(self, order_id: int) -> list[Order]:
        """Cancel an open order and the orders linked to it; return them, that one first.

        Empty if the order is unknown or already final. The linked orders
        (its OCO group, its bracket) follow in id order (docs/broker.md).
        """
        order = self._orders.get(order_id)
        if order is None or not order.is_open:
            return []
        order.status = OrderStatus.CANCELLED
        order.reason = "cancelled"
        links = self._links
        if links is None or order.id not in links.linked:
            self._unbook(order)
            return [order]
        if not links.is_held(order):
            self._unbook(order)
        cancelled = [order]
        links.on_event(order, cancelled_out=cancelled)
        links.sweep()
        return cancelled

    # -- linked orders ---------------------------------------------------------------------

    def _linked(self) -> Links:
        if self._links is None:
            self._links = Links(self)
            self._match = self._links.match
        return self._links

    def link_oco(self, order: Order, other: Order) -> list[Order]:
        """Put the submitted ``order`` in ``other``'s OCO group (backtrader's ``oco=other``).

        One fill (partial too), cancellation, expiry or rejection of a member
        cancels the group's other open members. Returns the orders cancelled
        now: ``other``'s group if ``order`` was rejected at submission. If
        ``other`` is no longer open and in no group, ``order`` stays unlinked
        (backtrader's rule).

        Raises
        ------
        ValueError
            if an order was not submitted to this broker or ``order`` is in a group already.
        """
        for o in (order, other):
            if not o.id or self._orders.get(o.id) is not o:
                raise ValueError(f"oco: {o!r} was not submitted to this broker")
        if order is other:
            raise ValueError(f"oco: order #{order.id} cannot be linked to itself")
        return self._linked().add_oco(order, other)

    def submit_bracket(
        self, parent: Order, stop: Order | None, take: Order | None
    ) -> tuple[Order, Order | None, Order | None]:
        """Submit an entry with its exits (backtrader's ``buy_bracket``); return the three.

        ``stop`` and ``take`` (either may be None) wait, ``ACCEPTED`` but not in
        :meth:`open_orders`, until ``parent`` is completely filled, and meet
        the bars after the one it filled on. The exit that fills completely
        cancels the other; a member cancelled, expired or rejected cancels the
        rest. If ``parent`` is rejected the exits are rejected; if an exit is
        rejected at submission, the orders already accepted are cancelled
        (docs/broker.md, "Linked orders").

        Raises
        ------
        RunError
            if one of the orders was already submitted.
        """
        children = [c for c in (stop, take) if c is not None]
        for order in (parent, *children):
            if order.id:
                raise RunError(f"SimBroker.submit_bracket: order #{order.id} was already submitted")
        self.submit(parent)
        accepted: list[Order] = []
        failed: Order | None = None if parent.is_open else parent
        for child in children:
            if failed is not None:
                child.id = oid = next(self._ids)
                self._orders[oid] = child
                if child.created_ts is None:
                    child.created_ts = self._now
                child.status = _REJECTED
                child.reason = f"bracket order #{failed.id} {str(failed.status).lower()}"
                continue
            self._submit(child, book=False)
            if child.is_open:
                accepted.append(child)
            else:
                failed = child
        if failed is not None:
            for order in (parent, *accepted):
                if order.is_open:
                    order.status = OrderStatus.CANCELLED
                    order.reason = f"cancelled: bracket order #{failed.id} rejected"
                    if order is parent:
                        self._unbook(order)
            return parent, stop, take
        if children:
            self._linked().hold(parent, children)
        return parent, stop, take

    def _unbook(self, order: Order) -> None:
        book = self._books[order.symbol]
        book.remove(order)
        if not book:
            del self._books[order.symbol]

    def _check_batch(self, order: Order) -> str | None:
        # backtrader's check_submitted: pseudo-execute the orders decided at
        # one time, one after the other, at their reference price (market:
        # last close; limit: limit; stop and stop-limit: stop), against the
        # cash and positions left by the previous ones
        if self._batch_ts != self._now:
            self._batch_ts = self._now
            self._batch_cash = 0.0
            self._batch_pos.clear()
            self._batch_bought.clear()
        symbol = order.symbol
        pos = self.portfolio.qty(symbol) + self._batch_pos.get(symbol, 0.0)
        qty = order.qty
        buy = order.side is _BUY
        signed = qty if buy else -qty
        # the no-short rule looks at the position held plus the buys decided at
        # the same time, each sell on its own: an entry with its take-profit,
        # or a protective stop and a take-profit for one position, are all
        # accepted; the fill-time check stops a second exit from opening a short
        held = self.portfolio.qty(symbol) + self._batch_bought.get(symbol, 0.0)
        if not buy and not self.allow_short and held - qty < -QTY_EPS:
            return (
                f"would sell short ({symbol} position {held:g}, sell {qty:g}); allow_short is off"
            )
        otype = order.type
        if otype is _MARKET:
            ref = self._last_bars.get(symbol)
            if ref is None:
                # nothing to value it with yet: the fill-time check decides
                self._batch_pos[symbol] = pos + signed - self.portfolio.qty(symbol)
                if buy:
                    self._batch_bought[symbol] = self._batch_bought.get(symbol, 0.0) + qty
                return None
            price = ref.close
        elif otype is _LIMIT:
            price = cast(float, order.limit)  # checked by validate() before
        else:
            price = cast(float, order.stop)
        comm = self._comm(qty, price) if self._comm is not None else 0.0
        free, need = self._batch_funds(symbol, pos, signed, price)
        cash = free + self._batch_cash - need - comm
        if cash < 0.0:
            available = free + self._batch_cash
            return (
                f"insufficient cash: {order.side} {qty:g} {symbol} at {price:g} needs "
                f"{need + comm:.2f}, {available:.2f} available"
            )
        self._batch_cash = cash - free
        self._batch_pos[symbol] = pos + signed - self.portfolio.qty(symbol)
        if buy:
            self._batch_bought[symbol] = self._batch_bought.get(symbol, 0.0) + qty
        return None

    def _batch_funds(self, symbol: str, pos: float, signed: float, price: float) -> tuple:
        """(cash free to use, cash an order of ``signed`` units at ``price`` takes) at submit.

        A hook: MarginBroker (trade/margin.py) counts margin instead of the notional.
        """
        return self.portfolio.cash, signed * price

    def _fill_funds(
        self, symbol: str, qty: float, closing: float, buy: bool, price: float
    ) -> tuple:
        """(cash free to use, cash a fill of ``qty`` at ``price`` takes), as ``_batch_funds``."""
        return self.portfolio.cash, qty * price if buy else -qty * price

    def _day_end(self, ts: float) -> float:
        if ts == -_INF:
            return -_INF  # no bar seen yet: set from the first bar it meets
        day = _dt.datetime.fromtimestamp(ts, self._tz).date() + _dt.timedelta(days=1)
        return _dt.datetime(day.year, day.month, day.day, tzinfo=self._tz).timestamp()

    # -- the bar loop ----------------------------------------------------------------------

    def process_bar(self, bar: Bar) -> Sequence[Notice]:
        """Match the open orders of ``bar.symbol`` against ``bar``; mark the portfolio.

        Orders are taken in submission order. Each order first expires if it
        is a ``DAY`` order and ``bar`` opens on a later day, then fills (fully,
        or partially under ``volume_limit``) if the bar reaches its price.
        Returns the notices of this bar, an empty tuple when nothing happened.

        With :attr:`bars_at` set and open orders on another symbol than
        ``bar.symbol``, the first bar of a time matches the open orders of
        every symbol with a bar at that time, in submission order across
        symbols (backtrader's rule), and returns all their notices; the later
        bars of that time then only mark the portfolio. So every notice of a
        time comes before the strategy sees any bar of that time, as in
        backtrader, where the broker runs before ``next()``.
        """
        symbol = bar.symbol
        ts = bar.timestamp
        self._now = ts
        self._last_bars[symbol] = bar
        books = self._books
        book = books.get(symbol)
        if book is None:
            # the idle path of a single-symbol run ends at "not books"
            if not books or ts == self._group_ts or self.bars_at is None:
                self.portfolio.mark(symbol, bar.close)
                return _NO_NOTICES
            notices: Sequence[Notice] = self._match_group(bar, self.bars_at(ts))
        elif ts == self._group_ts:
            if symbol in self._group_symbols:
                # its orders already met this bar, with the other symbols' of its time
                notices = _NO_NOTICES
            else:
                notices = self._match_group(bar, self.bars_at(ts) if self.bars_at else ())
        elif len(books) > 1 and self.bars_at is not None:
            notices = self._match_group(bar, self.bars_at(ts))
        else:
            notices = self._match_book(book, bar)
        self.portfolio.mark(symbol, bar.close)
        if self._links is not None:
            self._links.sweep()
        return notices

    def _match_book(self, book: list[Order], bar: Bar) -> Sequence[Notice]:
        notices: list[Notice] = []
        volume_limit = self._volume_limit
        # what the orders of this symbol may still take from this bar; under
        # backtrader_quirks each order may take it all (FixedBarPerc)
        cap = _INF if volume_limit is None else _volume_cap(bar.volume, volume_limit)
        closed = False
        match = self._match
        for order in book:
            cap = match(order, bar, cap, notices)
            if not order.is_open:
                closed = True
        if closed:
            book[:] = [o for o in book if o.is_open]
            if not book:
                del self._books[bar.symbol]
        return notices if notices else _NO_NOTICES

    def _match_group(self, bar: Bar, peers: Sequence[Bar]) -> Sequence[Notice]:
        # backtrader's rule for orders of several symbols meeting bars of one
        # time: one pass over the open orders in submission order, each
        # against its own symbol's bar, so the cash a sale frees is there for
        # a buy submitted after it whatever the order of the bars
        ts = bar.timestamp
        bars = {b.symbol: b for b in peers if b.timestamp == ts}
        bars[bar.symbol] = bar
        # a symbol whose bar of this time came already met it then (on its own,
        # by _match_book, when it was the only symbol with orders): its orders
        # must not meet it twice (a trailing stop would trail and fill on it)
        last = self._last_bars
        seen = [s for s, b in last.items() if s != bar.symbol and b.timestamp == ts and s in bars]
        # the bars of this time have all arrived (backtrader's notifications
        # come after the broker saw every data's bar): an order decided in a
        # notice of this pass (a trailing exit in on_fill, a target sized at
        # the last close) sees its own symbol's bar of this time
        self._last_bars.update(bars)
        books = self._books
        if self._group_ts != ts:
            self._group_ts = ts
            self._group_symbols = set()
        done = self._group_symbols
        # a symbol whose orders met this time's bar already is not matched twice
        if seen:
            done.update(seen)
        symbols = [s for s in books if s in bars and s not in done]
        done.update(symbols)
        orders = sorted((o for s in symbols for o in books[s]), key=_order_id)
        volume_limit = self._volume_limit
        caps: dict[str, float] = {}
        notices: list[Notice] = []
        match = self._match
        for order in orders:
            symbol = order.symbol
            sbar = bars[symbol]
            cap = caps.get(symbol)
            if cap is None:
                cap = _INF if volume_limit is None else _volume_cap(sbar.volume, volume_limit)
            caps[symbol] = match(order, sbar, cap, notices)
        for symbol in symbols:
            book = books[symbol]
            book[:] = [o for o in book if o.is_open]
            if not book:
                del books[symbol]
        return notices if notices else _NO_NOTICES

    def _match_order(self, order: Order, bar: Bar, cap: float, notices: list[Notice]) -> float:
        """Expire, trigger or fill one order on ``bar``; return the volume left for its symbol."""
        ts = bar.timestamp
        if ts <= cast(float, order.created_ts):  # set at submission
            return cap
        work = self._work[order.id]
        if ts >= work.expires:
            if work.expires == -_INF:
                work.expires = self._day_end(ts)
            else:
                order.status = OrderStatus.EXPIRED
                order.reason = "day order expired"
                notices.append(Notice(order, OrderStatus.EXPIRED, None))
                return cap
        rules = self._rules
        price = rules.price(order, work, bar)
        if price is None:
            return cap
        qty = order.qty - order.filled_qty
        volume_limit = self._volume_limit
        quirks = rules.quirks
        if order.type is _MARKET and rules.close_mode:
            ref = cast("Bar", work.ref_bar)  # set at submission in close mode
            if volume_limit is not None:
                avail = cap if quirks else _volume_cap(ref.volume, volume_limit)
                if qty > avail:
                    qty = avail
            if qty > 0.0:
                self._execute(order, work, qty, price, ref.timestamp, notices)
            if order.is_open and not quirks:
                # it trades the close it was decided on or nothing: what
                # the volume limit left over is not carried to later bars
                order.status = OrderStatus.CANCELLED
                order.reason = "unfilled at the close (volume_limit)"
                notices.append(Notice(order, OrderStatus.CANCELLED, None))
        else:
            if qty > cap:
                qty = cap
            if qty > 0.0:
                filled = self._execute(order, work, qty, price, ts, notices)
                if not quirks:
                    cap -= filled
        return cap

    def _execute(
        self,
        order: Order,
        work: OrderWork,
        qty: float,
        price: float,
        ts: float,
        notices: list[Notice],
    ) -> float:
        # split into the part closing the current position and the part
        # opening one; the opening part alone can fail (short sale, cash),
        # as in backtrader's _execute
        pf = self.portfolio
        pos = pf.qty(order.symbol)
        buy = order.side is _BUY
        closing = 0.0
        if pos != 0.0 and (pos > 0.0) != buy:
            closing = qty if qty < abs(pos) else abs(pos)
        reason = None
        if qty > closing:
            comm = self._commission(order, work, qty, price)
            if not buy and not self.allow_short:
                reason = f"would sell short ({order.symbol} position {pos:g}); allow_short is off"
            else:
                free, need = self._fill_funds(order.symbol, qty, closing, buy, price)
                if free - need - comm < 0.0:
                    reason = (
                        f"insufficient cash at fill: {order.side} {qty:g} {order.symbol} at "
                        f"{price:g} needs {abs(need) + comm:.2f}, {free:.2f} available"
                    )
            if reason is not None:
                qty = closing
        if qty > 0.0:
            comm = self._commission(order, work, qty, price)
            fill = Fill(order.id, order.symbol, cast(Side, order.side), qty, price, comm, ts)
            self.fills.append(fill)
            pf.apply_fill(fill)
            work.filled_value += qty * price
            filled = order.filled_qty + qty
            order.filled_qty = filled
            order.avg_fill_price = work.filled_value / filled
            order.commission += comm
            status = _FILLED if order.qty - filled <= QTY_EPS else _PARTIAL
            order.status = status
            notices.append(Notice(order, status, fill))
        if reason is not None:
            order.status = _REJECTED
            order.reason = reason
            notices.append(Notice(order, _REJECTED, None))
        return qty

    def _commission(self, order: Order, work: OrderWork, qty: float, price: float) -> float:
        model = self._comm
        if model is None:
            return 0.0
        if not order.filled_qty:
            return model(qty, price)
        # a later partial fill pays what the whole filled quantity would cost
        # minus what was paid: minimums and fixed fees apply once per order
        total = order.filled_qty + qty
        comm = model(total, (work.filled_value + qty * price) / total) - order.commission
        return comm if comm > 0.0 else 0.0

    def __repr__(self) -> str:
        n_open = sum(len(b) for b in self._books.values())
        return f"<SimBroker orders={len(self._orders)} open={n_open} fills={len(self.fills)}>"


def _volume_cap(volume: float, fraction: float) -> float:
    # whole units, like backtrader's FixedBarPerc; the epsilon keeps float
    # noise (0.29 * 100 = 28.999999999999996) from losing a unit
    return float(int(volume * fraction + 1e-9))


def _order_id(order: Order) -> int:
    return order.id
