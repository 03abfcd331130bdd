"""SimBroker against backtrader 1.9.78 itself: same strategy, same bars, same fills.

One deterministic rule (``_decide``) drives both engines. It places market,
limit, stop and stop-limit orders (stop-limits with the limit above and below
the stop), long and short, GTC and DAY, and cancels orders left open for six
bars, on three symbols whose bars gap at the open. The finchan side is a plain
loop: every symbol's bar goes through ``SimBroker.process_bar``, then the rule
sees the bar and submits. backtrader runs the rule in ``Strategy.next``; its
orders also meet the bars after the one they were decided on.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

bt = pytest.importorskip("backtrader")

from finchan.trade.bar import Bar  # noqa: E402
from finchan.trade.broker import BpsSlippage, PercentOfValue, SimBroker  # noqa: E402
from finchan.trade.orders import Order  # noqa: E402

_START = dt.datetime(2020, 1, 6, tzinfo=dt.UTC)
_STEP = 900.0  # 15-minute bars: 96 a day, so DAY orders do expire


def _make_bars(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, n))), 4)
    prev = np.r_[100.0, close[:-1]]
    # a third of the bars open away from the previous close
    gap = rng.normal(0.0, 0.0015, n) * (rng.random(n) < 0.3)
    open_ = np.round(prev * (1.0 + gap), 4)
    high = np.round(np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.002, n)), 4)
    low = np.round(np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.002, n)), 4)
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    volume = rng.integers(100, 2000, n).astype(float)
    index = pd.date_range(_START.replace(tzinfo=None), periods=n, freq="15min")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def _decide(
    i: int, k: int, close: float, pos: float, open_orders: list, cash: float | None
) -> list[tuple]:
    """The rule: ``("cancel", handle)`` and ``("submit", side, qty, type, limit, stop, tif)``.

    With ``cash``, entries are sized to all of it at the close (commission
    included), so that a market order whose next open is higher fails.
    """
    actions: list[tuple] = [("cancel", h) for h, age in open_orders if i - age >= 10]
    if len(actions) < len(open_orders):
        return actions  # an order is still working
    r = (i * 7 + k * 3) % 10
    up = lambda f: round(close * (1.0 + f), 4)  # noqa: E731
    if pos == 0:
        qty = 10 + 5 * ((i + k) % 3) if cash is None else int(cash / (close * 1.0012))
        tif = "DAY" if i % 2 else "GTC"
        plans = [
            ("BUY", "MARKET", None, None),
            ("BUY", "LIMIT", up(-0.0015), None),
            ("BUY", "STOP", None, up(0.0015)),
            ("BUY", "STOP_LIMIT", up(0.003), up(0.001)),
            ("BUY", "STOP_LIMIT", up(-0.0005), up(0.001)),
            ("SELL", "MARKET", None, None),
            ("SELL", "LIMIT", up(0.0015), None),
            ("SELL", "STOP", None, up(-0.0015)),
            ("SELL", "STOP_LIMIT", up(-0.003), up(-0.001)),
            ("SELL", "STOP_LIMIT", up(0.0005), up(-0.001)),
        ]
    else:
        qty = abs(pos)
        tif = "GTC"
        s = -1.0 if pos > 0 else 1.0  # the exit's direction
        side = "SELL" if pos > 0 else "BUY"
        plans = [
            (side, "MARKET", None, None),
            (side, "LIMIT", up(-s * 0.002), None),
            (side, "STOP", None, up(s * 0.002)),
            (side, "STOP_LIMIT", up(s * 0.0005), up(s * 0.002)),
            (side, "STOP_LIMIT", up(s * 0.004), up(s * 0.002)),
        ]
    side, otype, limit, stop = plans[r % len(plans)]
    actions.append(("submit", side, qty, otype, limit, stop, tif))
    return actions


def _run_finchan(
    frames: list[pd.DataFrame], cash: float, all_in: bool = False, **broker_kw
) -> tuple[list, float, SimBroker]:
    broker = SimBroker(cash, allow_short=True, **broker_kw)
    symbols = [f"S{k}" for k in range(len(frames))]
    rows = [list(f.itertuples(index=False, name=None)) for f in frames]
    stamps = [t.replace(tzinfo=dt.UTC).timestamp() for t in frames[0].index.to_pydatetime()]
    open_orders: list[list] = [[] for _ in frames]
    for i, ts in enumerate(stamps):
        bars = [Bar(None, sym, ts, *col[i]) for sym, col in zip(symbols, rows)]
        for bar in bars:
            broker.process_bar(bar)
        for k, bar in enumerate(bars):
            working = [(o, age) for o, age in open_orders[k] if o.is_open]
            pos = broker.portfolio.qty(bar.symbol)
            sizing_cash = broker.portfolio.cash if all_in else None
            actions = _decide(i, k, bar.close, pos, working, sizing_cash)
            for act in actions:
                if act[0] == "cancel":
                    broker.cancel(act[1].id)
                    continue
                _, side, qty, otype, limit, stop, tif = act
                order = broker.submit(Order(bar.symbol, side, qty, otype, limit, stop, tif))
                working.append((order, i))
            open_orders[k] = [(o, age) for o, age in working if o.is_open]
    fills = [(round(f.timestamp), f.symbol, str(f.side), f.qty, f.price) for f in broker.fills]
    return fills, broker.portfolio.equity, broker


def _run_backtrader(
    frames: list[pd.DataFrame],
    cash: float,
    commission: float = 0.0,
    coc: bool = False,
    slip_perc: float = 0.0,
    fill_perc: float | None = None,
    all_in: bool = False,
) -> tuple[list, float]:
    exectypes = {
        "MARKET": bt.Order.Market,
        "LIMIT": bt.Order.Limit,
        "STOP": bt.Order.Stop,
        "STOP_LIMIT": bt.Order.StopLimit,
    }
    fills: list = []

    class Rule(bt.Strategy):
        def __init__(self) -> None:
            self.working: list[list] = [[] for _ in self.datas]

        def notify_order(self, order) -> None:
            for bit in order.executed.iterpending():
                when = bt.num2date(bit.dt).replace(tzinfo=dt.UTC).timestamp()
                side = "BUY" if bit.size > 0 else "SELL"
                fills.append((round(when), order.data._name, side, abs(bit.size), bit.price))

        def next(self) -> None:
            for k, d in enumerate(self.datas):
                i = len(d) - 1
                working = [(o, age) for o, age in self.working[k] if o.alive()]
                sizing_cash = self.broker.getcash() if all_in else None
                pos = self.getposition(d).size
                actions = _decide(i, k, d.close[0], pos, working, sizing_cash)
                for act in actions:
                    if act[0] == "cancel":
                        self.cancel(act[1])
                        continue
                    _, side, qty, otype, limit, stop, tif = act
                    place = self.buy if side == "BUY" else self.sell
                    kw = {"data": d, "size": qty, "exectype": exectypes[otype]}
                    if otype == "LIMIT":
                        kw["price"] = limit
                    elif otype == "STOP":
                        kw["price"] = stop
                    elif otype == "STOP_LIMIT":
                        kw["price"] = stop
                        kw["plimit"] = limit
                    if tif == "DAY":
                        kw["valid"] = bt.Order.DAY
                    working.append((place(**kw), i))
                self.working[k] = [(o, age) for o, age in working if o.alive()]

    cerebro = bt.Cerebro(stdstats=False)
    for k, frame in enumerate(frames):
        feed = bt.feeds.PandasData(dataname=frame, timeframe=bt.TimeFrame.Minutes, compression=15)
        cerebro.adddata(feed, name=f"S{k}")
    cerebro.addstrategy(Rule)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=commission)
    if coc:
        cerebro.broker.set_coc(True)
    if slip_perc:
        cerebro.broker.set_slippage_perc(slip_perc)
    if fill_perc is not None:
        cerebro.broker.set_filler(bt.broker.fillers.FixedBarPerc(perc=fill_perc))
    cerebro.run()
    return fills, cerebro.broker.getvalue()


def _sorted(fills: list) -> list:
    return sorted(fills, key=lambda f: (f[0], f[1]))


@pytest.fixture(scope="module")
def three_symbols() -> list[pd.DataFrame]:
    return [_make_bars(700, seed) for seed in (1, 2, 3)]


@pytest.mark.parametrize("fill_at", ["next_open", "close"])
def test_fills_and_equity_match_backtrader_on_three_symbols(three_symbols, fill_at) -> None:
    ours, our_equity, _ = _run_finchan(
        three_symbols, 1_000_000.0, commission=PercentOfValue(0.001), fill_at=fill_at
    )
    theirs, their_equity = _run_backtrader(
        three_symbols, 1_000_000.0, commission=0.001, coc=fill_at == "close"
    )
    assert len(ours) > 300
    kinds = {(f[2], f[1]) for f in ours}
    assert len(kinds) == 6
    assert _sorted(ours) == _sorted(theirs)
    assert round(our_equity, 2) == round(their_equity, 2)


def test_cash_rejections_match_backtrader_when_entries_use_all_the_cash() -> None:
    # entries sized to all the cash: stop buys are refused when submitted,
    # market buys when the next open is above the signal close
    frames = [_make_bars(1500, 7)]
    ours, our_equity, broker = _run_finchan(
        frames, 100_000.0, all_in=True, commission=PercentOfValue(0.001)
    )
    theirs, their_equity = _run_backtrader(frames, 100_000.0, commission=0.001, all_in=True)
    reasons = [o.reason for o in broker.orders if o.status == "REJECTED"]
    assert sum(r.startswith("insufficient cash:") for r in reasons) == 77
    assert sum(r.startswith("insufficient cash at fill:") for r in reasons) == 10
    assert _sorted(ours) == _sorted(theirs)
    assert round(our_equity, 2) == round(their_equity, 2)


def test_quirks_mode_matches_backtrader_with_slippage_and_volume_filler(three_symbols) -> None:
    # backtrader's FixedBarPerc lets each order take 2% of the bar's volume;
    # with one working order per symbol that is finchan's volume_limit
    frames = [f.assign(volume=f["volume"] // 2) for f in three_symbols]
    ours, our_equity, _ = _run_finchan(
        frames,
        1_000_000.0,
        commission=PercentOfValue(0.001),
        slippage=BpsSlippage(5),
        volume_limit=0.02,
        backtrader_quirks=True,
    )
    theirs, their_equity = _run_backtrader(
        frames, 1_000_000.0, commission=0.001, slip_perc=0.0005, fill_perc=2.0
    )
    assert any(f[3] != int(f[3]) or f[3] < 10 for f in ours)  # partial fills happened
    assert _sorted(ours) == _sorted(theirs)
    assert round(our_equity, 2) == round(their_equity, 2)
