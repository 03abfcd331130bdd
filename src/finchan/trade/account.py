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
        #: the bar whose notices are being sent to the listeners
        self.bar: Bar | None = None
        if broker.bars_at is None:
            broker.bars_at = self._bars_at
        #: the bar handler subscribed to bar events (prepended: the broker matches first)
        self.on_bar = self._make_bar_handler()
        env.dispatcher.subscribe(BAR_EVENT, self.on_bar, prepend=True)

    def hook_failed(self, hook: Callable[..., Any], exc: Exception) -> None:
        """Report ``exc`` raised by ``hook`` (a listener's callee) while notices of a bar go out.

        The dispatcher logs it naming ``hook`` and, with ``on_callback_error:
        stop``, ends the run with it as the cause of its error.
        """
        assert self.bar is not None  # set before any notice goes out
        self.env.dispatcher.callback_failed(hook, self.bar, exc)

    def _listener_failed(self, listener: Callable[..., Any], exc: Exception) -> None:
        self.hook_failed(listener, exc)

    def _bars_at(self, ts: float) -> list[Any]:
        # the bars of one time from every source that can tell (BarFeed.bars_at)
        out: list[Any] = []
        for source in self.env.dispatcher.event_sources:
            bars_at = getattr(source, "bars_at", None)
            if bars_at is not None:
                out.extend(bars_at(ts))
        return out

    def _make_bar_handler(self) -> Callable[[Bar], None]:
        # a closure over locals: it runs once per bar, and a closure's variables
        # are cheaper to reach than attributes of self
        process_bar = self.broker.process_bar
        portfolio = self.broker.portfolio
        listeners = self.listeners
        times = self.times
        add_time = times.append
        add_equity = self.equity.append
        prices = self.prices
        record_prices = self._record_prices
        mask = _PROGRESS_EVERY - 1
        account = self

        failed = self._listener_failed

        def on_bar(bar: Bar) -> None:
            notices = process_bar(bar)
            if notices:
                account.bar = bar
                for notice in notices:
                    for listener in listeners:
                        # a failing listener loses neither the bar's other
                        # notices nor its equity point (on_callback_error: log)
                        try:
                            listener(notice)
                        except Exception as exc:
                            failed(listener, exc)
            ts = bar.timestamp
            add_time(ts)
            add_equity(portfolio.equity)
            if record_prices:
                series = prices.get(bar.symbol)
                if series is None:
                    series = prices[bar.symbol] = (array("d"), array("d"))
                series[0].append(ts)
                series[1].append(bar.close)
            if not len(times) & mask and account.progress is not None:
                account.progress(len(times), ts)

        return on_bar
