"""The trading kit through the whole engine against backtrader 1.9.78.

``test_broker_vs_backtrader.py`` drives SimBroker from a loop; here the
finchan side is ``finchan.trade.backtest`` (Env, dispatcher, bar feed, the
sim_broker and strategy extensions) and the example ``examples/multi_symbol``
through the real CLI.

The backtrader side runs the *same* strategy class: ``_on_backtrader`` hosts a
finchan Strategy in a ``bt.Strategy`` whose ``buy``/``sell``/``cancel``/
``position`` place ``bt.Order.Limit``/``Stop``/``StopLimit`` orders
(``price``/``plimit``) on the bt broker, feeding it ``Bar`` objects from
``next()`` and ``Fill`` objects from ``notify_order()``. The reference SMA
cross is written for backtrader independently, with its own SMA indicator.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
import json
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

bt = pytest.importorskip("backtrader")

from finchan.trade import backtest  # noqa: E402
from finchan.trade._synthetic import make_bars  # noqa: E402
from finchan.trade.bar import Bar  # noqa: E402
from finchan.trade.examples import SmaCross  # noqa: E402
from finchan.trade.orders import Fill, Side  # noqa: E402
from finchan.trade.strategy import Strategy  # noqa: E402
from finchan_testing import ROOT, run_finchan  # noqa: E402

EXAMPLE = ROOT / "examples" / "multi_symbol"
CASH = 100_000.0
RATE = 0.001


def _load(name: str) -> ModuleType:
    # a private module name: the CLI imports the same file as plain "strategy"
    spec = importlib.util.spec_from_file_location(f"_multi_symbol_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Breakout = _load("strategy").Breakout
make_data = _load("make_data")
FILES = [EXAMPLE / "data" / f"{symbol}.csv" for symbol in make_data.SYMBOLS]


# -- the backtrader side ------------------------------------------------------------------


def _ts(num: float) -> float:
    return bt.num2date(num).replace(tzinfo=dt.UTC).timestamp()


class _BtOrder:
    """What a hosted strategy holds for an order placed on backtrader: its id."""

    __slots__ = ("bt", "id")

    def __init__(self, order: Any) -> None:
        self.bt = order
        self.id = order.ref


def _on_backtrader(cls: type[Strategy]) -> type[Strategy]:
    """``cls`` with its order and position calls going to a ``bt.Strategy`` host.

    It covers what the strategies here use (``buy``, ``sell``, ``cancel``,
    ``position``, ``equity``, ``params``, ``log``); the host forwards fills to
    ``on_fill`` but no other order notices, since a run compared here must
    have no rejection.
    """
    exectype = {(False, False): bt.Order.Market, (True, False): bt.Order.Limit,
                (False, True): bt.Order.Stop, (True, True): bt.Order.StopLimit}

    class Hosted(cls):  # type: ignore[valid-type, misc]
        def __init__(self, host: Any, params: Any) -> None:
            self.host = host
            self.params = params
            self.log = logging.getLogger(f"strategy.{cls.__name__}")

        def _place(self, side: str, symbol: str, qty: float, limit: float | None,
                   stop: float | None, tif: str) -> _BtOrder:
            assert tif == "GTC"
            kw: dict[str, Any] = {"data": self.host.getdatabyname(symbol), "size": qty,
                                  "exectype": exectype[limit is not None, stop is not None]}
            if stop is not None:
                kw["price"] = stop
                if limit is not None:
                    kw["plimit"] = limit
            elif limit is not None:
                kw["price"] = limit
            place = self.host.buy if side == "BUY" else self.host.sell
            return _BtOrder(place(**kw))

        def buy(self, symbol: str, qty: float, limit: float | None = None,  # type: ignore[override]
                stop: float | None = None, tif: str = "GTC") -> _BtOrder:
            return self._place("BUY", symbol, qty, limit, stop, tif)

        def sell(self, symbol: str, qty: float, limit: float | None = None,  # type: ignore[override]
                 stop: float | None = None, tif: str = "GTC") -> _BtOrder:
            return self._place("SELL", symbol, qty, limit, stop, tif)

        def cancel(self, order: _BtOrder) -> bool:  # type: ignore[override]
            alive = order.bt.alive()
            self.host.cancel(order.bt)
            return alive

        def position(self, symbol: str) -> float:
            return float(self.host.getposition(self.host.getdatabyname(symbol)).size)

        @property
        def equity(self) -> float:
            return self.host.broker.getvalue()

    return Hosted


def _run_backtrader(cls: type[Strategy], frames: dict[str, pd.DataFrame], params: dict | None = None,
                    slip_perc: float = 0.0) -> tuple[list[tuple], float]:
    fills: list[Fill] = []

    class Host(bt.Strategy):
        def __init__(self) -> None:
            self.inner = _on_backtrader(cls)(self, cls.resolve_params(params))

        def start(self) -> None:
            self.inner.on_start()

        def notify_order(self, order: Any) -> None:
            for bit in order.executed.iterpending():
                side = Side.BUY if bit.size > 0 else Side.SELL
                fill = Fill(order.ref, order.data._name, side, abs(bit.size), bit.price,
                            bit.comm, _ts(bit.dt))
                fills.append(fill)
                self.inner.on_fill(fill)

        def next(self) -> None:
            for d in self.datas:
                self.inner.on_bar(Bar(None, d._name, _ts(d.datetime[0]), d.open[0], d.high[0],
                                      d.low[0], d.close[0], d.volume[0]))

        def stop(self) -> None:
            self.inner.on_stop()

    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        indexed = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame["datetime"])))
        feed = bt.feeds.PandasData(dataname=indexed.drop(columns="datetime"),
                                   timeframe=bt.TimeFrame.Days)
        cerebro.adddata(feed, name=symbol)
    cerebro.addstrategy(Host)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=RATE)
    if slip_perc:
        cerebro.broker.set_slippage_perc(slip_perc)
    cerebro.run()
    return [_row(f) for f in fills], cerebro.broker.getvalue()


def _row(fill: Fill) -> tuple:
    return (round(fill.timestamp), fill.symbol, str(fill.side), fill.qty, fill.price, fill.commission)


def _finchan_rows(result: Any) -> list[tuple]:
    # in execution order: both engines fill the orders meeting the bars of one
    # time in submission order across symbols (docs/broker.md), so the rows
    # are compared unsorted
    return [_row(f) for f in result._account.broker.fills]


# -- the breakout example, both engines ------------------------------------------------------


@pytest.fixture(scope="module")
def example_frames() -> dict[str, pd.DataFrame]:
    return {path.stem: pd.read_csv(path) for path in FILES}


@pytest.fixture(scope="module")
def example_result() -> Any:
    # the example's files and broker options, as finchan -c examples/multi_symbol runs them
    return backtest(Breakout, FILES, cash=CASH, commission=RATE, allow_short=True,
                    data_options={"timeframe": "1D"})


def test_breakout_example_fills_match_backtrader_through_the_engine(example_result, example_frames):
    ours = _finchan_rows(example_result)
    theirs, their_equity = _run_backtrader(Breakout, example_frames)
    orders = example_result.orders
    used = set(zip(orders["type"], orders["side"], strict=True))
    assert used >= {("STOP", "BUY"), ("STOP_LIMIT", "BUY"), ("STOP", "SELL"), ("LIMIT", "SELL"),
                    ("MARKET", "SELL")}
    assert (orders["status"] == "CANCELLED").sum() > 300
    assert not (orders["status"] == "REJECTED").any()
    assert len(ours) == 404
    assert ours == theirs
    assert round(example_result.final_equity, 2) == round(their_equity, 2)


def test_tight_brackets_on_volatile_bars_match_backtrader_with_quirks_and_slippage():
    # exits close enough for one bar to fill both: the position goes short and
    # is bought back at market. With slippage, backtrader_quirks=True is what
    # matches: backtrader floors a slipped limit sell filled at the open at
    # the limit only, and caps a slipped stop-limit at the bar's range only
    # (docs/broker.md, "questionable corners" 1 and 2)
    frames = {symbol: make_data.daily_bars(1_000, seed + 100, first, drift, volatility=0.03)
              for symbol, (seed, first, drift) in make_data.SYMBOLS.items()}
    # small entries: finchan's and backtrader's cash checks agree only while
    # cash is not so tight that the order of two symbols' fills decides
    params = {"lookback": 10, "trend": 20, "stop_loss": 0.012, "take_profit": 0.015,
              "max_hold": 8, "entry_bars": 3, "notional": 5_000.0}
    options = {"cash": CASH, "commission": RATE, "slippage": {"bps": 5}, "params": params,
               "allow_short": True, "data_options": {"timeframe": "1D"}}
    result = backtest(Breakout, frames, backtrader_quirks=True, **options)
    ours = _finchan_rows(result)
    theirs, their_equity = _run_backtrader(Breakout, frames, params, slip_perc=0.0005)
    orders = result.orders
    covers = orders[(orders["type"] == "MARKET") & (orders["side"] == "BUY")]
    assert len(covers) == 83
    assert not (orders["status"] == "REJECTED").any()
    assert len(ours) == 854
    assert ours == theirs
    assert round(result.final_equity, 2) == round(their_equity, 2)
    # finchan's own rule (a slipped price never leaves the bar) gives other prices
    assert _finchan_rows(backtest(Breakout, frames, **options)) != theirs


# -- an all-in rotation over several symbols, both engines ---------------------------------------


class Rotation(Strategy):
    """Every ``every`` days hold only the symbol with the best ``lookback`` momentum, all in.

    Decided on the last symbol's bar of a day: sell the holding, buy the new
    one with ``invest`` of the equity. The buy needs the sale's cash, so it
    fills only if the orders of all symbols at one time meet their bars in
    submission order.
    """

    params = {"lookback": 10, "every": 5, "invest": 0.9}

    def on_start(self) -> None:
        self.closes: dict[str, list[float]] = {}
        self.days = 0
        self.held: str | None = None

    def on_bar(self, bar: Bar) -> None:
        self.closes.setdefault(bar.symbol, []).append(bar.close)
        if bar.symbol != "INITECH":  # the last symbol of the feed: the day is complete
            return
        self.days += 1
        n = self.params.lookback
        if self.days <= n or self.days % self.params.every:
            return
        best = max(sorted(self.closes), key=lambda s: self.closes[s][-1] / self.closes[s][-1 - n])
        if best == self.held:
            return
        if self.held is not None and self.position(self.held):
            self.sell(self.held, self.position(self.held))
        close = self.closes[best][-1]
        self.buy(best, float(int(self.equity * self.params.invest / close)))
        self.held = best


def _rotation_frames() -> dict[str, pd.DataFrame]:
    return {symbol: make_data.daily_bars(400, seed + 7, first, drift, volatility=0.025)
            for symbol, (seed, first, drift) in make_data.SYMBOLS.items()}


def test_all_in_rotation_over_three_symbols_matches_backtrader_fill_by_fill():
    frames = _rotation_frames()
    result = backtest(Rotation, frames, cash=CASH, commission=RATE,
                      data_options={"timeframe": "1D"})
    ours = _finchan_rows(result)
    theirs, their_equity = _run_backtrader(Rotation, frames)
    orders = result.orders
    assert not (orders["status"] == "REJECTED").any()
    assert len(ours) == 71
    assert ours == theirs
    assert round(result.final_equity, 2) == round(their_equity, 2) == 57_600.37
    # the sale comes before the buy it pays for, even when the bought symbol's
    # bar is dispatched first (ACME before GLOBEX before INITECH in the feed)
    pairs = [(a, b) for a, b in itertools.pairwise(ours) if a[0] == b[0]]
    assert all(a[2] == "SELL" and b[2] == "BUY" for a, b in pairs)
    assert len(pairs) == 35
    assert sum(b[1] < a[1] for a, b in pairs) == 16


class _SymbolBySymbol(Rotation):
    def on_start(self) -> None:
        super().on_start()
        self.broker.bars_at = None  # the old rule: each symbol's orders at its own bar


def test_rotation_matched_symbol_by_symbol_loses_the_buys_that_come_first():
    # what the rule above fixes: a buy whose bar comes before the sale's is
    # rejected for the cash the sale had not yet freed
    result = backtest(_SymbolBySymbol, _rotation_frames(), cash=CASH, commission=RATE,
                      data_options={"timeframe": "1D"})
    rejected = result.orders[result.orders["status"] == "REJECTED"]
    assert len(rejected) == 14
    assert rejected["reason"].str.startswith("insufficient cash at fill").all()
    assert len(result.fills) == 44


# -- the reference SMA cross, both engines -------------------------------------------------------


def _run_backtrader_sma_cross(frame: pd.DataFrame) -> tuple[list[tuple], float]:
    fills: list[tuple] = []

    class BtSmaCross(bt.Strategy):
        def __init__(self) -> None:
            self.fast = bt.indicators.SMA(self.data.close, period=10)
            self.slow = bt.indicators.SMA(self.data.close, period=30)
            self.last_sign = 0

        def notify_order(self, order: Any) -> None:
            for bit in order.executed.iterpending():
                side = "BUY" if bit.size > 0 else "SELL"
                fills.append((round(_ts(bit.dt)), "SYN", side, abs(bit.size), bit.price, bit.comm))

        def next(self) -> None:
            diff = self.fast[0] - self.slow[0]
            sign = 1 if diff > 1e-9 else -1 if diff < -1e-9 else 0
            if sign == 0 or sign == self.last_sign:
                return
            last, self.last_sign = self.last_sign, sign
            held = self.position.size
            if last and sign > 0 and held == 0:
                self.buy(size=100)
            elif last and sign < 0 and held > 0:
                self.sell(size=held)

    indexed = frame.set_index(pd.DatetimeIndex(pd.to_datetime(frame["datetime"])))
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=indexed.drop(columns="datetime"),
                                        timeframe=bt.TimeFrame.Minutes), name="SYN")
    cerebro.addstrategy(BtSmaCross)
    cerebro.broker.setcash(1_000_000.0)
    cerebro.run()
    return fills, cerebro.broker.getvalue()


def test_reference_sma_cross_on_20k_bars_matches_backtrader_through_the_engine():
    frame = make_bars(20_000)
    result = backtest(SmaCross, {"SYN": frame}, cash=1_000_000.0)
    ours = _finchan_rows(result)
    theirs, their_equity = _run_backtrader_sma_cross(frame)
    # the first fills of shared/data/README.md (the same bars: its first 20k)
    assert [(dt.datetime.fromtimestamp(r[0], dt.UTC).strftime("%H:%M"), r[2], r[4])
            for r in ours[:5]] == [("01:07", "BUY", 100.3811), ("01:08", "SELL", 100.3347),
                                   ("02:10", "BUY", 99.3409), ("02:16", "SELL", 98.9601),
                                   ("02:26", "BUY", 99.1974)]
    assert len(ours) == 747
    assert ours == theirs
    assert round(result.final_equity, 2) == round(their_equity, 2) == 1_001_763.30


# -- the example through the CLI ------------------------------------------------------------------


def test_example_runs_from_the_cli_and_writes_what_the_python_route_computes(
    example_result, tmp_path: Path
):
    work = tmp_path / "work"
    proc = run_finchan("-c", str(EXAMPLE), "--set", f"work_dir={work}", cwd=tmp_path,
                       env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (work / "runs").iterdir()
    for name in ("summary.json", "fills.csv", "trades.csv", "orders.csv", "equity.csv",
                 "report.html", "config.yml", "run.json"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "INCOMPLETE").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert (summary["strategy"], summary["class"]) == ("Breakout", "strategy:Breakout")
    assert summary["fills"] == 404
    assert summary["final_equity"] == pytest.approx(example_result.final_equity, abs=1e-6)
    # the config route and finchan.trade.backtest write the same tables, byte for byte
    python_dir = example_result.save(tmp_path / "python", report=False)
    for name in ("fills.csv", "trades.csv", "orders.csv", "equity.csv"):
        assert (run_dir / name).read_bytes() == (python_dir / name).read_bytes(), name
