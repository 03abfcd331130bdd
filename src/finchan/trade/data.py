"""Bar data: read, validate and stream OHLCV bars as :class:`~finchan.trade.bar.Bar` events.

:class:`BarFeed` is an event source that replays bars from CSV files, Parquet
files or pandas DataFrames; :func:`load_bars` reads the same inputs whole into
one validated DataFrame (for analysis and vectorised strategies).

Inputs are read in chunks (``chunk_size`` rows: CSV with pandas' chunked
reader, Parquet batch by batch, DataFrames slice by slice), each chunk is
validated and converted with numpy, and :class:`Bar` objects are built only
for the window the dispatcher asks for. Memory therefore stays at about one
chunk per input plus the bars of one window, whatever the size of the files.

Order of bars: by time; bars of equal time come in the order the inputs were
given, and within one input (a file with a symbol column) in the order of its
rows.

The code lives in the private package ``finchan.trade._data``, one module per
step: ``options`` (the options, checked once), ``inputs`` (files and
DataFrames, their columns), ``validate`` (each chunk checked and converted),
``feed`` (:class:`BarFeed`, :func:`load_bars`). Import from here.
"""

from finchan.trade._data.feed import BarFeed, load_bars
from finchan.trade._data.options import BAR_COLUMNS, BarFeedOptions

__all__ = ["BAR_COLUMNS", "BarFeed", "BarFeedOptions", "load_bars"]
