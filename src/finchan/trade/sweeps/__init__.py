"""Parameter sweeps and walk-forward optimisation on Dask, with overfitting statistics.

    from finchan.trade import sweep
    result = sweep("finchan.trade.examples:SmaCross", "bars.csv",
                   {"fast": "5,10,20", "slow": "20:60:10"}, workers=2, out="sweeps/sma")
    result.table.head(), result.dsr["dsr"], result.pbo["pbo"]

See ``docs/sweeps.md``. Dask (``distributed``) and Optuna are optional
dependencies (``pip install finchan[sweep]``), imported only when used.
"""

from __future__ import annotations

from finchan.trade.sweeps._grid import Space, params_key, parse_grid_arg
from finchan.trade.sweeps._overfit import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    pbo_cscv,
    sharpe_per_period,
)
from finchan.trade.sweeps._sweep import LOWER_IS_BETTER, SweepResult, sweep
from finchan.trade.sweeps._walkforward import WalkForward, parse_walk_forward

__all__ = [
    "LOWER_IS_BETTER",
    "Space",
    "SweepResult",
    "WalkForward",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "params_key",
    "parse_grid_arg",
    "parse_walk_forward",
    "pbo_cscv",
    "sharpe_per_period",
    "sweep",
]
