"""Margin, leverage, contract multipliers and short borrow costs (trade/margin.py).

By hand on small examples (docs/broker.md works the first one), and through
the whole engine against backtrader 1.9.78's ``CommInfoBase`` (``mult``,
``margin``, ``stocklike=False``, ``interest`` on shorts) on generated bars.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from finchan.errors import ConfigError
from finchan.trade import backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.bar import Bar
from finchan.trade.broker import PerShare
from finchan.trade.indicators import SMA
from finchan.trade.margin import ContractSpec, MarginBroker, parse_contracts
from finchan.trade.orders import Order, OrderStatus
from finchan.trade.strategy import Strategy

ES = {"multiplier": 50, "margin": 10_000, "maintenance_margin": 8_000}


def _bar(broker: MarginBroker, symbol: str, day: int, o: float, c: float) -> Any:
    return broker.process_bar(Bar(None, symbol, day * 86400.0, o, max(o, c), min(o, c), c, 1000))


# -- by hand ------------------------------------------------------------------------------------


def test_futures_pnl_margin_use_and_margin_call_by_hand():
    broker = MarginBroker(30_000.0, contracts={"ES": ES}, commission=PerShare(2.0))
    pf = broker.portfolio
    _bar(broker, "ES", 0, 4000, 4000)
    assert broker.submit(Order("ES", "BUY", 2)).status is OrderStatus.ACCEPTED
    # day 1: filled at the open 4010; 2 contracts * $2 commission; marked at 4020
    notices = _bar(broker, "ES", 1, 4010, 4020)
    assert [(n.fill.price, n.fill.commission) for n in notices] == [(4010, 4.0)]
    assert pf.cash == 30_000 - 4  # no notional paid
    assert pf.unrealized_pnl == 2 * 50 * (4020 - 4010) == 1_000
    assert pf.equity == 30_996
    assert pf.margin_used() == 20_000 and pf.maintenance_margin() == 16_000
    assert pf.free_cash == 30_996 - 20_000
    # day 2: close 3820, equity 29,996 - 19,000 = 10,996 < 16,000: margin call
    notices = _bar(broker, "ES", 2, 4000, 3820)
    assert pf.equity == 10_996
    [call] = notices
    assert (call.status, call.order.side, call.order.qty, call.order.reason) == (
        OrderStatus.ACCEPTED, "SELL", 2, "margin call")
    # day 3: closed at the open 3810, realised 2 * 50 * (3810 - 4010) = -20,000
    notices = _bar(broker, "ES", 3, 3810, 3815)
    assert [(n.status, n.fill.price) for n in notices] == [(OrderStatus.FILLED, 3810)]
    assert pf.qty("ES") == 0 and pf.realized_pnl == -20_000
    assert pf.cash == pf.equity == 30_000 - 8 - 20_000
    [trade] = pf.trades
    assert (trade.pnl, trade.commission) == (-20_008, 8.0)
    assert trade.pnl_pct == pytest.approx(-20_008 / (2 * 50 * 4010))
    # a second margin call is not sent for a position already being closed
    assert not _bar(broker, "ES", 4, 3815, 3815)


def test_margin_call_closes_the_largest_maintenance_margin_first_until_covered():
    contracts = {"ES": ES, "NQ": {"multiplier": 20, "margin": 6_000, "maintenance_margin": 5_000},
                 "YM": {"multiplier": 5, "margin": 3_000, "maintenance_margin": 2_500}}
    broker = MarginBroker(60_000.0, contracts=contracts)
    pf = broker.portfolio
    for symbol in contracts:
        _bar(broker, symbol, 0, 1000, 1000)
    broker.submit(Order("ES", "BUY", 1))  # maintenance 8,000
    broker.submit(Order("NQ", "BUY", 2))  # 10,000
    broker.submit(Order("YM", "BUY", 2))  # 5,000
    for symbol in contracts:
        _bar(broker, symbol, 1, 1000, 1000)
    assert pf.margin_used() == 10_000 + 12_000 + 6_000
    assert pf.maintenance_margin() == 23_000
    # ES falls 800 points: 1 * 50 * -800 = -40,000; equity 20,000 < 23,000.
    # Closing NQ (10,000) leaves 13,000 <= 20,000: only NQ is called
    notices = _bar(broker, "ES", 2, 1000, 200)
    assert pf.equity == 20_000
    assert [(n.order.symbol, n.order.side, n.order.qty, n.order.reason) for n in notices] == [
        ("NQ", "SELL", 2, "margin call")]


def test_leverage_account_by_hand():
    # a CFD/FX account: 30:1, maintenance half the initial margin
    broker = MarginBroker(1_000.0, contracts={"EURUSD": {"leverage": 30}}, allow_short=True)
    pf = broker.portfolio
    _bar(broker, "EURUSD", 0, 1.10, 1.10)
    broker.submit(Order("EURUSD", "SELL", 20_000))  # notional 22,000 on 1,000 of cash
    _bar(broker, "EURUSD", 1, 1.10, 1.12)
    assert pf.qty("EURUSD") == -20_000
    assert pf.equity == pytest.approx(1_000 - 20_000 * 0.02)  # 600
    assert pf.margin_used() == pytest.approx(20_000 * 1.12 / 30)  # 746.67
    assert pf.maintenance_margin() == pytest.approx(20_000 * 1.12 / 30 / 2)  # 373.33
    assert pf.free_cash == pytest.approx(600 - 746.6666666)
    # 1.14: equity 200 < maintenance 380: closed at the next open
    [call] = _bar(broker, "EURUSD", 2, 1.12, 1.14)
    assert (call.order.side, call.order.qty) == ("BUY", 20_000)
    _bar(broker, "EURUSD", 3, 1.15, 1.15)
    assert pf.qty("EURUSD") == 0 and pf.cash == pytest.approx(1_000 - 20_000 * 0.05, abs=1e-6)
    # a new position needs its initial margin from free cash: 0 left
    order = broker.submit(Order("EURUSD", "BUY", 100_000))
    assert order.status is OrderStatus.REJECTED and order.reason.startswith("insufficient cash")


def test_borrow_cost_of_a_short_by_hand():
    broker = MarginBroker(10_000.0, contracts={"XYZ": {"borrow_rate": 0.0365}}, allow_short=True)
    pf = broker.portfolio
    _bar(broker, "XYZ", 0, 50, 50)
    broker.submit(Order("XYZ", "SELL", 100))
    _bar(broker, "XYZ", 1, 50, 50)  # shorted at 50 on day 1
    assert pf.borrow_cost == 0
    _bar(broker, "XYZ", 2, 50, 50)  # 1 day: 100 * 50 * 0.0365 / 365 = 0.5
    _bar(broker, "XYZ", 5, 50, 50)  # 3 days more
    assert pf.borrow_cost == pytest.approx(2.0)
    assert pf.equity == pytest.approx(10_000 - 2.0)


def test_multiplier_on_a_cash_instrument_pays_the_notional():
    broker = MarginBroker(100_000.0, contracts={"OPT": {"multiplier": 100}})
    pf = broker.portfolio
    _bar(broker, "OPT", 0, 5, 5)
    broker.submit(Order("OPT", "BUY", 10))
    _bar(broker, "OPT", 1, 5, 6)
    assert pf.cash == 100_000 - 10 * 5 * 100
    assert pf.equity == 100_000 + 10 * 100
    assert pf.margin_used() == 0


# -- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"ES": {"multipler": 50}}, "contracts.ES: unknown key 'multipler' (valid: multiplier, "
                                    "margin, maintenance_margin, leverage, maintenance_ratio, "
                                    "borrow_rate)"),
        ({"ES": {"margin": 1, "leverage": 2}}, "contracts.ES: margin (futures) and leverage"),
        ({"ES": {"maintenance_margin": 1}}, "contracts.ES: maintenance_margin needs margin"),
        ({"ES": {"multiplier": 0}}, "contracts.ES: multiplier must be a finite number > 0"),
        ({"ES": {"margin": 5, "maintenance_margin": 6}}, "contracts.ES: maintenance_margin 6"),
        ({"ES": 50}, "contracts.ES: expected a mapping with keys multiplier"),
    ],
)
def test_bad_contract_terms_are_one_line_naming_symbol_and_key(terms, message):
    with pytest.raises(ConfigError) as info:
        parse_contracts(terms)
    assert str(info.value).startswith(message)
    with pytest.raises(ConfigError) as info:
        backtest(_Reversal, {"ES": make_bars(50)}, contracts=terms)
    assert "finchan.exts.sim_broker" in str(info.value) and message in str(info.value)


def test_unknown_backtest_option_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) contract \(valid: .*contracts"):
        backtest(_Reversal, {"ES": make_bars(50)}, contract={})


def test_the_docs_margin_config_is_valid():
    import re
    from pathlib import Path

    from ruamel.yaml import YAML

    from finchan.trade.exts.sim_broker import BrokerOptions

    text = (Path(__file__).parents[2] / "docs" / "broker.md").read_text(encoding="utf-8")
    section = text[text.index("## Margin, leverage and contracts"):]
    block = re.search(r"^```text\n(.*?)^```", section, re.S | re.M).group(1)
    config = YAML(typ="safe", pure=True).load(block)["finchan.exts.sim_broker"]
    options = BrokerOptions.model_validate(config)
    specs = parse_contracts(options.contracts)
    assert specs["ES"] == ContractSpec(multiplier=50, margin=12_000, maintenance_margin=11_000)
    assert specs["*"] == ContractSpec(leverage=30) and options.margin_call is True


def test_default_terms_apply_to_every_symbol_not_named():
    specs = parse_contracts({"*": {"leverage": 10}, "ES": ES})
    broker = MarginBroker(1.0, contracts=specs)
    assert broker.portfolio.spec("ES") == ContractSpec(**ES)
    assert broker.portfolio.spec("EURUSD") == ContractSpec(leverage=10)


# -- against backtrader through the engine ---------------------------------------------------------


class _Reversal(Strategy):
    """Always in the market: +qty on an SMA 10/30 cross up, -qty on a cross down."""

    params = {"qty": 20, "fast": 10, "slow": 30}

    def on_start(self) -> None:
        self.fast = SMA(self.params.fast)
        self.slow = SMA(self.params.slow)
        self.sign = 0

    def on_bar(self, bar: Bar) -> None:
        diff = self.fast.update(bar.close) - self.slow.update(bar.close)
        if diff != diff:
            return
        sign = 1 if diff > 0 else -1
        if sign != self.sign:
            self.sign = sign
            self.order_target(bar.symbol, sign * self.params.qty)


def _run_backtrader(frame: pd.DataFrame, qty: int, commission: Any, days: bool) -> tuple:
    bt = pytest.importorskip("backtrader")
    fills: list[tuple] = []
    values: list[float] = []

    class BtReversal(bt.Strategy):
        def __init__(self) -> None:
            self.fast = bt.indicators.SMA(self.data.close, period=10)
            self.slow = bt.indicators.SMA(self.data.close, period=30)
            self.sign = 0

        def notify_order(self, order: Any) -> None:
            for bit in order.executed.iterpending():
                side = "BUY" if bit.size > 0 else "SELL"
                when = bt.num2date(bit.dt).replace(tzinfo=dt.UTC).timestamp()
                fills.append((round(when), side, abs(bit.size), bit.price, round(bit.comm, 9)))

        def prenext(self) -> None:
            values.append(self.broker.getvalue())

        def next(self) -> None:
            values.append(self.broker.getvalue())
            sign = 1 if self.fast[0] - self.slow[0] > 0 else -1
            if sign != self.sign:
                self.sign = sign
                self.order_target_size(target=sign * qty)

    indexed = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame["datetime"])))
    cerebro = bt.Cerebro(stdstats=False)
    timeframe = bt.TimeFrame.Days if days else bt.TimeFrame.Minutes
    cerebro.adddata(bt.feeds.PandasData(dataname=indexed.drop(columns="datetime"),
                                        timeframe=timeframe), name="ES")
    cerebro.addstrategy(BtReversal)
    cerebro.broker.setcash(100_000.0)
    cerebro.broker.setcommission(**commission)
    # finchan keeps borrow costs out of fills' commissions (they are in cash, daily)
    cerebro.broker.set_int2pnl(False)
    cerebro.run()
    return fills, values, cerebro.broker.getvalue(), cerebro.broker.getcash()


def _ours(result: Any) -> list[tuple]:
    return [(round(f.timestamp), str(f.side), f.qty, f.price, round(f.commission, 9))
            for f in result._account.broker.fills]


def test_futures_reversal_on_20k_bars_matches_backtrader_commission_margin_and_value():
    frame = make_bars(20_000)
    # 1,000 per point, 5,000 of margin a contract, $2.5 a contract: 12 contracts
    # take 60 % of the cash in margin, so reversals often fail for cash in both engines
    terms = {"multiplier": 1000.0, "margin": 5_000.0}
    result = backtest(_Reversal, {"ES": frame}, cash=100_000.0, allow_short=True,
                      commission={"per_share": 2.5}, contracts={"ES": terms}, margin_call=False,
                      params={"qty": 12})
    theirs, values, value, cash = _run_backtrader(
        frame, 12, {"commission": 2.5, "margin": 5_000.0, "mult": 1000.0}, days=False)
    ours = _ours(result)
    assert len(ours) == 119
    assert ours == theirs
    rejected = result.orders[result.orders["status"] == "REJECTED"]
    assert len(rejected) == 315 and rejected["reason"].str.startswith("insufficient cash").all()
    # every bar's value, and the cash that is free (backtrader's getcash())
    equity = np.frombuffer(result._account.equity, dtype="float64")
    assert np.allclose(equity, values, rtol=0, atol=1e-6)
    pf = result._account.broker.portfolio
    assert pf.equity == pytest.approx(value, abs=1e-6)
    assert round(pf.equity, 2) == 138_134.80
    assert pf.free_cash == pytest.approx(cash, abs=1e-6)


def test_stock_shorts_with_borrow_cost_on_daily_bars_match_backtrader_interest():
    frame = make_bars(3_000)
    frame["datetime"] = pd.date_range("2015-01-01", periods=len(frame), freq="D").strftime(
        "%Y-%m-%d")
    result = backtest(_Reversal, {"ES": frame}, cash=100_000.0, allow_short=True,
                      commission=0.001, params={"qty": 300},
                      contracts={"ES": {"borrow_rate": 0.05}}, data_options={"timeframe": "1D"})
    theirs, values, value, _ = _run_backtrader(
        frame, 300, {"commission": 0.001, "interest": 0.05}, days=True)
    assert _ours(result) == theirs
    pf = result._account.broker.portfolio
    assert pf.borrow_cost > 100
    equity = np.frombuffer(result._account.equity, dtype="float64")
    assert np.allclose(equity, values, rtol=0, atol=1e-6)
    assert pf.equity == pytest.approx(value, abs=1e-6)


class _Half(Strategy):
    def on_bar(self, bar: Bar) -> None:
        if not self.position(bar.symbol):
            self.order_target_percent(bar.symbol, 0.5)


def test_order_target_percent_values_a_contract_at_price_times_multiplier():
    frame = make_bars(3)
    result = backtest(_Half, {"ES": frame}, cash=100_000.0,
                      contracts={"ES": {"multiplier": 50, "margin": 1_000}})
    # 50,000 of notional at 100.0305 * 50 a contract: 9 contracts
    assert result.fills["qty"].tolist() == [9]
    assert result.fills["price"].tolist() == [frame["open"][1]]
