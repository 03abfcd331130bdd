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
_FEED_OPTIONS = ("symbols", "symbol_column", "columns", "timezone", "timeframe", "start", "end")


def _data(config: Any, options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The bars the config names, and the BarFeed options for them."""
    from finchan.trade._synthetic import make_bars

    unknown = [k for k in options if k not in ("file", "files", "synthetic", "chunk_size",
                                              "format", *_FEED_OPTIONS)]
    if unknown:
        raise ConfigError(f"{_BARS}: unknown option {unknown[0]!r}")
    data_options = {k: options[k] for k in _FEED_OPTIONS if options.get(k) is not None}
    synthetic = options.get("synthetic")
    files = options.get("files", options.get("file"))
    if synthetic is not None:
        if not isinstance(synthetic, dict):
            raise ConfigError(f"{_BARS}: synthetic: expected a mapping like {{n: 1000}}")
        symbol = str(synthetic.get("symbol", "SYN"))
        frame = make_bars(int(synthetic.get("n", 100_000)), seed=int(synthetic.get("seed", 42)),
                          start=str(synthetic.get("start", "2020-01-01")))
        return {symbol: frame}, data_options
    if files is None:
        raise ConfigError(f"{_BARS}: no bar data: set files, file or synthetic")
    items = [files] if isinstance(files, str) else list(files)
    paths = [config.resolve_path(item) for item in items]
    if "symbol_column" in data_options:
        return paths, data_options
    return {p.name.split(".")[0]: p for p in paths}, data_options


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
