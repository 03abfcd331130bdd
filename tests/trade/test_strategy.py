"""finchan.trade.strategy: parameters (declared once, no shadowing), hooks and their order."""

from __future__ import annotations

from typing import Any, ClassVar

import pandas as pd
import pytest

from finchan.errors import ConfigError
from finchan.trade import backtest
from finchan.trade.broker import SimBroker
from finchan.trade.strategy import Params, Strategy


class Tuned(Strategy):
    params: ClassVar[Any] = {"period": 10, "ratio": 0.5, "name": "x", "on": True}


class Inherits(Tuned):
    pass


def test_params_are_resolved_against_the_declared_defaults():
    params = Tuned.resolve_params({"period": 20.0, "ratio": 1})
    assert params.as_dict() == {"period": 20, "ratio": 1.0, "name": "x", "on": True}
    assert type(params.period) is int and type(params["ratio"]) is float
    assert repr(Tuned.resolve_params()) == "Params(period=10, ratio=0.5, name='x', on=True)"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"perod": 3}, "Tuned: unknown parameter 'perod' (known: period, ratio, name, on)"),
        ({"period": 2.5}, "Tuned: parameter 'period' must be int like its default 10, got 2.5"),
        ({"on": 1}, "Tuned: parameter 'on' must be bool like its default True, got 1"),
        ({"name": 3}, "Tuned: parameter 'name' must be str like its default 'x', got 3"),
    ],
)
def test_bad_overrides_are_config_errors(overrides, message):
    with pytest.raises(ConfigError) as info:
        Tuned.resolve_params(overrides)
    assert str(info.value) == message


def test_params_has_one_declaration_and_two_views():
    # the class shows what it declares; an instance shows the run's values
    assert Tuned.params == {"period": 10, "ratio": 0.5, "name": "x", "on": True}
    assert Inherits.params == Tuned.params
    strategy = Inherits()
    assert isinstance(strategy.params, Params) and strategy.params.period == 10  # before bind
    strategy.bind(None, SimBroker(1000.0), Inherits.resolve_params({"period": 3}))
    assert strategy.params.period == 3
    assert Inherits.params["period"] == 10  # binding changed nothing on the class
    assert "params" not in vars(strategy)  # nothing on the instance hides the declaration
    assert Strategy.params == {}


class Journal(Strategy):
    """Records its hooks; buys on the first bar, so each order hook is seen."""

    def on_start(self) -> None:
        self.calls = ["start"]

    def on_bar(self, bar) -> None:
        self.calls.append(f"bar {bar.close:g} pos={self.position('X'):g}")
        if bar.close == 1:
            self.buy("X", 2)

    def on_order(self, order) -> None:
        self.calls.append(f"order {order.status}")

    def on_fill(self, fill) -> None:
        self.calls.append(f"fill {fill.qty:g}@{fill.price:g}")

    def on_stop(self) -> None:
        self.calls.append(f"stop cash={self.cash:g} equity={self.equity:g}")
        JOURNAL[:] = self.calls


JOURNAL: list[str] = []


def test_hooks_are_called_in_the_documented_order():
    index = pd.date_range("2020-01-01", periods=3, freq="D", tz="UTC")
    bars = pd.DataFrame({"open": [1.0, 2.0, 3.0], "high": [1.0, 2.0, 3.0], "low": [1.0, 2.0, 3.0],
                         "close": [1.0, 2.0, 3.0], "volume": [10, 10, 10]}, index=index)
    backtest(Journal, {"X": bars}, cash=100.0, progress=False)
    # notices of a bar (order before fill) come before that bar's on_bar
    assert JOURNAL == [
        "start",
        "bar 1 pos=0",
        "order ACCEPTED",
        "order FILLED",
        "fill 2@2",
        "bar 2 pos=2",
        "bar 3 pos=2",
        "stop cash=96 equity=102",
    ]
