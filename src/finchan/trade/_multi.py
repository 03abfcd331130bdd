"""Several strategies in one run: books on a shared account, or separate accounts.

Shared account (the default): every strategy trades through a
:class:`BookBroker`, its view of the one broker: its own orders (the broker
matches them all, with the account's cash and shorting rules), its own fills
and a :class:`~finchan.trade.portfolio.Portfolio` of its own, started with the
account's cash and fed only by its fills. So a strategy's ``position``,
``cash``, ``equity``, statistics and trades are its own; the account's are
the total. Costs the account bears alone (borrow costs, margin-call orders)
stay in the total.

Separate accounts: each strategy has its own account (the broker options of
``finchan.exts.sim_broker``, the cash each), exactly as if it ran alone; the
total adds them up (cash, equity at every bar, fills and trades). Order ids are
numbered across the accounts so that they stay unique in the total.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from finchan.trade.portfolio import Portfolio, Position, Trade

if TYPE_CHECKING:
    from finchan.trade.account import SimAccount
    from finchan.trade.bar import Bar
    from finchan.trade.broker import Notice, SimBroker
    from finchan.trade.orders import Fill, Order

__all__ = ["Book", "BookBroker", "CombinedAccount"]


class BookBroker:
    """One strategy's view of a shared broker: its orders, fills and portfolio.

    Anything else (``fill_at``, ``allow_short``, ...) is the shared broker's.
    """

    def __init__(
        self, broker: SimBroker, portfolio: Portfolio, owners: dict[int, Book], book: Book
    ):
        self._broker = broker
        self._owners = owners
        self._book = book
        #: the strategy's own portfolio, fed by its fills only
        self.portfolio = portfolio
        #: the strategy's fills, in execution order
        self.fills: list[Fill] = []
        self._orders: dict[int, Order] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._broker, name)

    @property
    def orders(self) -> list[Order]:
        """The strategy's orders, by id."""
        return list(self._orders.values())

    def get_order(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def submit(self, order: Order) -> Order:
        self._broker.submit(order)
        self._orders[order.id] = order
        self._owners[order.id] = self._book
        return order

    def cancel(self, order_id: int) -> bool:
        if order_id not in self._orders:
            return False
        return self._broker.cancel(order_id)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        mine = self._orders
        return [o for o in self._broker.open_orders(symbol) if o.id in mine]


class Book:
    """One strategy's records on a shared account, shaped like a SimAccount for its result."""

    def __init__(self, name: str, account: SimAccount, owners: dict[int, Book]) -> None:
        self.name = name
        shared = account.broker.portfolio
        self.broker = BookBroker(account.broker, _like(shared), owners, self)
        self.times = array("d")
        self.equity = array("d")
        #: the closes the account recorded (shared: the same bars)
        self.prices = account.prices

    def apply(self, fill: Fill) -> None:
        self.broker.fills.append(fill)
        self.broker.portfolio.apply_fill(fill)


def _like(portfolio: Portfolio) -> Portfolio:
    # a portfolio with the shared one's cash and contract terms, empty
    from finchan.trade.margin import DEFAULT_KEY, MarginPortfolio

    if isinstance(portfolio, MarginPortfolio):
        specs = dict(portfolio._specs)
        if portfolio._default is not None:
            specs[DEFAULT_KEY] = portfolio._default
        return MarginPortfolio(portfolio.initial_cash, specs)
    return Portfolio(portfolio.initial_cash)


def book_bar_handler(books: list[Book]) -> Callable[[Bar], None]:
    """A bar handler marking every book and recording its equity (after the account's)."""
    portfolios = [(b.broker.portfolio, b.times.append, b.equity.append) for b in books]

    def on_bar(bar: Bar) -> None:
        symbol = bar.symbol
        close = bar.close
        ts = bar.timestamp
        for portfolio, add_time, add_equity in portfolios:
            portfolio.mark(symbol, close)
            add_time(ts)
            add_equity(portfolio.equity)

    return on_bar


class _CombinedPortfolio:
    """The sum of several accounts' portfolios, for the total's result."""

    def __init__(self, portfolios: list[Portfolio]) -> None:
        self._portfolios = portfolios

    @property
    def initial_cash(self) -> float:
        return sum(p.initial_cash for p in self._portfolios)

    @property
    def cash(self) -> float:
        return sum(p.cash for p in self._portfolios)

    @property
    def equity(self) -> float:
        return sum(p.equity for p in self._portfolios)

    @property
    def trades(self) -> list[Trade]:
        # in closing order across the accounts
        trades = [t for p in self._portfolios for t in p.trades]
        trades.sort(key=lambda t: t.exit_time or 0.0)
        return trades

    def open_trades(self) -> list[Trade]:
        return [t for p in self._portfolios for t in p.open_trades()]

    @property
    def positions(self) -> dict[str, Position]:
        out: dict[str, Position] = {}
        for portfolio in self._portfolios:
            for symbol, pos in portfolio.positions.items():
                total = out.get(symbol)
                if total is None:
                    total = out[symbol] = Position(symbol, pos.last_price)
                total.qty += pos.qty
        return out


class _CombinedBroker:
    def __init__(self, brokers: list[SimBroker]) -> None:
        self._brokers = brokers
        self.portfolio = _CombinedPortfolio([b.portfolio for b in brokers])

    @property
    def fills(self) -> list[Fill]:
        fills = [f for b in self._brokers for f in b.fills]
        fills.sort(key=lambda f: (f.timestamp, f.order_id))
        return fills

    @property
    def orders(self) -> list[Order]:
        orders = [o for b in self._brokers for o in b.orders]
        orders.sort(key=lambda o: o.id)
        return orders


class CombinedAccount:
    """Separate accounts seen as one, shaped like a SimAccount for the total's result."""

    def __init__(self, accounts: list[SimAccount]) -> None:
        self._accounts = accounts
        self.broker = _CombinedBroker([a.broker for a in accounts])
        first = accounts[0]
        # every account records every bar of the run: the same times
        self.times = first.times
        self.prices = first.prices

    @property
    def equity(self) -> Any:
        import numpy as np

        columns = [np.frombuffer(a.equity, dtype="float64") for a in self._accounts]
        return np.sum(columns, axis=0)


def route_notices(
    owners: dict[int, Book], hooks: dict[Book, Callable[[Notice], None]], account: Portfolio
) -> Callable[[Notice], None]:
    """The account listener of a shared account: each notice to the book owning its order."""

    def on_notice(notice: Notice) -> None:
        book = owners.get(notice.order.id)
        if book is None:
            _share_account_order(notice, hooks, account)
            return
        if notice.fill is not None:
            book.apply(notice.fill)
        hooks[book](notice)

    return on_notice


def _share_account_order(
    notice: Notice, hooks: dict[Book, Callable[[Notice], None]], account: Portfolio
) -> None:
    # an order of the account itself (a margin call) closes the books'
    # positions in its symbol in proportion: a fill of q units out of an
    # account position of Q closes q/Q of every book's position, at the fill's
    # price, the commission shared by the units each book trades
    from finchan.trade.broker import Notice as _Notice
    from finchan.trade.orders import Fill, Side

    order = notice.order
    symbol = order.symbol
    holders = [book for book in hooks if book.broker.portfolio.qty(symbol) != 0.0]
    fill = notice.fill
    if fill is None:
        for book in holders:
            hooks[book](notice)
        return
    signed = fill.qty if fill.side is Side.BUY else -fill.qty
    before = account.qty(symbol) - signed  # the account's portfolio has the fill already
    if before == 0.0 or not holders:
        return
    share = fill.qty / abs(before)
    trades = [(book, -book.broker.portfolio.qty(symbol) * share) for book in holders]
    units = sum(abs(qty) for _, qty in trades)
    for book, qty in trades:
        side = Side.BUY if qty > 0.0 else Side.SELL
        comm = fill.commission * abs(qty) / units
        part = Fill(fill.order_id, symbol, side, abs(qty), fill.price, comm, fill.timestamp)
        book.apply(part)
        hooks[book](_Notice(order, notice.status, part))
