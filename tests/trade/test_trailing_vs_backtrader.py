"""Trailing stops, trailing stop-limits and order_target_value against backtrader 1.9.78.

Through the whole engine (``finchan.trade.backtest``) on three symbols of
generated minute bars with gaps (about 21,000 bars): one strategy class runs
on both engines, the backtrader side through a host that places
``StopTrail``/``StopTrailLimit`` orders and calls backtrader's own
``order_target_value``. The symbols share their timestamps and their gaps
(sessions missing for all of them), since backtrader re-matches a stale bar
for a data that has none at a time another data has one.
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
from finchan.trade.orders import Fill, Side  # noqa: E402
from finchan.trade.strategy import Strategy  # noqa: E402

CASH = 1_000_000.0
RATE = 0.001
SYMBOLS = ("AAA", "BBB", "CCC")


def _frames(n: int = 8_000) -> dict[str, pd.DataFrame]:
    """Bars on shared timestamps, with ~12 % of them dropped in blocks (price gaps)."""
    rng = np.random.default_rng(3)
    keep = np.ones(n, dtype=bool)
    for start in rng.integers(0, n - 40, 60):
        keep[start : start + rng.integers(5, 30)] = False
    return {
        s: make_bars(n, seed=20 + k)[keep].reset_index(drop=True) for k, s in enumerate(SYMBOLS)
    }


class TrailTrader(Strategy):
    """Entries by trailing buy stop or order_target_value; exits by trailing sells."""

    params = {"value": 5_000.0, "hold": 40}

    def on_start(self) -> None:
        self.symbols: dict[str, dict[str, Any]] = {}

    def on_bar(self, bar: Any) -> None:
        st = self.symbols.setdefault(
            bar.symbol, {"entry": None, "exit": None, "reduce": None, "held": 0, "k": 0}
        )
        held = self.position(bar.symbol)
        if held == 0 and st["entry"] is None and st["reduce"] is None:
            st["k"] += 1
            if st["k"] % 2:
                st["entry"] = self.buy(bar.symbol, 40, trail_amount=0.06)
            else:
                st["entry"] = self.order_target_value(bar.symbol, self.params.value)
        elif held > 0:
            st["held"] += 1
            if st["held"] == self.params.hold and st["exit"] is not None:
                self.cancel(st["exit"])
                st["exit"] = None
                st["reduce"] = self.order_target_value(bar.symbol, held * bar.close * 0.4)

    def on_fill(self, fill: Fill) -> None:
        st = self.symbols[fill.symbol]
        held = self.position(fill.symbol)
        if st["entry"] is not None and fill.order_id == st["entry"].id:
            st["entry"] = None
            st["held"] = 0
            st["exit"] = self._exit(fill, held, st["k"])
        elif st["reduce"] is not None and fill.order_id == st["reduce"].id:
            st["reduce"] = None
            st["exit"] = self._exit(fill, held, st["k"] + 1) if held > 0 else None
        elif st["exit"] is not None and fill.order_id == st["exit"].id and held == 0:
            st["exit"] = None

    def _exit(self, fill: Fill, qty: float, k: int) -> Any:
        kind = k % 4
        if kind == 0:
            return self.sell(fill.symbol, qty, trail_percent=0.0015)
        if kind == 1:
            return self.sell(fill.symbol, qty, trail_amount=0.12)
        if kind == 2:
            return self.sell(fill.symbol, qty, limit=round(fill.price - 0.2, 4), trail_amount=0.1)
        return self.sell(fill.symbol, qty, limit=round(fill.price - 0.25, 4), trail_percent=0.001)


# -- the backtrader side ---------------------------------------------------------------------


def _ts(num: float) -> float:
    return bt.num2date(num).replace(tzinfo=dt.UTC).timestamp()


class _BtOrder:
    __slots__ = ("bt", "id")

    def __init__(self, order: Any) -> None:
        self.bt = order
        self.id = order.ref


def _hosted(cls: type[Strategy]) -> type[Strategy]:
    class Hosted(cls):  # type: ignore[valid-type, misc]
        def __init__(self, host: Any, params: Any) -> None:
            self.host = host
            self.params = params
            self.log = logging.getLogger("strategy.hosted")

        def _place(self, side: str, symbol: str, qty: float, limit: float | None,
                   trail_amount: float | None, trail_percent: float | None) -> _BtOrder:
            data = self.host.getdatabyname(symbol)
            kw: dict[str, Any] = {"data": data, "size": qty, "trailamount": trail_amount,
                                  "trailpercent": trail_percent}
            if limit is None:
                kw["exectype"] = bt.Order.StopTrail
            else:
                # backtrader offsets the limit from the reference price (the
                # close), finchan from the stop: the same initial limit needs
                # plimit = limit +/- the trail distance
                close = data.close[0]
                distance = trail_amount if trail_amount else close * trail_percent
                kw.update(exectype=bt.Order.StopTrailLimit, price=close,
                          plimit=limit + distance if side == "SELL" else limit - distance)
            place = self.host.buy if side == "BUY" else self.host.sell
            return _BtOrder(place(**kw))

        def buy(self, symbol: str, qty: float, limit: float | None = None,  # type: ignore[override]
                stop: float | None = None, tif: str = "GTC", *, trail_amount: float | None = None,
                trail_percent: float | None = None) -> _BtOrder:
            assert stop is None and tif == "GTC"
            return self._place("BUY", symbol, qty, limit, trail_amount, trail_percent)

        def sell(self, symbol: str, qty: float, limit: float | None = None,  # type: ignore[override]
                 stop: float | None = None, tif: str = "GTC", *, trail_amount: float | None = None,
                 trail_percent: float | None = None) -> _BtOrder:
            assert stop is None and tif == "GTC"
            return self._place("SELL", symbol, qty, limit, trail_amount, trail_percent)

        def order_target_value(self, symbol: str, value: float) -> _BtOrder | None:  # type: ignore[override]
            order = self.host.order_target_value(data=self.host.getdatabyname(symbol), target=value)
            return None if order is None else _BtOrder(order)

        def cancel(self, order: _BtOrder) -> bool:  # type: ignore[override]
            alive = order.bt.alive()
            self.host.cancel(order.bt)
            return alive

        def position(self, symbol: str) -> float:
            return float(self.host.getposition(self.host.getdatabyname(symbol)).size)

    return Hosted


def _run_backtrader(frames: dict[str, pd.DataFrame]) -> tuple[list[tuple], float, dict[str, int]]:
    fills: list[Fill] = []
    kinds: dict[str, int] = {}

    class Host(bt.Strategy):
        def __init__(self) -> None:
            self.inner = _hosted(TrailTrader)(self, TrailTrader.resolve_params({}))

        def start(self) -> None:
            self.inner.on_start()

        def notify_order(self, order: Any) -> None:
            assert order.status not in (order.Margin, order.Rejected), order
            for bit in order.executed.iterpending():
                name = order.getordername()
                kinds[name] = kinds.get(name, 0) + 1
                side = Side.BUY if bit.size > 0 else Side.SELL
                fill = Fill(order.ref, order.data._name, side, abs(bit.size), bit.price,
                            bit.comm, _ts(bit.dt))
                fills.append(fill)
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
    cerebro.run()
    return [_row(f) for f in fills], cerebro.broker.getvalue(), kinds


def _row(fill: Fill) -> tuple:
    return (round(fill.timestamp), fill.symbol, str(fill.side), fill.qty,
            round(fill.price, 8), round(fill.commission, 8))


def test_trailing_orders_and_order_target_value_fill_like_backtrader_through_the_engine() -> None:
    frames = _frames()
    assert sum(len(f) for f in frames.values()) >= 20_000
    result = backtest(TrailTrader, frames, cash=CASH, commission=RATE, report=False)
    ours = sorted(_row(f) for f in result._account.broker.fills)
    theirs, value, kinds = _run_backtrader(frames)
    assert ours == sorted(theirs)
    assert result.final_equity == pytest.approx(value, abs=1e-6)
    # every order kind took part, many times
    filled = result.orders[result.orders["status"] == "FILLED"].groupby("type").size()
    assert filled["TRAILING_STOP"] >= 100 and filled["TRAILING_STOP_LIMIT"] >= 30
    assert filled["MARKET"] >= 100
    assert kinds["StopTrail"] == filled["TRAILING_STOP"]
    assert kinds["StopTrailLimit"] == filled["TRAILING_STOP_LIMIT"]
    buys = result.orders[(result.orders["type"] == "TRAILING_STOP") & (result.orders["side"] == "BUY")]
    assert (buys["status"] == "FILLED").sum() >= 50
