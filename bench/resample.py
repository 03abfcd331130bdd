"""Strategies on resampled bars: finchan beside backtrader, bars per second.

Each case runs one strategy on 1-minute bars from ``make_bars`` (24 hours a
day, already loaded as a DataFrame) in both engines and times the backtest
call only (the engine's own set-up from the DataFrame included), best of
``--repeat`` runs. Both must give the same fills.

- ``daily_resample``: the minute bars resampled to days (finchan:
  ``timeframes = ("1D",)``; backtrader: ``cerebro.resampledata(...,
  timeframe=Days)``); an SMA cross of the *daily* closes buys 100 at market
  on a cross up and sells the position on a cross down, filled at the next
  minute bar's open.

To add a case (say, a bracket on every entry), append a :class:`Case` to
``CASES`` with a finchan Strategy class and a backtrader one that record the
same thing; the runner, timing, fill check and table are shared.

backtrader stamps bars with their close time, finchan with their open time:
the backtrader feed gets the same bars one minute later and
``sessionend=00:00``, which makes its days the same calendar days (see
``tests/trade/test_resample_vs_backtrader.py``).

    python -m bench.resample [--quick] [--sizes 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd

from finchan.trade import Strategy, backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.indicators import SMA

__all__ = ["CASES", "Case", "DailySmaCross", "main", "run"]

QUICK_SIZE = 20_000
Fill = tuple[int, str, float]  # (open time of the fill bar, side, price)


class DailySmaCross(Strategy):
    """SMA(fast)/SMA(slow) cross of the daily closes; orders meet the next minute bar."""

    timeframes: ClassVar[tuple[str, ...]] = ("1D",)
    params: ClassVar[dict[str, Any]] = {"fast": 5, "slow": 20, "qty": 100}

    def on_start(self) -> None:
        self.fast, self.slow, self.last = SMA(self.params.fast), SMA(self.params.slow), 0

    def on_bar(self, bar: Any) -> None:
        if bar.timeframe != "1D":
            return
        diff = self.fast.update(bar.close) - self.slow.update(bar.close)
        sign = 1 if diff > 1e-9 else -1 if diff < -1e-9 else 0
        if sign == 0 or sign == self.last:
            return
        crossed, self.last = self.last != 0, sign
        held = self.position(bar.symbol)
        if crossed and sign > 0 and held == 0:
            self.buy(bar.symbol, self.params.qty)
        elif crossed and sign < 0 and held > 0:
            self.sell(bar.symbol, held)


def _bt_daily_sma_cross(params: dict[str, Any], fills: list[Fill]) -> type:
    import backtrader as bt

    class BtDailySmaCross(bt.Strategy):
        def __init__(self) -> None:
            daily = self.datas[1]
            self.fast = bt.indicators.SMA(daily.close, period=params["fast"])
            self.slow = bt.indicators.SMA(daily.close, period=params["slow"])
            self.last = 0
            self.days = 0

        def notify_order(self, order: Any) -> None:
            for bit in order.executed.iterpending():
                opened = bt.num2date(bit.dt) - dt.timedelta(minutes=1)
                fills.append((round(opened.replace(tzinfo=dt.UTC).timestamp()),
                              "BUY" if bit.size > 0 else "SELL", bit.price))

        def next(self) -> None:
            daily = self.datas[1]
            if len(daily) == self.days:
                return
            self.days = len(daily)
            diff = self.fast[0] - self.slow[0]
            sign = 1 if diff > 1e-9 else -1 if diff < -1e-9 else 0
            if sign == 0 or sign == self.last:
                return
            crossed, self.last = self.last != 0, sign
            held = self.getposition(self.datas[0]).size
            if crossed and sign > 0 and held == 0:
                self.buy(data=self.datas[0], size=params["qty"])
            elif crossed and sign < 0 and held > 0:
                self.sell(data=self.datas[0], size=held)

    return BtDailySmaCross


@dataclass(frozen=True)
class Case:
    """One benchmark case: the same strategy for finchan and for backtrader."""

    name: str
    description: str
    strategy: type[Strategy]
    #: ``(params, fills) -> bt.Strategy class`` appending its fills as :data:`Fill` rows
    backtrader_strategy: Callable[[dict[str, Any], list[Fill]], type]
    #: backtrader's resampling of the minute data: ``[(timeframe name, compression)]``
    resample: tuple[tuple[str, int], ...]
    quick_params: dict[str, Any]


CASES: tuple[Case, ...] = (
    Case("daily_resample", "SMA 5/20 cross of daily bars resampled from minutes",
         DailySmaCross, _bt_daily_sma_cross, (("Days", 1),), {"fast": 1, "slow": 3}),
)


def _run_finchan(case: Case, frame: pd.DataFrame, params: dict[str, Any]
                 ) -> tuple[float, list[Fill]]:
    started = time.perf_counter()
    result = backtest(case.strategy, {"SYN": frame}, cash=1_000_000.0, params=params)
    seconds = time.perf_counter() - started
    fills = [(round(f.timestamp), str(f.side), f.price) for f in result._account.broker.fills]
    return seconds, fills


def _run_backtrader(case: Case, frame: pd.DataFrame, params: dict[str, Any]
                    ) -> tuple[float, list[Fill]]:
    import backtrader as bt

    fills: list[Fill] = []
    started = time.perf_counter()
    stamps = pd.DatetimeIndex(pd.to_datetime(frame["datetime"])) + pd.Timedelta(minutes=1)
    indexed = frame.drop(columns="datetime").set_index(stamps)

    def feed() -> Any:
        return bt.feeds.PandasData(dataname=indexed, timeframe=bt.TimeFrame.Minutes,
                                   sessionend=dt.time(0, 0))

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(feed(), name="SYN")
    for timeframe, compression in case.resample:
        # a feed of its own: resampling a clone of the minute data can lose bars
        cerebro.resampledata(feed(), timeframe=getattr(bt.TimeFrame, timeframe),
                             compression=compression)
    cerebro.addstrategy(case.backtrader_strategy(params, fills))
    cerebro.broker.setcash(1_000_000.0)
    cerebro.run()
    return time.perf_counter() - started, fills


def run(quick: bool = False, sizes: list[int] | None = None,
        repeat: int | None = None) -> list[dict[str, Any]]:
    """One row per (size, case, engine): ``bars``, ``case``, ``engine``, ``seconds``,
    ``bars_per_s``, ``fills``, ``same_fills`` (equal to finchan's) and
    ``finchan_ratio`` (finchan's bars/s over this row's). ``quick``: 20,000 bars, one run."""
    sizes = sizes or ([QUICK_SIZE] if quick else [1_000_000])
    repeat = repeat or (1 if quick else 3)
    engines: list[tuple[str, Callable[..., tuple[float, list[Fill]]]]] = [("finchan", _run_finchan)]
    if importlib.util.find_spec("backtrader"):
        engines.append(("backtrader", _run_backtrader))
    rows: list[dict[str, Any]] = []
    for n in sizes:
        frame = make_bars(n)
        for case in CASES:
            params = dict(case.strategy.params, **(case.quick_params if quick else {}))
            best: dict[str, tuple[float, list[Fill]]] = {}
            for _ in range(repeat):
                for engine, runner in engines:  # taking turns, against bursts of load
                    gc.collect()
                    outcome = runner(case, frame, params)
                    if engine not in best or outcome[0] < best[engine][0]:
                        best[engine] = outcome
            reference = best["finchan"]
            for engine, (seconds, fills) in best.items():
                rows.append({
                    "bars": n,
                    "case": case.name,
                    "engine": engine,
                    "seconds": seconds,
                    "bars_per_s": n / seconds,
                    "fills": len(fills),
                    "same_fills": fills == reference[1],
                    "finchan_ratio": seconds / reference[0],
                })
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table."""
    head = (f"{'bars':>9} {'case':<16} {'engine':<11} {'bars/s':>11} {'fills':>6} "
            f"{'same fills':>10} {'finchan x':>9}")
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(f"{row['bars']:>9,} {row['case']:<16} {row['engine']:<11} "
                     f"{row['bars_per_s']:>11,.0f} {row['fills']:>6} "
                     f"{'yes' if row['same_fills'] else 'NO':>10} {row['finchan_ratio']:>9.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the table; exit 1 if the engines' fills differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 bars, one run each")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N")
    parser.add_argument("--repeat", type=int, default=None, help="best of N runs (default 3)")
    args = parser.parse_args(argv)
    rows = run(args.quick, args.sizes, args.repeat)
    print(format_rows(rows))
    return 0 if all(row["same_fills"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
