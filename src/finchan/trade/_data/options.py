"""The options of bar feeds, in one place: :class:`BarFeedOptions`.

:class:`~finchan.trade.data.BarFeed`, :func:`~finchan.trade.data.load_bars`
and the ``finchan.exts.bars`` extension (whose config model is built from the
fields below) all take these options; :meth:`BarFeedOptions.resolve` checks
them once and gives the readers what they use (``_Options``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import tzinfo
from typing import Annotated, Any, Literal

from pydantic import Field

from finchan._time import get_tz
from finchan.errors import ConfigError

__all__ = ["BAR_COLUMNS", "BarFeedOptions"]

#: the column names BarFeed looks for unless ``columns`` maps them elsewhere
BAR_COLUMNS = ("datetime", "open", "high", "low", "close", "volume")


def _cfg(config: Any) -> dict[str, Any]:
    """A field's metadata: the type a config file may give it (the extension's model)."""
    return {"config": config}


@dataclass(frozen=True)
class BarFeedOptions:
    """How bar inputs are read: the options of ``BarFeed``, ``load_bars`` and ``finchan.exts.bars``.

    The meaning of each field is documented on :class:`~finchan.trade.data.BarFeed`
    (and in docs/data.md). ``resample`` and ``session_end`` are the feed's
    only (``load_bars`` reads the base bars; see ``resample_frame``). Nothing
    is checked when the object is made; :meth:`resolve` checks everything and
    names the option of a bad value.

    Example
    -------
    >>> from finchan.trade.data import BarFeedOptions
    >>> BarFeedOptions.of({"timeframe": "1D"}, sep=";").sep
    ';'
    """

    symbols: str | Sequence[str] | None = field(default=None, metadata=_cfg(str | list[str]))
    symbol_column: str | None = field(default=None, metadata=_cfg(str))
    columns: Mapping[str, str] | None = field(default=None, metadata=_cfg(dict[str, str]))
    timezone: str | tzinfo | None = field(default="UTC", metadata=_cfg(str))
    timeframe: str = field(default="1min", metadata=_cfg(str))
    start: Any = field(default=None, metadata=_cfg(Any))
    end: Any = field(default=None, metadata=_cfg(Any))
    chunk_size: int = field(default=100_000, metadata=_cfg(Annotated[int, Field(ge=1)]))
    file_format: str | None = field(default=None, metadata=_cfg(Literal["csv", "parquet"]))
    # the layout of files as users have them (docs/data.md, "Files as downloaded")
    date_format: str | None = field(default=None, metadata=_cfg(str))
    dayfirst: bool = field(default=False, metadata=_cfg(bool))
    sep: str | None = field(default=None, metadata=_cfg(str))
    adjust: str = field(default="none", metadata=_cfg(Literal["none", "ohlc"]))
    sort: bool = field(default=True, metadata=_cfg(bool))
    allow_nonpositive_prices: bool = field(default=False, metadata=_cfg(bool))
    # the feed's higher timeframes and the day's end (finchan.trade.resample)
    resample: Sequence[str] | None = field(default=None, metadata=_cfg(str | list[str]))
    session_end: Any = field(default=None, metadata=_cfg(Any))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def of(cls, options: BarFeedOptions | Mapping[str, Any] | None = None,
           **more: Any) -> BarFeedOptions:
        """The options of a mapping (or another ``BarFeedOptions``) updated by ``more``.

        An unknown name is a :class:`~finchan.errors.ConfigError`; a layout
        option given as None takes its default (as a config file's ``null``).
        """
        given = dict(options.given() if isinstance(options, BarFeedOptions) else options or {})
        given.update(more)
        names = cls.names()
        unknown = [key for key in given if key not in names]
        if unknown:
            raise ConfigError(f"unknown option {unknown[0]!r} (known: {', '.join(names)})")
        for key in _LAYOUT:
            if key in given and given[key] is None:
                del given[key]
        return cls(**given)

    def given(self) -> dict[str, Any]:
        """The options that differ from their defaults."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) != f.default}

    def resolve(self) -> _Options:
        """Check every option; the readers' form of them. Raises ConfigError naming the option."""
        _timeframe_seconds(self.timeframe)
        if self.adjust not in ("none", "ohlc"):
            raise ConfigError(f"adjust: expected 'none' or 'ohlc', got {self.adjust!r}")
        for key in ("dayfirst", "sort", "allow_nonpositive_prices"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key}: expected true or false, got {getattr(self, key)!r}")
        for key in ("date_format", "sep"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"{key}: expected a non-empty string, got {value!r}")
        mapping = dict(self.columns or {})
        for key in mapping:
            if key not in BAR_COLUMNS:
                known = ", ".join(BAR_COLUMNS)
                raise ConfigError(f"columns: unknown bar column {key!r} (expected one of {known})")
        timezone = self.timezone
        try:
            tz = get_tz(timezone)
        except (KeyError, ValueError):
            raise ConfigError(f"timezone: unknown time zone {timezone!r}") from None
        tz_name = str(timezone) if timezone is not None else "UTC"
        chunk_size = self.chunk_size
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise ConfigError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
        if self.file_format is not None and self.file_format not in ("csv", "parquet"):
            raise ConfigError(f"format: expected 'csv' or 'parquet', got {self.file_format!r}")
        symbols, symbol_filter = self.symbols, None
        if self.symbol_column is not None and symbols is not None:
            symbol_filter = (symbols,) if isinstance(symbols, str) else tuple(map(str, symbols))
        is_utc = (offset := tz.utcoffset(None)) is not None and offset.total_seconds() == 0
        start_ns = _time_ns(self.start, tz, "start")
        end_ns = _time_ns(self.end, tz, "end")
        if start_ns is not None and end_ns is not None and end_ns < start_ns:
            raise ConfigError(f"end {self.end!r} is before start {self.start!r}")
        return _Options(
            mapping,
            self.symbol_column,
            symbol_filter,
            tz,
            tz_name,
            is_utc,
            start_ns,
            end_ns,
            chunk_size,
            self.file_format,
            date_format=self.date_format,
            dayfirst=self.dayfirst,
            sep=self.sep,
            adjust=self.adjust,
            sort=self.sort,
            allow_nonpositive_prices=self.allow_nonpositive_prices,
        )


#: the layout options: a None given for one means its default
_LAYOUT = ("date_format", "dayfirst", "sep", "adjust", "sort", "allow_nonpositive_prices")


@dataclass(frozen=True)
class _Options:
    """The options as the readers use them (checked, times in nanoseconds, the zone resolved)."""

    columns: dict[str, str]
    symbol_column: str | None
    symbol_filter: tuple[str, ...] | None
    tz: tzinfo
    tz_name: str
    is_utc: bool
    start_ns: int | None
    end_ns: int | None
    chunk_size: int
    file_format: str | None
    date_format: str | None = None
    dayfirst: bool = False
    sep: str | None = None
    adjust: str = "none"
    sort: bool = True
    allow_nonpositive_prices: bool = False


def _time_ns(value: Any, tz: tzinfo, key: str) -> int | None:
    """Nanoseconds since the epoch of a start/end option; naive values are read in ``tz``."""
    if value is None:
        return None
    import pandas as pd  # here: the extension imports this module without reading data

    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * 1e9)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{key}: cannot read a time from {value!r}") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(tz)
    return int(stamp.as_unit("ns").value)


def _timeframe_seconds(timeframe: str) -> float:
    import pandas as pd
    try:
        seconds = pd.Timedelta(timeframe).total_seconds()
    except (ValueError, TypeError):
        seconds = 0.0
    if not seconds > 0:
        raise ConfigError(
            f"timeframe: {timeframe!r} is not a duration such as '1min', '5min', '1h' or '1D'"
        )
    return seconds
