"""Bar inputs: files (CSV, Parquet) and DataFrames, opened and their columns resolved."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

from finchan.errors import ConfigError, DataError
from finchan.trade._data.options import BAR_COLUMNS, _Options

_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst")
_FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}

_Inputs: TypeAlias = str | os.PathLike | pd.DataFrame | Sequence[Any] | Mapping[str, Any]


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
