"""Bar data: read, validate and stream OHLCV bars as :class:`~finchan.trade.bar.Bar` events.

:class:`BarFeed` is an event source that replays bars from CSV files, Parquet
files or pandas DataFrames; :func:`load_bars` reads the same inputs whole into
one validated DataFrame (for analysis and vectorised strategies).

Inputs are read in chunks (``chunk_size`` rows: CSV with pandas' chunked
reader, Parquet batch by batch, DataFrames slice by slice), each chunk is
validated and converted with numpy, and :class:`Bar` objects are built only
for the window the dispatcher asks for. Memory therefore stays at about one
chunk per input plus the bars of one window, whatever the size of the files.

Order of bars: by time; bars of equal time come in the order the inputs were
given, and within one input (a file with a symbol column) in the order of its
rows.
"""

from __future__ import annotations

import logging
import os
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from itertools import repeat
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeAlias, cast

import numpy as np
import pandas as pd

from finchan._process import gc_paused
from finchan._time import get_tz
from finchan.errors import ConfigError, DataError
from finchan.interface.event_source import AbsEventSource
from finchan.trade.bar import BAR_EVENT, Bar

__all__ = ["BAR_COLUMNS", "BarFeed", "load_bars"]

#: the column names BarFeed looks for unless ``columns`` maps them elsewhere
BAR_COLUMNS = ("datetime", "open", "high", "low", "close", "volume")

_PRICES = ("open", "high", "low", "close")
_NAT = np.iinfo(np.int64).min  # pandas' integer value of NaT
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")
_FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
_BY_TIME = attrgetter("timestamp")

_log = logging.getLogger(__name__)

_Inputs: TypeAlias = str | os.PathLike | pd.DataFrame | Sequence[Any] | Mapping[str, Any]


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class _Options:
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


#: the layout options of BarFeed and load_bars beyond the core ones (docs/data.md)
_LAYOUT_DEFAULTS: dict[str, Any] = {
    "date_format": None,
    "dayfirst": False,
    "sep": None,
    "adjust": "none",
    "sort": True,
    "allow_nonpositive_prices": False,
}


def _make_options(
    *,
    columns: Mapping[str, str] | None,
    symbol_column: str | None,
    symbols: Any,
    timezone: str | tzinfo | None,
    start: Any,
    end: Any,
    chunk_size: int,
    file_format: str | None,
    **layout: Any,
) -> _Options:
    unknown = sorted(set(layout) - set(_LAYOUT_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown option {unknown[0]!r} (known: columns, symbols, symbol_column, timezone, "
            f"timeframe, start, end, chunk_size, file_format, {', '.join(_LAYOUT_DEFAULTS)})"
        )
    layout = {**_LAYOUT_DEFAULTS, **{k: v for k, v in layout.items() if v is not None}}
    if layout["adjust"] not in ("none", "ohlc"):
        raise ConfigError(f"adjust: expected 'none' or 'ohlc', got {layout['adjust']!r}")
    for key in ("dayfirst", "sort", "allow_nonpositive_prices"):
        if not isinstance(layout[key], bool):
            raise ConfigError(f"{key}: expected true or false, got {layout[key]!r}")
    for key in ("date_format", "sep"):
        if layout[key] is not None and (not isinstance(layout[key], str) or not layout[key]):
            raise ConfigError(f"{key}: expected a non-empty string, got {layout[key]!r}")
    mapping = dict(columns or {})
    for key in mapping:
        if key not in BAR_COLUMNS:
            raise ConfigError(
                f"columns: unknown bar column {key!r} (expected one of {', '.join(BAR_COLUMNS)})"
            )
    try:
        tz = get_tz(timezone)
    except (KeyError, ValueError):
        raise ConfigError(f"timezone: unknown time zone {timezone!r}") from None
    tz_name = str(timezone) if timezone is not None else "UTC"
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ConfigError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    if file_format is not None and file_format not in ("csv", "parquet"):
        raise ConfigError(f"format: expected 'csv' or 'parquet', got {file_format!r}")
    symbol_filter = None
    if symbol_column is not None and symbols is not None:
        symbol_filter = (symbols,) if isinstance(symbols, str) else tuple(map(str, symbols))
    is_utc = (offset := tz.utcoffset(None)) is not None and offset.total_seconds() == 0
    start_ns = _time_ns(start, tz, "start")
    end_ns = _time_ns(end, tz, "end")
    if start_ns is not None and end_ns is not None and end_ns < start_ns:
        raise ConfigError(f"end {end!r} is before start {start!r}")
    return _Options(
        mapping,
        symbol_column,
        symbol_filter,
        tz,
        tz_name,
        is_utc,
        start_ns,
        end_ns,
        chunk_size,
        file_format,
        **layout,
    )


def _time_ns(value: Any, tz: tzinfo, key: str) -> int | None:
    """Nanoseconds since the epoch of a start/end option; naive values are read in ``tz``."""
    if value is None:
        return None
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
    try:
        seconds = pd.Timedelta(timeframe).total_seconds()
    except (ValueError, TypeError):
        seconds = 0.0
    if not seconds > 0:
        raise ConfigError(
            f"timeframe: {timeframe!r} is not a duration such as '1min', '5min', '1h' or '1D'"
        )
    return seconds


# --------------------------------------------------------------------------- inputs


class _Input:
    """One file or DataFrame: knows its columns and hands out raw chunks."""

    label: str
    symbol: str | None
    #: CSV rows are reported as file lines (header = line 1), others as 1-based rows
    csv = False

    def where(self, row: int) -> str:
        return f"line {row + 2}" if self.csv else f"row {row + 1}"

    def present(self) -> list[str]:
        raise NotImplementedError

    def chunks(
        self, sources: list[str], text: list[str], size: int
    ) -> Iterator[tuple[int, dict[str, pd.Series]]]:
        """Yield ``(first row, {source column: values})`` chunk by chunk."""
        raise NotImplementedError


#: what reading a damaged or compressed-and-truncated CSV raises (one-line data errors)
_READ_ERRORS: tuple[type[BaseException], ...] = (ValueError, UnicodeDecodeError, OSError, EOFError)


def _read_errors() -> tuple[type[BaseException], ...]:
    import lzma
    import zipfile
    import zlib

    return (*_READ_ERRORS, zlib.error, lzma.LZMAError, zipfile.BadZipFile)


class _CsvInput(_Input):
    csv = True

    def __init__(self, path: Path, symbol: str | None, sep: str | None = None) -> None:
        self.path = path
        self.label = str(path)
        self.symbol = symbol
        self.sep = sep or ","

    def present(self) -> list[str]:
        _check_file(self.path)
        if not self.path.name.lower().endswith(_COMPRESSED):
            with open(self.path, "rb") as file:
                if b"\0" in file.read(4096):
                    raise DataError(f"{self.label}: cannot read as CSV: binary content (NUL bytes)")
        try:
            return [str(c) for c in pd.read_csv(self.path, nrows=0, sep=self.sep).columns]
        except pd.errors.EmptyDataError:
            raise DataError(f"{self.label}: empty file, expected a CSV header line") from None
        except _read_errors() as exc:
            raise DataError(f"{self.label}: cannot read as CSV: {_one_line(exc)}") from None

    def chunks(
        self, sources: list[str], text: list[str], size: int
    ) -> Iterator[tuple[int, dict[str, pd.Series]]]:
        row0 = 0
        try:
            # blank lines are kept (as empty rows, dropped later) so that row
            # numbers stay file line numbers
            with pd.read_csv(
                self.path,
                usecols=sources,
                dtype=dict.fromkeys(text, str),
                chunksize=size,
                skip_blank_lines=False,
                sep=self.sep,
            ) as reader:
                for frame in reader:
                    yield row0, {name: frame[name] for name in sources}
                    row0 += len(frame)
        except _read_errors() as exc:
            raise DataError(f"{self.label}: cannot read as CSV: {_one_line(exc)}") from None


class _ParquetInput(_Input):
    def __init__(self, path: Path, symbol: str | None) -> None:
        self.path = path
        self.label = str(path)
        self.symbol = symbol

    def _open(self) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            # pre-buffering would read ahead whole column chunks (all of a 10M-row
            # file): row group by row group keeps memory to one group
            return pq.ParquetFile(self.path, pre_buffer=False)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.label}: cannot read as Parquet: {_one_line(exc)}") from None

    def present(self) -> list[str]:
        _check_file(self.path)
        return list(self._open().schema_arrow.names)

    def chunks(
        self, sources: list[str], text: list[str], size: int
    ) -> Iterator[tuple[int, dict[str, pd.Series]]]:
        import pyarrow as pa

        row0 = 0
        pf = self._open()
        try:
            for batch in pf.iter_batches(batch_size=size, columns=sources):
                # each column on its own: the pandas metadata of the file
                # would turn an index column into the frame's index
                yield (
                    row0,
                    {name: batch.column(name).to_pandas() for name in sources},
                )
                row0 += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{self.label}: cannot read as Parquet: {_one_line(exc)}") from None
        finally:
            pf.close()


class _FrameInput(_Input):
    def __init__(self, frame: pd.DataFrame, number: int, symbol: str | None) -> None:
        self.frame = frame
        self.symbol = symbol
        self.label = f"DataFrame #{number}" + (f" ({symbol})" if symbol else "")

    def present(self) -> list[str]:
        names = [str(c) for c in self.frame.columns]
        index = self.frame.index
        if isinstance(index, pd.DatetimeIndex) or index.name is not None:
            # the index counts as a column: a DatetimeIndex is found under any name
            names.append(str(index.name) if index.name is not None else "index")
        return names

    def chunks(
        self, sources: list[str], text: list[str], size: int
    ) -> Iterator[tuple[int, dict[str, pd.Series]]]:
        frame = self.frame
        columns = {str(c): c for c in frame.columns}
        for row0 in range(0, len(frame), size):
            part = frame.iloc[row0 : row0 + size]
            yield (
                row0,
                {
                    name: part[columns[name]]
                    if name in columns
                    else pd.Series(part.index, copy=False)
                    for name in sources
                },
            )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"bar file not found: {path}")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a bar file")


def _names(names: list[str]) -> str:
    """Column names for a one-line message (odd ones quoted, so no newline gets in)."""
    shown = [n if n.isprintable() and n.strip() == n and n else repr(n) for n in names]
    return ", ".join(shown) or "(none)"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _strip_suffixes(path: Path) -> tuple[str, str]:
    """``(stem, format suffix)`` of ``AAPL.csv.gz`` -> ``("AAPL", ".csv")``."""
    name = path.name
    lower = name.lower()
    for comp in _COMPRESSED:
        if lower.endswith(comp):
            name, lower = name[: -len(comp)], lower[: -len(comp)]
            break
    suffix = Path(lower).suffix
    return (name[: -len(suffix)] if suffix else name), suffix


def _open_inputs(inputs: _Inputs, symbols: Any, opts: _Options) -> list[_Input]:
    if isinstance(inputs, Mapping):
        if symbols is not None:
            raise ConfigError("symbols: give symbols as the keys of the inputs mapping or here")
        if opts.symbol_column is not None:
            raise ConfigError("symbol_column: cannot be used with a {symbol: input} mapping")
        pairs: list[tuple[str | None, Any]] = [(str(k), v) for k, v in inputs.items()]
    else:
        items = [inputs] if isinstance(inputs, str | os.PathLike | pd.DataFrame) else list(inputs)
        names: list[str | None] = [None] * len(items)
        if symbols is not None and opts.symbol_column is None:
            names = [symbols] if isinstance(symbols, str) else [str(s) for s in symbols]
            if len(names) != len(items):
                raise ConfigError(f"symbols: {len(names)} symbols for {len(items)} inputs")
        pairs = list(zip(names, items))
    if not pairs:
        raise ConfigError("no bar inputs given")

    result: list[_Input] = []
    owners: dict[str, str] = {}
    for number, (symbol, source) in enumerate(pairs, 1):
        inp: _Input
        if isinstance(source, pd.DataFrame):
            if symbol is None and opts.symbol_column is None:
                raise ConfigError(
                    f"input #{number} is a DataFrame: give its symbol "
                    "(symbols=[...] or a {symbol: frame} mapping) or a symbol_column"
                )
            inp = _FrameInput(source, number, symbol)
        elif isinstance(source, str | os.PathLike):
            path = Path(os.fspath(source)).expanduser()
            _check_file(path)
            stem, suffix = _strip_suffixes(path)
            kind = opts.file_format or _FORMATS.get(suffix)
            if kind is None:
                raise DataError(
                    f"{path}: unknown bar file format {suffix or '(no suffix)'!r} "
                    "(expected .csv, .txt or .parquet, optionally compressed, or set format)"
                )
            if symbol is None and opts.symbol_column is None:
                symbol = stem
            if kind == "csv":
                inp = _CsvInput(path, symbol, opts.sep)
            else:
                inp = _ParquetInput(path, symbol)
        else:
            raise ConfigError(
                f"input #{number}: expected a file path or a pandas DataFrame, "
                f"got {type(source).__name__}"
            )
        if inp.symbol is not None:
            if inp.symbol in owners:
                raise ConfigError(
                    f"symbol {inp.symbol!r} is given by two inputs: "
                    f"{owners[inp.symbol]} and {inp.label}"
                )
            owners[inp.symbol] = inp.label
        result.append(inp)
    return result


# --------------------------------------------------------------------------- validation


class _Block:
    """Validated rows of one chunk of one input, as numpy arrays."""

    __slots__ = ("close", "high", "low", "open", "symbol", "symbols", "ts_ns", "volume")
    ts_ns: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    symbol: str | None
    symbols: np.ndarray | None

    def __init__(self, **values: Any) -> None:
        for key, value in values.items():
            setattr(self, key, value)

    def __len__(self) -> int:
        return len(self.ts_ns)


class _Stream:
    """Reads one input chunk by chunk, validates and converts each chunk."""

    def __init__(self, inp: _Input, opts: _Options) -> None:
        self.inp = inp
        self.opts = opts
        present = inp.present()
        self.source = _resolve_columns(inp, present, opts)
        self.sources = list(dict.fromkeys(self.source.values()))
        # symbols stay text ("007" is not 7); a text dtype for times would cost
        # more than the rest of the CSV parsing
        self.text = [self.source["symbol"]] if "symbol" in self.source else []
        # carried from chunk to chunk: the last time and the symbols seen at it
        self.last_ns: int | None = None
        self.last_symbols: set[str] = set()
        self.odd_bars = 0
        #: None until the first two times are seen; True for a newest-first input
        self.descending: bool | None = None

    def _detect_order(self, ns: np.ndarray) -> None:
        _index, times = _valid_times(ns)
        if len(times) >= 2 and times[0] != times[1]:
            self.descending = bool(times[1] < times[0])
            if self.descending:
                _log.warning(
                    "%s: rows are newest first: read whole and sorted oldest first",
                    self.inp.label,
                )

    def blocks(self) -> Generator[_Block, None, None]:
        """Yield the validated, filtered blocks of the input, in time order."""
        held: list[_Block] = []
        try:
            for row0, raw in self.inp.chunks(self.sources, self.text, self.opts.chunk_size):
                block, past_end = self._convert(row0, raw)
                if self.descending:
                    held.append(block)  # a newest-first input is reversed once read whole
                    continue
                if len(block):
                    yield block
                if past_end:
                    break
            if held:
                whole = _reversed(held)
                if len(whole):
                    yield whole
        finally:
            if self.odd_bars > 1:
                _log.warning(
                    "%s: %d bars in all have open or close outside [low, high]",
                    self.inp.label,
                    self.odd_bars,
                )

    def scan_symbols(self) -> list[str]:
        """Symbols of a symbol-column input in order of first appearance (reads that column)."""
        name = self.source["symbol"]
        seen: dict[str, None] = {}
        for _row0, raw in self.inp.chunks([name], [name], self.opts.chunk_size):
            seen.update(dict.fromkeys(str(s) for s in pd.unique(raw[name].dropna())))
        return list(seen)

    def _convert(self, row0: int, raw: dict[str, pd.Series]) -> tuple[_Block, bool]:
        opts, source, inp = self.opts, self.source, self.inp
        rows: np.ndarray | None = None  # absolute row of each position, if blank rows were dropped
        if inp.csv:
            raw, rows = _drop_blank_rows(raw, row0)

        problems: list[tuple[int, str | None, str]] = []
        values: dict[str, np.ndarray] = {}
        for key in (*_PRICES, "volume"):
            name = source.get(key)
            if name is None:
                values[key] = np.zeros(len(raw[source["datetime"]]))
                continue
            values[key] = _numbers(raw[name], name, "price" if key != "volume" else key, problems)
            if key != "volume" and not opts.allow_nonpositive_prices:
                arr = values[key]
                _first(
                    problems,
                    arr <= 0,
                    lambda i, n=name, a=arr: (
                        n,
                        f"price {float(a[i])!r} is not positive "
                        "(set allow_nonpositive_prices to accept such bars)",
                    ),
                )
        if "adj_close" in source:
            # Yahoo's adjusted close: scale the whole bar by adj close / close
            name = source["adj_close"]
            adj = _numbers(raw[name], name, "price", problems)
            ratio = adj / np.where(values["close"] == 0, np.nan, values["close"])
            for key in _PRICES:
                values[key] = values[key] * ratio
        ns = _times(raw[source["datetime"]], source["datetime"], opts, problems, inp.csv)
        if self.descending is None and opts.sort and "symbol" not in source:
            self._detect_order(ns)
        symbols = codes = None
        categories: list[str] = []
        if "symbol" in source:
            codes, categories = _symbols(raw[source["symbol"]], source["symbol"], problems)

        high, low, volume = values["high"], values["low"], values["volume"]
        _first(
            problems,
            high < low,
            lambda i: (None, f"high {float(high[i])!r} is below low {float(low[i])!r}"),
        )
        if "volume" in source:
            name = source["volume"]
            _first(problems, volume < 0, lambda i: (name, f"negative volume {float(volume[i])!r}"))
        if "symbol" in source:
            self._check_order_by_symbol(ns, cast(np.ndarray, codes), categories, problems)
        else:
            self._check_order(ns, problems)

        if problems:
            pos, column, text = min(problems, key=lambda p: p[0])
            row = rows[pos] if rows is not None else row0 + pos
            at = f"{inp.label}: {inp.where(int(row))}"
            raise DataError(f"{at}, column {column!r}: {text}" if column else f"{at}: {text}")

        if "symbol" in source:
            symbols = np.asarray(categories, dtype=object)[codes]
            self._carry_symbols(ns, symbols)
        elif len(ns):
            self.last_ns = int(ns[-1])
        self._warn_odd(values, rows, row0)

        keep = None
        if opts.start_ns is not None:
            keep = ns >= opts.start_ns
        past_end = False
        if opts.end_ns is not None and len(ns) and (self.descending or ns[-1] > opts.end_ns):
            past_end = not self.descending
            keep = ns <= opts.end_ns if keep is None else keep & (ns <= opts.end_ns)
        if opts.symbol_filter is not None and symbols is not None:
            wanted = np.isin(symbols, np.asarray(opts.symbol_filter, dtype=object))
            keep = wanted if keep is None else keep & wanted
        if keep is not None and not keep.all():
            ns = ns[keep]
            values = {key: arr[keep] for key, arr in values.items()}
            symbols = symbols[keep] if symbols is not None else None
        return _Block(ts_ns=ns, symbol=inp.symbol, symbols=symbols, **values), past_end

    def _check_order(self, ns: np.ndarray, problems: list) -> None:
        index, times = _valid_times(ns)
        if not len(times):
            return
        prev = np.empty_like(times)
        prev[0] = self.last_ns if self.last_ns is not None else _NAT
        prev[1:] = times[:-1]
        if self.descending:
            prev[0] = self.last_ns if self.last_ns is not None else np.iinfo(np.int64).max
            bad = times >= prev
        else:
            bad = times <= prev
        if bad.any():
            k = int(bad.argmax())
            if times[k] == prev[k]:
                text = f"duplicate time {self._iso(times[k])}"
            elif self.descending:
                text = (
                    f"time {self._iso(times[k])} is after the previous bar's time "
                    f"{self._iso(prev[k])} (a newest-first file must be newest-first throughout)"
                )
            else:
                text = (
                    f"time {self._iso(times[k])} is before the previous bar's time "
                    f"{self._iso(prev[k])} (bars must be in time order)"
                )
            problems.append((int(index[k]) if index is not None else k, None, text))

    def _check_order_by_symbol(
        self, ns: np.ndarray, codes: np.ndarray, categories: list[str], problems: list
    ) -> None:
        index, times = _valid_times(ns)
        if not len(times):
            return
        codes = codes[index] if index is not None else codes
        prev = np.empty_like(times)
        prev[0] = self.last_ns if self.last_ns is not None else _NAT
        prev[1:] = times[:-1]
        before = times < prev
        if before.any():
            k = int(before.argmax())
            text = (
                f"time {self._iso(times[k])} is before the previous row's time "
                f"{self._iso(prev[k])} (rows must be in time order)"
            )
            problems.append((int(index[k]) if index is not None else k, None, text))
        dup = pd.DataFrame({"t": times, "s": codes}).duplicated().to_numpy()
        if self.last_ns is not None and self.last_symbols:
            carried = np.asarray([c in self.last_symbols for c in categories] + [False], dtype=bool)
            dup = dup | ((times == self.last_ns) & carried[codes])
        if dup.any():
            k = int(dup.argmax())
            text = f"duplicate time {self._iso(times[k])} for {categories[codes[k]]}"
            problems.append((int(index[k]) if index is not None else k, None, text))

    def _carry_symbols(self, ns: np.ndarray, symbols: np.ndarray) -> None:
        if not len(ns):
            return
        last = int(ns[-1])
        at_last = set(symbols[ns == last].tolist())
        self.last_symbols = (self.last_symbols | at_last) if last == self.last_ns else at_last
        self.last_ns = last

    def _warn_odd(self, values: dict[str, np.ndarray], rows: np.ndarray | None, row0: int) -> None:
        # backtrader and most vendors accept such bars, so they are reported, not refused
        o, h, lo, c = (values[k] for k in _PRICES)
        odd = (o > h) | (o < lo) | (c > h) | (c < lo)
        count = int(np.count_nonzero(odd))
        if not count:
            return
        if not self.odd_bars:
            pos = int(odd.argmax())
            row = int(rows[pos]) if rows is not None else row0 + pos
            _log.warning(
                "%s: %s: open or close outside [low, high] (bar accepted; "
                "later such bars of this input are only counted)",
                self.inp.label,
                self.inp.where(row),
            )
        self.odd_bars += count

    def _iso(self, ns: int) -> str:
        return pd.Timestamp(int(ns), tz="UTC").tz_convert(self.opts.tz).isoformat()


#: other names of a bar column in files as users have them (Yahoo, brokers), matched
#: ignoring case when the column's own name is absent and ``columns`` does not map it
_ALIASES = {
    "datetime": ("date", "timestamp", "time", "date_time", "datetime_utc"),
    "volume": ("vol", "vol."),
    "adj_close": ("adj close", "adj_close", "adjclose", "adjusted close", "adjusted_close"),
}


def _alias(key: str, by_lower: Mapping[str, list[str]], inp: _Input) -> str | None:
    """The one input column that is an alias of bar column ``key``, if any."""
    found = [by_lower[a][0] for a in _ALIASES.get(key, ()) if len(by_lower.get(a, ())) == 1]
    if len(found) > 1:
        if key == "datetime" and {n.lower() for n in found} >= {"date", "time"}:
            raise DataError(
                f"{inp.label}: separate date and time columns ({_names(found)}): join them "
                "into one column, or map one with columns={'datetime': ...}"
            )
        raise DataError(
            f"{inp.label}: columns {_names(found)} could each be {key}: "
            f"choose one with columns={{{key!r}: ...}}"
        )
    return found[0] if found else None


def _reversed(blocks: list[_Block]) -> _Block:
    """One block of newest-first blocks, oldest first."""
    keys = ("ts_ns", *_PRICES, "volume")
    values = {key: np.concatenate([getattr(b, key) for b in blocks])[::-1] for key in keys}
    symbols = None
    if blocks[0].symbols is not None:
        symbols = np.concatenate([b.symbols for b in blocks])[::-1]
    return _Block(symbol=blocks[0].symbol, symbols=symbols, **values)


def _resolve_columns(inp: _Input, present: list[str], opts: _Options) -> dict[str, str]:
    """Map each bar column to its input column: the same name, else the same ignoring case,
    else a known alias (``Date``, ``Timestamp``, ``Vol``...) ignoring case."""
    wanted = {key: opts.columns.get(key, key) for key in BAR_COLUMNS}
    if opts.symbol_column is not None:
        wanted["symbol"] = opts.symbol_column
    by_lower: dict[str, list[str]] = {}
    for name in present:
        by_lower.setdefault(name.lower(), []).append(name)
    source: dict[str, str] = {}
    for key, name in wanted.items():
        alias = None
        if name in present:
            source[key] = name
        elif len(by_lower.get(name.lower(), ())) == 1:
            source[key] = by_lower[name.lower()][0]
        elif key not in opts.columns and (alias := _alias(key, by_lower, inp)) is not None:
            source[key] = alias
        elif key == "datetime" and isinstance(inp, _FrameInput) and _frame_time_index(inp):
            source[key] = present[-1]
        elif key == "volume" and "volume" not in opts.columns:
            continue  # volume is optional: bars get volume 0
        else:
            mapped = f" (for {key})" if name != key else ""
            raise DataError(
                f"{inp.label}: missing column {name!r}{mapped}; columns present: {_names(present)}"
            )
    if opts.adjust == "ohlc":
        adj = _alias("adj_close", by_lower, inp)
        if adj is None:
            raise DataError(
                f"{inp.label}: adjust='ohlc' needs an 'Adj Close' column; "
                f"columns present: {_names(present)}"
            )
        source["adj_close"] = adj
    return source


def _frame_time_index(inp: _FrameInput) -> bool:
    return isinstance(inp.frame.index, pd.DatetimeIndex)


def _drop_blank_rows(
    raw: dict[str, pd.Series], row0: int
) -> tuple[dict[str, pd.Series], np.ndarray | None]:
    blank = None
    for series in raw.values():
        empty = series.isna().to_numpy()
        blank = empty if blank is None else blank & empty
        if not blank.any():
            return raw, None
    assert blank is not None
    keep = np.flatnonzero(~blank)
    return {name: s.iloc[keep] for name, s in raw.items()}, row0 + keep


def _first(problems: list, mask: np.ndarray, describe: Any) -> None:
    """Record the first position where ``mask`` holds, described by ``describe(i)``."""
    if mask.any():
        i = int(mask.argmax())
        problems.append((i, *describe(i)))


def _numbers(series: pd.Series, name: str, what: str, problems: list) -> np.ndarray:
    dtype = series.dtype
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = None
    else:
        # text in a number column: find the first cell that is not a number
        arr = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        if pd.api.types.is_bool_dtype(dtype):
            bad = series.notna().to_numpy()
        else:
            bad = np.isnan(arr) & series.notna().to_numpy()
        _first(problems, bad, lambda i: (name, f"bad number {str(series.iloc[i])!r}"))
    finite = np.isfinite(arr)
    if not finite.all():
        missing = ~finite if bad is None else ~finite & ~bad
        _first(
            problems,
            missing,
            lambda i: (
                name,
                f"infinite {what} {str(series.iloc[i])!r}"
                if np.isinf(arr[i])
                else f"empty or NaN {what}",
            ),
        )
    return arr


def _times(series: pd.Series, name: str, opts: _Options, problems: list, csv: bool) -> np.ndarray:
    """Nanoseconds since the epoch (UTC) of a time column; NaT where unreadable."""
    dtype = series.dtype
    if csv and pd.api.types.is_integer_dtype(dtype):
        # the CSV parser took digits-only times (20200102) for integers
        series = series.astype(str)
        dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or dtype.kind == "M":
        index = pd.DatetimeIndex(series)
    elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        if len(series):
            text = f"cannot read a time from {str(series.iloc[0])!r} (numbers are not times)"
            problems.append((0, name, text))
        return np.full(len(series), _NAT, dtype=np.int64)
    else:
        index = _parse_text_times(series, name, opts, problems)
    empty = series.isna().to_numpy()
    _first(problems, empty, lambda i: (name, "empty time"))
    # text pandas reads as "no time" ("NaT", "nan", "None"): not a time, not a 1677 bar
    _first(
        problems,
        index.isna() & ~empty,
        lambda i: (name, f"cannot read a time from {str(series.iloc[i])!r}"),
    )
    if index.tz is None and not opts.is_utc:
        local = index.tz_localize(opts.tz, ambiguous="NaT", nonexistent="NaT")
        _first(
            problems,
            local.isna() & ~index.isna(),
            lambda i: (
                name,
                f"time {str(series.iloc[i])!r} is ambiguous or does not exist in {opts.tz_name}",
            ),
        )
        index = local
    try:
        return index.as_unit("ns").asi8
    except (OverflowError, ValueError):
        # a time pandas can hold only at a coarser unit (years before 1678 or after 2261)
        inside = (index >= pd.Timestamp.min.tz_localize(index.tz)) & (
            index <= pd.Timestamp.max.tz_localize(index.tz)
        )
        _first(
            problems,
            ~inside & ~index.isna(),
            lambda i: (name, f"time {str(series.iloc[i])!r} is out of range ({_TIME_RANGE})"),
        )
        return index.where(inside).as_unit("ns").asi8


#: the times pandas (nanoseconds since 1970 in an int64) can hold
_TIME_RANGE = "years 1678 to 2261 only"
_TIME_ONLY = r"\s*\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?\s*([AaPp][Mm])?\s*"


def _parse_text_times(
    series: pd.Series, name: str, opts: _Options, problems: list
) -> pd.DatetimeIndex:
    import pyarrow as pa

    if opts.date_format is not None:
        return _parse_with_format(series, name, opts.date_format, problems)
    try:
        # Arrow's ISO parser reads naive ISO times ~8x faster than pandas; anything
        # else (offsets, other formats, bad text) goes on to pandas below
        stamps = pa.array(series, from_pandas=True).cast(pa.timestamp("ns"))
        return pd.DatetimeIndex(stamps.to_numpy(zero_copy_only=False))
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        pass
    # a time without a date (09:30) would be dated today: the run would depend on the day
    try:
        time_only = series.str.fullmatch(_TIME_ONLY).fillna(False).to_numpy(dtype=bool)
    except AttributeError:  # not text at all
        time_only = np.zeros(len(series), dtype=bool)
    if time_only.any():
        i = int(time_only.argmax())
        problems.append((i, name, f"time {str(series.iloc[i])!r} has no date"))
    dayfirst = {"dayfirst": True} if opts.dayfirst else {}
    with warnings.catch_warnings():
        # pandas warns when it falls back to parsing each element on its own
        warnings.simplefilter("ignore", UserWarning)
        iso: tuple[dict[str, Any], ...] = (
            ({"format": "ISO8601"}, {"format": "ISO8601", "utc": True})
        )
        for options in (*iso, dayfirst):
            try:
                return pd.DatetimeIndex(pd.to_datetime(series, **options))
            except (ValueError, TypeError, OverflowError):
                continue
        # unreadable somewhere: the reading that gets farthest names the bad cell
        present = series.notna().to_numpy()
        best = None
        for options in ({"format": "ISO8601"}, dayfirst):
            parsed = pd.DatetimeIndex(pd.to_datetime(series, errors="coerce", utc=True, **options))
            bad = parsed.isna() & present
            first = int(bad.argmax()) if bad.any() else len(series)
            if best is None or first > best[0]:
                best = (first, parsed)
    assert best is not None
    first = min(best[0], len(series) - 1)
    problems.append((first, name, _unreadable(series.iloc[first])))
    return best[1]


def _unreadable(cell: Any) -> str:
    text = str(cell)
    try:
        pd.Timestamp(text)
    except pd.errors.OutOfBoundsDatetime:
        return f"time {text!r} is out of range ({_TIME_RANGE})"
    except (ValueError, TypeError, OverflowError):
        pass
    return f"cannot read a time from {text!r}"


def _parse_with_format(
    series: pd.Series, name: str, date_format: str, problems: list
) -> pd.DatetimeIndex:
    """Times read with an explicit ``date_format`` (strftime codes); the first misfit is named."""
    try:
        return pd.DatetimeIndex(pd.to_datetime(series, format=date_format))
    except (ValueError, TypeError, OverflowError):
        pass
    parsed = pd.DatetimeIndex(
        pd.to_datetime(series, format=date_format, errors="coerce", utc=True)
    )
    bad = parsed.isna() & series.notna().to_numpy()
    if bad.any():
        i = int(bad.argmax())
        problems.append(
            (i, name, f"time {str(series.iloc[i])!r} does not match date_format {date_format!r}")
        )
    return parsed


def _symbols(series: pd.Series, name: str, problems: list) -> tuple[np.ndarray, list[str]]:
    codes, uniques = pd.factorize(series)
    _first(problems, codes < 0, lambda i: (name, "empty symbol"))
    return codes, [str(u) for u in uniques]


def _valid_times(ns: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """``(positions, times)`` of the readable times; positions is None when all are."""
    valid = ns != _NAT
    if valid.all():
        return None, ns
    index = np.flatnonzero(valid)
    return index, ns[index]


# --------------------------------------------------------------------------- feed


class _Cursor:
    """Position of the feed in one input: the current block as Python lists."""

    __slots__ = (
        "blocks",
        "close",
        "done",
        "first_seen",
        "high",
        "last_seen",
        "low",
        "open",
        "pos",
        "symbol",
        "symbols",
        "ts",
        "volume",
    )

    def __init__(self, stream: _Stream) -> None:
        self.blocks: Generator[_Block, None, None] | None = stream.blocks()
        self.ts: list[float] | None = None
        self.pos = 0
        self.done = False
        #: first and last bar time read from the input so far (for "no bar" warnings)
        self.first_seen: float | None = None
        self.last_seen: float | None = None

    def load(self) -> bool:
        """Make the next block current; False (and ``done``) at the end of the input."""
        if self.blocks is not None:
            block = next(self.blocks, None)
            if block is not None:
                # whole-chunk conversions: numpy does the arithmetic, tolist()
                # makes the Python floats the Bar objects will hold
                self.ts = ts = (block.ts_ns / 1e9).tolist()
                if self.first_seen is None:
                    self.first_seen = ts[0]
                self.last_seen = ts[-1]
                self.open = block.open.tolist()
                self.high = block.high.tolist()
                self.low = block.low.tolist()
                self.close = block.close.tolist()
                self.volume = block.volume.tolist()
                self.symbol = block.symbol
                self.symbols = block.symbols.tolist() if block.symbols is not None else None
                self.pos = 0
                return True
        self.close_input()
        self.ts = None
        self.done = True
        return False

    def close_input(self) -> None:
        if self.blocks is not None:
            self.blocks.close()
            self.blocks = None

    def skip(self, limit_ts: float) -> None:
        """Pass over the bars before ``limit_ts`` without building them."""
        while True:
            ts = self.ts
            if ts is None:
                if self.done or not self.load():
                    return
                ts = self.ts
                assert ts is not None
            stop = len(ts) if ts[-1] < limit_ts else bisect_left(ts, limit_ts, self.pos)
            if stop < len(ts):
                self.pos = stop
                return
            self.ts = None

    def take(self, env: Any, limit_ts: float, out: list[Bar]) -> None:
        """Append the bars before ``limit_ts`` to ``out``."""
        while True:
            ts = self.ts
            if ts is None:
                if self.done or not self.load():
                    return
                ts = self.ts
                assert ts is not None
            pos, end = self.pos, len(ts)
            stop = end if ts[-1] < limit_ts else bisect_left(ts, limit_ts, pos)
            if stop > pos:
                whole = pos == 0 and stop == end
                s = slice(pos, stop)
                _append_bars(
                    out,
                    env,
                    self.symbol,
                    self.symbols if whole or self.symbols is None else self.symbols[s],
                    ts if whole else ts[s],
                    self.open if whole else self.open[s],
                    self.high if whole else self.high[s],
                    self.low if whole else self.low[s],
                    self.close if whole else self.close[s],
                    self.volume if whole else self.volume[s],
                )
            if stop < end:
                self.pos = stop
                return
            self.ts = None  # block used up: let it go before reading the next


def _append_bars(
    out: list[Bar],
    env: Any,
    symbol: str | None,
    symbols: list[str] | None,
    ts: list[float],
    opens: list[float],
    highs: list[float],
    lows: list[float],
    closes: list[float],
    volumes: list[float],
) -> None:
    if env is None:
        # no Env: Bar numbers the bars from its own counter
        syms = symbols if symbols is not None else repeat(symbol)
        out.extend(map(Bar, repeat(None), syms, ts, opens, highs, lows, closes, volumes))
        return
    # The hot loop of loading: Bar.__new__ plus slot stores is ~20% faster than
    # calling Bar(...) (no argument parsing, no id branch); a test checks the
    # result equals Bar(...) slot by slot. The cyclic GC is paused because
    # every Bar is a tracked container: a million of them otherwise trigger
    # repeated collections that cost more than building them.
    new, cls, name, append = Bar.__new__, Bar, BAR_EVENT, out.append
    with gc_paused():
        # ts first and the id counter last: zip stops on ts before drawing an id
        syms = symbols if symbols is not None else repeat(symbol)
        for t, sym, o, h, lo, c, v, i in zip(
            ts, syms, opens, highs, lows, closes, volumes, env.event_ids
        ):
            bar = new(cls)
            bar.env = env
            bar.name = name
            bar.timestamp = t
            bar.expire = 0
            bar.id = i
            bar.symbol = sym
            bar.open = o
            bar.high = h
            bar.low = lo
            bar.close = c
            bar.volume = v
            append(bar)


class BarFeed(AbsEventSource):
    """An event source replaying OHLCV bars from files or DataFrames as ``"bar"`` events.

    Parameters
    ----------
    env:
        the Env whose event ids the bars take (``None`` outside a run: bars
        number themselves).
    inputs:
        a path (CSV: ``.csv``/``.txt``, Parquet: ``.parquet``/``.pq``; CSV may be
        compressed, ``.csv.gz``), a DataFrame, a list of them, or a mapping
        ``{symbol: path or DataFrame}``.
    symbols:
        one symbol per input (default: the file stem, ``data/AAPL.csv`` ->
        ``AAPL``; DataFrames need one). With ``symbol_column``: the symbols to
        keep, others are skipped.
    symbol_column:
        column holding each row's symbol (one input, several symbols); such an
        input must be in time order, rows of equal time in any symbol order.
    columns:
        ``{bar column: input column}`` for names that differ from
        ``datetime, open, high, low, close, volume``, e.g.
        ``{"datetime": "Date", "close": "Adj Close"}``. Names match exactly,
        else ignoring case. Without a volume column bars get volume 0. A
        DataFrame's DatetimeIndex serves as the datetime column.
    timezone:
        zone of naive times in the inputs and of naive ``start``/``end``
        (times with an offset keep it).
    timeframe:
        bar length (``"1min"``, ``"1h"``, ``"1D"``); kept for reports, a bar's
        time is its open time.
    start, end:
        keep bars with ``start <= time <= end`` (datetime, ISO text or POSIX seconds).
    chunk_size:
        rows read and converted at once per input.
    file_format:
        ``"csv"`` or ``"parquet"`` for files whose suffix says neither.
    **layout:
        how files as users have them are read (docs/data.md, "Files as
        downloaded"): ``date_format`` (strftime codes, e.g. ``"%d.%m.%Y"``),
        ``dayfirst`` (``01/02/2020`` is 1 February), ``sep`` (CSV separator),
        ``adjust`` (``"ohlc"``: scale each bar by ``Adj Close / Close``),
        ``sort`` (default True: a newest-first input is read whole and
        reversed, with a log note; False makes it an error) and
        ``allow_nonpositive_prices`` (default False: a price <= 0 is a data
        error).
    resample:
        higher timeframes (``["1h", "1D"]``) whose bars the feed also
        delivers, as ``"bar.<timeframe>"`` events (see :mod:`finchan.trade.resample`).
    session_end:
        local time (in ``timezone``) at which a trading day ends, ``"16:00"``;
        default midnight. Days of resampled bars end there.

    Notes
    -----
    Bars come in time order; bars of equal time in the order of ``inputs``,
    within one input in the order of its rows. In a backtest with a
    ``start_dt``, bars before it are skipped. Files are opened at once (a
    missing file or column fails here) and read lazily, a chunk at a time;
    every chunk is validated when read and a bad value stops the run with a
    :class:`~finchan.errors.DataError` naming the file, line and column.

    Example
    -------
    >>> import pandas as pd
    >>> from finchan.trade.data import BarFeed
    >>> df = pd.DataFrame({"datetime": ["2020-01-01 09:30", "2020-01-01 09:31"],
    ...                    "open": [10.0, 10.5], "high": [11.0, 11.0],
    ...                    "low": [9.5, 10.0], "close": [10.5, 10.8]})
    >>> feed = BarFeed(None, {"ABC": df})
    >>> [(b.symbol, b.close, b.volume) for b in feed.events_until(float("inf"))]
    [('ABC', 10.5, 0.0), ('ABC', 10.8, 0.0)]
    """

    def __init__(
        self,
        env: Any,
        inputs: _Inputs,
        *,
        symbols: str | Sequence[str] | None = None,
        symbol_column: str | None = None,
        columns: Mapping[str, str] | None = None,
        timezone: str | tzinfo | None = "UTC",
        timeframe: str = "1min",
        start: Any = None,
        end: Any = None,
        chunk_size: int = 100_000,
        file_format: str | None = None,
        resample: Sequence[str] | None = None,
        session_end: Any = None,
        **layout: Any,
    ) -> None:
        self.env = env
        #: bar length as given (``"1min"``) and in seconds
        self.timeframe = timeframe
        self.timeframe_seconds = _timeframe_seconds(timeframe)
        opts = _make_options(
            columns=columns,
            symbol_column=symbol_column,
            symbols=symbols,
            timezone=timezone,
            start=start,
            end=end,
            chunk_size=chunk_size,
            file_format=file_format,
            **layout,
        )
        self._opts = opts
        self._streams = [_Stream(inp, opts) for inp in _open_inputs(inputs, symbols, opts)]
        self._cursors = [_Cursor(stream) for stream in self._streams]
        self._symbols: list[str] | None = None
        self._skip_before: float | None = None
        # the bars last returned by events_until, for bars_at
        self._window: list[Bar] = []
        self.exhausted = False
        self._started = False
        self._emitted = 0
        # the higher timeframes delivered beside the base bars (None: none, no cost)
        self._resampler: Any = None
        self._session_end = session_end
        if resample:
            self.add_timeframes(resample)
        elif session_end is not None:
            from finchan.trade.resample import _session_seconds

            _session_seconds(session_end)  # a bad value fails here, not at the first resample

    @property
    def name(self) -> str:
        """``BarFeed(<inputs>)``, for logs."""
        return f"BarFeed({', '.join(s.inp.label for s in self._streams)})"

    @property
    def symbols(self) -> list[str]:
        """The symbols of the feed, in input order.

        For an input with a symbol column and no ``symbols`` filter this reads
        that column once, on first access.
        """
        if self._symbols is None:
            found: dict[str, None] = {}
            for stream in self._streams:
                if stream.inp.symbol is not None:
                    found[stream.inp.symbol] = None
                elif self._opts.symbol_filter is not None:
                    found.update(dict.fromkeys(self._opts.symbol_filter))
                else:
                    found.update(dict.fromkeys(stream.scan_symbols()))
            self._symbols = list(found)
        return list(self._symbols)

    @property
    def timeframes(self) -> list[str]:
        """The higher timeframes the feed resamples to, shortest first."""
        return self._resampler.labels if self._resampler is not None else []

    def add_timeframes(self, timeframes: Sequence[str]) -> None:
        """Also deliver the bars of ``timeframes`` (``["1D"]``), before the run starts.

        Each completed bar is a :class:`~finchan.trade.resample.ResampledBar`
        event named ``"bar.<timeframe>"``, after the base bar that completes it.
        """
        from finchan.trade.resample import Resampler

        if isinstance(timeframes, str):
            timeframes = [timeframes]
        if self._resampler is None:
            self._resampler = Resampler(
                self.env,
                timeframes,
                self.timeframe_seconds,
                self._opts.tz,
                self._session_end,
                [stream.inp.symbol for stream in self._streams if stream.inp.symbol is not None],
            )
        else:
            self._resampler.add(timeframes)

    def start(self) -> None:
        """Note the run's start: bars before the dispatcher's ``start_dt`` are skipped."""
        start_dt = getattr(getattr(self.env, "dispatcher", None), "start_dt", None)
        if start_dt is not None:
            self._skip_before = start_dt.timestamp()
        self._started = True
        self._emitted = 0

    def events_until(self, limit_ts: float) -> list[Bar]:
        """The bars with ``timestamp < limit_ts`` not yet returned, in time order.

        Sets :attr:`exhausted` once every input is used up.
        """
        out: list[Bar] = []
        contributors = 0
        try:
            if self._skip_before is not None:
                for cursor in self._cursors:
                    cursor.skip(self._skip_before)
                self._skip_before = None
            for cursor in self._cursors:
                if cursor.done:
                    continue
                before = len(out)
                cursor.take(self.env, limit_ts, out)
                contributors += len(out) > before
        except BaseException:
            self._started = False  # a failed run is not "no bar in the span"
            raise
        if contributors > 1:
            # each input's bars are already sorted: timsort merges the runs, and
            # being stable it keeps equal times in input order
            out.sort(key=_BY_TIME)
        self._emitted += len(out)
        if all(cursor.done for cursor in self._cursors):
            self.exhausted = True
        self._window = out
        if self._resampler is not None:
            # the window keeps the base bars only: bars_at serves the broker
            return self._resampler.process(out, self.exhausted)
        return out

    def bars_at(self, ts: float) -> list[Bar]:
        """The bars of every symbol at time ``ts`` among the last :meth:`events_until` gave.

        A window holds every bar of each of its times, so while a bar of the
        window is being dispatched this gives all bars sharing its time (the
        simulated broker matches the orders of several symbols against them
        together).
        """
        window = self._window
        lo = bisect_left(window, ts, key=_BY_TIME)
        return window[lo : bisect_right(window, ts, lo, key=_BY_TIME)]

    def first_timestamp(self) -> float | None:
        """POSIX time of the next bar (the first before any is taken), None if none is left."""
        first = None
        for cursor in self._cursors:
            try:
                if cursor.ts is None and (cursor.done or not cursor.load()):
                    continue
            except BaseException:
                self._started = False
                raise
            assert cursor.ts is not None
            ts = cursor.ts[cursor.pos]
            first = ts if first is None or ts < first else first
        if all(cursor.done for cursor in self._cursors):
            self.exhausted = True
        return first

    def stop(self) -> None:
        """Close the open files; the feed gives no more bars afterwards.

        A backtest that got no bar at all from the feed is warned about: its
        report would be silently empty (``start_dt`` after the data...).
        """
        if self._started and not self._emitted:
            _warn_no_bar(self)
        self._started = False
        for cursor in self._cursors:
            cursor.close_input()
            cursor.ts = None
            cursor.done = True
        self.exhausted = True


def _warn_no_bar(feed: BarFeed) -> None:
    env = feed.env
    if getattr(env, "run_mode", None) != "backtrack":
        return
    dispatcher = env.dispatcher
    tz = feed._opts.tz

    def shown(ts: float | None) -> str:
        stamp = pd.Timestamp(ts, unit="s", tz="UTC") if ts is not None else None
        return "-" if stamp is None else stamp.tz_convert(tz).isoformat()

    start, end = getattr(dispatcher, "start_dt", None), getattr(dispatcher, "end_dt", None)
    span = (
        f"{start.isoformat() if start else 'the data start'} to "
        f"{end.isoformat() if end else 'the data end'}"
    )
    firsts = [c.first_seen for c in feed._cursors if c.first_seen is not None]
    lasts = [c.last_seen for c in feed._cursors if c.last_seen is not None]
    if not firsts:
        data = "the data has no bars"
    elif all(c.done for c in feed._cursors):
        data = f"the data spans {shown(min(firsts))} to {shown(max(lasts))}"
    else:
        data = f"the data starts at {shown(min(firsts))}"
    _log.warning("%s: no bar in the backtest span %s; %s", feed.name, span, data)


def load_bars(
    inputs: _Inputs,
    *,
    symbols: str | Sequence[str] | None = None,
    symbol_column: str | None = None,
    columns: Mapping[str, str] | None = None,
    timezone: str | tzinfo | None = "UTC",
    timeframe: str = "1min",
    start: Any = None,
    end: Any = None,
    chunk_size: int = 100_000,
    file_format: str | None = None,
    **layout: Any,
) -> pd.DataFrame:
    """Read bar inputs whole into one validated DataFrame.

    Takes the inputs and options of :class:`BarFeed` and applies the same
    validation. The result has the columns ``datetime`` (aware, in
    ``timezone``), ``symbol``, ``open``, ``high``, ``low``, ``close``,
    ``volume`` (floats), rows in the order a BarFeed gives the bars, a
    RangeIndex, and ``attrs["timeframe"]``.

    Example
    -------
    >>> import pandas as pd
    >>> from finchan.trade.data import load_bars
    >>> df = pd.DataFrame({"Date": ["2020-01-02", "2020-01-03"], "Open": [1.0, 2.0],
    ...                    "High": [2.0, 3.0], "Low": [0.5, 1.5], "Close": [1.5, 2.5]})
    >>> load_bars({"X": df}, columns={"datetime": "Date"})["close"].tolist()
    [1.5, 2.5]
    """
    _timeframe_seconds(timeframe)
    opts = _make_options(
        columns=columns,
        symbol_column=symbol_column,
        symbols=symbols,
        timezone=timezone,
        start=start,
        end=end,
        chunk_size=chunk_size,
        file_format=file_format,
        **layout,
    )
    streams = [_Stream(inp, opts) for inp in _open_inputs(inputs, symbols, opts)]
    blocks = [block for stream in streams for block in stream.blocks()]
    keys = ("ts_ns", *_PRICES, "volume")
    if blocks:
        arrays = {key: np.concatenate([getattr(b, key) for b in blocks]) for key in keys}
        symbol_values = np.concatenate(
            [
                b.symbols if b.symbols is not None else np.full(len(b), b.symbol, dtype=np.object_)
                for b in blocks
            ]
        )
    else:
        arrays = {key: np.empty(0) for key in keys}
        arrays["ts_ns"] = np.empty(0, dtype=np.int64)
        symbol_values = np.empty(0, dtype=object)
    if len(streams) > 1:
        # blocks are in input order, so a stable sort keeps equal times in input order
        order = np.argsort(arrays["ts_ns"], kind="stable")
        arrays = {key: arr[order] for key, arr in arrays.items()}
        symbol_values = symbol_values[order]
    times = pd.DatetimeIndex(arrays["ts_ns"].view("datetime64[ns]")).tz_localize("UTC")
    frame = pd.DataFrame(
        {
            "datetime": times.tz_convert(opts.tz),
            "symbol": symbol_values,
            **{key: arrays[key] for key in (*_PRICES, "volume")},
        }
    )
    frame.attrs["timeframe"] = timeframe
    return frame
