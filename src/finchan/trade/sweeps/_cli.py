"""``finchan sweep``: the sweep's arguments from a backtest config and the command line."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from finchan.errors import ConfigError

__all__ = ["sweep_from_config"]

_STRATEGY = "finchan.exts.strategy"
_BROKER = "finchan.exts.sim_broker"
_BARS = "finchan.exts.bars"


def _options_of(exts: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """The options of extension ``name``, also when it is listed under a longer package
    path ending the same way (``finchan.trade.exts.strategy``)."""
    if name in exts:
        return exts[name]
    tail = "." + name.split(".", 1)[1]
    return next((v for k, v in exts.items() if k.endswith(tail)), {})


def _data(config: Any, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The bars the config names, and the BarFeed options for them: read by the bars
    extension's own :func:`~finchan.trade.exts.bars.feed_arguments`, as ``finchan -c`` does."""
    from finchan.trade.exts.bars import feed_arguments

    options = dict(options)
    if options.pop("speed", None) is not None:
        raise ConfigError(f"{_BARS}: speed: only for live mode (a backtest runs at full speed)")
    inputs, data_options = feed_arguments(options, config.config_dir)
    if isinstance(inputs, list) and "symbol_column" not in data_options:
        # one file per symbol, named by its stem, as the feed names them
        inputs = {path.name.split(".")[0]: path for path in inputs}
    return inputs, data_options


def sweep_from_config(
    config_path: str,
    overrides: tuple[str, ...],
    grid_args: tuple[str, ...],
    **kwargs: Any,
) -> Any:
    """Read the backtest config, then run :func:`finchan.trade.sweep` with its pieces."""
    from finchan.config import load_config
    from finchan.trade.sweeps._grid import parse_grid_arg
    from finchan.trade.sweeps._sweep import sweep

    config = load_config(config_path, overrides, run_mode="backtrack")
    exts = {k: dict(v or {}) for k, v in config.ext_options("backtrack").items()}
    strategy_options = _options_of(exts, _STRATEGY)
    if not strategy_options or "class" not in strategy_options:
        raise ConfigError(f"{config_path}: no strategy: set backtest_exts.{_STRATEGY}.class")
    grid: dict[str, Any] = {}
    for arg in grid_args:
        name, values = parse_grid_arg(arg)
        if name in grid:
            raise ConfigError(f"--grid {name}: given twice")
        grid[name] = values
    if not grid:
        raise ConfigError("no --grid given: e.g. --grid fast=5,10,20 --grid slow=20:60:10")
    for path in config.ext_manager.ext_paths + config.ext_manager.ext_path:
        resolved = str(config.resolve_path(path))
        if resolved not in sys.path:
            sys.path.insert(0, resolved)
    data, data_options = _data(config, _options_of(exts, _BARS))
    broker = _options_of(exts, _BROKER)
    out = kwargs.pop("out", None)
    if out is None:
        # the same command line gets the same directory, so running it again resumes
        what = json.dumps([str(Path(config_path).resolve()), overrides, grid_args,
                           sorted((k, repr(v)) for k, v in kwargs.items())])
        digest = hashlib.sha256(what.encode()).hexdigest()[:10]
        name = str(strategy_options["class"]).rpartition(":")[2] or "sweep"
        out = Path(config.work_dir).expanduser() / "sweeps" / f"{name}-{digest}"
    dispatcher = config.dispatcher_backtrack
    return sweep(
        strategy_options["class"],
        data,
        grid,
        params=strategy_options.get("params") or {},
        out=out,
        seed=kwargs.pop("seed", None) if kwargs.get("seed") is not None else config.seed,
        time_step=dispatcher.time_step,
        timezone=config.timezone,
        data_options=data_options,
        **{k: v for k, v in kwargs.items() if k != "seed"},
        **broker,
    )
