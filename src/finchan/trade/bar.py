"""The bar event: one OHLCV candle of one symbol."""

from __future__ import annotations

import itertools
from typing import Any

from finchan.event import Event

__all__ = ["BAR_EVENT", "Bar"]

#: name of every bar event; subscribe to it to see all bars of all symbols
BAR_EVENT = "bar"

_orphan_ids = itertools.count(1)


class Bar(Event):
    """An OHLCV bar; ``timestamp`` is the bar's open time (POSIX seconds).

    Created by the million on the hot path, so it bypasses ``Event.__init__``
    and stores its fields in slots. ``bar.kwargs`` is built on demand.
    """

    __slots__ = ("close", "high", "low", "open", "symbol", "volume")

    #: ``None`` for a base bar; the label (``"1D"``) of a resampled bar
    #: (:class:`finchan.trade.resample.ResampledBar`)
    timeframe: str | None = None

    def __init__(
        self,
        env: Any,
        symbol: str,
        timestamp: float,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float = 0.0,
        event_id: Any = None,
    ) -> None:
        self.env = env
        self.name = BAR_EVENT
        self.timestamp = timestamp
        self.expire = 0
        self.id = (
            event_id
            if event_id is not None
            else next(env.event_ids if env is not None else _orphan_ids)
        )
        self.symbol = symbol
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume

    @property
    def kwargs(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
        }

    def __repr__(self) -> str:
        return (
            f"<Bar {self.symbol} {self.dt.isoformat()} o={self.open} h={self.high} "
            f"l={self.low} c={self.close} v={self.volume}>"
        )
