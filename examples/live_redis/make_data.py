"""Write the example's bar file: ``python examples/live_redis/make_data.py [N]``.

``data/SYN.csv``: N (default 20,000) deterministic 1-minute bars of the
reference data (:func:`finchan.trade._synthetic.make_bars`, seed 42), the
input of both the backtest and ``finchan publish``.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(n: int = 20_000) -> Path:
    from finchan.trade._synthetic import make_bars

    path = Path(__file__).resolve().parent / "data" / "SYN.csv"
    path.parent.mkdir(exist_ok=True)
    make_bars(n).to_csv(path, index=False)
    return path


if __name__ == "__main__":
    print(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
