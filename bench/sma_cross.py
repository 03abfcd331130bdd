"""The reference SMA 10/30 cross: finchan beside backtrader and backtesting.py, bars per second.

Every engine runs the strategy of ``shared/data/README.md`` (SMA 10/30 of
the close, sign of ``fast - slow`` with a 1e-9 dead band, a cross against
the last non-zero sign, market BUY 100 when flat on a cross up, SELL the
position on a cross down, fills at the next bar's open, cash 1,000,000, no
commission) on bars from ``make_bars`` that are already loaded as a
DataFrame. Only the backtest call is timed (the engine's own set-up from the
DataFrame included, fill extraction excluded), best of ``--repeat`` runs.
All engines must produce the same fills (datetime, side, price); finchan's
are also checked against the md5 of the README.

Two finchan styles are measured: ``SmaCross`` (incremental indicators, the
reference) and :class:`VectorSmaCross` (the averages computed with numpy in
``on_start``, looked up per bar), reported on separate rows.

Peers are measured when installed (``pip install finchan[bench]``):
backtrader 1.9.78 (default broker, cheat-on-open off, ``stdstats=False`` so
no observers slow it down) and backtesting.py 0.6.6 (``trade_on_close=False``,
orders sized in units).

    python -m bench.sma_cross [--quick] [--sizes 100000 1000000] [--repeat 3]

Data files are written once into ``bench/_data/`` (git-ignored):
``bars_<n>.csv`` (the README's CSV, md5 checked for 100k and 1M) and
``bars_<n>.parquet`` (same bars, datetime as UTC timestamps, row groups of
100,000).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import os
import sys
import time
import warnings
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finchan.trade.examples import VectorSmaCross

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DATA_DIR",
    "EXPECTED",
    "ROW_GROUP",
    "VectorSmaCross",
    "bars_path",
    "fills_md5",
    "format_rows",
    "main",
    "ratios",
    "result_fills",
    "run",
    "write_parquet",
]

#: where the generated bar files live (git-ignored)
DATA_DIR = Path(__file__).resolve().parent / "_data"
#: rows per Parquet row group of the generated files
ROW_GROUP = 100_000
#: figures of ``shared/data/README.md`` for the reference files
EXPECTED: dict[int, dict[str, Any]] = {
    100_000: {"csv_md5": "d1714af3227eb6334ad513305606f26b", "fills": 3872,
              "final_equity": 998_438.97, "fills_md5": "521403d73729284c35b6b7d91e642d0c"},
    1_000_000: {"csv_md5": "07c0cd5e4e9c148e17a60aeb799862c9", "fills": 39167,
                "final_equity": 993_540.76, "fills_md5": "aa3a892f5d35d148d87db2dc558408b6"},
}

SYMBOL = "SYN"
CASH = 1_000_000.0
FAST, SLOW, QTY = 10, 30, 100
# |fast - slow| at or below this is "no sign" (see the README: 4-decimal prices)
DEAD_BAND = 1e-9
QUICK_SIZE = 20_000
# bars of the untimed first run that imports each engine's modules and warms its caches
_WARM_UP_BARS = 2_000
# an engine whose runs add up to more than this is not run again: a long run
# averages the noise out by itself
_REPEAT_BUDGET_S = 30.0
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"

#: one fill as compared between engines: (ISO datetime, "BUY"/"SELL", price with 4 decimals)
Fill = tuple[str, str, str]


# --------------------------------------------------------------------------- data


def _label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def bars_path(n: int, suffix: str) -> Path:
    """Path of the generated file of ``n`` bars, ``suffix`` ``".csv"`` or ``".parquet"``."""
    return DATA_DIR / f"bars_{_label(n)}{suffix}"


def _tmp_name(path: Path) -> Path:
    # one per process: two runs generating the same file at once must not
    # write into each other's temporary file (the last rename wins, both whole)
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``make_bars`` output as Parquet (UTC timestamps, row groups of ``ROW_GROUP``).

    Written to a temporary name and renamed, so an interrupted run leaves no
    half-written file behind.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = _tmp_name(path)
    writer = None
    try:
        for start in range(0, len(frame), ROW_GROUP):
            part = frame.iloc[start : start + ROW_GROUP].copy()
            times = pd.to_datetime(part["datetime"], utc=True)
            part["datetime"] = times.astype("datetime64[ns, UTC]")
            table = pa.Table.from_pandas(part, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, path)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _ensure_files(n: int) -> None:
    """Write the CSV and Parquet files of ``n`` bars unless they exist."""
    csv, parquet = bars_path(n, ".csv"), bars_path(n, ".parquet")
    if csv.exists() and parquet.exists():
        return
    from finchan.trade.synthetic import make_bars

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    frame = make_bars(n)
    tmp = _tmp_name(csv)
    frame.to_csv(tmp, index=False, float_format="%.4f")
    expected = EXPECTED.get(n, {}).get("csv_md5")
    if expected is not None and _md5(tmp) != expected:
        tmp.unlink()
        raise RuntimeError(f"{csv}: md5 differs from shared/data/README.md, make_bars changed")
    os.replace(tmp, csv)
    write_parquet(frame, parquet)


def _load(n: int) -> pd.DataFrame:
    import pandas as pd

    _ensure_files(n)
    return pd.read_parquet(bars_path(n, ".parquet"))


# --------------------------------------------------------------------------- fills


def fills_md5(fills: list[Fill]) -> str:
    """md5 of ``fills`` written as the README's CSV (``datetime,side,price`` header)."""
    text = "datetime,side,price\n" + "".join(f"{d},{s},{p}\n" for d, s, p in fills)
    return hashlib.md5(text.encode()).hexdigest()


def _fill(when: datetime, side: str, price: float) -> Fill:
    return (when.strftime(_TIME_FORMAT), side, f"{price:.4f}")


# --------------------------------------------------------------------------- finchan


def result_fills(result: Any) -> list[Fill]:
    """The fills of a finchan :class:`~finchan.trade.result.BacktestResult`, as compared."""
    frame = result.fills
    return [_fill(d, s, p) for d, s, p in zip(frame["datetime"], frame["side"], frame["price"])]


def _run_finchan(frame: pd.DataFrame) -> tuple[float, list[Fill], float]:
    from finchan.trade import backtest
    from finchan.trade.examples import SmaCross

    data = {SYMBOL: frame}
    t0 = time.perf_counter()
    result = backtest(SmaCross, data, cash=CASH, record_prices=False)
    elapsed = time.perf_counter() - t0
    return elapsed, result_fills(result), result.final_equity


def _run_finchan_vector(frame: pd.DataFrame) -> tuple[float, list[Fill], float]:
    from finchan.trade import backtest

    data = {SYMBOL: frame}
    closes = frame["close"].to_numpy()
    t0 = time.perf_counter()
    result = backtest(VectorSmaCross, data, cash=CASH, record_prices=False,
                      params={"closes": closes})
    elapsed = time.perf_counter() - t0
    return elapsed, result_fills(result), result.final_equity


# --------------------------------------------------------------------------- backtrader


def _backtrader_strategy() -> type:
    import backtrader as bt

    class BtSmaCross(bt.Strategy):
        params = (("fast", FAST), ("slow", SLOW), ("qty", QTY))

        def __init__(self) -> None:
            self.fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
            self.slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
            self.last_sign = 0
            self.fills: list[tuple[float, str, float]] = []

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                side = "BUY" if order.isbuy() else "SELL"
                self.fills.append((order.executed.dt, side, order.executed.price))

        def next(self) -> None:
            diff = self.fast[0] - self.slow[0]
            if diff > DEAD_BAND:
                sign = 1
            elif diff < -DEAD_BAND:
                sign = -1
            else:
                return
            last = self.last_sign
            if sign == last:
                return
            self.last_sign = sign
            if last == 0:
                return
            held = self.position.size
            if sign > 0 and held == 0:
                self.buy(size=self.p.qty)
            elif sign < 0 and held > 0:
                self.sell(size=held)

    return BtSmaCross


def _run_backtrader(frame: pd.DataFrame) -> tuple[float, list[Fill], float]:
    import backtrader as bt

    strategy_class = _backtrader_strategy()
    data_frame = frame.set_index(frame["datetime"].dt.tz_localize(None))[
        ["open", "high", "low", "close", "volume"]
    ]
    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(CASH)
    cerebro.adddata(bt.feeds.PandasData(dataname=data_frame, openinterest=None))
    cerebro.addstrategy(strategy_class)
    (strategy,) = cerebro.run()
    elapsed = time.perf_counter() - t0
    fills = []
    for num, side, price in strategy.fills:
        # num2date rounds through a float day count: back to the whole second
        when = bt.num2date(num) + timedelta(microseconds=500_000)
        fills.append(_fill(when.replace(microsecond=0), side, price))
    return elapsed, fills, cerebro.broker.getvalue()


# --------------------------------------------------------------------------- backtesting.py


def _rolling_mean(values: Any, period: int) -> Any:
    import pandas as pd

    return pd.Series(values).rolling(period).mean().to_numpy()


def _backtesting_strategy() -> type:
    import backtesting

    class BtpSmaCross(backtesting.Strategy):
        fast = FAST
        slow = SLOW
        qty = QTY

        def init(self) -> None:
            self.sma_fast = self.I(_rolling_mean, self.data.Close, self.fast)
            self.sma_slow = self.I(_rolling_mean, self.data.Close, self.slow)
            self.last_sign: int | None = None

        @staticmethod
        def _sign(diff: float) -> int:
            if diff > DEAD_BAND:
                return 1
            if diff < -DEAD_BAND:
                return -1
            return 0

        def next(self) -> None:
            if self.last_sign is None:
                # backtesting.py calls next() first on bar 30; bar 29 (the
                # first with a slow SMA) only sets the sign to compare with
                self.last_sign = self._sign(self.sma_fast[-2] - self.sma_slow[-2])
            sign = self._sign(self.sma_fast[-1] - self.sma_slow[-1])
            last = self.last_sign
            if sign == 0 or sign == last:
                return
            self.last_sign = sign
            if last == 0:
                return
            held = self.position.size
            if sign > 0 and held == 0:
                self.buy(size=self.qty)
            elif sign < 0 and held > 0:
                self.position.close()

    return BtpSmaCross


def _run_backtesting(frame: pd.DataFrame) -> tuple[float, list[Fill], float]:
    import backtesting

    strategy_class = _backtesting_strategy()
    data_frame = frame.set_index(frame["datetime"].dt.tz_localize(None))[
        ["open", "high", "low", "close", "volume"]
    ]
    data_frame.columns = ["Open", "High", "Low", "Close", "Volume"]
    with warnings.catch_warnings():
        # "some trades remain open at the end": expected, the open one is read below
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        engine = backtesting.Backtest(data_frame, strategy_class, cash=CASH, commission=0.0,
                                      trade_on_close=False, exclusive_orders=False)
        stats = engine.run()
        elapsed = time.perf_counter() - t0
    fills = []
    for trade in stats["_trades"].itertuples():
        fills.append(_fill(trade.EntryTime, "BUY" if trade.Size > 0 else "SELL", trade.EntryPrice))
        fills.append(_fill(trade.ExitTime, "SELL" if trade.Size > 0 else "BUY", trade.ExitPrice))
    for trade in stats["_strategy"].trades:  # still open at the end
        side = "BUY" if trade.size > 0 else "SELL"
        fills.append(_fill(trade.entry_time, side, trade.entry_price))
    fills.sort()
    return elapsed, fills, float(stats["Equity Final [$]"])


# --------------------------------------------------------------------------- measuring

_Runner = Callable[["pd.DataFrame"], tuple[float, list[Fill], float]]

#: (engine, style, runner, module it needs); finchan's reference row comes first
_ENGINES: tuple[tuple[str, str, _Runner, str | None], ...] = (
    ("finchan", "incremental indicators (SmaCross)", _run_finchan, None),
    ("finchan", "vectorised indicators (VectorSmaCross)", _run_finchan_vector, None),
    ("backtrader", "bt.indicators.SMA, default broker", _run_backtrader, "backtrader"),
    ("backtesting.py", "self.I(rolling mean), trade_on_close=False", _run_backtesting,
     "backtesting"),
)


def _measure(engines: list[tuple[str, str, _Runner, str | None]], frame: pd.DataFrame,
             repeat: int) -> list[tuple[float, list[Fill], float]]:
    """Best run of each engine, in the order of ``engines``.

    The engines take turns (one run each, then again), so that a burst of load
    on the machine does not fall on one engine only.
    """
    warm_up = frame.iloc[:_WARM_UP_BARS].reset_index(drop=True)
    for _, _, runner, _ in engines:
        runner(warm_up)
    best: list[tuple[float, list[Fill], float] | None] = [None] * len(engines)
    spent = [0.0] * len(engines)
    for _ in range(repeat):
        for i, (_, _, runner, _) in enumerate(engines):
            if spent[i] > _REPEAT_BUDGET_S:
                continue
            gc.collect()
            outcome = runner(frame)
            spent[i] += outcome[0]
            if best[i] is None or outcome[0] < best[i][0]:
                best[i] = outcome
    return [b for b in best if b is not None]


def run(quick: bool = False, sizes: list[int] | None = None,
        repeat: int | None = None) -> list[dict[str, Any]]:
    """Measure every engine on every size; one row per (size, engine, style).

    Rows: ``bars``, ``engine``, ``style``, ``seconds`` (best run),
    ``bars_per_s``, ``fills``, ``final_equity``, ``fills_md5``,
    ``same_fills`` (equal to finchan SmaCross's fills), ``readme_md5``
    (finchan rows: md5 equal to the README's, None for sizes it has no
    figure for) and ``finchan_ratio`` (finchan SmaCross bars/s over this
    row's). ``quick``: 20,000 bars, one run each.
    """
    sizes = sizes or ([QUICK_SIZE] if quick else [100_000, 1_000_000])
    repeat = repeat or (1 if quick else 3)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        frame = _load(n)
        engines = [e for e in _ENGINES if e[3] is None or importlib.util.find_spec(e[3])]
        best = _measure(engines, frame, repeat)
        reference = best[0][1]
        reference_rate = n / best[0][0]
        for (engine, style, _, _), (seconds, fills, equity) in zip(engines, best):
            digest = fills_md5(fills)
            expected = EXPECTED.get(n, {}).get("fills_md5")
            rows.append({
                "bars": n,
                "engine": engine,
                "style": style,
                "seconds": seconds,
                "bars_per_s": n / seconds,
                "fills": len(fills),
                "final_equity": round(equity, 2),
                "fills_md5": digest,
                "same_fills": fills == reference,
                "readme_md5": (digest == expected) if engine == "finchan" and expected else None,
                "finchan_ratio": reference_rate / (n / seconds),
            })
        del frame
    return rows


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per size and finchan style: bars/s over backtrader's and over backtesting.py's."""
    out = []
    for n in sorted({row["bars"] for row in rows}):
        here = [row for row in rows if row["bars"] == n]
        peers = {row["engine"]: row["bars_per_s"] for row in here if row["engine"] != "finchan"}
        for row in here:
            if row["engine"] != "finchan":
                continue
            out.append({
                "bars": n,
                "style": row["style"],
                "vs_backtrader": row["bars_per_s"] / peers["backtrader"]
                if "backtrader" in peers else None,
                "vs_backtesting": row["bars_per_s"] / peers["backtesting.py"]
                if "backtesting.py" in peers else None,
            })
    return out


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table, with the ratios below it."""
    head = (f"{'bars':>9} {'engine':<15} {'style':<40} {'bars/s':>11} {'fills':>6} "
            f"{'final equity':>13} {'same fills':>10} {'README md5':>10}")
    lines = [head, "-" * len(head)]
    for row in rows:
        readme = "" if row["readme_md5"] is None else ("ok" if row["readme_md5"] else "DIFFERS")
        lines.append(
            f"{row['bars']:>9,} {row['engine']:<15} {row['style']:<40} {row['bars_per_s']:>11,.0f} "
            f"{row['fills']:>6} {row['final_equity']:>13,.2f} "
            f"{'yes' if row['same_fills'] else 'NO':>10} {readme:>10}"
        )
    for ratio in ratios(rows):
        parts = [f"{ratio['bars']:,} bars, finchan {ratio['style']}:"]
        if ratio["vs_backtrader"] is not None:
            parts.append(f"{ratio['vs_backtrader']:.1f}x backtrader")
        if ratio["vs_backtesting"] is not None:
            parts.append(f"{ratio['vs_backtesting']:.2f}x backtesting.py")
        lines.append(" ".join(parts))
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
    ok = all(row["same_fills"] and row["readme_md5"] is not False for row in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
