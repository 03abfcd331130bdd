"""Validation: each chunk of an input checked and converted to numpy arrays (a :class:`_Block`)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Generator
from typing import Any, cast

import numpy as np
import pandas as pd

from finchan.errors import DataError
from finchan.trade._data.inputs import _Input, _resolve_columns
from finchan.trade._data.options import _Options

# the records keep the public module's name (log configs and tests filter on it)
_log = logging.getLogger("finchan.trade.data")

_PRICES = ("open", "high", "low", "close")
_NAT = np.iinfo(np.int64).min  # pandas' integer value of NaT


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



def _reversed(blocks: list[_Block]) -> _Block:
    """One block of newest-first blocks, oldest first."""
    keys = ("ts_ns", *_PRICES, "volume")
    values = {key: np.concatenate([getattr(b, key) for b in blocks])[::-1] for key in keys}
    symbols = None
    if blocks[0].symbols is not None:
        symbols = np.concatenate([b.symbols for b in blocks])[::-1]
    return _Block(symbol=blocks[0].symbol, symbols=symbols, **values)


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
