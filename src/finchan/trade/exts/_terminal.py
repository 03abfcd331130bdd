"""The strategy extension's terminal output: the progress bar (stderr) and the
statistics table printed at the end of a run (stdout)."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finchan.trade._stat_names import STATS, SUMMARY

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.trade.account import SimAccount
    from finchan.trade.result import BacktestResult

__all__ = ["print_stats"]


def start_progress(env: Env, account: SimAccount, wanted: Any) -> Any:
    """A progress bar fed by ``account`` (None when not wanted: ``auto`` off a terminal)."""
    if wanted == "auto":
        wanted = sys.stderr.isatty() and not getattr(env, "quiet", False)
    if not wanted:
        return None
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    )
    task = progress.add_task("backtest starting")
    progress.start()
    started = time.perf_counter()
    tz = env.tz

    def update(bars: int, ts: float) -> None:
        rate = bars / max(time.perf_counter() - started, 1e-9)
        when = datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")
        progress.update(task, description=f"{bars:,} bars  {rate:,.0f} bars/s  at {when}")

    account.progress = update
    return progress


def stop_progress(progress: Any, account: SimAccount) -> None:
    """Take the bar off the terminal and ``account``'s feed."""
    if progress is not None:
        progress.stop()
        account.progress = None


def _fmt(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if key in _PERCENT:
        return f"{value * 100:,.2f} %"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:,.4f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


# the statistics shown as percentages (the registry's format)
_PERCENT = frozenset(stat.name for stat in STATS if stat.format == "percent")


def print_stats(result: BacktestResult, run_dir: Path | None = None, report: bool = True) -> None:
    """Print the short statistics table (stdout) and where the run was written."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{result.meta.get('strategy', 'backtest')} {result.meta.get('params', '')}"
    )
    table.add_column("statistic")
    table.add_column("value", justify="right")
    stats = result.stats
    for key in SUMMARY:
        if key in stats:
            text = _fmt(key, stats[key])
            if key == "periods_per_year":
                # which calendar the annualised figures assume, and where it came from
                text = f"{text} ({stats.get('periods_per_year_source', '?')})"
            table.add_row(key, text)
    console = Console(file=sys.stdout, width=100)
    console.print(table)
    if result.strategies:
        each = Table(title="by strategy (the table above is the total)")
        for column in ("strategy", "final_equity", "total_return", "sharpe", "trades"):
            each.add_column(column, justify="left" if column == "strategy" else "right")
        for name, part in result.strategies.items():
            figures = part.stats
            each.add_row(
                name,
                _fmt("final_equity", part.final_equity),
                *(_fmt(k, figures.get(k)) for k in ("total_return", "sharpe", "trades")),
            )
        console.print(each)
    if run_dir is not None:
        where = f"report: {run_dir / 'report.html'}" if report else f"run: {run_dir}"
        console.print(where, soft_wrap=True, highlight=False)
