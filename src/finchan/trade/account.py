"""A simulated account: the SimBroker driven by bar events, with per-bar records.

:class:`SimAccount` subscribes to bars (before any strategy), lets the broker
match open orders against each bar, tells its listeners of every order state
change and fill, and records the equity (and each symbol's close) per bar in
compact ``array('d')`` columns, so a 10-million-bar backtest keeps its curves
in a few hundred MB.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from finchan.trade.bar import BAR_EVENT

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.trade.bar import Bar
    from finchan.trade.broker import Notice, SimBroker

__all__ = ["SimAccount"]

# progress is reported every this many bars (a power of two: one mask test per bar)
_PROGRESS_EVERY = 1 << 14


class SimAccount:
    """The SimBroker of a run, fed by its bar events.

    Parameters
    ----------
    env:
        the Env; the account subscribes to its bar events (prepended).
    broker:
        the simulated broker.
    record_prices:
        also keep every bar's close per symbol (for the report's price chart).
    """

    def __init__(self, env: Env, broker: SimBroker, record_prices: bool = True) -> None:
        self.env = env
        self.broker = broker
        self.listeners: list[Callable[[Notice], Any]] = []
        self.progress: Callable[[int, float], None] | None = None
        #: bar open times and the equity after each bar
        self.times = array("d")
        self.equity = array("d")
        #: symbol -> (times, closes) of its bars, when record_prices
        self.prices: dict[str, tuple[array, array]] = {}
        self._record_prices = record_prices
        env.dispatcher.subscribe(BAR_EVENT, self.on_bar, prepend=True)

    def on_bar(self, bar: Bar) -> None:
        notices = self.broker.process_bar(bar)
        if notices:
            for notice in notices:
                for listener in self.listeners:
                    listener(notice)
        times = self.times
        times.append(bar.timestamp)
        self.equity.append(self.broker.portfolio.equity)
        if self._record_prices:
            series = self.prices.get(bar.symbol)
            if series is None:
                series = self.prices[bar.symbol] = (array("d"), array("d"))
            series[0].append(bar.timestamp)
            series[1].append(bar.close)
        if not len(times) & (_PROGRESS_EVERY - 1) and self.progress is not None:
            self.progress(len(times), bar.timestamp)
