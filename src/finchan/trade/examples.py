"""Strategies used by the examples, the tests and the benchmarks."""

from __future__ import annotations

from typing import Any, ClassVar

from finchan.trade.bar import Bar
from finchan.trade.indicators import SMA
from finchan.trade.strategy import Strategy

__all__ = ["SmaCross", "VectorSmaCross"]

# |fast - slow| at or below this is "no sign": prices have 4 decimals, so a real
# difference is at least 3.3e-6, while float noise is about 1e-14
_DEAD_BAND = 1e-9


class _SymbolState:
    __slots__ = ("fast", "last_sign", "slow")

    def __init__(self, fast: int, slow: int) -> None:
        self.fast = SMA(fast)
        self.slow = SMA(slow)
        self.last_sign = 0


class SmaCross(Strategy):
    """The reference SMA cross: buy ``qty`` when SMA(fast) crosses above SMA(slow)
    while flat, sell the position when it crosses below while long.

    A cross compares the sign of ``fast - slow`` (with a 1e-9 dead band) with
    the last non-zero sign before it. Market orders fill at the next bar's open.
    This is the ordinary event-driven style: incremental indicators, one update
    per bar, any number of symbols.
    """

    params: ClassVar[Any] = {"fast": 10, "slow": 30, "qty": 100}

    def on_start(self) -> None:
        self.symbols: dict[str, _SymbolState] = {}

    def on_bar(self, bar: Bar) -> None:
        state = self.symbols.get(bar.symbol)
        if state is None:
            state = self.symbols[bar.symbol] = _SymbolState(self.params.fast, self.params.slow)
        close = bar.close
        self.trade_on_cross(bar.symbol, state, state.fast.update(close) - state.slow.update(close))

    def trade_on_cross(self, symbol: str, state: Any, diff: float) -> None:
        """The reference rule, given ``fast - slow`` and the symbol's ``last_sign``."""
        if diff > _DEAD_BAND:
            sign = 1
        elif diff < -_DEAD_BAND:
            sign = -1
        else:
            return  # no sign yet (warm-up NaN compares False) or inside the dead band
        last = state.last_sign
        if sign == last:
            return
        state.last_sign = sign
        if last == 0:
            return
        held = self.position(symbol)
        if sign > 0 and held == 0:
            self.buy(symbol, self.params.qty)
        elif sign < 0 and held > 0:
            self.sell(symbol, held)


class VectorSmaCross(SmaCross):
    """:class:`SmaCross` with its averages computed up front, the vectorised style.

    ``on_start`` computes both SMAs over the whole ``closes`` parameter with
    the vectorised :func:`finchan.trade.indicators.sma`; ``on_bar`` looks them
    up by the bar's position. One symbol only, and ``closes`` must be the
    closes of exactly the bars the run replays, in order: this style trades
    the generality of incremental indicators for speed on long single-symbol
    histories. Same rule, same fills.

    Example
    -------
    >>> from finchan.trade import backtest
    >>> from finchan.trade.synthetic import make_bars
    >>> bars = make_bars(2_000)
    >>> result = backtest(VectorSmaCross, {"SYN": bars}, cash=1_000_000,
    ...                   params={"closes": bars["close"].to_numpy()})
    >>> len(result.fills), round(result.final_equity, 2)
    (76, 999332.95)
    """

    params: ClassVar[Any] = {**SmaCross.params, "closes": None}

    def on_start(self) -> None:
        from finchan.trade.indicators import sma

        closes = self.params.closes
        if closes is None:
            raise ValueError("VectorSmaCross needs the run's closes as the 'closes' parameter")
        # lists: indexing a list by a Python int is several times faster than numpy's
        self._fast = sma(closes, self.params.fast).tolist()
        self._slow = sma(closes, self.params.slow).tolist()
        self._i = 0
        self._state = _SymbolState(1, 1)  # only its last_sign is used

    def on_bar(self, bar: Bar) -> None:
        i = self._i
        self._i = i + 1
        self.trade_on_cross(bar.symbol, self._state, self._fast[i] - self._slow[i])
