"""Performance statistics of a run from its equity curve and round-trip trades.

:func:`compute_stats` returns a plain dict whose keys are :data:`STATS_KEYS`,
in that order, with JSON-friendly values: ``float``, ``int`` or ISO-8601
``str``; durations in seconds. NaN marks a value that is undefined (a ratio
whose denominator is zero, a trade statistic without trades); no value is
ever infinite. Every key and formula is documented in ``docs/statistics.md``.

Returns are simple returns per bar, ``r[t] = equity[t] / equity[t-1] - 1``.
Annualisation uses ``periods_per_year``, given or inferred from the median
bar spacing by :func:`infer_periods_per_year`. The annualised ratios follow
empyrical's conventions (sample std, ``ddof=1``; Sortino's downside deviation
over all bars), so they equal ``empyrical`` called with
``annualization=periods_per_year``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from finchan.errors import ConfigError, DataError
from finchan.trade._stat_names import STATS

__all__ = ["STATS_KEYS", "compute_stats", "infer_periods_per_year"]

#: the keys of :func:`compute_stats`'s result, in order (listed in ``_stat_names.py``)
STATS_KEYS: tuple[str, ...] = tuple(stat.name for stat in STATS)

logger = logging.getLogger(__name__)

_DAY = 86400.0
_YEAR_24_7 = 365.25 * _DAY

# (lowest, highest median spacing in days, periods per year): the bar sizes
# with a conventional count, the same numbers as empyrical's period constants
_CONVENTIONAL_PERIODS = (
    (22 / 24, 26 / 24, 252.0),  # daily bars are trading days
    (6.5, 7.5, 52.0),
    (28.0, 31.5, 12.0),
    (89.0, 92.5, 4.0),
    (364.0, 366.5, 1.0),
)


def infer_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year implied by ``index``.

    The rule, by median spacing ``d``:

    - about one day (22 h to 26 h): 252 (daily bars are trading days);
    - about a week, month, quarter or year: 52, 12, 4, 1;
    - shorter (intraday bars): sessions from the data, ``bars per day x
      trading days per year``. Bars per day is the median count of bars per
      UTC date (the first and last dates left out, being partial). Trading
      days per year are 365.25 when some bars fall on a Saturday or Sunday,
      or when the bars cover whole days and the data spans under a week
      (weekends unseen); 252 otherwise. One-minute bars of a US equity (390
      a day, weekdays) give 98,280; round-the-clock bars every day give the
      24/7 calendar (525,960 for 1-minute bars). With bars on a single date
      the sessions cannot be seen: a 24/7 calendar, ``365.25 days / d``, and
      a warning;
    - longer, and not one of the above: ``365.25 days / d``.

    Raises
    ------
    DataError
        If ``index`` has fewer than two entries or a zero median spacing.
    """
    return _infer_periods(index)[0]


def _infer_periods(index: pd.DatetimeIndex) -> tuple[float, str]:
    """:func:`infer_periods_per_year`, and how it inferred the count (for reports)."""
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"equity: index must be datetimes, got {type(index).__name__}")
    if len(index) < 2:
        raise DataError("equity: cannot infer the bar spacing from fewer than 2 bars")
    ns = index.as_unit("ns").asi8
    spacing = float(np.median(np.diff(ns))) / 1e9
    if spacing <= 0.0:
        raise DataError("equity: the median bar spacing is zero; pass periods_per_year")
    days = spacing / _DAY
    for low, high, periods in _CONVENTIONAL_PERIODS:
        if low <= days <= high:
            return periods, f"inferred: {_SPACING_NAMES[periods]}"
    if days >= _CONVENTIONAL_PERIODS[0][0]:
        return _YEAR_24_7 / spacing, f"inferred: one bar every {days:g} days, 365.25 days a year"
    dates = ns // int(_DAY * 1e9)  # UTC day numbers
    distinct, counts = np.unique(dates, return_counts=True)
    if distinct.size < 2:
        ppy = _YEAR_24_7 / spacing
        logger.warning(
            "periods_per_year: bars on a single date cannot show the trading sessions; "
            "assumed a 24/7 calendar (%s bars a year): pass periods_per_year",
            f"{ppy:,.0f}",
        )
        return ppy, "inferred: 24/7 calendar (bars on a single date)"
    per_day = float(np.median(counts[1:-1]) if distinct.size >= 3 else counts.max())
    # 1970-01-01 was a Thursday: day number + 3, modulo 7, is 5 or 6 on weekends
    weekends = bool((((distinct + 3) % 7) >= 5).any())
    if not weekends and distinct[-1] - distinct[0] < 7 and per_day * spacing >= 23 * 3600:
        weekends = True  # round the clock and too short to see a weekend: every day
    trading_days = 365.25 if weekends else 252.0
    basis = "every day" if weekends else "weekdays"
    return (
        per_day * trading_days,
        f"inferred: {per_day:g} bars a day x {trading_days:g} trading days ({basis})",
    )


_SPACING_NAMES = {
    252.0: "daily bars, 252 a year",
    52.0: "weekly bars, 52 a year",
    12.0: "monthly bars, 12 a year",
    4.0: "quarterly bars, 4 a year",
    1.0: "yearly bars, 1 a year",
}


def _positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (number > 0.0 and math.isfinite(number)):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return number


def _rate(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not (number > -1.0 and math.isfinite(number)):
        raise ConfigError(f"risk_free_rate must be a number above -1 (0.02 is 2 %), got {value!r}")
    return number


def _utc_index(owner: str, series: pd.Series) -> pd.DatetimeIndex:
    index = series.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"{owner}: index must be datetimes, got {type(index).__name__}")
    # naive times are UTC, as everywhere in finchan without a timezone setting
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return index.as_unit("ns")


def _check_equity(equity: Any) -> tuple[pd.DatetimeIndex, np.ndarray]:
    if not isinstance(equity, pd.Series):
        raise DataError(f"equity: expected a pandas Series, got {type(equity).__name__}")
    if len(equity) == 0:
        raise DataError("equity: the series is empty")
    index = _utc_index("equity", equity)
    values = equity.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise DataError(f"equity: value {values[bad[0]]} at {index[bad[0]].isoformat()}")
    steps = np.diff(index.asi8)
    if (steps <= 0).any():
        at = index[int(np.flatnonzero(steps <= 0)[0]) + 1]
        raise DataError(f"equity: index not strictly increasing at {at.isoformat()}")
    return index, values


def _nan_if_not_finite(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else math.nan


def _drawdown_stats(index: pd.DatetimeIndex, values: np.ndarray) -> tuple[float, float, int]:
    """Max drawdown (<= 0), and longest time (s) and bar count spent below a peak."""
    peak = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        max_dd = float(np.min(values / peak - 1.0)) if peak[0] > 0.0 else math.nan
    under = np.concatenate(([False], values < peak, [False])).astype(np.int8)
    edges = np.diff(under)
    first = np.flatnonzero(edges == 1)  # first bar below the peak of each drawdown
    after = np.flatnonzero(edges == -1)  # first bar back at a peak (may be past the end)
    if first.size == 0:
        return max_dd, 0.0, 0
    last = len(values) - 1
    peak_bar = first - 1
    end_bar = np.minimum(after, last)  # an unrecovered drawdown lasts to the end
    ns = index.asi8
    seconds = (ns[end_bar] - ns[peak_bar]).max() / 1e9
    return max_dd, float(seconds), int((end_bar - peak_bar).max())


def _exposure(
    index: pd.DatetimeIndex,
    exposure: Any,
    trades: pd.DataFrame | None,
    open_trades: pd.DataFrame | None = None,
) -> float:
    if exposure is not None:
        if not isinstance(exposure, pd.Series):
            raise DataError(f"exposure: expected a pandas Series, got {type(exposure).__name__}")
        if len(exposure) != len(index) or not _utc_index("exposure", exposure).equals(index):
            raise DataError("exposure: its index differs from the equity index")
        held = exposure.fillna(0).to_numpy() != 0
        return float(held.mean())
    if trades is None and open_trades is None:
        return math.nan
    frames = [f for f in (trades, open_trades) if f is not None and len(f)]
    if not frames:
        return 0.0
    if any("entry_time" not in f.columns or "exit_time" not in f.columns for f in frames):
        return math.nan
    ns = index.asi8

    def _positions(frame: pd.DataFrame, column: str) -> np.ndarray:
        times = pd.DatetimeIndex(pd.to_datetime(frame[column]))
        times = times.tz_localize("UTC") if times.tz is None else times.tz_convert("UTC")
        found = np.searchsorted(ns, times.as_unit("ns").asi8, side="left")
        # no exit time: a position still open holds to the last bar
        return np.where(times.isna(), len(ns), found)

    # a trade holds a position on the bars from its entry to before its exit
    opens = np.zeros(len(ns) + 1, dtype=np.int64)
    for frame in frames:
        np.add.at(opens, _positions(frame, "entry_time"), 1)
        np.add.at(opens, _positions(frame, "exit_time"), -1)
    held = np.cumsum(opens[:-1]) > 0
    return float(held.mean())


def _benchmark_stats(
    index: pd.DatetimeIndex, values: np.ndarray, benchmark: Any, ppy: float, rf: float
) -> tuple[float, float, float]:
    """Buy-and-hold return of ``benchmark`` over the equity's span, alpha and beta against it."""
    nan = math.nan
    if benchmark is None:
        return nan, nan, nan
    if not isinstance(benchmark, pd.Series):
        raise DataError(f"benchmark: expected a pandas Series, got {type(benchmark).__name__}")
    bench_index = _utc_index("benchmark", benchmark)
    bench = pd.Series(benchmark.to_numpy(dtype=np.float64, na_value=np.nan), index=bench_index)
    bench = bench[~bench.index.duplicated(keep="last")].sort_index()
    # the benchmark's value at each equity time: its last value at or before it
    b = bench.reindex(bench.index.union(index)).ffill().reindex(index).to_numpy()
    ok = np.isfinite(b) & (b > 0.0)
    if ok.sum() < 2:
        return nan, nan, nan
    first, last = np.flatnonzero(ok)[[0, -1]]
    total = float(b[last] / b[first] - 1.0)
    if not (ok[first:].all() and (values > 0.0).all() and math.isfinite(ppy)):
        return total, nan, nan
    b = b[first:]
    v = values[first:]
    if b.size < 3:
        return total, nan, nan
    r = v[1:] / v[:-1] - 1.0
    f = b[1:] / b[:-1] - 1.0
    var = float(np.mean((f - f.mean()) ** 2))
    if var == 0.0:
        return total, nan, nan
    beta = float(np.mean((f - f.mean()) * r)) / var
    rf_bar = (1.0 + rf) ** (1.0 / ppy) - 1.0
    excess = (r - rf_bar) - beta * (f - rf_bar)
    try:
        alpha = (1.0 + float(np.mean(excess))) ** ppy - 1.0
    except OverflowError:
        alpha = nan
    return total, alpha, beta


def _trade_stats(trades: pd.DataFrame | None) -> dict[str, Any]:
    nan = math.nan
    if trades is None:
        return {
            "trades": 0,
            "win_rate": nan,
            "profit_factor": nan,
            "gross_profit": nan,
            "gross_loss": nan,
            "avg_win": nan,
            "avg_loss": nan,
            "best_trade": nan,
            "worst_trade": nan,
            "avg_trade": nan,
            "total_commission": nan,
        }
    if not isinstance(trades, pd.DataFrame):
        raise DataError(f"trades: expected a pandas DataFrame, got {type(trades).__name__}")
    if "pnl" not in trades.columns:
        raise DataError("trades: missing column 'pnl'")
    pnl = trades["pnl"].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(pnl))
    if bad.size:
        raise DataError(f"trades: column 'pnl' holds {pnl[bad[0]]} at row {int(bad[0])}")
    wins = pnl[pnl > 0.0]
    losses = pnl[pnl < 0.0]
    count = int(pnl.size)
    gross_profit = math.fsum(wins.tolist())
    gross_loss = math.fsum(losses.tolist())
    if "commission" in trades.columns:
        commission = trades["commission"].to_numpy(dtype=np.float64, na_value=np.nan)
        total_commission = math.fsum(commission.tolist())
    else:
        total_commission = nan
    return {
        "trades": count,
        "win_rate": wins.size / count if count else nan,
        "profit_factor": gross_profit / -gross_loss if gross_loss < 0.0 else nan,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "avg_win": gross_profit / wins.size if wins.size else nan,
        "avg_loss": gross_loss / losses.size if losses.size else nan,
        "best_trade": float(pnl.max()) if count else nan,
        "worst_trade": float(pnl.min()) if count else nan,
        "avg_trade": math.fsum(pnl.tolist()) / count if count else nan,
        "total_commission": total_commission,
    }


def compute_stats(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    *,
    exposure: pd.Series | None = None,
    periods_per_year: float | None = None,
    risk_free_rate: float = 0.0,
    open_trades: pd.DataFrame | None = None,
    benchmark: pd.Series | None = None,
) -> dict[str, Any]:
    """Statistics of a run, as a dict keyed by :data:`STATS_KEYS`.

    Parameters
    ----------
    equity : pandas.Series
        Account value at the end of each bar, indexed by strictly increasing
        datetimes (naive ones are read as UTC).
    trades : pandas.DataFrame, optional
        Round trips, one per row: ``pnl`` is required; ``commission`` feeds
        ``total_commission``; ``entry_time`` and ``exit_time`` give the
        exposure when ``exposure`` is not passed. Without it the trade keys
        are NaN and ``trades`` is 0.
    exposure : pandas.Series, optional
        On the equity index: True, or a non-zero position size, on the bars
        where a position is open. Without it, a bar is exposed when some
        trade or open trade has ``entry_time <= bar time < exit_time`` (an
        open trade's missing exit time is past the last bar).
    periods_per_year : float, optional
        Bars per year for annualisation; inferred by
        :func:`infer_periods_per_year` when omitted.
    risk_free_rate : float
        Annual risk-free rate, compounded per bar for Sharpe, Sortino and alpha.
    open_trades : pandas.DataFrame, optional
        Round trips still open at the end (``entry_time``, no ``exit_time``):
        counted in ``open_trades`` and in the exposure, not in the closed
        trade statistics.
    benchmark : pandas.Series, optional
        A buy-and-hold value (e.g. a price) on datetimes: its return over the
        equity's span is ``benchmark_return``; ``alpha`` and ``beta`` regress
        the equity's per-bar returns on its returns at the same times.

    Returns
    -------
    dict
        Keys and formulas in ``docs/statistics.md``; NaN where undefined.

    Raises
    ------
    DataError
        For an empty or unsorted equity curve, a non-finite value, or trades
        without the columns a statistic needs.
    ConfigError
        For a non-positive ``periods_per_year``.
    """
    index, values = _check_equity(equity)
    bars = int(values.size)
    if periods_per_year is not None:
        ppy = _positive("periods_per_year", periods_per_year)
        source = "given"
    elif bars >= 2:
        ppy, source = _infer_periods(index)
    else:
        ppy, source = math.nan, "none: a single bar"
    rf = _rate(risk_free_rate)

    nan = math.nan
    start_equity = float(values[0])
    final_equity = float(values[-1])
    positive = bool((values > 0.0).all())
    total_return = final_equity / start_equity - 1.0 if start_equity > 0.0 else nan

    n_ret = bars - 1
    cagr = nan
    if n_ret >= 1 and start_equity > 0.0 and math.isfinite(ppy):
        growth = final_equity / start_equity
        if growth > 0.0:
            try:
                cagr = growth ** (ppy / n_ret) - 1.0
            except OverflowError:  # a short run compounded over a year: infinite
                cagr = nan
        elif growth == 0.0:
            cagr = -1.0

    vol = sharpe = sortino = nan
    if n_ret >= 2 and positive and math.isfinite(ppy):
        returns = values[1:] / values[:-1] - 1.0
        excess = returns - ((1.0 + rf) ** (1.0 / ppy) - 1.0)
        mean = float(np.mean(excess))
        # identical returns have a zero deviation, though the computed one may
        # be a rounding residue that would turn an undefined Sharpe into 1e15
        if returns.max() == returns.min():
            vol = 0.0
        else:
            vol = float(np.std(returns, ddof=1)) * math.sqrt(ppy)
            sharpe = mean / float(np.std(excess, ddof=1)) * math.sqrt(ppy)
        downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
        if downside > 0.0:
            sortino = mean * math.sqrt(ppy) / downside

    max_dd, dd_seconds, dd_bars = _drawdown_stats(index, values)
    calmar = cagr / -max_dd if max_dd < 0.0 else nan

    result: dict[str, Any] = {
        "start": index[0].isoformat(),
        "end": index[-1].isoformat(),
        "duration_s": (index.asi8[-1] - index.asi8[0]) / 1e9,
        "bars": bars,
        "periods_per_year": ppy,
        "periods_per_year_source": source,
        "risk_free_rate": rf,
        "start_equity": start_equity,
        "final_equity": final_equity,
        "total_return": total_return,
        "cagr": cagr,
        "annual_volatility": vol,
        "sharpe": sharpe,
        "sortino": sortino,
        "calmar": calmar,
        "max_drawdown": max_dd,
        "max_drawdown_duration_s": dd_seconds,
        "max_drawdown_bars": dd_bars,
        "exposure": _exposure(index, exposure, trades, open_trades),
    }
    result["benchmark_return"], result["alpha"], result["beta"] = _benchmark_stats(
        index, values, benchmark, ppy, rf
    )
    result.update(_trade_stats(trades))
    result["open_trades"] = 0 if open_trades is None else len(open_trades)
    return {
        key: value if isinstance(value, int | str) else _nan_if_not_finite(value)
        for key, value in ((key, result[key]) for key in STATS_KEYS)
    }
