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

The code lives in the private package ``finchan.trade._report``:
``sections`` (limits, formatting, the tables), ``charts`` (the plotly
figures and :func:`downsample`), ``page`` (:func:`write_report`). Import from here.
"""

from finchan.trade._report.charts import downsample
from finchan.trade._report.page import write_report
from finchan.trade._report.sections import (
    MAX_FILL_MARKERS,
    MAX_POINTS,
    MAX_SYMBOLS,
    MAX_TRADE_ROWS,
)

__all__ = [
    "MAX_FILL_MARKERS",
    "MAX_POINTS",
    "MAX_SYMBOLS",
    "MAX_TRADE_ROWS",
    "downsample",
    "write_report",
]
