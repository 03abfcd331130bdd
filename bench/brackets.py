"""A bracket on every entry: finchan beside backtrader 1.9.78, bars per second.

The reference SMA 10/30 cross (``bench/sma_cross.py``) with linked exits: on
a cross up while flat and with no bracket alive, ``buy_bracket`` of 100
units at market with a stop 0.4 % below and a take-profit 0.6 % above the
signal close (4 decimals); the exits alone close the trade. backtrader runs
the same rule with its ``buy_bracket`` (``exectype=Market``) in the same
process, on the same bars (``make_bars``, already in a DataFrame). Only the
backtest call is timed, best of ``--repeat`` runs; both engines must produce
the same fills (time, side, price), or the script exits with status 1.

    python -m bench.brackets [--quick] [--bars 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from datetime import timedelta
from typing import Any, ClassVar

from finchan.trade.indicators import SMA
from finchan.trade.orders import Order
from finchan.trade.strategy import Strategy

__all__ = ["BracketCross", "main", "run"]

SYMBOL = "SYN"
CASH = 1_000_000.0
FAST, SLOW, QTY = 10, 30, 100
STOP, TAKE = 0.004, 0.006
_DEAD_BAND = 1e-9
_FORMAT = "%Y-%m-%dT%H:%M:%S"


class BracketCross(Strategy):
    """SMA 10/30 cross up while flat: a market entry with a stop and a take-profit."""

    params: ClassVar[dict[str, Any]] = {"qty": QTY}

    def on_start(self) -> None:
        self.fast, self.slow = SMA(FAST), SMA(SLOW)
        self.last_sign = 0
        self.live = 0  # orders of the current bracket not final yet

    def on_bar(self, bar: Any) -> None:
        close = bar.close
        diff = self.fast.update(close) - self.slow.update(close)
        if diff > _DEAD_BAND:
            sign = 1
        elif diff < -_DEAD_BAND:
            sign = -1
        else:
            return
        last = self.last_sign
        if sign == last:
            return
        self.last_sign = sign
        if sign > 0 and last != 0 and not self.live and self.position(bar.symbol) == 0:
            self.live = 3
            self.buy_bracket(bar.symbol, self.params.qty, None, round(close * (1 - STOP), 4),
                             round(close * (1 + TAKE), 4))

    def on_order(self, order: Order) -> None:
        if self.is_final(order):
            self.live -= 1


def _fills_finchan(result: Any) -> list[tuple[str, str, str]]:
    frame = result.fills
    return [(d.strftime(_FORMAT), s, f"{p:.4f}")
            for d, s, p in zip(frame["datetime"], frame["side"], frame["price"])]


def _run_finchan(frame: Any) -> tuple[float, list, float]:
    from finchan.trade import backtest

    t0 = time.perf_counter()
    result = backtest(BracketCross, {SYMBOL: frame}, cash=CASH, record_prices=False,
                      report=False)
    elapsed = time.perf_counter() - t0
    return elapsed, _fills_finchan(result), result.final_equity


def _run_backtrader(frame: Any) -> tuple[float, list, float]:
    import backtrader as bt

    class BtBracketCross(bt.Strategy):
        def __init__(self) -> None:
            self.fast = bt.indicators.SMA(self.data.close, period=FAST)
            self.slow = bt.indicators.SMA(self.data.close, period=SLOW)
            self.last_sign = 0
            self.live = 0
            self.fills: list[tuple[float, str, float]] = []

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                side = "BUY" if order.isbuy() else "SELL"
                self.fills.append((order.executed.dt, side, order.executed.price))
            if not order.alive():
                self.live -= 1

        def next(self) -> None:
            diff = self.fast[0] - self.slow[0]
            if diff > _DEAD_BAND:
                sign = 1
            elif diff < -_DEAD_BAND:
                sign = -1
            else:
                return
            last = self.last_sign
            if sign == last:
                return
            self.last_sign = sign
            if sign > 0 and last != 0 and not self.live and not self.position.size:
                close = self.data.close[0]
                self.live = 3
                self.buy_bracket(size=QTY, exectype=bt.Order.Market,
                                 stopprice=round(close * (1 - STOP), 4),
                                 limitprice=round(close * (1 + TAKE), 4))

    import pandas as pd

    times = pd.to_datetime(frame["datetime"])
    if times.dt.tz is not None:
        times = times.dt.tz_localize(None)
    data_frame = frame.set_index(pd.DatetimeIndex(times))[
        ["open", "high", "low", "close", "volume"]
    ]
    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(CASH)
    cerebro.adddata(bt.feeds.PandasData(dataname=data_frame, openinterest=None))
    cerebro.addstrategy(BtBracketCross)
    (strategy,) = cerebro.run()
    elapsed = time.perf_counter() - t0
    fills = []
    for num, side, price in strategy.fills:
        when = bt.num2date(num) + timedelta(microseconds=500_000)
        fills.append((when.replace(microsecond=0).strftime(_FORMAT), side, f"{price:.4f}"))
    return elapsed, fills, cerebro.broker.getvalue()


def _best(runner: Any, frame: Any, repeat: int) -> tuple[float, list, float]:
    best = None
    for _ in range(repeat):
        gc.collect()
        elapsed, fills, equity = runner(frame)
        if best is None or elapsed < best[0]:
            best = (elapsed, fills, equity)
    assert best is not None
    return best


def run(quick: bool = False, bars: int | None = None, repeat: int | None = None) -> list[dict]:
    """Rows: engine, bars, bars_per_s, seconds, fills, final_equity, same_fills."""
    from finchan.trade.synthetic import make_bars

    n = bars or (20_000 if quick else 200_000)
    repeat = repeat or (1 if quick else 3)
    frame = make_bars(n)
    rows = []
    elapsed, ours, equity = _best(_run_finchan, frame, repeat)
    rows.append({"engine": "finchan", "bars": n, "bars_per_s": n / elapsed, "seconds": elapsed,
                 "fills": len(ours), "final_equity": equity, "same_fills": True})
    try:
        import backtrader  # noqa: F401
    except ImportError:
        return rows
    elapsed, theirs, equity = _best(_run_backtrader, frame, repeat)
    rows.append({"engine": "backtrader", "bars": n, "bars_per_s": n / elapsed,
                 "seconds": elapsed, "fills": len(theirs), "final_equity": equity,
                 "same_fills": theirs == ours})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 bars, one run each")
    parser.add_argument("--bars", type=int, default=None, help="bars (default 200,000)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per engine, best kept")
    args = parser.parse_args(argv)
    rows = run(args.quick, args.bars, args.repeat)
    print(f"{'engine':<12}{'bars':>10}{'bars/s':>14}{'seconds':>10}{'fills':>8}"
          f"{'final equity':>16}  same fills")
    for row in rows:
        print(f"{row['engine']:<12}{row['bars']:>10,}{row['bars_per_s']:>14,.0f}"
              f"{row['seconds']:>10.3f}{row['fills']:>8}{row['final_equity']:>16,.2f}"
              f"  {row['same_fills']}")
    if len(rows) == 2:
        print(f"finchan / backtrader: {rows[0]['bars_per_s'] / rows[1]['bars_per_s']:.1f}x")
    return 0 if all(row["same_fills"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
