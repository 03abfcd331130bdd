"""The trading kit: bars, strategies, a simulated broker, portfolio, statistics, reports.

Built on the finchan core (the core never imports this package). The usual
entry points::

    from finchan.trade import Strategy, backtest
    from finchan.trade.indicators import SMA, EMA, RSI

Names are imported lazily, so ``import finchan.trade`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BAR_EVENT",
    "BacktestResult",
    "Bar",
    "BarFeed",
    "Fill",
    "Order",
    "OrderStatus",
    "OrderType",
    "Portfolio",
    "Side",
    "SimAccount",
    "SimBroker",
    "Strategy",
    "TimeInForce",
    "backtest",
    "compute_stats",
    "load_bars",
    "sweep",
]

_WHERE = {
    "BAR_EVENT": "finchan.trade.bar",
    "Bar": "finchan.trade.bar",
    "BacktestResult": "finchan.trade.result",
    "BarFeed": "finchan.trade.data",
    "load_bars": "finchan.trade.data",
    "Fill": "finchan.trade.orders",
    "Order": "finchan.trade.orders",
    "OrderStatus": "finchan.trade.orders",
    "OrderType": "finchan.trade.orders",
    "Side": "finchan.trade.orders",
    "TimeInForce": "finchan.trade.orders",
    "Portfolio": "finchan.trade.portfolio",
    "SimAccount": "finchan.trade.account",
    "SimBroker": "finchan.trade.broker",
    "Strategy": "finchan.trade.strategy",
    "backtest": "finchan.trade.api",
    "compute_stats": "finchan.trade.stats",
    "sweep": "finchan.trade.sweeps",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'finchan.trade' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
