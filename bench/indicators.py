"""Per-update cost of the incremental indicators, the TA-Lib bridge and strategy history.

    python -m bench.indicators [--quick]

Rows: nanoseconds per ``update`` of each incremental indicator (and of
``TALib`` bridges, which recompute over their window), measured over
generated bars with ``time.perf_counter``, best of three; and the bars per
second of the reference SMA cross run three ways: incremental SMAs, SMAs
from ``self.history`` (``history_bars = 30``), and incremental SMAs with
``history_bars`` set but unused (the recording cost alone). Figures depend
on the machine and its load: compare rows of one run.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from finchan.trade import backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.examples import SmaCross, _SymbolState
from finchan.trade.indicators import (
    ADX,
    ATR,
    CCI,
    EMA,
    OBV,
    RSI,
    SMA,
    VWAP,
    DonchianChannels,
    KeltnerChannels,
    ParabolicSAR,
    StdDev,
    Stochastic,
    TALib,
    WilliamsR,
    ZScore,
)

__all__ = ["main", "run"]

_CLOSE = ("close",)
_HL = ("high", "low")
_HLC = ("high", "low", "close")
#: name -> (factory, input columns)
CASES: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    "SMA(30)": (lambda: SMA(30), _CLOSE),
    "EMA(30)": (lambda: EMA(30), _CLOSE),
    "RSI(14)": (lambda: RSI(14), _CLOSE),
    "ATR(14)": (lambda: ATR(14), _HLC),
    "Stochastic(5,3,3)": (Stochastic, _HLC),
    "ADX(14)": (lambda: ADX(14), _HLC),
    "CCI(20)": (lambda: CCI(20), _HLC),
    "WilliamsR(14)": (WilliamsR, _HLC),
    "StdDev(20)": (lambda: StdDev(20), _CLOSE),
    "ZScore(20)": (lambda: ZScore(20), _CLOSE),
    "ParabolicSAR": (ParabolicSAR, _HL),
    "DonchianChannels(20)": (DonchianChannels, _HL),
    "KeltnerChannels(20,2,10)": (KeltnerChannels, _HLC),
    "OBV": (OBV, ("close", "volume")),
    "VWAP": (VWAP, ("high", "low", "close", "volume", "ts")),
    "TALib RSI(14)": (lambda: TALib("RSI", timeperiod=14), _CLOSE),
    "TALib STOCH": (lambda: TALib("STOCH"), _HLC),
}


class HistorySmaCross(SmaCross):
    """The reference cross with its averages taken from ``self.history`` windows."""

    history_bars = 30

    def on_bar(self, bar: Any) -> None:
        state = self.symbols.get(bar.symbol)
        if state is None:
            state = self.symbols[bar.symbol] = _SymbolState(1, 1)  # only last_sign is used
        slow = self.history(bar.symbol, self.params.slow)
        if slow.shape[0] < self.params.slow:
            return
        fast = slow[-self.params.fast :]
        self.trade_on_cross(
            bar.symbol, state, fast.sum() / self.params.fast - slow.sum() / self.params.slow
        )


class IdleHistorySmaCross(SmaCross):
    """The reference cross keeping history it never reads."""

    history_bars = 30


def _per_update(factory: Callable[[], Any], columns: list[list[float]]) -> float:
    best = float("inf")
    rows = list(zip(*columns))
    for _ in range(3):
        update = factory().update
        t0 = time.perf_counter()
        for row in rows:
            update(*row)
        best = min(best, time.perf_counter() - t0)
    return best / len(rows) * 1e9


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Rows ``{"case", "value", "unit"}``."""
    n = 5_000 if quick else 100_000
    frame = make_bars(n)
    cols = {c: frame[c].astype(float).tolist() for c in ("high", "low", "close", "volume")}
    cols["ts"] = [1577836800.0 + 60.0 * i for i in range(n)]
    rows = []
    for name, (factory, inputs) in CASES.items():
        ns = _per_update(factory, [cols[c] for c in inputs])
        rows.append({"case": name, "value": round(ns), "unit": "ns/update"})
    for name, cls in (
        ("SMA cross, incremental SMAs", SmaCross),
        ("SMA cross, history_bars set, unused", IdleHistorySmaCross),
        ("SMA cross, SMAs from history()", HistorySmaCross),
    ):
        best = float("inf")
        fills = 0
        for _ in range(1 if quick else 3):
            t0 = time.perf_counter()
            result = backtest(cls, {"SYN": frame}, cash=1_000_000, report=False)
            best = min(best, time.perf_counter() - t0)
            fills = len(result.fills)
        rows.append({"case": f"{name} ({fills} fills)", "value": round(n / best), "unit": "bars/s"})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 bars, one run each")
    args = parser.parse_args(argv)
    for row in run(args.quick):
        print(f"{row['case']:<48} {row['value']:>12,} {row['unit']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
