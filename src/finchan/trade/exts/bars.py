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
      speed: 1                   # live mode only: bars played at N x their pace (0: at once)
      format: csv                # for files whose suffix says neither csv nor parquet
      # files as downloaded (docs/data.md): Date/Timestamp/time and Vol columns
      # are found by themselves; these options cover the rest
      adjust: none               # or ohlc: scale each bar by Adj Close / Close
      dayfirst: false            # 01/02/2020 is 1 February
      date_format: null          # strftime codes, e.g. "%d.%m.%Y"
      sep: ","                   # CSV separator
      sort: true                 # newest-first files are reversed (false: an error)
      allow_nonpositive_prices: false
      resample: [1h, 1D]         # also deliver these timeframes' bars ("bar.1h", "bar.1D")
      session_end: "16:00"       # local time a trading day ends (default midnight)
      # synthetic: {n: 100000, symbol: SYN, seed: 42, start: 2020-01-01}

Relative paths are read from the directory of the config file (or the
current directory when the config has none). ``synthetic`` generates the
deterministic 1-minute bars of the reference data (see
:func:`finchan.trade.synthetic.make_bars`) so that examples need no file.

In live mode the bars are played on the wall clock by a
:class:`~finchan.trade.replay.BarReplay`, ``speed`` times faster than their
own pace (default 1; 0 plays them as fast as the run takes them): a live
rehearsal without a feed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from finchan.errors import ConfigError
from finchan.trade._data.options import BarFeedOptions

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.trade.data import BarFeed

__all__ = [
    "BarsOptions",
    "ext_name",
    "feed_arguments",
    "load_finchan_ext",
    "make_feed",
    "unload_finchan_ext",
]

ext_name = "finchan.exts.bars"
required_exts: list[str] = []

# the feed's options are BarFeedOptions' fields; ``format`` is the config's
# name of ``file_format``
_FEED_OPTIONS = tuple(name for name in BarFeedOptions.names() if name != "file_format")
_OPTIONS = ("file", "files", "synthetic", "format", *_FEED_OPTIONS)
_SYNTHETIC_OPTIONS = ("n", "symbol", "seed", "start")


def make_feed(env: Env | None, options: Mapping[str, Any]) -> BarFeed:
    """Build the BarFeed the extension registers, from its options.

    Raises :class:`~finchan.errors.ConfigError` for bad options (the message
    names the extension and the key) and :class:`~finchan.errors.DataError`
    for a missing or malformed file.
    """
    from finchan.trade.data import BarFeed

    inputs, kwargs = feed_arguments(options, getattr(env, "config_dir", None))
    try:
        return BarFeed(env, inputs, **kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{ext_name}: {exc}") from None


def feed_arguments(options: Mapping[str, Any],
                   base: Path | None = None) -> tuple[Any, dict[str, Any]]:
    """The BarFeed's inputs and options given by the extension's ``options``.

    The inputs are the files (relative paths from ``base``, else the current
    directory) or the synthetic bars; the options are the fields of
    :class:`~finchan.trade.data.BarFeedOptions` given (``format`` is its
    ``file_format``). ``finchan sweep`` reads a config's bars with this too,
    so the extension's options are read in one place.
    """
    unknown = [key for key in options if key not in _OPTIONS]
    if unknown:
        raise ConfigError(
            f"{ext_name}: unknown option {unknown[0]!r} (known: {', '.join(sorted(_OPTIONS))})"
        )
    files = _file_list(base, options)
    synthetic = options.get("synthetic")
    if files and synthetic is not None:
        raise ConfigError(f"{ext_name}: give files (or file) or synthetic, not both")
    kwargs = {key: value for key, value in options.items()
              if key in _FEED_OPTIONS and value is not None}
    if options.get("format") is not None:
        kwargs["file_format"] = options["format"]
    if synthetic is not None:
        if "symbols" in kwargs:
            raise ConfigError(f"{ext_name}: symbols: name the synthetic symbol in synthetic.symbol")
        inputs: Any = _synthetic_input(synthetic)
    elif files:
        inputs = files
    else:
        raise ConfigError(f"{ext_name}: no bar data: set files, file or synthetic")
    return inputs, kwargs


def _file_list(base: Path | None, options: Mapping[str, Any]) -> list[Path]:
    if "file" in options and "files" in options:
        raise ConfigError(f"{ext_name}: give file or files, not both")
    value = options.get("files", options.get("file"))
    if value is None:
        return []
    items = [value] if isinstance(value, str | Path) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str | Path) for i in items):
        raise ConfigError(f"{ext_name}: files: expected a path or a list of paths, got {value!r}")
    base = base or Path.cwd()
    paths = []
    for item in items:
        path = Path(item).expanduser()
        paths.append(path if path.is_absolute() else Path(base) / path)
    return paths


def _synthetic_input(spec: Any) -> dict[str, Any]:
    from finchan.trade.synthetic import make_bars

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


class _SyntheticOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(100_000, ge=0)
    symbol: str = "SYN"
    seed: int = Field(42, ge=0)
    start: Any = "2020-01-01"


class _ExtOptions(BaseModel):
    """The extension's own options; the feed's are added from BarFeedOptions' fields."""

    model_config = ConfigDict(extra="forbid")

    file: Any = None
    files: Any = None
    synthetic: _SyntheticOptions | None = None
    format: Literal["csv", "parquet"] | None = None
    # live mode only: bars played at N x their pace (0: at once)
    speed: float | None = Field(None, ge=0, allow_inf_nan=False)


#: the options, checked key by key (unknown keys are errors naming the config file):
#: the extension's own and every field of BarFeedOptions (None: the feed's default)
_FEED_FIELDS: dict[str, Any] = {
    f.name: (f.metadata["config"] | None, None)
    for f in fields(BarFeedOptions)
    if f.name in _FEED_OPTIONS
}
BarsOptions = create_model("BarsOptions", __base__=_ExtOptions, __module__=__name__,
                           **_FEED_FIELDS)


def load_finchan_ext(env: Env) -> None:
    """Build the feed from the options, register it and publish it.

    In live mode the registered source is a :class:`~finchan.trade.replay.BarReplay`
    of the feed (the feed is still what is published).
    """
    from finchan.config import ext_option_error, validate_ext_options

    options = env.get_ext_options(ext_name)
    validate_ext_options(env, ext_name, BarsOptions, options)
    speed = options.pop("speed", None)
    try:
        feed = make_feed(env, options)
        source: Any = feed
        if env.run_mode != "backtrack":
            from finchan.trade.replay import BarReplay

            source = BarReplay(feed, 1.0 if speed is None else speed)
        elif speed is not None:
            raise ConfigError("speed: only for live mode (a backtest runs at full speed)")
    except ConfigError as exc:
        raise ext_option_error(env, ext_name, str(exc)) from None
    env.dispatcher.register_event_source(source)
    env.set_ext_obj(ext_name, feed)
    env.set_ext_obj(f"{ext_name}.source", source)


def unload_finchan_ext(env: Env) -> None:
    """Deregister the feed (which closes its files)."""
    source = env.get_ext_obj(f"{ext_name}.source", None)
    if source is not None:
        env.dispatcher.deregister_event_source(source)
        source.stop()
