"""The strategy extension ``finchan.exts.strategy``: runs one Strategy class.

Options::

    finchan.exts.strategy:
      class: my_strategies.sma:SmaCross   # "module:ClassName", importable (ext_paths help)
      params: {fast: 10, slow: 30}        # override the class's defaults
      save: true                          # write work_dir/runs/<run-id>/ (live: live/<name>/)
      name: null                          # live run name; default: the strategy class name
      report: true                        # ... including report.html
      progress: auto                      # a progress bar on a terminal: auto, true, false
      periods_per_year: 98280             # bars per year of the statistics (default: inferred)
      risk_free_rate: 0.02                # annual, for Sharpe, Sortino and alpha (default 0)

It requires ``finchan.exts.sim_broker`` (loaded first). At the end of a
backtest it builds the :class:`~finchan.trade.result.BacktestResult`
(``env.get_ext_obj("finchan.exts.strategy").result``), writes the run
directory and prints a short statistics table and the report's path.

A run directory holds ``config.yml`` (the merged config), ``summary.json``,
``fills.csv``, ``trades.csv``, ``open_trades.csv``, ``orders.csv``, ``equity.csv``,
``report.html`` and ``run.json`` (run id, wall times), ``indicators.csv``
when the strategy drew series with ``plot`` and ``state.json`` when it kept
variables in ``self.state``. While the run is going
on, and if it fails or is interrupted, the directory holds a file
``INCOMPLETE`` saying why: only a directory without it is a finished run.

A live run writes the same files into a stable directory,
``work_dir/live/<name>/`` (``name`` option, default the strategy class name),
when it ends (and as it goes: ``finchan.exts.redis_stream``'s
``results_interval``); a live run stopped by SIGINT/SIGTERM has ended normally.
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from finchan.errors import ConfigError
from finchan.event import SysEvents
from finchan.trade.bar import BAR_EVENT

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.trade.account import SimAccount
    from finchan.trade.broker import Notice
    from finchan.trade.result import BacktestResult
    from finchan.trade.strategy import Strategy

__all__ = ["StrategyRunner", "ext_name", "load_finchan_ext", "load_strategy_class"]

ext_name = "finchan.exts.strategy"
required_exts = ["finchan.exts.sim_broker"]

logger = logging.getLogger(__name__)

_INCOMPLETE = "INCOMPLETE"


class StrategyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    class_: Any = Field(alias="class")
    params: dict[str, Any] = Field(default_factory=dict)
    save: bool = True
    report: bool = True
    progress: Literal["auto"] | bool = "auto"
    periods_per_year: float | None = Field(None, gt=0, allow_inf_nan=False)
    risk_free_rate: float = Field(0.0, gt=-1, allow_inf_nan=False)
    name: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")


def load_strategy_class(spec: Any) -> type[Strategy]:
    """A Strategy subclass from ``"package.module:ClassName"`` (or the class itself)."""
    from finchan.trade.strategy import Strategy

    if isinstance(spec, type):
        cls = spec
    else:
        text = str(spec)
        module_name, sep, class_name = text.partition(":")
        if not sep or not module_name or not class_name:
            raise ConfigError(f"strategy class {text!r}: expected 'package.module:ClassName'")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(
                f"strategy class {text!r}: cannot import {module_name!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        cls = getattr(module, class_name, None)
        if cls is None:
            raise ConfigError(
                f"strategy class {text!r}: module {module_name!r} has no {class_name!r}"
            )
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"strategy class {spec!r} is not a finchan.trade.Strategy subclass")
    return cls


class StrategyRunner:
    """Wires one strategy to the account and the run; publishes the result."""

    def __init__(self, env: Env, options: StrategyOptions) -> None:
        self.env = env
        self.options = options
        self.strategy_class = load_strategy_class(options.class_)
        self.params = self.strategy_class.resolve_params(options.params)
        self.account: SimAccount = env.get_ext_obj("finchan.exts.sim_broker")
        self.strategy = self.strategy_class()
        self.strategy.bind(env, self.account.broker, self.params)
        self.result: BacktestResult | None = None
        self.run_dir: Path | None = None
        self._progress: Any = None
        self._wall_start = 0.0
        dispatcher = env.dispatcher
        # the hooks themselves are the callbacks (or are named by them), so a
        # failure names MyStrategy.on_start, not a wrapper of this module
        dispatcher.subscribe(SysEvents.SYSTEM_STARTED, _Hook(self.strategy.on_start))
        dispatcher.subscribe(BAR_EVENT, self.strategy.on_bar)
        dispatcher.subscribe(SysEvents.SYSTEM_EXITING, _Hook(self.strategy.on_stop))
        self.account.listeners.append(self._on_notice)

    # -- events -----------------------------------------------------------------------------
    def _on_notice(self, notice: Notice) -> None:
        # each hook on its own: with on_callback_error "log" a failing on_order
        # must not keep on_fill, or the bar's later notices, from the strategy
        strategy = self.strategy
        try:
            strategy.on_order(notice.order)
        except Exception as exc:
            self.account.hook_failed(strategy.on_order, exc)
        if notice.fill is not None:
            try:
                strategy.on_fill(notice.fill)
            except Exception as exc:
                self.account.hook_failed(strategy.on_fill, exc)

    # -- run directory ------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        cls = self.strategy_class
        return {
            "strategy": cls.__name__,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "params": self.params.as_dict(),
            "cash": self.account.broker.portfolio.initial_cash,
        }

    def _open_run_dir(self) -> None:
        runs = self.env.work_dir / "runs"
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{self.strategy_class.__name__}"
        run_dir, n = runs / base, 1
        while run_dir.exists():
            n += 1
            run_dir = runs / f"{base}-{n}"
        run_dir.mkdir(parents=True)
        (run_dir / _INCOMPLETE).write_text("running\n", encoding="utf-8")
        self._write_config(run_dir / "config.yml")
        self.run_dir = run_dir

    def _write_config(self, path: Path) -> None:
        from ruamel.yaml import YAML

        from finchan._secrets import mask_values

        yaml = YAML(typ="safe", pure=True)
        yaml.default_flow_style = False
        with path.open("w", encoding="utf-8") as stream:
            yaml.dump(mask_values(_plain(self.env.options)), stream)  # no password in a URL

    def _open_live_dir(self) -> None:
        # stable: a restarted live run finds its directory (and later its state) again
        name = self.options.name or self.strategy_class.__name__
        run_dir = self.env.work_dir / "live" / name
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / _INCOMPLETE).write_text("running\n", encoding="utf-8")
        self._write_config(run_dir / "config.yml")
        self.run_dir = run_dir

    # -- progress ------------------------------------------------------------------------------
    def _start_progress(self) -> None:
        wanted = self.options.progress
        if wanted == "auto":
            wanted = sys.stderr.isatty() and not getattr(self.env, "quiet", False)
        if not wanted:
            return
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
        tz = self.env.tz

        def update(bars: int, ts: float) -> None:
            rate = bars / max(time.perf_counter() - started, 1e-9)
            when = datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M")
            progress.update(task, description=f"{bars:,} bars  {rate:,.0f} bars/s  at {when}")

        self.account.progress = update
        self._progress = progress

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self.account.progress = None

    # -- lifecycle -----------------------------------------------------------------------------
    def setup(self) -> None:
        self._wall_start = time.time()
        if self.options.save and self.env.run_mode == "backtrack":
            self._open_run_dir()
        elif self.options.save:
            self._open_live_dir()
        self._start_progress()

    def cleanup(self) -> None:
        from finchan.trade.result import BacktestResult

        self._stop_progress()
        self.result = BacktestResult(
            self.account,
            meta=self.meta(),
            periods_per_year=self.options.periods_per_year,
            risk_free_rate=self.options.risk_free_rate,
            plots=list(self.strategy._plotted.values()),
        )
        dispatcher = self.env.dispatcher
        failure = dispatcher.failure
        if self.run_dir is None:
            return
        live = self.env.run_mode != "backtrack"
        if failure is not None or (dispatcher.summary.interrupted and not live):
            reason = str(failure) if failure is not None else "interrupted"
            (self.run_dir / _INCOMPLETE).write_text(f"{reason}\n", encoding="utf-8")
            logger.info("run directory %s is incomplete: %s", self.run_dir, reason)
            return
        self.result.save(self.run_dir, report=self.options.report)
        state = self.strategy.state
        if len(state):
            # the strategy's own variables as they ended (a live run: as committed)
            (self.run_dir / "state.json").write_text(state.to_json() + "\n", encoding="utf-8")
        run_info = {
            "run_id": self.run_dir.name,
            "started": datetime.fromtimestamp(self._wall_start, UTC).isoformat(),
            "wall_seconds": round(time.time() - self._wall_start, 3),
            "events": dispatcher.summary.events,
        }
        (self.run_dir / "run.json").write_text(
            json.dumps(run_info, indent=2) + "\n", encoding="utf-8"
        )
        (self.run_dir / _INCOMPLETE).unlink()
        if not getattr(self.env, "quiet", False):
            print_stats(self.result, self.run_dir, report=self.options.report)


class _Hook:
    """An argument-less strategy hook as an event callback.

    ``func`` is what the dispatcher names when the hook raises (as for a
    ``functools.partial``).
    """

    __slots__ = ("func",)

    def __init__(self, func: Any) -> None:
        self.func = func

    def __call__(self, event: Any) -> Any:
        return self.func()


def _plain(value: Any) -> Any:
    """The config as plain YAML-able data (datetimes as ISO text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _fmt(key: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if key in _PERCENT:
        return f"{value * 100:,.2f} %"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:,.4f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


_PERCENT = frozenset(
    {
        "total_return",
        "benchmark_return",
        "cagr",
        "annual_volatility",
        "alpha",
        "max_drawdown",
        "exposure",
        "win_rate",
        "risk_free_rate",
    }
)

_SHOWN = (
    "start",
    "end",
    "bars",
    "periods_per_year",
    "final_equity",
    "total_return",
    "benchmark_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "alpha",
    "beta",
    "exposure",
    "trades",
    "open_trades",
    "win_rate",
    "profit_factor",
)


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
    for key in _SHOWN:
        if key in stats:
            text = _fmt(key, stats[key])
            if key == "periods_per_year":
                # which calendar the annualised figures assume, and where it came from
                text = f"{text} ({stats.get('periods_per_year_source', '?')})"
            table.add_row(key, text)
    if "risk_free_rate" in stats:
        table.add_row("risk_free_rate", _fmt("risk_free_rate", stats["risk_free_rate"]))
    console = Console(file=sys.stdout, width=100)
    console.print(table)
    if run_dir is not None:
        where = f"report: {run_dir / 'report.html'}" if report else f"run: {run_dir}"
        console.print(where, soft_wrap=True, highlight=False)


def load_finchan_ext(env: Env) -> None:
    from finchan.config import validate_ext_options

    options: StrategyOptions = validate_ext_options(env, ext_name, StrategyOptions)
    env.set_ext_obj(ext_name, StrategyRunner(env, options))


def setup(env: Env) -> None:
    env.get_ext_obj(ext_name).setup()


def cleanup(env: Env) -> None:
    env.get_ext_obj(ext_name).cleanup()
