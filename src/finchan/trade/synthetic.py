"""Deterministic synthetic 1-minute OHLCV bars for examples, tests and benchmarks.

The algorithm is the one of ``shared/data/make_bars.py``, the generator of the
reference data: with the defaults, ``make_bars(100_000).to_csv(path,
index=False, float_format="%.4f")`` writes the reference file byte for byte.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["make_bars"]


def make_bars(n: int, seed: int = 42, start: str = "2020-01-01") -> pd.DataFrame:
    """Return ``n`` synthetic 1-minute bars of one symbol.

    Parameters
    ----------
    n:
        number of bars.
    seed:
        seed of ``numpy.random.default_rng``.
    start:
        open time of the first bar (naive, read as UTC); bars follow every minute.

    Returns
    -------
    pandas.DataFrame
        columns ``datetime`` (ISO text ``YYYY-MM-DDTHH:MM:SS``), ``open``,
        ``high``, ``low``, ``close`` (4 decimals, ``open[t] == close[t-1]``,
        low <= open, close <= high) and ``volume`` (integers in [100, 10000]).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    # the draw order (returns, then both uniforms, then volumes) is part of the
    # reference data: changing it changes every price
    rets = rng.normal(0.0, 0.001, n)
    close = np.round(100.0 * np.exp(np.cumsum(rets)), 4)
    open_ = np.empty(n)
    if n:
        open_[0] = 100.0
        open_[1:] = close[:-1]
    u_hi = rng.uniform(0.0, 0.0005, n)
    u_lo = rng.uniform(0.0, 0.0005, n)
    high = np.round(np.maximum(open_, close) * (1.0 + u_hi), 4)
    low = np.round(np.minimum(open_, close) * (1.0 - u_lo), 4)
    # rounding may move high below max(open, close) by half a tick: clamp
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    volume = rng.integers(100, 10001, n)
    dt = pd.date_range(start, periods=n, freq="1min")
    return pd.DataFrame(
        {
            "datetime": dt.strftime("%Y-%m-%dT%H:%M:%S"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        }
    )
