"""The parts of :mod:`finchan.trade.data`: ``options`` (checked once), ``inputs``
(files and DataFrames), ``validate`` (chunks to numpy arrays), ``feed``
(:class:`BarFeed`, :func:`load_bars`). Import the public names from
:mod:`finchan.trade.data`."""
