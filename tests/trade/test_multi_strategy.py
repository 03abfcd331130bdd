"""Several strategies in one run: books on a shared account, or separate accounts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from finchan.errors import ConfigError
from finchan.trade import backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.bar import Bar
from finchan.trade.examples import SmaCross
from finchan.trade.strategy import Strategy


class Scripted(Strategy):
    """Market orders at given bar numbers: ``plan`` is ``[(bar, signed qty), ...]``."""

    params = {"plan": [], "symbol": "X"}

    def on_start(self) -> None:
        self.n = 0
        self.seen_fills: list[tuple] = []
        self.positions: list[float] = []

    def on_bar(self, bar: Bar) -> None:
        for at, qty in self.params.plan:
            if at == self.n:
                (self.buy if qty > 0 else self.sell)(self.params.symbol, abs(qty))
        self.positions.append(self.position(self.params.symbol))
        self.n += 1

    def on_fill(self, fill) -> None:
        self.seen_fills.append((fill.side.value, fill.qty, fill.price))


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return make_bars(40)


def _fills(result) -> list[tuple]:
    frame = result.fills
    return list(zip(frame["symbol"], frame["side"], frame["qty"], frame["price"], strict=True))


def test_two_strategies_on_one_account_own_their_fills_positions_and_stats(bars):
    opens = bars["open"].tolist()
    closes = bars["close"].tolist()
    a = {"class": Scripted, "name": "long", "params": {"plan": [(5, 10), (15, -10)]}}
    # short 10 while "long" holds 10: the account is flat, each book is not
    b = {"class": Scripted, "name": "short", "params": {"plan": [(8, -10), (30, 10)]}}
    result = backtest([a, b], {"X": bars}, cash=10_000.0, allow_short=True)
    long, short = result.strategies["long"], result.strategies["short"]
    assert _fills(long) == [("X", "BUY", 10, opens[6]), ("X", "SELL", 10, opens[16])]
    assert _fills(short) == [("X", "SELL", 10, opens[9]), ("X", "BUY", 10, opens[31])]
    # the total is the account: all four fills in execution order
    assert _fills(result) == [("X", "BUY", 10, opens[6]), ("X", "SELL", 10, opens[9]),
                              ("X", "SELL", 10, opens[16]), ("X", "BUY", 10, opens[31])]
    assert list(result.fills["order_id"]) == [1, 2, 3, 4]
    assert list(long.orders["order_id"]) == [1, 3] and list(short.orders["order_id"]) == [2, 4]
    # each strategy's P&L on its own book, started with the account's cash
    long_pnl = 10 * (opens[16] - opens[6])
    short_pnl = 10 * (opens[9] - opens[31])
    assert long.final_equity == pytest.approx(10_000 + long_pnl, abs=1e-9)
    assert short.final_equity == pytest.approx(10_000 + short_pnl, abs=1e-9)
    assert result.final_equity == pytest.approx(10_000 + long_pnl + short_pnl, abs=1e-9)
    assert long.trades["pnl"].tolist() == pytest.approx([long_pnl])
    assert short.trades["side"].tolist() == ["SHORT"]
    assert len(result.trades) == 2  # the account: long 10 (6..9), then short 10 (16..31)
    assert long.stats["trades"] == short.stats["trades"] == 1
    # equity at every bar: the books' gains add up to the account's
    assert len(long.equity) == len(short.equity) == len(result.equity) == 40
    gains = (long.equity - 10_000) + (short.equity - 10_000)
    assert (gains + 10_000).tolist() == pytest.approx(result.equity.tolist(), abs=1e-9)
    assert long.equity.iloc[10] == pytest.approx(10_000 + 10 * (closes[10] - opens[6]))
    assert result.meta["strategies"]["long"]["fills"] == 2
    assert result.meta["accounts"] == "shared"


def test_a_strategy_sees_only_its_own_fills_and_position(bars):
    a = {"class": Scripted, "name": "a", "params": {"plan": [(2, 5)]}}
    b = {"class": Scripted, "name": "b", "params": {"plan": [(4, 7)]}}
    result = backtest([a, b], {"X": bars}, cash=10_000.0)
    assert result.open_positions == {"X": 12}
    assert result.strategies["a"].open_positions == {"X": 5}
    assert result.strategies["b"].open_positions == {"X": 7}


def test_separate_accounts_equal_two_single_runs():
    data = {"SYN": make_bars(2_000)}
    fast = {"class": SmaCross, "name": "fast", "params": {"fast": 5}}
    slow = {"class": SmaCross, "name": "slow"}
    both = backtest([fast, slow], data, cash=1_000_000.0, commission=0.001, accounts="separate")
    for name, params in (("fast", {"fast": 5}), ("slow", {})):
        alone = backtest(SmaCross, data, cash=1_000_000.0, commission=0.001, params=params)
        part = both.strategies[name]
        assert _fills(part) == _fills(alone) and len(alone.fills) > 50
        assert part.trades.equals(alone.trades)
        assert part.equity.equals(alone.equity)
        assert part.stats == alone.stats
    assert both.final_equity == pytest.approx(
        both.strategies["fast"].final_equity + both.strategies["slow"].final_equity)
    assert round(both.strategies["slow"].final_equity, 2) == 998_597.23
    assert len(both.fills) == len(both.strategies["fast"].fills) + len(both.strategies["slow"].fills)
    assert both.fills["order_id"].is_unique
    assert both.meta["cash"] == 2_000_000.0
    total = (both.strategies["fast"].equity + both.strategies["slow"].equity).tolist()
    assert both.equity.tolist() == pytest.approx(total, abs=1e-6)


def test_the_run_directory_holds_the_total_and_each_strategy(tmp_path: Path, bars):
    a = {"class": Scripted, "name": "a", "params": {"plan": [(2, 5)]}}
    b = {"class": Scripted, "name": "b", "params": {"plan": [(4, 7)]}}
    backtest([a, b], {"X": bars}, cash=10_000.0, save=True, report=False, work_dir=tmp_path)
    [run] = (tmp_path / "runs").iterdir()
    assert run.name.endswith("-a+b") and not (run / "INCOMPLETE").exists()
    total = json.loads((run / "summary.json").read_text())
    assert total["fills"] == 2 and sorted(total["strategies"]) == ["a", "b"]
    assert total["strategies"]["b"]["fills"] == 1
    for name in ("a", "b"):
        part = json.loads((run / "strategies" / name / "summary.json").read_text())
        assert part["fills"] == 1 and part["strategy"] == name


@pytest.mark.parametrize(
    ("strategies", "kwargs", "message"),
    [
        ([SmaCross, SmaCross], {}, "strategies.1: a second strategy named 'SmaCross'; give each its own"),
        ([{"class": SmaCross, "parms": {}}], {}, "parms"),
        ([SmaCross], {"params": {"fast": 3}}, "params is for one strategy"),
        (SmaCross, {"accounts": "separate"}, "accounts applies to several strategies"),
        ([SmaCross], {"accounts": "joint"}, "accounts"),
        ([], {}, "strategies"),
    ],
)
def test_bad_strategy_lists_are_one_clear_error(strategies, kwargs, message, bars):
    with pytest.raises(ConfigError, match=message):
        backtest(strategies, {"X": bars}, **kwargs)


def test_the_config_takes_class_or_strategies_not_both(bars):
    from finchan.env import Env

    env = Env({}, run_mode="backtrack")
    env.set_ext_options("finchan.exts.sim_broker", {})
    env.set_ext_options("finchan.exts.strategy",
                        {"class": SmaCross, "strategies": [{"class": SmaCross}]})
    with pytest.raises(ConfigError, match="takes class and params, or strategies, not both"):
        env.load_exts("finchan.exts.strategy")


def test_a_margin_call_on_a_shared_account_closes_each_book_in_proportion():
    # ES: 50 a point, 10,000 margin, 8,000 maintenance; two books long 1 and 2
    days = pd.date_range("2021-01-04", periods=8, freq="D").strftime("%Y-%m-%d")
    closes = [4000, 4000, 4000, 4000, 3800, 3800, 3800, 3800]
    frame = pd.DataFrame({"datetime": days, "open": closes, "high": closes, "low": closes,
                          "close": closes, "volume": 100})
    frame.loc[5, ["open", "low"]] = 3790  # the call fills at this open
    a = {"class": Scripted, "name": "a", "params": {"plan": [(1, 1)], "symbol": "ES"}}
    b = {"class": Scripted, "name": "b", "params": {"plan": [(1, 2)], "symbol": "ES"}}
    terms = {"ES": {"multiplier": 50, "margin": 10_000, "maintenance_margin": 8_000}}
    result = backtest([a, b], {"ES": frame}, cash=35_000.0, commission={"per_share": 3.0},
                      contracts=terms, data_options={"timeframe": "1D"})
    # day 4: equity 35,000 - 9 - 3 * 50 * 200 = 4,991 < 24,000: the account sells 3
    calls = result.orders[result.orders["reason"] == "margin call"]
    assert calls[["side", "qty", "status"]].values.tolist() == [["SELL", 3.0, "FILLED"]]
    for name, qty in (("a", 1), ("b", 2)):
        part = result.strategies[name]
        assert part.open_positions == {}
        assert _fills(part)[-1] == ("ES", "SELL", qty, 3790.0)
        assert part.fills["commission"].tolist() == [3.0 * qty, 3.0 * qty]
        assert part.final_equity == pytest.approx(35_000 - 6 * qty + qty * 50 * (3790 - 4000))
    assert result.final_equity == pytest.approx(35_000 - 18 + 3 * 50 * (3790 - 4000))
    gains = sum(result.strategies[n].final_equity - 35_000 for n in ("a", "b"))
    assert result.final_equity == pytest.approx(35_000 + gains)
