"""Strategies used by the examples, the tests and the benchmarks."""

from __future__ import annotations

from typing import Any, ClassVar

from finchan.trade.bar import Bar
from finchan.trade.indicators import SMA
from finchan.trade.strategy import Strategy

__all__ = ["SmaCross"]

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
    """

    params: ClassVar[dict[str, Any]] = {"fast": 10, "slow": 30, "qty": 100}

    def on_start(self) -> None:
        self.state: dict[str, _SymbolState] = {}

    def on_bar(self, bar: Bar) -> None:
        state = self.state.get(bar.symbol)
        if state is None:
            state = self.state[bar.symbol] = _SymbolState(self.params.fast, self.params.slow)
        close = bar.close
        diff = state.fast.update(close) - state.slow.update(close)
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
        held = self.position(bar.symbol)
        if sign > 0 and held == 0:
            self.buy(bar.symbol, self.params.qty)
        elif sign < 0 and held > 0:
            self.sell(bar.symbol, held)

    def describe(self) -> dict[str, Any]:
        return {"fast": self.params.fast, "slow": self.params.slow}
