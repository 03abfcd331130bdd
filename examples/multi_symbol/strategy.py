"""A channel breakout on several symbols, with stop, stop-limit and limit orders.

For each symbol, independently:

- **Entry** (while flat, in an uptrend: close above SMA(``trend``)): buy
  ``notional`` worth on a break of the ``lookback``-bar highest high, one cent
  above it. When the close is already in the top ``near`` part of the channel a
  gap through the high is likely, so the entry is a stop-limit that pays at most
  ``max_chase`` above the stop; otherwise a plain stop order. An entry left
  unfilled for ``entry_bars`` bars is cancelled and placed again at the new high.
- **Exits** (when the entry fills): a protective stop ``stop_loss`` below the
  fill price and a take-profit limit ``take_profit`` above it, both GTC; when
  one fills the other is cancelled (one-cancels-other by hand).
- **Time exit**: a position held ``max_hold`` bars is sold at market, its
  exit orders cancelled.
- If one wide bar fills both exits, the position is short: it is bought back
  at market on the next bar.

Sizes come from the symbol's own prices, never from cash or equity, so the
decisions of one symbol do not depend on the order in which the bars of the
other symbols arrive at a given time. Each order is assumed to fill in one
piece (no ``volume_limit`` on the broker).

Run it with ``finchan -c examples/multi_symbol``; from Python, in this directory::

    from finchan.trade import backtest
    from strategy import Breakout
    result = backtest(Breakout, ["data/ACME.csv", "data/GLOBEX.csv", "data/INITECH.csv"],
                      commission=0.001, allow_short=True, data_options={"timeframe": "1D"})

(``allow_short``: see the comment in ``finchan.yml``.)
"""

from __future__ import annotations

from typing import Any, ClassVar

from finchan.trade.bar import Bar
from finchan.trade.indicators import SMA, Highest, Lowest
from finchan.trade.orders import Fill, Order, OrderStatus
from finchan.trade.strategy import Strategy

__all__ = ["Breakout"]

# exchanges take prices in ticks: every price this strategy sends is in cents
_CENT = 0.01


def _cents(price: float) -> float:
    return round(price, 2)


class _SymbolBook:
    """What the strategy tracks for one symbol: indicators and its working orders."""

    __slots__ = ("cover", "entry", "entry_age", "exit", "held", "high", "low", "stop", "target",
                 "trend")

    def __init__(self, lookback: int, trend: int) -> None:
        self.high = Highest(lookback)
        self.low = Lowest(lookback)
        self.trend = SMA(trend)
        self.entry: Order | None = None
        self.entry_age = 0
        self.stop: Order | None = None
        self.target: Order | None = None
        self.exit: Order | None = None
        self.cover: Order | None = None
        self.held = 0


class Breakout(Strategy):
    """Long-only channel breakout with bracket exits, on every symbol of the data."""

    params: ClassVar[dict[str, Any]] = {
        "lookback": 20,  # bars of the channel (highest high, lowest low)
        "trend": 50,  # enter only when the close is above SMA(trend)
        "notional": 20_000.0,  # cash value of one entry
        "near": 0.2,  # close in the channel's top 20 %: stop-limit entry
        "max_chase": 0.01,  # stop-limit entry: pay at most 1 % above the stop
        "entry_bars": 5,  # replace an entry unfilled for this many bars
        "stop_loss": 0.04,  # protective stop 4 % under the entry price
        "take_profit": 0.08,  # take-profit limit 8 % above it
        "max_hold": 30,  # sell at market after this many bars
    }

    def on_start(self) -> None:
        self.books: dict[str, _SymbolBook] = {}

    def on_bar(self, bar: Bar) -> None:
        symbol = bar.symbol
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = _SymbolBook(self.params.lookback, self.params.trend)
        high = book.high.update(bar.high)
        low = book.low.update(bar.low)
        trend = book.trend.update(bar.close)
        if not (book.trend.ready and book.high.ready):
            return
        held = self.position(symbol)
        if held < 0:
            if book.cover is None:
                book.cover = self.buy(symbol, -held)
            return
        if held > 0:
            book.held += 1
            if book.held >= self.params.max_hold and book.exit is None:
                self._cancel_exits(book)
                book.exit = self.sell(symbol, held)
            return
        if book.entry is not None:
            book.entry_age += 1
            if book.entry_age < self.params.entry_bars:
                return
            self.cancel(book.entry)
            book.entry = None
        if bar.close <= trend:
            return
        stop = _cents(high + _CENT)
        qty = int(self.params.notional / stop)
        if qty < 1:
            return
        if bar.close >= high - self.params.near * (high - low):
            limit = _cents(stop * (1.0 + self.params.max_chase))
            book.entry = self.buy(symbol, qty, limit=limit, stop=stop)
        else:
            book.entry = self.buy(symbol, qty, stop=stop)
        book.entry_age = 0

    def on_fill(self, fill: Fill) -> None:
        book = self.books[fill.symbol]
        order_id = fill.order_id
        if book.entry is not None and order_id == book.entry.id:
            book.entry = None
            book.held = 0
            price = fill.price
            stop = _cents(price * (1.0 - self.params.stop_loss))
            target = _cents(price * (1.0 + self.params.take_profit))
            book.stop = self.sell(fill.symbol, fill.qty, stop=stop)
            book.target = self.sell(fill.symbol, fill.qty, limit=target)
        elif book.stop is not None and order_id == book.stop.id:
            book.stop = None
            self._cancel_exits(book)
        elif book.target is not None and order_id == book.target.id:
            book.target = None
            self._cancel_exits(book)
        elif book.exit is not None and order_id == book.exit.id:
            book.exit = None
        elif book.cover is not None and order_id == book.cover.id:
            book.cover = None

    def on_order(self, order: Order) -> None:
        if order.status is OrderStatus.REJECTED:
            self.log.warning("%s: order #%d rejected: %s", order.symbol, order.id, order.reason)

    def _cancel_exits(self, book: _SymbolBook) -> None:
        # cancelling an order that filled on the same bar is a no-op (False)
        for order in (book.stop, book.target):
            if order is not None:
                self.cancel(order)
        book.stop = book.target = None

    def on_stop(self) -> None:
        open_symbols = sorted(s for s in self.books if self.position(s))
        self.log.info("Breakout done: equity %.2f, still held: %s", self.equity,
                      ", ".join(open_symbols) or "nothing")
