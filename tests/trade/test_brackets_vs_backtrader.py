"""Brackets and OCO groups against backtrader 1.9.78, through the whole engine.

One strategy class runs on both engines (the backtrader side through a host
that maps ``buy_bracket``/``sell_bracket``/``oco=`` to backtrader's) on three
symbols of generated minute bars with gaps (about 21,000 bars): limit and
market entries, stop and trailing-stop exits, shorts by ``sell_bracket``, OCO
exits, an OCO of three entries, parents cancelled before they fill (their
children go too) and exits cancelled by the strategy (the sibling goes too).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import numpy as np
import pandas as pd
import pytest

bt = pytest.importorskip("backtrader")

from finchan.trade import backtest  # noqa: E402
from finchan.trade._synthetic import make_bars  # noqa: E402
from finchan.trade.bar import Bar  # noqa: E402
from finchan.trade.orders import Fill, OrderStatus, Side  # noqa: E402
from finchan.trade.strategy import Strategy  # noqa: E402

CASH = 1_000_000.0
RATE = 0.001
SYMBOLS = ("AAA", "BBB", "CCC")


def _frames(n: int = 8_000) -> dict[str, pd.DataFrame]:
    """Bars on shared timestamps, with ~12 % of them dropped in blocks (price gaps)."""
    rng = np.random.default_rng(5)
    keep = np.ones(n, dtype=bool)
    for start in rng.integers(0, n - 40, 60):
        keep[start : start + rng.integers(5, 30)] = False
    return {
        s: make_bars(n, seed=40 + k)[keep].reset_index(drop=True) for k, s in enumerate(SYMBOLS)
    }


class BracketTrader(Strategy):
    """Cycles through six ways of entering with linked exits, one position per symbol."""

    params = {"qty": 30, "wait": 12, "hold": 50}

    def on_start(self) -> None:
        self.books: dict[str, dict[str, Any]] = {}
        self.seen: dict[str, int] = {}

    def _track(self, symbol: str, *orders: Any) -> None:
        for order in orders:
            if order is not None and not self.is_final(order):
                self.books[symbol]["live"][order.id] = order

    def on_bar(self, bar: Any) -> None:
        s = bar.symbol
        st = self.books.setdefault(s, {"k": 0, "live": {}, "age": 0, "entry": None, "exits": ()})
        held = self.position(s)
        qty = self.params.qty
        c = bar.close
        st["age"] += 1
        if held == 0 and not st["live"]:
            st["k"] += 1
            st["age"] = 0
            kind = st["k"] % 6
            if kind == 0:
                orders = self.buy_bracket(s, qty, round(c - 0.05, 4), round(c - 0.35, 4),
                                          round(c + 0.35, 4))
            elif kind == 1:
                orders = self.buy_bracket(s, qty, None, round(c - 0.3, 4), round(c + 0.45, 4))
            elif kind == 2:
                orders = self.buy_bracket(s, qty, None, None, round(c + 0.5, 4),
                                          stop_trail_amount=0.2)
            elif kind == 3:
                orders = self.sell_bracket(s, qty, round(c + 0.05, 4), round(c + 0.35, 4),
                                           round(c - 0.35, 4))
            elif kind == 4:
                orders = (self.buy(s, qty),)
            else:
                first = self.buy(s, qty, limit=round(c - 0.15, 4))
                second = self.buy(s, qty, stop=round(c + 0.15, 4), oco=first)
                third = self.buy(s, qty, limit=round(c - 0.25, 4), oco=first)
                orders = (first, second, third)
            st["entry"] = orders
            st["exits"] = orders[1:] if kind < 4 else ()
            self._track(s, *orders)
        elif held == 0 and st["entry"] is not None and st["age"] == self.params.wait:
            # an entry that did not fill in time: cancelling it cancels its links
            self.cancel(st["entry"][0])
        elif held != 0 and st["age"] == self.params.hold:
            # out by hand: cancelling one exit cancels its sibling
            exits = [o for o in st["exits"] if o is not None]
            if exits:
                self.cancel(exits[0])
            st["exits"] = ()
            if held > 0:
                self._track(s, self.sell(s, held))
            else:
                self._track(s, self.buy(s, -held))

    def on_order(self, order: Any) -> None:
        if self.is_final(order):
            for st in self.books.values():
                st["live"].pop(order.id, None)

    def on_fill(self, fill: Fill) -> None:
        st = self.books[fill.symbol]
        entry = st["entry"]
        held = self.position(fill.symbol)
        if entry is not None and fill.order_id == entry[0].id and st["k"] % 6 == 4 and held > 0:
            # OCO exits of a plain entry
            take = self.sell(fill.symbol, held, limit=round(fill.price + 0.3, 4))
            stop = self.sell(fill.symbol, held, stop=round(fill.price - 0.3, 4), oco=take)
            st["exits"] = (take, stop)
            st["age"] = 0
            self._track(fill.symbol, take, stop)
        elif entry is not None and any(o is not None and fill.order_id == o.id for o in entry):
            st["age"] = 0
            if st["k"] % 6 == 5:
                st["exits"] = ()


# -- the backtrader side ---------------------------------------------------------------------

_STATUS = {
    "Submitted": OrderStatus.SUBMITTED,
    "Accepted": OrderStatus.ACCEPTED,
    "Partial": OrderStatus.PARTIALLY_FILLED,
    "Completed": OrderStatus.FILLED,
    "Canceled": OrderStatus.CANCELLED,
    "Expired": OrderStatus.EXPIRED,
    "Margin": OrderStatus.REJECTED,
    "Rejected": OrderStatus.REJECTED,
}


def _ts(num: float) -> float:
    return bt.num2date(num).replace(tzinfo=dt.UTC).timestamp()


class _BtOrder:
    __slots__ = ("bt", "id")

    def __init__(self, order: Any) -> None:
        self.bt = order
        self.id = order.ref

    @property
    def status(self) -> OrderStatus:
        return _STATUS[self.bt.getstatusname()]


def _wrap(order: Any) -> _BtOrder | None:
    return None if order is None else _BtOrder(order)


def _hosted(cls: type[Strategy]) -> type[Strategy]:
    class Hosted(cls):  # type: ignore[valid-type, misc]
        def __init__(self, host: Any, params: Any) -> None:
            self.host = host
            self.params = params
            self.log = logging.getLogger("strategy.hosted")

        def _data(self, symbol: str) -> Any:
            return self.host.getdatabyname(symbol)

        def buy(self, symbol: str, qty: float, limit: float | None = None,  # type: ignore[override]
                stop: float | None = None, tif: str = "GTC", *, oco: Any = None,
                **_: Any) -> _BtOrder:
            return self._place(self.host.buy, symbol, qty, limit, stop, oco)

        def sell(self, symbol: str, qty: float, limit: float | None = None,  # type: ignore[override]
                 stop: float | None = None, tif: str = "GTC", *, oco: Any = None,
                 **_: Any) -> _BtOrder:
            return self._place(self.host.sell, symbol, qty, limit, stop, oco)

        def _place(self, place: Any, symbol: str, qty: float, limit: float | None,
                   stop: float | None, oco: Any) -> _BtOrder:
            if limit is not None:
                kw = {"exectype": bt.Order.Limit, "price": limit}
            elif stop is not None:
                kw = {"exectype": bt.Order.Stop, "price": stop}
            else:
                kw = {"exectype": bt.Order.Market}
            order = _BtOrder(place(data=self._data(symbol), size=qty,
                                   oco=None if oco is None else oco.bt, **kw))
            return order

        def _bracket(self, side: Side, symbol: str, qty: float, limit: float | None,  # type: ignore[override]
                     stop_loss: float | None, take_profit: float | None, tif: str,
                     trail_amount: float | None, trail_percent: float | None) -> tuple:
            kw: dict[str, Any] = {"data": self._data(symbol), "size": qty}
            if limit is None:
                kw["exectype"] = bt.Order.Market
            else:
                kw.update(exectype=bt.Order.Limit, price=limit)
            if trail_amount is not None:
                kw.update(stopexec=bt.Order.StopTrail, stopargs={"trailamount": trail_amount})
            elif stop_loss is None:
                kw["stopexec"] = None
            else:
                kw["stopprice"] = stop_loss
            if take_profit is None:
                kw["limitexec"] = None
            else:
                kw["limitprice"] = take_profit
            place = self.host.buy_bracket if side is Side.BUY else self.host.sell_bracket
            return tuple(_wrap(o) for o in place(**kw))

        def cancel(self, order: _BtOrder) -> bool:  # type: ignore[override]
            alive = order.bt.alive()
            self.host.cancel(order.bt)
            return alive

        def position(self, symbol: str) -> float:
            return float(self.host.getposition(self._data(symbol)).size)

    return Hosted


def _run_backtrader(
    frames: dict[str, pd.DataFrame], fill_perc: float | None = None
) -> tuple[list[tuple], float, dict]:
    fills: list[tuple] = []
    statuses: dict[str, int] = {}

    class Host(bt.Strategy):
        def __init__(self) -> None:
            self.inner = _hosted(BracketTrader)(self, BracketTrader.resolve_params({}))

        def start(self) -> None:
            self.inner.on_start()

        def notify_order(self, order: Any) -> None:
            wrapped = _BtOrder(order)
            if wrapped.status is OrderStatus.SUBMITTED:
                return
            if wrapped.status is OrderStatus.CANCELLED:
                statuses["cancelled"] = statuses.get("cancelled", 0) + 1
            self.inner.on_order(wrapped)
            for bit in order.executed.iterpending():
                side = Side.BUY if bit.size > 0 else Side.SELL
                fill = Fill(order.ref, order.data._name, side, abs(bit.size), bit.price,
                            bit.comm, _ts(bit.dt))
                fills.append(_row(fill))
                self.inner.on_fill(fill)

        def next(self) -> None:
            for d in self.datas:
                self.inner.on_bar(Bar(None, d._name, _ts(d.datetime[0]), d.open[0], d.high[0],
                                      d.low[0], d.close[0], d.volume[0]))

    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        indexed = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame["datetime"])))
        cerebro.adddata(bt.feeds.PandasData(dataname=indexed.drop(columns="datetime"),
                                            timeframe=bt.TimeFrame.Minutes), name=symbol)
    cerebro.addstrategy(Host)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=RATE)
    if fill_perc is not None:
        cerebro.broker.set_filler(bt.broker.fillers.FixedBarPerc(perc=fill_perc))
    cerebro.run()
    return fills, cerebro.broker.getvalue(), statuses


def _row(fill: Fill) -> tuple:
    return (round(fill.timestamp), fill.symbol, str(fill.side), fill.qty,
            round(fill.price, 8), round(fill.commission, 8))


def test_brackets_and_oco_fill_like_backtrader_through_the_engine() -> None:
    frames = _frames()
    assert sum(len(f) for f in frames.values()) >= 20_000
    result = backtest(BracketTrader, frames, cash=CASH, commission=RATE, allow_short=True,
                      report=False)
    ours = [_row(f) for f in result._account.broker.fills]
    theirs, value, statuses = _run_backtrader(frames)
    assert len(ours) >= 2_000
    assert len(ours) == len(theirs)
    assert ours == theirs  # the same fills, in execution order
    assert result.final_equity == pytest.approx(value, abs=1e-6)
    orders = result.orders
    cancelled = orders[orders["status"] == "CANCELLED"]
    assert len(cancelled) == statuses["cancelled"]
    linked = cancelled["reason"].str.startswith("cancelled: linked order")
    assert linked.sum() >= 200 and (~linked).sum() >= 50
    filled = orders[orders["status"] == "FILLED"].groupby("type").size()
    assert filled["STOP"] >= 100 and filled["LIMIT"] >= 200 and filled["TRAILING_STOP"] >= 30


def test_partial_fills_of_parents_and_exits_match_backtrader_volume_filler() -> None:
    # backtrader's FixedBarPerc lets each order take perc % of a bar's volume:
    # finchan's volume_limit with backtrader_quirks. Entries and exits of 30
    # units fill over several bars: the exits wait for the whole entry, an
    # exit's partial fill leaves its sibling alive, an OCO member's cancels.
    frames = _frames()
    result = backtest(BracketTrader, frames, cash=CASH, commission=RATE, allow_short=True,
                      volume_limit=0.003, backtrader_quirks=True, report=False)
    ours = [_row(f) for f in result._account.broker.fills]
    theirs, value, _ = _run_backtrader(frames, fill_perc=0.3)
    assert ours == theirs
    assert result.final_equity == pytest.approx(value, abs=1e-6)
    orders = result.orders
    # parents cancelled after a partial fill (their exits went with them)
    partly = orders[(orders["status"] == "CANCELLED") & (orders["filled_qty"] > 0)]
    assert len(partly) >= 1
    assert sum(1 for f in result._account.broker.fills if f.qty < 30) >= 500
