"""Portfolio: positions, cash, equity, P&L and round-trip trades."""

from __future__ import annotations

import random

import pytest

from finchan.trade.orders import Fill, Side
from finchan.trade.portfolio import Portfolio, Trade

BUY, SELL = Side.BUY, Side.SELL


def fill(side: Side, qty: float, price: float, ts: float = 0.0, comm: float = 0.0, sym: str = "X"):
    return Fill(0, sym, side, qty, price, comm, ts)


def test_buying_pays_cash_and_opens_a_long_position() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill(fill(BUY, 10, 100.0, comm=1.0))
    pos = pf.positions["X"]
    assert (pos.qty, pos.avg_price, pos.commission) == (10, 100.0, 1.0)
    assert pf.cash == 10_000.0 - 1001.0
    assert pf.equity == 10_000.0 - 1.0


def test_adding_moves_the_average_price() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill(fill(BUY, 10, 100.0))
    pf.apply_fill(fill(BUY, 30, 104.0))
    assert pf.positions["X"].avg_price == (10 * 100.0 + 30 * 104.0) / 40
    assert pf.qty("X") == 40


def test_reducing_realises_pnl_and_keeps_the_average_price() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill(fill(BUY, 10, 100.0))
    pf.apply_fill(fill(SELL, 4, 110.0))
    pos = pf.positions["X"]
    assert (pos.qty, pos.avg_price, pos.realized_pnl) == (6, 100.0, 40.0)
    assert pf.realized_pnl == 40.0
    assert pf.trades == []  # still open


def test_short_position_gains_when_price_falls() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill(fill(SELL, 10, 100.0))
    assert pf.cash == 11_000.0
    pf.mark("X", 95.0)
    assert pf.equity == 11_000.0 - 950.0
    assert pf.unrealized_pnl == 50.0
    pf.apply_fill(fill(BUY, 10, 95.0))
    assert (pf.qty("X"), pf.realized_pnl, pf.cash) == (0, 50.0, 10_050.0)


def test_closing_to_zero_records_a_round_trip() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill(fill(BUY, 10, 100.0, ts=60.0, comm=1.0))
    pf.mark("X", 101.0)
    pf.apply_fill(fill(BUY, 10, 102.0, ts=120.0, comm=1.0))
    pf.mark("X", 103.0)
    pf.mark("X", 104.0)
    pf.apply_fill(fill(SELL, 20, 105.0, ts=240.0, comm=2.0))
    pf.mark("X", 106.0)  # flat: counts for nothing
    assert pf.trades == [
        Trade(
            symbol="X",
            side="LONG",
            qty=20,
            entry_time=60.0,
            exit_time=240.0,
            entry_price=101.0,
            exit_price=105.0,
            pnl=80.0 - 4.0,
            pnl_pct=76.0 / 2020.0,
            commission=4.0,
            bars_held=3,
        )
    ]
    assert pf.positions["X"].avg_price == 0.0


def test_scaling_out_averages_the_exit_price() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill(fill(SELL, 10, 100.0, ts=1.0))
    pf.apply_fill(fill(BUY, 4, 90.0, ts=2.0))
    pf.apply_fill(fill(BUY, 6, 95.0, ts=3.0))
    (trade,) = pf.trades
    assert (trade.side, trade.qty, trade.entry_price) == ("SHORT", 10, 100.0)
    assert trade.exit_price == pytest.approx((4 * 90.0 + 6 * 95.0) / 10)
    assert trade.pnl == pytest.approx(4 * 10.0 + 6 * 5.0)
    assert trade.exit_time == 3.0


def test_flip_through_zero_closes_the_trade_and_opens_the_other_side() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill(fill(BUY, 10, 100.0, ts=1.0, comm=1.0))
    pf.apply_fill(fill(SELL, 30, 110.0, ts=2.0, comm=3.0))
    (closed,) = pf.trades
    # the flip's commission is shared pro rata: 1.0 closes, 2.0 opens
    assert (closed.side, closed.qty, closed.pnl, closed.commission) == ("LONG", 10, 98.0, 2.0)
    pos = pf.positions["X"]
    assert (pos.qty, pos.avg_price) == (-20, 110.0)
    pf.apply_fill(fill(BUY, 20, 100.0, ts=3.0, comm=2.0))
    short = pf.trades[1]
    assert (short.side, short.qty, short.entry_time, short.entry_price) == ("SHORT", 20, 2.0, 110.0)
    assert (short.pnl, short.commission) == (200.0 - 4.0, 4.0)


def test_equity_identity_holds_through_random_fills() -> None:
    rng = random.Random(5)
    pf = Portfolio(50_000.0)
    for i in range(500):
        sym = rng.choice("ABC")
        price = round(rng.uniform(90, 110), 2)
        if rng.random() < 0.3:
            side = rng.choice((BUY, SELL))
            pf.apply_fill(fill(side, rng.randint(1, 30), price, ts=i, comm=0.5, sym=sym))
        pf.mark(sym, price)
        expected = pf.cash + sum(p.qty * p.last_price for p in pf.positions.values())
        assert pf.equity == pytest.approx(expected, abs=1e-6)
        assert pf.equity == pytest.approx(
            pf.initial_cash + pf.realized_pnl - pf.commission + pf.unrealized_pnl, abs=1e-6
        )
    net = sum(t.pnl for t in pf.trades) + sum(t.pnl for t in pf.open_trades())
    assert net == pytest.approx(pf.equity - pf.initial_cash, abs=1e-6)


def test_marking_a_symbol_never_traded_changes_nothing() -> None:
    pf = Portfolio(1_000.0)
    pf.mark("Z", 10.0)
    assert (pf.equity, pf.positions, pf.qty("Z")) == (1_000.0, {}, 0.0)


def test_fractional_dust_closes_the_position() -> None:
    pf = Portfolio(1_000.0)
    pf.apply_fill(fill(BUY, 0.1, 100.0))
    pf.apply_fill(fill(BUY, 0.2, 100.0))
    pf.apply_fill(fill(SELL, 0.3, 101.0))
    assert pf.qty("X") == 0.0
    assert len(pf.trades) == 1
    assert pf.market_value == 0.0


def test_open_trades_value_the_open_position_at_the_last_price() -> None:
    pf = Portfolio(10_000.0)
    pf.apply_fill(fill(BUY, 10, 100.0, ts=5.0, comm=1.0))
    pf.mark("X", 103.0)
    (trade,) = pf.open_trades()
    assert (trade.exit_time, trade.exit_price, trade.pnl, trade.bars_held) == (None, 103.0, 29.0, 1)


def test_trade_row_follows_the_documented_columns() -> None:
    trade = Trade("X", "LONG", 1, 0.0, 60.0, 10.0, 11.0, 1.0, 0.1, 0.0, 1)
    assert dict(zip(Trade.COLUMNS, trade.to_row())) == {
        "symbol": "X",
        "side": "LONG",
        "qty": 1,
        "entry_time": 0.0,
        "exit_time": 60.0,
        "entry_price": 10.0,
        "exit_price": 11.0,
        "pnl": 1.0,
        "pnl_pct": 0.1,
        "commission": 0.0,
        "bars_held": 1,
    }


def test_plain_string_side_is_read_like_the_enum() -> None:
    pf = Portfolio(1_000.0)
    pf.apply_fill(Fill(0, "X", "BUY", 1, 10.0, 0.0, 0.0))
    assert pf.qty("X") == 1
