"""The result of a backtest: fills, trades, orders, equity, statistics, report.

Column schemas (pandas DataFrames; times are aware datetimes in UTC):

- ``fills``: datetime, symbol, side, qty, price, commission, order_id
- ``trades``: symbol, side, qty, entry_time, exit_time, entry_price,
  exit_price, pnl, pnl_pct, commission, bars_held (closed round trips)
- ``open_trades``: the same columns for the round trips still open at the
  end, marked at the last close: ``exit_time`` empty, ``exit_price`` the last
  close, ``pnl`` what closing there would give (commissions paid deducted)
- ``orders``: order_id, created, symbol, side, qty, type, limit, stop, tif,
  status, filled_qty, avg_price, commission, reason
- ``equity``: a Series, one value per bar time (the last when several
  symbols share a time), named ``equity``.
- ``benchmark``: a Series on the equity's times, named ``benchmark``: the
  starting cash put in equal parts into every symbol at its first close
  and held (buy and hold, no commission); None without recorded prices.
- ``indicators``: datetime, name, symbol, panel, value: the series the
  strategy drew with ``Strategy.plot`` (empty when it drew none).

:meth:`BacktestResult.save` writes them as CSV with ``summary.json`` and
``report.html``; the files are byte-identical for the same config, data and
seed.
"""

from __future__ import annotations

import json
import math
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finchan.trade.orders import Fill, Order
from finchan.trade.portfolio import Trade

if TYPE_CHECKING:
    import pandas as pd

    from finchan.trade._plots import PlotSeries
    from finchan.trade.account import SimAccount

__all__ = ["FILL_COLUMNS", "ORDER_COLUMNS", "TRADE_COLUMNS", "BacktestResult"]

# one definition of each table's columns: the records' own
FILL_COLUMNS = Fill.COLUMNS
ORDER_COLUMNS = Order.COLUMNS
TRADE_COLUMNS = Trade.COLUMNS

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"


def _to_utc(values: Any) -> Any:
    import pandas as pd

    return pd.to_datetime(pd.Series(values, dtype="float64") * 1e9, unit="ns", utc=True)


def _utc_index(seconds: Any) -> Any:
    """A DatetimeIndex (UTC, named ``datetime``) for an array of POSIX seconds."""
    import pandas as pd

    # a view of the nanoseconds as datetime64, then the zone: pandas'
    # to_datetime on integers costs ~20 ms per 100k times, this ~0.3 ms
    nanoseconds = (seconds * 1e9).astype("int64")
    return pd.DatetimeIndex(nanoseconds.view("M8[ns]"), name="datetime").tz_localize("UTC")


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class BacktestResult:
    """What a backtest produced; built from the account at the end of the run."""

    def __init__(
        self,
        account: SimAccount,
        meta: dict[str, Any] | None = None,
        periods_per_year: float | None = None,
        risk_free_rate: float = 0.0,
        plots: list[PlotSeries] | None = None,
    ) -> None:
        self._account = account
        self._plots = list(plots or [])
        self.meta = dict(meta or {})
        #: bars per year for the annualised statistics (None: inferred from the bars)
        self.periods_per_year = periods_per_year
        #: annual risk-free rate of Sharpe, Sortino and alpha
        self.risk_free_rate = risk_free_rate
        #: several strategies in one run: each one's result by name (this one is the total)
        self.strategies: dict[str, BacktestResult] = {}

    # -- tables -------------------------------------------------------------------------
    @cached_property
    def fills(self) -> pd.DataFrame:
        import pandas as pd

        rows = [f.to_row() for f in self._account.broker.fills]
        frame = pd.DataFrame(rows, columns=list(FILL_COLUMNS))
        frame["datetime"] = _to_utc(frame["datetime"])
        frame["side"] = frame["side"].astype(str)
        return frame

    @cached_property
    def trades(self) -> pd.DataFrame:
        import pandas as pd

        rows = [t.to_row() for t in self._account.broker.portfolio.trades]
        frame = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
        for column in ("entry_time", "exit_time"):
            frame[column] = _to_utc(frame[column])
        return frame

    @cached_property
    def open_trades(self) -> pd.DataFrame:
        """Round trips still open at the end, marked at the last close (``exit_time`` empty)."""
        import pandas as pd

        rows = [t.to_row() for t in self._account.broker.portfolio.open_trades()]
        rows.sort(key=lambda row: (row[3], row[0]))  # by entry time, then symbol
        frame = pd.DataFrame(rows, columns=list(TRADE_COLUMNS))
        for column in ("entry_time", "exit_time"):
            frame[column] = _to_utc(frame[column])
        return frame

    @cached_property
    def orders(self) -> pd.DataFrame:
        import pandas as pd

        rows = [o.to_row() for o in self._account.broker.orders]
        frame = pd.DataFrame(rows, columns=list(ORDER_COLUMNS))
        frame["created"] = _to_utc(frame["created"])
        for column in ("side", "type", "tif", "status"):
            frame[column] = frame[column].astype(str)
        return frame

    @cached_property
    def equity(self) -> pd.Series:
        import numpy as np
        import pandas as pd

        times = np.frombuffer(self._account.times, dtype="float64")
        values = np.frombuffer(self._account.equity, dtype="float64")
        if len(times) > 1:
            # several symbols at one time: keep the equity after the last of them
            last = np.append(times[1:] != times[:-1], True)
            times, values = times[last], values[last]
        return pd.Series(values.copy(), index=_utc_index(times), name="equity")

    def prices(self) -> dict[str, pd.Series]:
        """Close per symbol, one value per bar (empty if prices were not recorded)."""
        import numpy as np
        import pandas as pd

        out = {}
        for symbol, (times, closes) in sorted(self._account.prices.items()):
            index = _utc_index(np.frombuffer(times, dtype="float64"))
            out[symbol] = pd.Series(
                np.frombuffer(closes, dtype="float64").copy(), index=index, name=symbol
            )
        return out

    @cached_property
    def benchmark(self) -> pd.Series | None:
        """Buy and hold of the data, equal weight, in money, on the equity's times.

        The starting cash is split equally between the symbols; each part
        buys its symbol at the symbol's first close (it stays cash until
        then) and holds it. None when prices were not recorded
        (``record_prices: false``) or no bar was seen.
        """
        import numpy as np
        import pandas as pd

        prices = self.prices()
        equity = self.equity
        if not prices or equity.empty:
            return None
        index = equity.index
        parts = []
        for series in prices.values():
            series = series[~series.index.duplicated(keep="last")]
            growth = series / series.iloc[0]
            at = growth.reindex(growth.index.union(index)).ffill().reindex(index)
            parts.append(at.fillna(1.0).to_numpy())
        values = np.mean(parts, axis=0) * self._account.broker.portfolio.initial_cash
        return pd.Series(values, index=index, name="benchmark")

    @cached_property
    def indicators(self) -> pd.DataFrame:
        """Series drawn with ``Strategy.plot``, long form: datetime, name, symbol, panel, value."""
        from finchan.trade._plots import plots_frame

        return plots_frame(self._plots)

    @cached_property
    def stats(self) -> dict[str, Any]:
        """Statistics (see docs/statistics.md); empty when no bar was seen."""
        from finchan.trade.stats import compute_stats

        if self.equity.empty:
            return {}
        return compute_stats(
            self.equity,
            self.trades,
            periods_per_year=self.periods_per_year,
            risk_free_rate=self.risk_free_rate,
            open_trades=self.open_trades,
            benchmark=self.benchmark,
        )

    @property
    def final_equity(self) -> float:
        return self._account.broker.portfolio.equity

    @property
    def open_positions(self) -> dict[str, float]:
        """Symbols still held at the end, with their signed quantities."""
        return {
            s: p.qty for s, p in sorted(self._account.broker.portfolio.positions.items()) if p.qty
        }

    # -- output ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds: meta, statistics, counts (no wall times)."""
        return {
            **self.meta,
            "final_equity": _json_value(self.final_equity),
            "fills": len(self._account.broker.fills),
            "round_trips": len(self._account.broker.portfolio.trades),
            "open_trades": len(self.open_trades),
            "open_positions": self.open_positions,
            "stats": {k: _json_value(v) for k, v in self.stats.items()},
        }

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write the self-contained HTML report."""
        import pandas as pd

        from finchan.trade.report import write_report

        # open round trips are listed after the closed ones, "open" as exit time
        trades = self.trades
        if len(self.open_trades):
            listed = [frame for frame in (trades, self.open_trades) if len(frame)]
            trades = pd.concat(listed, ignore_index=True)
        return write_report(
            path,
            equity=self.equity,
            fills=self.fills,
            trades=trades,
            benchmark=self.benchmark,
            stats=self.stats,
            prices=self.prices(),
            title=f"finchan backtest: {self.meta.get('strategy', '')}".strip(),
            meta=self.meta,
            indicators=self.indicators if self._plots else None,
        )

    def save(self, directory: str | os.PathLike[str], report: bool = True) -> Path:
        """Write summary.json, fills.csv, trades.csv, open_trades.csv, orders.csv, equity.csv
        (and report.html)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.fills.to_csv(out / "fills.csv", index=False, date_format=_TIME_FORMAT)
        self.trades.to_csv(out / "trades.csv", index=False, date_format=_TIME_FORMAT)
        self.open_trades.to_csv(out / "open_trades.csv", index=False, date_format=_TIME_FORMAT)
        self.orders.to_csv(out / "orders.csv", index=False, date_format=_TIME_FORMAT)
        self.equity.to_csv(out / "equity.csv", date_format=_TIME_FORMAT)
        if self._plots:
            self.indicators.to_csv(out / "indicators.csv", index=False, date_format=_TIME_FORMAT)
        if report:
            self.to_html(out / "report.html")
        text = json.dumps(self.summary(), indent=2, sort_keys=False, default=str)
        (out / "summary.json").write_text(text + "\n", encoding="utf-8")
        return out

    def __repr__(self) -> str:
        fills = len(self._account.broker.fills)
        strategy = self.meta.get("strategy", "")
        return f"<BacktestResult {strategy} fills={fills} final_equity={self.final_equity:.2f}>"
