"""A self-contained HTML report of a backtest.

:func:`write_report` writes one HTML file that opens offline in any browser:
plotly.js is embedded once, every chart is a plotly figure, tables are plain
HTML. The page holds a header (title and a table of ``meta``), the statistics
of :func:`finchan.trade.stats.compute_stats`, the equity curve over its
drawdown, the close of each symbol with its fills as buy/sell markers, a
heatmap of monthly returns and the list of round-trip trades.

Long runs stay small: every line is cut to at most :data:`MAX_POINTS` points
by :func:`downsample`, which keeps the first, lowest, highest and last point
of each bucket so spikes and the deepest drawdown remain visible. The file is
deterministic: the same inputs give the same bytes (fixed element ids, no
generation time).
"""

from __future__ import annotations

import html
import json
import math
import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from finchan.errors import ConfigError, DataError

__all__ = [
    "MAX_FILL_MARKERS",
    "MAX_POINTS",
    "MAX_SYMBOLS",
    "MAX_TRADE_ROWS",
    "downsample",
    "write_report",
]

#: most points drawn per line (equity, drawdown, each close)
MAX_POINTS = 5000
#: most fill markers drawn per symbol; more are subsampled evenly
MAX_FILL_MARKERS = 5000
#: most symbols given a price chart
MAX_SYMBOLS = 8
#: most trades listed; beyond it the first and last half are shown
MAX_TRADE_ROWS = 500

_FILL_COLUMNS = ("datetime", "symbol", "side", "qty", "price")
_PLOT_COLUMNS = ("datetime", "name", "symbol", "panel", "value")  # BacktestResult.indicators
_CHART_HEIGHT = {"equity": "560px", "price": "420px", "monthly": "360px", "indicator": "300px"}
_PLOT_CONFIG = {"responsive": True, "displaylogo": False}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NAT = np.iinfo(np.int64).min  # NaT in int64 nanoseconds
_BUY_COLOR = "#1a9850"
_SELL_COLOR = "#d73027"

# (title, keys) of the statistics tables, and (label, format) of each key;
# keys of a newer compute_stats that are not listed land in "Other"
_STATS_GROUPS = (
    (
        "Period",
        (
            "start",
            "end",
            "duration_s",
            "bars",
            "periods_per_year",
            "periods_per_year_source",
            "exposure",
        ),
    ),
    (
        "Returns and risk",
        (
            "start_equity",
            "final_equity",
            "total_return",
            "benchmark_return",
            "cagr",
            "annual_volatility",
            "risk_free_rate",
            "sharpe",
            "sortino",
            "calmar",
            "alpha",
            "beta",
            "max_drawdown",
            "max_drawdown_duration_s",
            "max_drawdown_bars",
        ),
    ),
    (
        "Trades",
        (
            "trades",
            "open_trades",
            "win_rate",
            "profit_factor",
            "gross_profit",
            "gross_loss",
            "avg_win",
            "avg_loss",
            "best_trade",
            "worst_trade",
            "avg_trade",
            "total_commission",
        ),
    ),
)
_STATS_FORMAT = {
    "start": ("Start", "time"),
    "end": ("End", "time"),
    "duration_s": ("Duration", "duration"),
    "bars": ("Bars", "int"),
    "periods_per_year": ("Periods per year", "number"),
    "periods_per_year_source": ("Periods per year from", "text"),
    "benchmark_return": ("Buy and hold return", "percent"),
    "alpha": ("Alpha (annual)", "percent"),
    "beta": ("Beta", "ratio"),
    "open_trades": ("Open trades", "int"),
    "exposure": ("Exposure", "percent"),
    "start_equity": ("Start equity", "money"),
    "final_equity": ("Final equity", "money"),
    "total_return": ("Total return", "percent"),
    "cagr": ("CAGR", "percent"),
    "annual_volatility": ("Annual volatility", "percent"),
    "risk_free_rate": ("Risk-free rate", "percent"),
    "sharpe": ("Sharpe ratio", "ratio"),
    "sortino": ("Sortino ratio", "ratio"),
    "calmar": ("Calmar ratio", "ratio"),
    "max_drawdown": ("Max drawdown", "percent"),
    "max_drawdown_duration_s": ("Longest drawdown", "duration"),
    "max_drawdown_bars": ("Longest drawdown (bars)", "int"),
    "trades": ("Trades", "int"),
    "win_rate": ("Win rate", "percent"),
    "profit_factor": ("Profit factor", "ratio"),
    "gross_profit": ("Gross profit", "money"),
    "gross_loss": ("Gross loss", "money"),
    "avg_win": ("Average win", "money"),
    "avg_loss": ("Average loss", "money"),
    "best_trade": ("Best trade", "money"),
    "worst_trade": ("Worst trade", "money"),
    "avg_trade": ("Average trade", "money"),
    "total_commission": ("Total commission", "money"),
}
# coloured green when positive, red when negative
_SIGNED_STATS = frozenset({"total_return", "cagr", "max_drawdown"})
_TRADE_FORMAT = {
    "qty": "qty",
    "entry_time": "time",
    "exit_time": "time",
    "entry_price": "price",
    "exit_price": "price",
    "pnl": "money",
    "pnl_pct": "percent",
    "commission": "money",
    "bars_held": "int",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 1400px; padding: 0 1.5rem 3rem; color: #222; }
h1 { margin: 1.2rem 0 0.6rem; }
h2 { margin: 2rem 0 0.6rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; font-size: 0.88rem; }
th, td { padding: 0.2rem 0.7rem; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.meta th { color: #555; font-weight: 600; }
.stats { display: flex; flex-wrap: wrap; gap: 1.5rem 2.5rem; align-items: flex-start; }
.stats caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
.trades-wrap { overflow-x: auto; }
table.trades th { position: sticky; top: 0; background: #fafafa; }
tr.omitted td { text-align: center; color: #777; font-style: italic; background: #fafafa; }
.pos { color: #1a7f37; }
.neg { color: #c62828; }
p.note { color: #666; font-style: italic; }
footer { margin-top: 3rem; color: #999; font-size: 0.8rem; }
"""


# --- downsampling --------------------------------------------------------------


def _minmax_positions(values: np.ndarray, max_points: int) -> np.ndarray:
    """Sorted positions of the first, min, max and last value of each bucket."""
    n = int(values.size)
    if n <= max_points:
        return np.arange(n)
    buckets = max_points // 4
    size = -(-n // buckets)
    # ceil(n / buckets) values per bucket: at most `buckets` buckets, tail included
    full = n // size
    body = values[: full * size].reshape(full, size)
    starts = np.arange(full, dtype=np.int64) * size
    parts = [starts, starts + body.argmin(axis=1), starts + body.argmax(axis=1), starts + size - 1]
    done = full * size
    if done < n:
        tail = values[done:]
        parts.append(np.array([done, done + tail.argmin(), done + tail.argmax(), n - 1]))
    return np.unique(np.concatenate(parts))


def downsample(series: pd.Series, max_points: int = MAX_POINTS) -> pd.Series:
    """At most ``max_points`` points of ``series`` that still look like it.

    The series is cut into ``max_points // 4`` buckets of consecutive points;
    of each bucket the first, lowest, highest and last points are kept, in
    their original order. So the global minimum and maximum, both endpoints
    and every spike survive, and a line through the result covers the same
    range as the full series. Non-finite values are dropped first; a series
    already short enough is returned whole.

    Parameters
    ----------
    series : pandas.Series
        Numeric values in time order.
    max_points : int
        Upper bound of the result's length, at least 4.

    Returns
    -------
    pandas.Series
        A subset of ``series`` (same index type and values).

    Examples
    --------
    >>> s = pd.Series(np.sin(np.arange(1_000_000) / 5000.0))
    >>> len(downsample(s, 4000)) <= 4000
    True
    """
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 4:
        raise ConfigError(f"downsample: max_points must be an integer >= 4, got {max_points!r}")
    values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values)
    if not finite.all():
        series = series[finite]
        values = values[finite]
    if values.size <= max_points:
        return series
    return series.iloc[_minmax_positions(values, max_points)]


# --- input normalisation ---------------------------------------------------------


def _utc_ns(owner: str, values: Any) -> np.ndarray:
    """Times as int64 UTC nanoseconds (NaT as the int64 minimum).

    Aware times are converted, naive ones read as UTC, numbers as POSIX seconds.
    """
    if isinstance(values, pd.DatetimeIndex):
        index = values
    else:
        array = pd.Series(values)
        if len(array) and pd.api.types.is_numeric_dtype(array.dtype):
            index = pd.DatetimeIndex(pd.to_datetime(array, unit="s", utc=True))
        else:
            try:
                index = pd.DatetimeIndex(pd.to_datetime(array, utc=True))
            except (TypeError, ValueError) as exc:
                raise DataError(f"{owner}: not datetimes ({exc})") from None
    if index.tz is None:
        index = index.tz_localize("UTC")
    return index.tz_convert("UTC").as_unit("ns").asi8


def _series_ns(owner: str, series: Any) -> tuple[np.ndarray, np.ndarray]:
    """(UTC ns times, float values) of a time-indexed series, sorted by time."""
    if not isinstance(series, pd.Series):
        raise DataError(f"{owner}: expected a pandas Series, got {type(series).__name__}")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise DataError(f"{owner}: index must be datetimes, got {type(series.index).__name__}")
    times = _utc_ns(owner, series.index)
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{owner}: values are not numbers ({exc})") from None
    if times.size > 1 and (np.diff(times) < 0).any():
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    finite = np.isfinite(values)
    if not finite.all():
        times, values = times[finite], values[finite]
    return times, values


def _frame(owner: str, frame: Any, required: Iterable[str]) -> pd.DataFrame:
    """``frame`` checked for ``required`` columns; None and empty frames are empty."""
    if frame is None:
        return pd.DataFrame()
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{owner}: expected a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        return pd.DataFrame()
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(f"{owner}: missing column {missing[0]!r}")
    return frame


# --- formatting ------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fmt_duration(seconds: float) -> str:
    """``93784`` -> ``"1d 2h"``: the two largest units, a zero second one left out."""
    if seconds < 60.0:
        return f"{seconds:.3g}s"
    rest = round(seconds)
    counts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        counts.append((count, unit))
    first = next(i for i, (count, _) in enumerate(counts) if count)
    return " ".join(f"{count:,}{unit}" for count, unit in counts[first : first + 2] if count)


def _fmt_time_ns(ns: int) -> str:
    stamp = pd.Timestamp(ns, tz="UTC")
    text = stamp.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{stamp.microsecond // 1000:03d}" if stamp.microsecond else text


def _fmt_value(value: Any, kind: str) -> str:
    """One cell's text; NaN and missing values as ``n/a``."""
    if _is_missing(value):
        return "n/a"
    if kind == "time":
        if isinstance(value, str):
            try:
                value = pd.Timestamp(value)
            except ValueError:
                return value
        return _fmt_time_ns(int(_utc_ns("time", pd.DatetimeIndex([value]))[0]))
    if isinstance(value, str) or not isinstance(value, int | float | np.number):
        return str(value)
    number = float(value)
    if kind == "percent":
        text = f"{number * 100:,.2f} %"
    elif kind == "duration":
        text = _fmt_duration(number)
    elif kind == "int" or (kind in ("qty", "number") and number.is_integer()):
        text = f"{round(number):,}"
    elif kind == "money":
        text = f"{number:,.2f}"
    elif kind == "ratio":
        text = f"{number:,.3f}"
    elif kind == "qty":
        text = f"{number:,.10g}"
    elif abs(number) >= 1.0:
        text = f"{number:,.4f}"
    else:
        # small prices and quantities (0.00012 BTC) keep their significant digits
        text = f"{number:.6g}"
    # -0.001 printed with 2 decimals is no loss
    return text[1:] if text.startswith("-") and not text.strip("-0.,% ") else text


def _sign_class(value: Any) -> str:
    if _is_missing(value) or isinstance(value, str):
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "pos" if number > 0 else "neg" if number < 0 else ""


def _td(text: str, *classes: str) -> str:
    """A table cell of ``text`` (escaped here), with its non-empty CSS classes."""
    names = " ".join(name for name in classes if name)
    attribute = f' class="{names}"' if names else ""
    return f"<td{attribute}>{html.escape(text)}</td>"


def _fmt_meta(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_fmt_meta(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def _name_list(names: list[str], most: int = 20) -> str:
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])} and {len(names) - most:,} more"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


# --- sections ------------------------------------------------------------------------


def _header(title: str, meta: Mapping[str, Any] | None) -> str:
    parts = [f"<header><h1>{html.escape(title)}</h1>"]
    if meta:
        rows = "".join(
            f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(_fmt_meta(value))}</td></tr>"
            for key, value in meta.items()
        )
        parts.append(f'<table class="meta">{rows}</table>')
    parts.append("</header>")
    return "".join(parts)


def _stats_section(stats: Mapping[str, Any]) -> str:
    parts = ['<section id="statistics"><h2>Statistics</h2>']
    if not stats:
        parts.append(_note("No statistics were given."))
        return "".join(parts) + "</section>"
    listed = {key for _, keys in _STATS_GROUPS for key in keys}
    groups = [(title, [key for key in keys if key in stats]) for title, keys in _STATS_GROUPS]
    groups.append(("Other", [key for key in stats if key not in listed]))
    parts.append('<div class="stats">')
    for caption, keys in groups:
        if not keys:
            continue
        rows = []
        for key in keys:
            label, kind = _STATS_FORMAT.get(key, (str(key), "number"))
            value = stats[key]
            sign = _sign_class(value) if key in _SIGNED_STATS else ""
            cell = _td(_fmt_value(value, kind), "num", sign)
            rows.append(f"<tr><th>{html.escape(label)}</th>{cell}</tr>")
        parts.append(f"<table><caption>{html.escape(caption)}</caption>{''.join(rows)}</table>")
    parts.append("</div></section>")
    return "".join(parts)


def _x_strings(ns: np.ndarray) -> np.ndarray:
    """ISO strings plotly reads as UTC wall time (plotly.js ignores time zones)."""
    times = ns.astype("datetime64[ns]")
    if (ns % 1_000_000_000 == 0).all():
        return np.datetime_as_string(times, unit="s")
    return np.datetime_as_string(times, unit="ms")


def _figure_html(fig: Any, div_id: str, height: str) -> str:
    import plotly.io as pio

    # an explicit div_id: plotly would otherwise draw a random uuid per figure
    return pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config=_PLOT_CONFIG,
        default_height=height,
    )


def _layout(**kwargs: Any) -> dict[str, Any]:
    return {
        "template": "plotly_white",
        "margin": {"l": 70, "r": 30, "t": 50, "b": 40},
        "hovermode": "x unified",
        **kwargs,
    }


def _equity_section(
    times: np.ndarray, values: np.ndarray, benchmark: tuple[np.ndarray, np.ndarray] | None = None
) -> str:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    parts = ['<section id="equity"><h2>Equity and drawdown</h2>']
    if values.size == 0:
        parts.append(_note("The equity curve is empty: nothing to plot."))
        return "".join(parts) + "</section>"
    if values.size == 1:
        parts.append(_note("The equity curve has a single point: no returns, no drawdown."))
    peak = np.maximum.accumulate(values)
    # the drawdown is defined from the first positive peak on; the running
    # peak never falls, so that is one slice and no copy of a long curve
    first = int(np.searchsorted(peak, 0.0, side="right"))
    drawdown = values[first:] / peak[first:] - 1.0
    dd_times = times[first:]
    eq_at = _minmax_positions(values, MAX_POINTS)
    dd_at = _minmax_positions(drawdown, MAX_POINTS)

    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.7, 0.3]
    )
    fig.add_trace(
        go.Scatter(
            x=_x_strings(times[eq_at]),
            y=values[eq_at],
            mode="lines",
            name="equity",
            line={"color": "#1f77b4", "width": 1.5},
            hovertemplate="%{y:,.2f}<extra>equity</extra>",
        ),
        row=1,
        col=1,
    )
    if benchmark is not None and benchmark[1].size:
        b_times, b_values = benchmark
        b_at = _minmax_positions(b_values, MAX_POINTS)
        fig.add_trace(
            go.Scatter(
                x=_x_strings(b_times[b_at]),
                y=b_values[b_at],
                mode="lines",
                name="buy and hold",
                line={"color": "#7f7f7f", "width": 1, "dash": "dot"},
                hovertemplate="%{y:,.2f}<extra>buy and hold</extra>",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=_x_strings(dd_times[dd_at]),
            y=drawdown[dd_at],
            mode="lines",
            name="drawdown",
            fill="tozeroy",
            line={"color": _SELL_COLOR, "width": 1},
            hovertemplate="%{y:.2%}<extra>drawdown</extra>",
        ),
        row=2,
        col=1,
    )
    title = "Equity (UTC)" if benchmark is None else "Equity and buy and hold (dotted, UTC)"
    trough = int(np.argmin(drawdown)) if drawdown.size else 0
    if drawdown.size and drawdown[trough] < 0.0:
        fig.add_trace(
            go.Scatter(
                x=_x_strings(dd_times[[trough]]),
                y=drawdown[[trough]],
                mode="markers",
                name="max drawdown",
                marker={"color": "#000", "size": 8, "symbol": "x"},
                hovertemplate="%{y:.2%}<extra>max drawdown</extra>",
            ),
            row=2,
            col=1,
        )
        title += f", max drawdown {drawdown[trough] * 100:.2f} %"
    if values.size > MAX_POINTS:
        title += f" ({eq_at.size:,} of {values.size:,} points drawn)"
    fig.update_layout(_layout(title={"text": title}, showlegend=False))
    fig.update_yaxes(title_text="equity", tickformat=",.8~r", row=1, col=1)
    fig.update_yaxes(title_text="drawdown", tickformat=".1%", row=2, col=1)
    parts.append(_figure_html(fig, "finchan-equity", _CHART_HEIGHT["equity"]))
    return "".join(parts) + "</section>"


def _chart_symbols(prices: Mapping[str, Any], fill_counts: Mapping[str, int]) -> list[str]:
    """Symbols with fills first (most fills first), then the others, in given order."""
    symbols = list(prices) + [s for s in fill_counts if s not in prices]
    rank = {symbol: position for position, symbol in enumerate(symbols)}
    return sorted(symbols, key=lambda s: (-fill_counts.get(s, 0), rank[s]))


def _fill_trace(go: Any, side: str, times: np.ndarray, fills: pd.DataFrame) -> Any:
    buy = side == "BUY"
    qty = fills["qty"].to_numpy(dtype=np.float64, na_value=np.nan)
    return go.Scatter(
        x=_x_strings(times),
        y=fills["price"].to_numpy(dtype=np.float64, na_value=np.nan),
        customdata=qty,
        mode="markers",
        name=side.lower(),
        marker={
            "symbol": "triangle-up" if buy else "triangle-down",
            "color": _BUY_COLOR if buy else _SELL_COLOR,
            "size": 9,
            "line": {"width": 0.5, "color": "#333"},
        },
        hovertemplate=f"{side} %{{customdata:,}} @ %{{y:,.8~r}}<extra></extra>",
    )


def _price_section(
    prices: Mapping[str, Any], fills: pd.DataFrame, overlays: pd.DataFrame | None = None
) -> str:
    import plotly.graph_objects as go

    parts = ['<section id="prices"><h2>Prices and fills</h2>']
    if not isinstance(prices, Mapping):
        raise DataError(f"prices: expected a dict of pandas Series, got {type(prices).__name__}")
    by_symbol: dict[str, pd.DataFrame] = {}
    if len(fills):
        symbols = fills["symbol"].astype(str)
        for symbol, group in fills.groupby(symbols, sort=False):
            by_symbol[str(symbol)] = group
    counts = {symbol: len(group) for symbol, group in by_symbol.items()}
    symbols = _chart_symbols({str(s): v for s, v in prices.items()}, counts)
    if not symbols:
        parts.append(_note("No prices and no fills: nothing to plot."))
        return "".join(parts) + "</section>"
    if not len(fills):
        parts.append(_note("No fills: the prices are drawn without markers."))
    shown, hidden = symbols[:MAX_SYMBOLS], symbols[MAX_SYMBOLS:]
    if hidden:
        parts.append(
            _note(
                f"{len(symbols)} symbols; the {MAX_SYMBOLS} with the most fills are drawn, "
                f"not drawn: {_name_list(hidden)}."
            )
        )
    price_of = {str(symbol): series for symbol, series in prices.items()}
    for number, symbol in enumerate(shown, 1):
        fig = go.Figure()
        title = f"{symbol} (UTC)"
        if symbol in price_of:
            times, values = _series_ns(f"prices[{symbol!r}]", price_of[symbol])
            at = _minmax_positions(values, MAX_POINTS)
            fig.add_trace(
                go.Scatter(
                    x=_x_strings(times[at]),
                    y=values[at],
                    mode="lines",
                    name="close",
                    line={"color": "#555", "width": 1.2},
                    hovertemplate="%{y:,.8~r}<extra>close</extra>",
                )
            )
            if values.size > MAX_POINTS:
                title += f", close: {at.size:,} of {values.size:,} points drawn"
        if overlays is not None:
            mine = overlays[(overlays["symbol"] == symbol) & (overlays["panel"] == "price")]
            for trace in _indicator_traces(go, mine, False):
                fig.add_trace(trace)
        group = by_symbol.get(symbol)
        if group is not None:
            times = _utc_ns(f"fills[{symbol!r}].datetime", group["datetime"])
            price = group["price"].to_numpy(dtype=np.float64, na_value=np.nan)
            # a fill without a time or a price has no place on the chart
            drawable = (times != _NAT) & np.isfinite(price)
            order = np.flatnonzero(drawable)[np.argsort(times[drawable], kind="stable")]
            if order.size > MAX_FILL_MARKERS:
                title += f", fill markers: {MAX_FILL_MARKERS:,} of {order.size:,} drawn"
                order = order[np.linspace(0, order.size - 1, MAX_FILL_MARKERS).round().astype(int)]
            group, times = group.iloc[order], times[order]
            sides = group["side"].astype(str).str.upper().to_numpy()
            for side in ("BUY", "SELL"):
                mask = sides == side
                if mask.any():
                    fig.add_trace(_fill_trace(go, side, times[mask], group[mask]))
        else:
            title += ", no fills"
        fig.update_layout(_layout(title={"text": title}, hovermode="closest", showlegend=True))
        fig.update_yaxes(tickformat=",.8~r")
        parts.append(_figure_html(fig, f"finchan-price-{number}", _CHART_HEIGHT["price"]))
    return "".join(parts) + "</section>"


_INDICATOR_COLORS = ("#1f77b4", "#ff7f0e", "#9467bd", "#17becf", "#bcbd22", "#e377c2", "#8c564b")


def _indicator_traces(go: Any, frame: pd.DataFrame, with_symbol: bool) -> list[Any]:
    """One line per (name, symbol) of ``frame``, NaN left out, cut to MAX_POINTS."""
    traces = []
    keys = frame[["name", "symbol"]].drop_duplicates().itertuples(index=False)
    for number, (name, symbol) in enumerate(keys):
        rows = frame[(frame["name"] == name) & (frame["symbol"] == symbol)]
        label = f"{name} {symbol}" if with_symbol and symbol else str(name)
        times, values = _series_ns(
            f"indicators[{label!r}]", pd.Series(rows["value"].to_numpy(), index=rows["datetime"])
        )
        at = _minmax_positions(values, MAX_POINTS)
        traces.append(
            go.Scatter(
                x=_x_strings(times[at]),
                y=values[at],
                mode="lines",
                name=label,
                line={"color": _INDICATOR_COLORS[number % len(_INDICATOR_COLORS)], "width": 1.1},
                hovertemplate=f"%{{y:,.8~r}}<extra>{html.escape(label)}</extra>",
            )
        )
    return traces


def _indicator_section(indicators: pd.DataFrame) -> str:
    """One chart per panel of the series drawn with ``Strategy.plot`` (not the price overlays)."""
    import plotly.graph_objects as go

    own = indicators[indicators["panel"] != "price"]
    if own.empty:
        return ""
    parts = ['<section id="indicators"><h2>Indicators</h2>']
    for number, panel in enumerate(dict.fromkeys(own["panel"].tolist()), 1):
        fig = go.Figure(_indicator_traces(go, own[own["panel"] == panel], True))
        fig.update_layout(_layout(title={"text": f"{panel} (UTC)"}, showlegend=True))
        fig.update_yaxes(tickformat=",.8~r")
        parts.append(_figure_html(fig, f"finchan-indicator-{number}", _CHART_HEIGHT["indicator"]))
    return "".join(parts) + "</section>"


def _monthly_returns(times: np.ndarray, values: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(years, 12-column array of returns), NaN for months without data."""
    months = times.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    last = np.flatnonzero(np.diff(months) != 0)
    last = np.append(last, months.size - 1)
    month_end = values[last]
    # a month's return runs from the previous month's last value (the first
    # value of the curve for the first month)
    base = np.concatenate(([values[0]], month_end[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(base > 0.0, month_end / base - 1.0, np.nan)
    month_ids = months[last]
    first_year = int(month_ids[0] // 12) + 1970
    years = list(range(first_year, int(month_ids[-1] // 12) + 1970 + 1))
    grid = np.full((len(years), 12), np.nan)
    grid[month_ids // 12 + 1970 - first_year, month_ids % 12] = returns
    return years, grid


def _heat_label(value: float) -> str:
    """A month's return in its cell: 1 decimal, 2 below 1 % so 0.04 % is not 0.0 %."""
    text = f"{value * 100:.1f}%" if abs(value) >= 0.01 else f"{value * 100:.2f}%"
    return text[1:] if text.startswith("-") and not text.strip("-0.%") else text


def _monthly_section(times: np.ndarray, values: np.ndarray) -> str:
    import plotly.graph_objects as go

    parts = ['<section id="monthly"><h2>Monthly returns</h2>']
    if values.size < 2:
        parts.append(_note("Monthly returns need at least two equity points."))
        return "".join(parts) + "</section>"
    years, grid = _monthly_returns(times, values)
    finite = grid[np.isfinite(grid)]
    bound = float(np.abs(finite).max()) if finite.size else 0.0
    # a symmetric colour range: 0 is always the neutral middle colour
    bound = bound if bound > 0.0 else 0.01
    text = [["" if math.isnan(v) else _heat_label(v) for v in row] for row in grid]
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=list(_MONTHS),
            y=[str(year) for year in years],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmin=-bound,
            zmax=bound,
            xgap=2,
            ygap=2,
            hovertemplate="%{y} %{x}: %{z:.2%}<extra></extra>",
            colorbar={"tickformat": ".2~%"},
        )
    )
    fig.update_layout(
        _layout(title={"text": "Monthly returns (UTC months)"}, hovermode="closest"),
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"type": "category", "side": "top"},
    )
    height = f"{max(260, 120 + 34 * len(years))}px"
    parts.append(_figure_html(fig, "finchan-monthly", height))
    return "".join(parts) + "</section>"


def _trades_section(trades: pd.DataFrame) -> str:
    parts = ['<section id="trades"><h2>Trades</h2>']
    n = len(trades)
    if n == 0:
        parts.append(_note("No trades."))
        return "".join(parts) + "</section>"
    half = MAX_TRADE_ROWS // 2
    blocks = [(0, trades)] if n <= MAX_TRADE_ROWS else [(0, trades.iloc[:half])]
    if n > MAX_TRADE_ROWS:
        blocks.append((n - half, trades.iloc[n - half :]))
        parts.append(
            _note(f"{n:,} trades: the first and last {half} are listed, {n - 2 * half:,} omitted.")
        )
    columns = [str(column) for column in trades.columns]
    head = "".join(f"<th>{html.escape(column)}</th>" for column in ["#", *columns])
    rows = [f'<div class="trades-wrap"><table class="trades"><thead><tr>{head}</tr></thead><tbody>']
    for number, (offset, block) in enumerate(blocks):
        if number:
            omitted = n - 2 * half
            rows.append(
                f'<tr class="omitted"><td colspan="{len(columns) + 1}">'
                f"… {omitted:,} trades omitted …</td></tr>"
            )
        for position, record in enumerate(block.itertuples(index=False, name=None)):
            cells = [_td(f"{offset + position + 1:,}", "num")]
            for column, value in zip(columns, record):
                kind = _TRADE_FORMAT.get(column, "number")
                if column == "exit_time" and _is_missing(value):
                    text = "open"
                else:
                    text = _fmt_value(value, kind)
                signed = _sign_class(value) if column in ("pnl", "pnl_pct") else ""
                numeric = "num" if kind != "time" and not isinstance(value, str) else ""
                cells.append(_td(text, numeric, signed))
            rows.append(f"<tr>{''.join(cells)}</tr>")
    rows.append("</tbody></table></div>")
    parts.extend(rows)
    return "".join(parts) + "</section>"


# --- the page ---------------------------------------------------------------------------


def write_report(
    path: str | os.PathLike,
    *,
    equity: pd.Series,
    fills: pd.DataFrame,
    trades: pd.DataFrame,
    stats: dict,
    prices: dict[str, pd.Series],
    title: str = "finchan backtest",
    meta: dict | None = None,
    benchmark: pd.Series | None = None,
    indicators: pd.DataFrame | None = None,
) -> pathlib.Path:
    """Write the HTML report of a run to ``path`` and return its path.

    The file is self-contained (plotly.js embedded, no network needed) and
    deterministic (same inputs, same bytes). Lines longer than
    :data:`MAX_POINTS` points are downsampled with :func:`downsample`'s rule;
    at most :data:`MAX_SYMBOLS` symbols get a chart and at most
    :data:`MAX_FILL_MARKERS` fills are marked per symbol; beyond
    :data:`MAX_TRADE_ROWS` trades the first and last half are listed. Times
    are shown in UTC. Empty inputs give a page with a note in place of the
    chart or table.

    Parameters
    ----------
    path : str or os.PathLike
        The HTML file to write (parent directories are created).
    equity : pandas.Series
        Account value per bar, on a DatetimeIndex (naive times read as UTC).
    fills : pandas.DataFrame
        Columns ``datetime, symbol, side ("BUY"/"SELL"), qty, price`` (others
        such as ``commission`` and ``order_id`` are ignored); may be empty.
    trades : pandas.DataFrame
        Round trips, listed with their columns in order (``entry_time``,
        ``exit_time``, ``pnl``, ``pnl_pct`` ... are formatted); may be empty.
    stats : dict
        The result of :func:`finchan.trade.stats.compute_stats`.
    prices : dict of str to pandas.Series
        Close per symbol on a DatetimeIndex.
    title : str
        The page title.
    meta : dict, optional
        Shown as a table under the title (nested dicts as ``key=value`` lists).
    benchmark : pandas.Series, optional
        Buy and hold of the data in money, drawn beside the equity curve.
    indicators : pandas.DataFrame, optional
        Series drawn by the strategy, columns ``datetime, name, symbol, panel,
        value`` (``BacktestResult.indicators``): panel ``"price"`` lines overlay
        their symbol's price chart, the others get one chart per panel.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DataError
        For an input of the wrong type, fills without a required column, or
        a file that cannot be written.
    """
    import plotly.offline

    eq_times, eq_values = _series_ns("equity", equity)
    bench = None if benchmark is None else _series_ns("benchmark", benchmark)
    fills = _frame("fills", fills, _FILL_COLUMNS)
    trades = _frame("trades", trades, ())
    if not isinstance(stats, Mapping):
        raise DataError(f"stats: expected a dict, got {type(stats).__name__}")
    if meta is not None and not isinstance(meta, Mapping):
        raise DataError(f"meta: expected a dict, got {type(meta).__name__}")
    if indicators is not None:
        indicators = _frame("indicators", indicators, _PLOT_COLUMNS)
        if indicators.empty:
            indicators = None

    body = [
        _header(str(title), meta),
        _stats_section(stats),
        _equity_section(eq_times, eq_values, bench),
        _price_section(prices, fills, indicators),
        _indicator_section(indicators) if indicators is not None else "",
        _monthly_section(eq_times, eq_values),
        _trades_section(trades),
        "<footer>Written by finchan.trade.report. Times are UTC.</footer>",
    ]
    page = "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(str(title))}</title>",
            f"<style>{_CSS}</style>",
            "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
            f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>',
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )
    target = pathlib.Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(page)
        # the complete file appears at once: a reader never sees half a report
        os.replace(partial, target)
    except OSError as exc:
        raise DataError(f"{target}: cannot write the report ({exc.strerror or exc})") from None
    return target
