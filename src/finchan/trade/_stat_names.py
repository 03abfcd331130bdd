"""The statistics' names, in one place: what :func:`~finchan.trade.stats.compute_stats`
returns (in this order), how the report labels, formats and groups them, and
which the printed summary shows.

Adding a statistic: compute it in ``stats.py`` and add its row here; the
report, the summary, the sweeps' tables and ``STATS_KEYS`` follow.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GROUPS", "STATS", "SUMMARY", "Stat"]


@dataclass(frozen=True)
class Stat:
    """One statistic: its key, the report's label, format and table, and sign colouring."""

    name: str
    label: str
    #: how it is shown: time, duration, int, number, text, percent, ratio, money
    format: str
    #: the report's table it is listed in (one of :data:`GROUPS`)
    group: str
    #: coloured green when positive, red when negative in the report
    signed: bool = False


#: the report's statistics tables, in page order
GROUPS = ("Period", "Returns and risk", "Trades")

#: every statistic, in the order of compute_stats' result
STATS: tuple[Stat, ...] = (
    Stat('start', 'Start', 'time', 'Period'),
    Stat('end', 'End', 'time', 'Period'),
    Stat('duration_s', 'Duration', 'duration', 'Period'),
    Stat('bars', 'Bars', 'int', 'Period'),
    Stat('periods_per_year', 'Periods per year', 'number', 'Period'),
    Stat('periods_per_year_source', 'Periods per year from', 'text', 'Period'),
    Stat('risk_free_rate', 'Risk-free rate', 'percent', 'Returns and risk'),
    Stat('start_equity', 'Start equity', 'money', 'Returns and risk'),
    Stat('final_equity', 'Final equity', 'money', 'Returns and risk'),
    Stat('total_return', 'Total return', 'percent', 'Returns and risk', signed=True),
    Stat('benchmark_return', 'Buy and hold return', 'percent', 'Returns and risk'),
    Stat('cagr', 'CAGR', 'percent', 'Returns and risk', signed=True),
    Stat('annual_volatility', 'Annual volatility', 'percent', 'Returns and risk'),
    Stat('sharpe', 'Sharpe ratio', 'ratio', 'Returns and risk'),
    Stat('sortino', 'Sortino ratio', 'ratio', 'Returns and risk'),
    Stat('calmar', 'Calmar ratio', 'ratio', 'Returns and risk'),
    Stat('alpha', 'Alpha (annual)', 'percent', 'Returns and risk'),
    Stat('beta', 'Beta', 'ratio', 'Returns and risk'),
    Stat('max_drawdown', 'Max drawdown', 'percent', 'Returns and risk', signed=True),
    Stat('max_drawdown_duration_s', 'Longest drawdown', 'duration', 'Returns and risk'),
    Stat('max_drawdown_bars', 'Longest drawdown (bars)', 'int', 'Returns and risk'),
    Stat('exposure', 'Exposure', 'percent', 'Period'),
    Stat('trades', 'Trades', 'int', 'Trades'),
    Stat('open_trades', 'Open trades', 'int', 'Trades'),
    Stat('win_rate', 'Win rate', 'percent', 'Trades'),
    Stat('profit_factor', 'Profit factor', 'ratio', 'Trades'),
    Stat('gross_profit', 'Gross profit', 'money', 'Trades'),
    Stat('gross_loss', 'Gross loss', 'money', 'Trades'),
    Stat('avg_win', 'Average win', 'money', 'Trades'),
    Stat('avg_loss', 'Average loss', 'money', 'Trades'),
    Stat('best_trade', 'Best trade', 'money', 'Trades'),
    Stat('worst_trade', 'Worst trade', 'money', 'Trades'),
    Stat('avg_trade', 'Average trade', 'money', 'Trades'),
    Stat('total_commission', 'Total commission', 'money', 'Trades'),
)

#: the rows of the printed summary (``finchan -c``), in order
SUMMARY: tuple[str, ...] = (
    'start',
    'end',
    'bars',
    'periods_per_year',
    'final_equity',
    'total_return',
    'benchmark_return',
    'cagr',
    'sharpe',
    'sortino',
    'max_drawdown',
    'alpha',
    'beta',
    'exposure',
    'trades',
    'open_trades',
    'win_rate',
    'profit_factor',
    'risk_free_rate',
)
