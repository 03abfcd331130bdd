"""Series a strategy draws with ``Strategy.plot``: recorded per call, tabled at the end.

A series is keyed by ``(name, symbol)`` and holds POSIX times and values in
two ``array('d')`` (two appends per call). ``panel`` says where the report
draws it: ``"price"`` overlays the symbol's price chart, any other text
names a panel of its own that the series with the same panel share.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PLOT_COLUMNS", "PRICE_PANEL", "PlotSeries", "plots_frame"]

#: the panel name that overlays a series on its symbol's price chart
PRICE_PANEL = "price"
#: columns of ``BacktestResult.indicators`` (and of the report's input)
PLOT_COLUMNS = ("datetime", "name", "symbol", "panel", "value")


class PlotSeries:
    """One plotted series: where it goes and its (time, value) points."""

    __slots__ = ("name", "panel", "symbol", "times", "values")

    def __init__(self, name: str, symbol: str | None, panel: str) -> None:
        self.name = name
        self.symbol = symbol
        self.panel = panel
        self.times = array("d")
        self.values = array("d")


def plots_frame(series: list[PlotSeries]) -> pd.DataFrame:
    """The points of ``series`` in long form (:data:`PLOT_COLUMNS`), in first-plot order."""
    import numpy as np
    import pandas as pd

    frames = []
    for s in series:
        n = len(s.times)
        frames.append(
            pd.DataFrame(
                {
                    "datetime": pd.to_datetime(
                        (np.frombuffer(s.times, dtype="float64") * 1e9).astype("int64"), utc=True
                    ),
                    "name": [s.name] * n,
                    "symbol": [s.symbol or ""] * n,
                    "panel": [s.panel] * n,
                    "value": np.frombuffer(s.values, dtype="float64").copy(),
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=list(PLOT_COLUMNS))
    return pd.concat(frames, ignore_index=True)
