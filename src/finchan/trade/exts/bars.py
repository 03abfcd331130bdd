"""Bar data extension ``finchan.exts.bars``: replays OHLCV bars as ``"bar"`` events.

It builds a :class:`~finchan.trade.data.BarFeed` from its options, registers
it with the dispatcher and publishes it (``env.get_ext_obj("finchan.exts.bars")``)
so that strategies can ask for its ``symbols`` or ``timeframe``.

Options (all optional but one of ``files``, ``file`` or ``synthetic``)::

    finchan.exts.bars:
      files: [data/AAPL.csv, data/MSFT.parquet]  # one file per symbol
      # file: universe.csv                        # or one file ...
      # symbol_column: symbol                     # ... with a symbol column
      symbols: [AAPL, MSFT]      # default: file stems; with symbol_column: the ones kept
      columns: {datetime: Date}  # bar column -> file column
      timezone: UTC              # zone of naive times in the files
      timeframe: 1min
      start: 2020-01-02          # keep bars from ... (inclusive)
      end: 2020-12-31 23:59      # ... to (inclusive)
      chunk_size: 100000
      format: csv                # for files whose suffix says neither csv nor parquet
      # synthetic: {n: 100000, symbol: SYN, seed: 42, start: 2020-01-01}

Relative paths are read from the directory of the config file (or the
current directory when the config has none). ``synthetic`` generates the
deterministic 1-minute bars of the reference data (see
:func:`finchan.trade._synthetic.make_bars`) so that examples need no file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finchan.errors import ConfigError

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.trade.data import BarFeed

__all__ = ["ext_name", "load_finchan_ext", "make_feed", "unload_finchan_ext"]

ext_name = "finchan.exts.bars"
required_exts: list[str] = []

_FEED_OPTIONS = ("symbols", "symbol_column", "columns", "timezone", "timeframe", "start", "end")
_OPTIONS = ("file", "files", "synthetic", "chunk_size", "format", *_FEED_OPTIONS)
_SYNTHETIC_OPTIONS = ("n", "symbol", "seed", "start")


def make_feed(env: Env | None, options: Mapping[str, Any]) -> BarFeed:
    """Build the BarFeed the extension registers, from its options.

    Raises :class:`~finchan.errors.ConfigError` for bad options (the message
    names the extension and the key) and :class:`~finchan.errors.DataError`
    for a missing or malformed file.
    """
    from finchan.trade.data import BarFeed

    unknown = [key for key in options if key not in _OPTIONS]
    if unknown:
        raise ConfigError(
            f"{ext_name}: unknown option {unknown[0]!r} (known: {', '.join(sorted(_OPTIONS))})"
        )
    files = _file_list(env, options)
    synthetic = options.get("synthetic")
    if files and synthetic is not None:
        raise ConfigError(f"{ext_name}: give files (or file) or synthetic, not both")
    kwargs = {key: options[key] for key in _FEED_OPTIONS if options.get(key) is not None}
    if "chunk_size" in options:
        kwargs["chunk_size"] = options["chunk_size"]
    if "format" in options:
        kwargs["file_format"] = options["format"]
    if synthetic is not None:
        if "symbols" in kwargs:
            raise ConfigError(f"{ext_name}: symbols: name the synthetic symbol in synthetic.symbol")
        inputs: Any = _synthetic_input(synthetic)
    elif files:
        inputs = files
    else:
        raise ConfigError(f"{ext_name}: no bar data: set files, file or synthetic")
    try:
        return BarFeed(env, inputs, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{ext_name}: {exc}") from None


def _file_list(env: Env | None, options: Mapping[str, Any]) -> list[Path]:
    if "file" in options and "files" in options:
        raise ConfigError(f"{ext_name}: give file or files, not both")
    value = options.get("files", options.get("file"))
    if value is None:
        return []
    items = [value] if isinstance(value, str | Path) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str | Path) for i in items):
        raise ConfigError(f"{ext_name}: files: expected a path or a list of paths, got {value!r}")
    base = getattr(env, "config_dir", None) or Path.cwd()
    paths = []
    for item in items:
        path = Path(item).expanduser()
        paths.append(path if path.is_absolute() else Path(base) / path)
    return paths


def _synthetic_input(spec: Any) -> dict[str, Any]:
    from finchan.trade._synthetic import make_bars

    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{ext_name}: synthetic: expected a mapping like {{n: 100000, symbol: SYN}}, "
            f"got {spec!r}"
        )
    unknown = [key for key in spec if key not in _SYNTHETIC_OPTIONS]
    if unknown:
        raise ConfigError(
            f"{ext_name}: synthetic: unknown option {unknown[0]!r} "
            f"(known: {', '.join(_SYNTHETIC_OPTIONS)})"
        )
    n = spec.get("n", 100_000)
    seed = spec.get("seed", 42)
    for key, value in (("n", n), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(
                f"{ext_name}: synthetic.{key}: expected a non-negative integer, got {value!r}"
            )
    symbol = str(spec.get("symbol", "SYN"))
    return {symbol: make_bars(n, seed=seed, start=str(spec.get("start", "2020-01-01")))}


def load_finchan_ext(env: Env) -> None:
    """Build the feed from the options, register it and publish it."""
    feed = make_feed(env, env.get_ext_options(ext_name))
    env.dispatcher.register_event_source(feed)
    env.set_ext_obj(ext_name, feed)


def unload_finchan_ext(env: Env) -> None:
    """Deregister the feed (which closes its files)."""
    feed = env.get_ext_obj(ext_name, None)
    if feed is not None:
        env.dispatcher.deregister_event_source(feed)
        feed.stop()
