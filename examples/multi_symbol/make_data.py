"""Write the example's bar files: ``python examples/multi_symbol/make_data.py``.

Three fictional stocks, 2,000 business days each (2015-01-02 to 2022-09-01),
deterministic (numpy seeds), 2-decimal prices. Open prices gap away from the
previous close on about a third of the days, so the example's stop and
stop-limit orders meet gaps as well as touches. The files in ``data/`` were
written by this script; run it again only to change them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SYMBOLS", "daily_bars", "main"]

#: symbol -> (numpy seed, first close, yearly drift)
SYMBOLS = {"ACME": (11, 42.0, 0.10), "GLOBEX": (22, 118.0, 0.06), "INITECH": (33, 75.0, 0.08)}

_DAYS_PER_YEAR = 252


def daily_bars(n: int, seed: int, first: float = 100.0, drift: float = 0.08,
               start: str = "2015-01-02", volatility: float = 0.018) -> pd.DataFrame:
    """``n`` daily OHLCV bars of one symbol, business days from ``start``.

    Columns ``datetime`` (``YYYY-MM-DD``, the day's open time at midnight),
    ``open``, ``high``, ``low``, ``close`` (2 decimals, low <= open, close <= high)
    and ``volume`` (integers).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    rets = rng.normal(drift / _DAYS_PER_YEAR, volatility, n)
    close = np.round(first * np.exp(np.cumsum(rets)), 2)
    prev = np.r_[first, close[:-1]]
    # a third of the days open away from the previous close (news, earnings)
    gap = rng.normal(0.0, volatility * 0.6, n) * (rng.random(n) < 0.35)
    open_ = np.round(prev * (1.0 + gap), 2)
    high = np.round(np.maximum(open_, close) * (1.0 + rng.uniform(0.0, volatility * 0.7, n)), 2)
    low = np.round(np.minimum(open_, close) * (1.0 - rng.uniform(0.0, volatility * 0.7, n)), 2)
    # rounding may leave high half a cent under the body: clamp
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    volume = rng.integers(20_000, 90_000, n)
    days = pd.bdate_range(start, periods=n)
    return pd.DataFrame({"datetime": days.strftime("%Y-%m-%d"), "open": open_, "high": high,
                         "low": low, "close": close, "volume": volume})


def main(n: int = 2_000) -> None:
    """Write ``data/<SYMBOL>.csv`` beside this script."""
    out = Path(__file__).resolve().parent / "data"
    out.mkdir(exist_ok=True)
    for symbol, (seed, first, drift) in SYMBOLS.items():
        frame = daily_bars(n, seed, first, drift)
        frame.to_csv(out / f"{symbol}.csv", index=False, float_format="%.2f", lineterminator="\n")


if __name__ == "__main__":
    main()
