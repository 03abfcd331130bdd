"""SimBroker.last_bar: the public accessor strategies size their orders by."""

from __future__ import annotations

from finchan.trade import backtest
from finchan.trade.bar import Bar
from finchan.trade.broker import SimBroker
from finchan.trade.strategy import Strategy
from finchan.trade.synthetic import make_bars


def test_last_bar_is_none_before_the_first_bar_then_the_latest_per_symbol():
    broker = SimBroker(10_000.0)
    assert broker.last_bar("X") is None
    first = Bar(None, "X", 0.0, 100, 101, 99, 100, 1000)
    other = Bar(None, "Y", 0.0, 50, 51, 49, 50.5, 10)
    second = Bar(None, "X", 60.0, 100.5, 102, 100, 101, 1000)
    for bar in (first, other, second):
        broker.process_bar(bar)
    assert broker.last_bar("X") is second
    assert broker.last_bar("Y") is other
    assert broker.last_bar("Z") is None


class _TargetValue(Strategy):
    """Sizes one order by value on the third bar: priced at the broker's last bar."""

    seen = 0

    def on_bar(self, bar):
        self.seen += 1
        if self.seen == 3:
            assert self.broker.last_bar(bar.symbol) is bar
            self.order_target_value(bar.symbol, 10.5 * bar.close)


def test_order_target_value_sizes_by_the_brokers_last_bar():
    result = backtest(_TargetValue, {"SYN": make_bars(5)}, cash=100_000)
    fills = result.fills
    assert fills[["symbol", "side", "qty"]].values.tolist() == [["SYN", "BUY", 10.0]]
