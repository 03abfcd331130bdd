"""The parts of :mod:`finchan.trade.report`: ``sections`` (limits, formatting, the
tables), ``charts`` (plotly figures, the downsampler), ``page`` (:func:`write_report`).
Import the public names from :mod:`finchan.trade.report`."""
