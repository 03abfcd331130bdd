"""The report page: :func:`write_report` puts the sections together into one offline HTML file."""

from __future__ import annotations

import html
import os
import pathlib
from collections.abc import Mapping

import pandas as pd

from finchan.errors import DataError
from finchan.trade._report.charts import (
    _equity_section,
    _indicator_section,
    _monthly_section,
    _price_section,
)
from finchan.trade._report.sections import (
    _CSS,
    _FILL_COLUMNS,
    _PLOT_COLUMNS,
    _frame,
    _header,
    _series_ns,
    _stats_section,
    _trades_section,
)

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
