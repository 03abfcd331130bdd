"""The report's plotly charts (equity, prices, indicators, monthly returns); the downsampler."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from finchan.errors import ConfigError, DataError
from finchan.trade._report.sections import (
    _BUY_COLOR,
    _CHART_HEIGHT,
    _MONTHS,
    _NAT,
    _PLOT_CONFIG,
    _SELL_COLOR,
    MAX_FILL_MARKERS,
    MAX_POINTS,
    MAX_SYMBOLS,
    _name_list,
    _note,
    _series_ns,
    _utc_ns,
)

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
