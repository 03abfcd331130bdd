"""finchan.trade.result: the tables, curves, summary and files of a BacktestResult."""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar

import pandas as pd
import pytest

from finchan.trade import backtest
from finchan.trade.strategy import Strategy


class BuySecondSellFourth(Strategy):
    """Buys 10 on the 2nd bar of X, sells them on the 4th; buys 1 Y on Y's last bar."""

    params: ClassVar[Any] = {"qty": 10}

    def on_start(self) -> None:
        self.seen = {"X": 0, "Y": 0}

    def on_bar(self, bar) -> None:
        self.seen[bar.symbol] += 1
        n = self.seen[bar.symbol]
        if bar.symbol == "X" and n == 2:
            self.buy("X", self.params.qty)
        elif bar.symbol == "X" and n == 4:
            self.sell("X", self.params.qty)
        elif bar.symbol == "Y" and n == 4:
            self.buy("Y", 1)


def bars(opens):
    index = pd.date_range("2020-01-01", periods=len(opens), freq="D", tz="UTC")
    return pd.DataFrame({"open": opens, "high": [o + 1 for o in opens], "low": [o - 1 for o in opens],
                         "close": opens, "volume": [1000] * len(opens)}, index=index)


@pytest.fixture(scope="module")
def result():
    data = {"X": bars([10.0, 11.0, 12.0, 13.0, 14.0, 15.0]), "Y": bars([5.0] * 5)}
    return backtest(BuySecondSellFourth, data, cash=1_000.0, progress=False)


def test_fills_trades_and_orders(result):
    assert result.fills[["datetime", "symbol", "side", "qty", "price"]].to_dict("records") == [
        {"datetime": pd.Timestamp("2020-01-03", tz="UTC"), "symbol": "X", "side": "BUY",
         "qty": 10.0, "price": 12.0},
        {"datetime": pd.Timestamp("2020-01-05", tz="UTC"), "symbol": "X", "side": "SELL",
         "qty": 10.0, "price": 14.0},
        {"datetime": pd.Timestamp("2020-01-05", tz="UTC"), "symbol": "Y", "side": "BUY",
         "qty": 1.0, "price": 5.0},
    ]
    (trade,) = result.trades.to_dict("records")
    assert (trade["symbol"], trade["qty"], trade["entry_price"], trade["exit_price"]) == (
        "X", 10.0, 12.0, 14.0)
    assert list(result.orders["status"]) == ["FILLED", "FILLED", "FILLED"]
    assert list(result.orders["side"]) == ["BUY", "SELL", "BUY"]


def test_equity_has_one_value_per_time_and_the_final_state(result):
    assert list(result.equity.index) == list(pd.date_range("2020-01-01", periods=6, tz="UTC"))
    assert list(result.equity) == [1000.0, 1000.0, 1000.0, 1010.0, 1020.0, 1020.0]
    assert result.final_equity == 1020.0
    assert result.open_positions == {"Y": 1.0}
    assert {s: list(p) for s, p in result.prices().items()} == {
        "X": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0], "Y": [5.0] * 5}


def test_summary_and_repr(result):
    summary = result.summary()
    assert summary["strategy"].endswith("BuySecondSellFourth")
    assert (summary["final_equity"], summary["fills"], summary["round_trips"]) == (1020.0, 3, 1)
    assert summary["open_positions"] == {"Y": 1.0}
    # the statistics, with what JSON cannot hold (NaN: no losing trade) as null
    assert summary["stats"].keys() == result.stats.keys()
    assert math.isnan(result.stats["profit_factor"]) and summary["stats"]["profit_factor"] is None
    assert summary["stats"]["total_return"] == result.stats["total_return"]
    assert repr(result) == (
        f"<BacktestResult {summary['strategy']} fills=3 final_equity=1020.00>")


def test_save_writes_the_tables_and_a_summary_that_reads_back(result, tmp_path):
    out = result.save(tmp_path / "run", report=False)
    assert sorted(p.name for p in out.iterdir()) == [
        "equity.csv", "fills.csv", "open_trades.csv", "orders.csv", "summary.json", "trades.csv"]
    assert json.loads((out / "summary.json").read_text())["fills"] == 3
    assert (out / "fills.csv").read_text().splitlines()[0] == (
        "datetime,symbol,side,qty,price,commission,order_id")
