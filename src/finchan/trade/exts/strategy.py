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

Several strategies in one run (docs/strategies.md), instead of ``class`` and ``params``::

      strategies:
        - {class: my_strategies.sma:SmaCross, params: {fast: 5}, name: fast}
        - {class: my_strategies.sma:SmaCross, name: slow}
        - my_strategies.dip:DipBuyer      # an item may be the class alone
      accounts: shared                    # or separate: one account (the cash) each

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

Size: the options schema, the single-strategy runner and the
several-strategies runner (which subclasses it) belong together: they wire
the same pieces, and the run-directory writing and terminal output are
already in ``_rundir.py`` and ``_terminal.py``.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from finchan.env import RunMode
from finchan.errors import ConfigError
from finchan.event import SysEvents
from finchan.trade.bar import BAR_EVENT
from finchan.trade.exts import _rundir, _terminal
from finchan.trade.exts._terminal import print_stats  # its old home, kept importable

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.trade.account import SimAccount
    from finchan.trade.broker import Notice
    from finchan.trade.result import BacktestResult
    from finchan.trade.strategy import Strategy

__all__ = [
    "MultiStrategyRunner",
    "StrategyRunner",
    "ext_name",
    "load_finchan_ext",
    "load_strategy_class",
]

ext_name = "finchan.exts.strategy"
required_exts = ["finchan.exts.sim_broker"]

logger = logging.getLogger(__name__)


class StrategyEntry(BaseModel):
    """One strategy of ``strategies:``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    class_: Any = Field(alias="class")
    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(None, min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _plain_class(cls, value: Any) -> Any:
        # an item may be the class alone: strategies: [pkg.mod:A, pkg.mod:B]
        if isinstance(value, str | type):
            return {"class": value}
        if not isinstance(value, Mapping):
            raise ValueError(
                "expected a class 'package.module:ClassName' or a mapping of class, "
                "params, name"
            )
        return value


class StrategyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    class_: Any = Field(None, alias="class")
    params: dict[str, Any] = Field(default_factory=dict)
    strategies: list[StrategyEntry] | None = Field(None, min_length=1)
    accounts: Literal["shared", "separate"] = "shared"
    save: bool = True
    report: bool = True
    progress: Literal["auto"] | bool = "auto"
    periods_per_year: float | None = Field(None, gt=0, allow_inf_nan=False)
    risk_free_rate: float = Field(0.0, gt=-1, allow_inf_nan=False)
    name: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")

    @model_validator(mode="after")
    def _one_form(self) -> StrategyOptions:
        if self.strategies is None:
            if self.class_ is None:
                raise ValueError("needs class (one strategy) or strategies (a list)")
            if self.accounts != "shared":
                raise ValueError("accounts applies to strategies (a list), not to class")
        elif self.class_ is not None or self.params:
            raise ValueError("takes class and params, or strategies, not both")
        return self


def load_strategy_class(spec: Any) -> type[Strategy]:
    """A Strategy subclass from ``"package.module:ClassName"`` (or the class itself)."""
    from finchan.trade.strategy import Strategy

    if isinstance(spec, type):
        cls: Any = spec
    elif not isinstance(spec, str):
        raise ConfigError(
            f"strategy class {spec!r}: expected 'package.module:ClassName' (one class; "
            "several strategies go in strategies:)"
        )
    else:
        text = spec
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


def _option_error(env: Env, key: str, exc: ConfigError) -> ConfigError:
    """``exc`` as an option error naming the config file and ``key`` (a path in the options)."""
    from finchan.config import ext_option_error

    return ext_option_error(env, ext_name, f"{key}: {exc}")


class StrategyRunner:
    """Wires one strategy to the account and the run; publishes the result."""

    def __init__(self, env: Env, options: StrategyOptions) -> None:
        self.env = env
        self.options = options
        try:
            self.strategy_class = load_strategy_class(options.class_)
        except ConfigError as exc:
            raise _option_error(env, "class", exc) from None
        try:
            self.params = self.strategy_class.resolve_params(options.params)
        except ConfigError as exc:
            raise _option_error(env, "params", exc) from None
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
        self.timeframes = _resampled_timeframes(self.strategy_class)
        for label in self.timeframes:
            dispatcher.subscribe(f"{BAR_EVENT}.{label}", self.strategy.on_bar)
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
        self.run_dir = _rundir.open_run_dir(self.env.work_dir, self._run_name(), self.env.options)

    def _run_name(self) -> str:
        return self.strategy_class.__name__

    def _write_config(self, path: Path) -> None:
        _rundir.write_config(path, self.env.options)

    def _open_live_dir(self) -> None:
        # stable: a restarted live run finds its directory (and later its state) again
        name = self.options.name or self.strategy_class.__name__
        self.run_dir = _rundir.open_live_dir(self.env.work_dir, name, self.env.options)

    # -- progress ------------------------------------------------------------------------------
    def _start_progress(self) -> None:
        self._progress = _terminal.start_progress(self.env, self.account, self.options.progress)

    def _stop_progress(self) -> None:
        _terminal.stop_progress(self._progress, self.account)
        self._progress = None

    # -- lifecycle -----------------------------------------------------------------------------
    def setup(self) -> None:
        if self.timeframes:
            _ask_feeds(self.env, self.strategy_class.__name__, self.timeframes)
        self._wall_start = time.time()
        if self.options.save and self.env.run_mode == RunMode.BACKTEST:
            self._open_run_dir()
        elif self.options.save:
            self._open_live_dir()
        self._start_progress()

    def cleanup(self) -> None:
        from finchan.trade.result import BacktestResult

        self._stop_progress()
        self.result = self._build_result(BacktestResult)
        dispatcher = self.env.dispatcher
        failure = dispatcher.failure
        if self.run_dir is None:
            return
        live = self.env.run_mode != "backtrack"
        if failure is not None or (dispatcher.summary.interrupted and not live):
            reason = str(failure) if failure is not None else "interrupted"
            _rundir.mark_incomplete(self.run_dir, reason)
            return
        self.result.save(self.run_dir, report=self.options.report)
        strategy = getattr(self, "strategy", None)  # several strategies: none of its own
        state = strategy.state if strategy is not None else None
        if state is not None and len(state):
            # the strategy's own variables as they ended (a live run: as committed)
            (self.run_dir / "state.json").write_text(state.to_json() + "\n", encoding="utf-8")
        self._save_more(self.run_dir)
        _rundir.finish(self.run_dir, self._wall_start, dispatcher.summary.events)
        if not getattr(self.env, "quiet", False):
            print_stats(self.result, self.run_dir, report=self.options.report)

    def _build_result(self, result_class: Any) -> BacktestResult:
        return result_class(
            self.account,
            meta=self.meta(),
            periods_per_year=self.options.periods_per_year,
            risk_free_rate=self.options.risk_free_rate,
            plots=self.strategy.plotted_series(),
        )

    def _save_more(self, run_dir: Path) -> None:
        """Write what a subclass adds to the run directory (nothing here)."""


def _resampled_timeframes(cls: type[Strategy]) -> list[str]:
    """The canonical labels of ``cls.timeframes``; a bad one is a ConfigError naming the class."""
    wanted = cls.timeframes
    if not wanted:
        return []
    from finchan.trade.resample import parse_timeframe

    if isinstance(wanted, str):
        wanted = (wanted,)
    labels: list[str] = []
    for text in wanted:
        try:
            label = parse_timeframe(text).label
        except ConfigError as exc:
            raise ConfigError(f"{cls.__name__}.timeframes: {exc}") from None
        if label not in labels:
            labels.append(label)
    return labels


def _ask_feeds(env: Env, owner: str, labels: list[str]) -> None:
    # the bar sources resample for the strategy; done at setup, once every
    # extension (the bars one included) is loaded and before sources start
    feeds = [s for s in env.dispatcher.event_sources if hasattr(s, "add_timeframes")]
    if not feeds:
        raise ConfigError(
            f"{owner}.timeframes {labels}: no event source of the run can resample "
            "(a finchan.trade.data.BarFeed, e.g. from finchan.exts.bars)"
        )
    for feed in feeds:
        try:
            feed.add_timeframes(labels)
        except ConfigError as exc:
            raise ConfigError(f"{owner}.timeframes: {exc}") from None


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



def load_finchan_ext(env: Env) -> None:
    from finchan.config import validate_ext_options

    options: StrategyOptions = validate_ext_options(env, ext_name, StrategyOptions)
    if options.strategies is not None:
        env.set_ext_obj(ext_name, MultiStrategyRunner(env, options))
        return
    env.set_ext_obj(ext_name, StrategyRunner(env, options))


def setup(env: Env) -> None:
    env.get_ext_obj(ext_name).setup()


def cleanup(env: Env) -> None:
    env.get_ext_obj(ext_name).cleanup()


# -- several strategies ---------------------------------------------------------------------


class _Slot:
    """One strategy of a multi-strategy run: its class, parameters, instance and records."""

    def __init__(self, name: str, entry: StrategyEntry) -> None:
        self.name = name
        self.strategy_class = load_strategy_class(entry.class_)
        self.params = self.strategy_class.resolve_params(entry.params)
        self.strategy = self.strategy_class()
        #: what its result reads: a Book (shared account) or its own SimAccount
        self.records: Any = None

    def meta(self, cash: float) -> dict[str, Any]:
        cls = self.strategy_class
        return {
            "strategy": self.name,
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "params": self.params.as_dict(),
            "cash": cash,
        }


class MultiStrategyRunner(StrategyRunner):
    """Runs ``strategies:`` on one shared account or on separate accounts.

    ``result`` is the total; ``results`` maps each strategy's name to its
    own result (also ``result.strategies``). See docs/strategies.md.
    """

    def __init__(self, env: Env, options: StrategyOptions) -> None:
        from finchan.trade import _multi

        self.env = env
        self.options = options
        self.account = env.get_ext_obj("finchan.exts.sim_broker")
        self.slots = _make_slots(options.strategies or [], env)
        self.strategy_class = self.slots[0].strategy_class
        self.result = None
        self.results: dict[str, BacktestResult] = {}
        self.run_dir = None
        self._progress = None
        self._wall_start = 0.0
        dispatcher = env.dispatcher
        self.accounts: list[SimAccount] = []
        if options.accounts == "shared":
            owners: dict[int, Any] = {}
            hooks: dict[Any, Any] = {}
            for slot in self.slots:
                book = _multi.Book(slot.name, self.account, owners)
                slot.records = book
                slot.strategy.bind(env, book.broker, slot.params)  # type: ignore[arg-type]
                hooks[book] = self._notice_hook(slot.strategy)
            # the books are marked after the account and before any strategy's on_bar
            books = [slot.records for slot in self.slots]
            dispatcher.subscribe(BAR_EVENT, _multi.book_bar_handler(books))
            account_portfolio = self.account.broker.portfolio
            self.account.listeners.append(_multi.route_notices(owners, hooks, account_portfolio))
            self.accounts = [self.account]
        else:
            from finchan.config import validate_ext_options
            from finchan.trade.exts.sim_broker import BrokerOptions, make_account

            broker_options = validate_ext_options(env, "finchan.exts.sim_broker", BrokerOptions)
            for i, slot in enumerate(self.slots):
                account = self.account if i == 0 else make_account(env, broker_options)
                # one numbering of orders across the accounts: ids stay unique in the total
                account.broker.share_order_ids(self.account.broker)
                slot.records = account
                slot.strategy.bind(env, account.broker, slot.params)
                account.listeners.append(self._notice_hook(slot.strategy, account))
                self.accounts.append(account)
        # the feeds are asked for the union of the strategies' timeframes;
        # each strategy gets the resampled bars of its own
        self.timeframes = []
        for slot in self.slots:
            dispatcher.subscribe(SysEvents.SYSTEM_STARTED, _Hook(slot.strategy.on_start))
            dispatcher.subscribe(BAR_EVENT, slot.strategy.on_bar)
            for label in _resampled_timeframes(slot.strategy_class):
                dispatcher.subscribe(f"{BAR_EVENT}.{label}", slot.strategy.on_bar)
                if label not in self.timeframes:
                    self.timeframes.append(label)
            dispatcher.subscribe(SysEvents.SYSTEM_EXITING, _Hook(slot.strategy.on_stop))

    def _notice_hook(self, strategy: Strategy, account: SimAccount | None = None) -> Any:
        account = account if account is not None else self.account

        def on_notice(notice: Notice) -> None:
            try:
                strategy.on_order(notice.order)
            except Exception as exc:
                account.hook_failed(strategy.on_order, exc)
            if notice.fill is not None:
                try:
                    strategy.on_fill(notice.fill)
                except Exception as exc:
                    account.hook_failed(strategy.on_fill, exc)

        return on_notice

    def _run_name(self) -> str:
        return "+".join(slot.name for slot in self.slots)

    def meta(self) -> dict[str, Any]:
        cash = self.account.broker.portfolio.initial_cash
        total_cash = cash * len(self.slots) if self.options.accounts == "separate" else cash
        return {
            "strategy": " + ".join(slot.name for slot in self.slots),
            "accounts": self.options.accounts,
            "strategies": {
                slot.name: {k: v for k, v in slot.meta(cash).items() if k != "strategy"}
                for slot in self.slots
            },
            "cash": total_cash,
        }

    def _build_result(self, result_class: Any) -> BacktestResult:
        from finchan.trade._multi import CombinedAccount

        options = self.options
        cash = self.account.broker.portfolio.initial_cash
        self.results = {
            slot.name: result_class(
                slot.records,
                meta=slot.meta(cash),
                periods_per_year=options.periods_per_year,
                risk_free_rate=options.risk_free_rate,
            )
            for slot in self.slots
        }
        records = self.account if options.accounts == "shared" else CombinedAccount(self.accounts)
        total = result_class(
            records,
            meta=self.meta(),
            periods_per_year=options.periods_per_year,
            risk_free_rate=options.risk_free_rate,
        )
        total.strategies = self.results
        # each strategy's figures beside the total's, in summary.json and the report's header
        for name, result in self.results.items():
            stats = result.stats
            total.meta["strategies"][name].update(
                final_equity=round(result.final_equity, 2),
                total_return=stats.get("total_return"),
                trades=stats.get("trades"),
                fills=len(result.fills),
            )
        return total

    def _save_more(self, run_dir: Path) -> None:
        # each strategy's own tables and report beside the total's
        for name, result in self.results.items():
            result.save(run_dir / "strategies" / name, report=self.options.report)


def _make_slots(entries: list[StrategyEntry], env: Env) -> list[_Slot]:
    slots = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        try:
            cls = load_strategy_class(entry.class_)
        except ConfigError as exc:
            raise _option_error(env, f"strategies.{i}.class", exc) from None
        try:
            cls.resolve_params(entry.params)
        except ConfigError as exc:
            raise _option_error(env, f"strategies.{i}.params", exc) from None
        name = entry.name or cls.__name__
        if name in seen:
            raise _option_error(env, f"strategies.{i}", ConfigError(
                f"a second strategy named {name!r}; give each its own name "
                "(name: in a mapping item)"
            ))
        if "/" in name or "\\" in name or name in (".", ".."):
            raise _option_error(
                env, f"strategies.{i}.name", ConfigError(f"{name!r} is not a file name")
            )
        seen.add(name)
        slots.append(_Slot(name, entry))
    return slots
