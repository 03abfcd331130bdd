"""``finchan.trade.backtest``: a backtest from Python in one call.

It builds an Env and runs the same extensions as the config route
(``finchan.exts.sim_broker`` and ``finchan.exts.strategy``, with a
:class:`~finchan.trade.data.BarFeed` as the source) through the same
dispatcher: there is one engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from finchan.trade.result import BacktestResult
from finchan.trade.strategy import Strategy

if TYPE_CHECKING:
    from finchan.trade.data import BarFeedOptions

__all__ = ["backtest"]

_BROKER_OPTIONS = (
    "fill_at",
    "volume_limit",
    "allow_short",
    "check_submit",
    "backtrader_quirks",
    "record_prices",
    "lots",
    "contracts",
    "margin_call",
)


def backtest(
    strategy: type[Strategy] | str | Sequence[Any],
    data: Any,
    *,
    cash: float = 100_000.0,
    commission: float | Mapping[str, Any] | None = None,
    slippage: Mapping[str, Any] | None = None,
    params: Mapping[str, Any] | None = None,
    start: Any = None,
    end: Any = None,
    time_step: float = 86400.0,
    seed: int = 0,
    timezone: str = "UTC",
    data_options: BarFeedOptions | Mapping[str, Any] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    save: bool = False,
    report: bool = True,
    progress: bool = False,
    periods_per_year: float | None = None,
    risk_free_rate: float = 0.0,
    accounts: str = "shared",
    **options: Any,
) -> BacktestResult:
    """Backtest ``strategy`` on ``data`` and return the result.

    Parameters
    ----------
    strategy:
        a :class:`~finchan.trade.Strategy` subclass or ``"module:ClassName"``;
        or a list of them, or of ``{"class": ..., "params": ..., "name": ...}``,
        to run several strategies (docs/strategies.md): the result is the
        total, ``result.strategies`` each one's by name.
    data:
        bars: a DataFrame, a CSV/Parquet path, a list of them, ``{symbol: path
        or DataFrame}``, or a :class:`~finchan.trade.data.BarFeed`
        (``data_options``, a :class:`~finchan.trade.data.BarFeedOptions` or a mapping of its
        fields, are passed to the BarFeed).
    cash, commission, slippage:
        the broker: ``commission`` a rate (``0.001`` is 0.1 % of value) or
        ``{"per_share": ...}``, ``{"fixed": ...}``, with ``"minimum"``;
        ``slippage`` ``{"bps": ...}`` or ``{"ticks": ..., "tick_size": ...}``.
    params:
        strategy parameters overriding the class's defaults (one strategy).
    accounts:
        several strategies: ``"shared"`` (one account) or ``"separate"`` (one
        account each, with ``cash`` each).
    start, end:
        the simulated span ``[start, end)``; default: all the data.
    save:
        also write ``work_dir/runs/<run-id>/`` like the CLI.
    periods_per_year, risk_free_rate:
        annualisation of the statistics: bars per year (default: inferred
        from the bars, see docs/statistics.md) and the annual risk-free rate
        of Sharpe, Sortino and alpha (``0.02`` is 2 %).
    **options:
        more broker options: ``fill_at``, ``volume_limit``, ``allow_short``,
        ``check_submit``, ``backtrader_quirks``, ``record_prices``, ``lots``, and
        ``contracts`` (``{symbol: {"multiplier": ..., "margin": ...}}``, see
        docs/broker.md) with ``margin_call``.

    Example
    -------
    >>> from finchan.trade import backtest
    >>> from finchan.trade.synthetic import make_bars
    >>> from finchan.trade.examples import SmaCross
    >>> result = backtest(SmaCross, {"SYN": make_bars(2_000)}, cash=1_000_000)
    >>> len(result.fills), round(result.final_equity, 2)
    (76, 999332.95)
    """
    from finchan.env import Env, RunMode
    from finchan.errors import ConfigError
    from finchan.trade.data import BarFeed
    from finchan.trade.exts import sim_broker as broker_ext
    from finchan.trade.exts import strategy as strategy_ext

    unknown = sorted(set(options) - set(_BROKER_OPTIONS))
    if unknown:
        raise ConfigError(
            f"backtest(): unknown option(s) {', '.join(unknown)} "
            f"(valid: {', '.join(_BROKER_OPTIONS)})"
        )
    config: dict[str, Any] = {
        "seed": seed,
        "timezone": timezone,
        "dispatcher.backtest": {"start_dt": start, "end_dt": end, "time_step": time_step},
    }
    if work_dir is not None:
        config["work_dir"] = os.fspath(work_dir)
    env = Env(config, run_mode=RunMode.BACKTEST)
    env.quiet = True
    feed = data if isinstance(data, BarFeed) else BarFeed(env, data, data_options)
    env.dispatcher.register_event_source(feed)
    broker: dict[str, Any] = {"cash": cash, **options}
    if commission is not None:
        broker["commission"] = commission
    if slippage is not None:
        broker["slippage"] = slippage
    env.set_ext_options(broker_ext.ext_name, broker)
    run: dict[str, Any]
    if isinstance(strategy, list | tuple):
        if params is not None:
            raise ConfigError(
                "backtest(): params is for one strategy; give several as "
                '{"class": ..., "params": ...}'
            )
        entries = [dict(s) if isinstance(s, Mapping) else {"class": s} for s in strategy]
        run = {"strategies": entries, "accounts": accounts}
    else:
        if accounts != "shared":
            raise ConfigError("backtest(): accounts applies to several strategies (a list)")
        run = {"class": strategy, "params": dict(params or {})}
    env.set_ext_options(
        strategy_ext.ext_name,
        {
            **run,
            "save": save,
            "report": report,
            "progress": progress,
            "periods_per_year": periods_per_year,
            "risk_free_rate": risk_free_rate,
        },
    )
    # the modules themselves, in dependency order: no name is looked up
    env.load_exts(broker_ext, strategy_ext)
    env.run()
    result: BacktestResult = env.get_ext_obj(strategy_ext.ext_name).result
    return result
