"""The report's limits, formatting and table sections (header, statistics, trades)."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from finchan.errors import DataError
from finchan.trade._stat_names import GROUPS, STATS

#: most points drawn per line (equity, drawdown, each close)
MAX_POINTS = 5000
#: most fill markers drawn per symbol; more are subsampled evenly
MAX_FILL_MARKERS = 5000
#: most symbols given a price chart
MAX_SYMBOLS = 8
#: most trades listed; beyond it the first and last half are shown
MAX_TRADE_ROWS = 500

_FILL_COLUMNS = ("datetime", "symbol", "side", "qty", "price")
_PLOT_COLUMNS = ("datetime", "name", "symbol", "panel", "value")  # BacktestResult.indicators
_CHART_HEIGHT = {"equity": "560px", "price": "420px", "monthly": "360px", "indicator": "300px"}
_PLOT_CONFIG = {"responsive": True, "displaylogo": False}
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NAT = np.iinfo(np.int64).min  # NaT in int64 nanoseconds
_BUY_COLOR = "#1a9850"
_SELL_COLOR = "#d73027"

# (title, keys) of the statistics tables, and (label, format) of each key, from the
# one list of statistics; keys of a newer compute_stats that are not listed land in "Other"
_STATS_GROUPS = tuple(
    (group, tuple(stat.name for stat in STATS if stat.group == group)) for group in GROUPS
)
_STATS_FORMAT = {stat.name: (stat.label, stat.format) for stat in STATS}
# coloured green when positive, red when negative
_SIGNED_STATS = frozenset(stat.name for stat in STATS if stat.signed)
_TRADE_FORMAT = {
    "qty": "qty",
    "entry_time": "time",
    "exit_time": "time",
    "entry_price": "price",
    "exit_price": "price",
    "pnl": "money",
    "pnl_pct": "percent",
    "commission": "money",
    "bars_held": "int",
}

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       margin: 0 auto; max-width: 1400px; padding: 0 1.5rem 3rem; color: #222; }
h1 { margin: 1.2rem 0 0.6rem; }
h2 { margin: 2rem 0 0.6rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; font-size: 0.88rem; }
th, td { padding: 0.2rem 0.7rem; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.meta th { color: #555; font-weight: 600; }
.stats { display: flex; flex-wrap: wrap; gap: 1.5rem 2.5rem; align-items: flex-start; }
.stats caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
.trades-wrap { overflow-x: auto; }
table.trades th { position: sticky; top: 0; background: #fafafa; }
tr.omitted td { text-align: center; color: #777; font-style: italic; background: #fafafa; }
.pos { color: #1a7f37; }
.neg { color: #c62828; }
p.note { color: #666; font-style: italic; }
footer { margin-top: 3rem; color: #999; font-size: 0.8rem; }
"""


# --- input normalisation ---------------------------------------------------------


def _utc_ns(owner: str, values: Any) -> np.ndarray:
    """Times as int64 UTC nanoseconds (NaT as the int64 minimum).

    Aware times are converted, naive ones read as UTC, numbers as POSIX seconds.
    """
    if isinstance(values, pd.DatetimeIndex):
        index = values
    else:
        array = pd.Series(values)
        if len(array) and pd.api.types.is_numeric_dtype(array.dtype):
            index = pd.DatetimeIndex(pd.to_datetime(array, unit="s", utc=True))
        else:
            try:
                index = pd.DatetimeIndex(pd.to_datetime(array, utc=True))
            except (TypeError, ValueError) as exc:
                raise DataError(f"{owner}: not datetimes ({exc})") from None
    if index.tz is None:
        index = index.tz_localize("UTC")
    return index.tz_convert("UTC").as_unit("ns").asi8


def _series_ns(owner: str, series: Any) -> tuple[np.ndarray, np.ndarray]:
    """(UTC ns times, float values) of a time-indexed series, sorted by time."""
    if not isinstance(series, pd.Series):
        raise DataError(f"{owner}: expected a pandas Series, got {type(series).__name__}")
    if not isinstance(series.index, pd.DatetimeIndex):
        raise DataError(f"{owner}: index must be datetimes, got {type(series.index).__name__}")
    times = _utc_ns(owner, series.index)
    try:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{owner}: values are not numbers ({exc})") from None
    if times.size > 1 and (np.diff(times) < 0).any():
        order = np.argsort(times, kind="stable")
        times, values = times[order], values[order]
    finite = np.isfinite(values)
    if not finite.all():
        times, values = times[finite], values[finite]
    return times, values


def _frame(owner: str, frame: Any, required: Iterable[str]) -> pd.DataFrame:
    """``frame`` checked for ``required`` columns; None and empty frames are empty."""
    if frame is None:
        return pd.DataFrame()
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{owner}: expected a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        return pd.DataFrame()
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataError(f"{owner}: missing column {missing[0]!r}")
    return frame


# --- formatting ------------------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _fmt_duration(seconds: float) -> str:
    """``93784`` -> ``"1d 2h"``: the two largest units, a zero second one left out."""
    if seconds < 60.0:
        return f"{seconds:.3g}s"
    rest = round(seconds)
    counts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        counts.append((count, unit))
    first = next(i for i, (count, _) in enumerate(counts) if count)
    return " ".join(f"{count:,}{unit}" for count, unit in counts[first : first + 2] if count)


def _fmt_time_ns(ns: int) -> str:
    stamp = pd.Timestamp(ns, tz="UTC")
    text = stamp.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{stamp.microsecond // 1000:03d}" if stamp.microsecond else text


def _fmt_value(value: Any, kind: str) -> str:
    """One cell's text; NaN and missing values as ``n/a``."""
    if _is_missing(value):
        return "n/a"
    if kind == "time":
        if isinstance(value, str):
            try:
                value = pd.Timestamp(value)
            except ValueError:
                return value
        return _fmt_time_ns(int(_utc_ns("time", pd.DatetimeIndex([value]))[0]))
    if isinstance(value, str) or not isinstance(value, int | float | np.number):
        return str(value)
    number = float(value)
    if kind == "percent":
        text = f"{number * 100:,.2f} %"
    elif kind == "duration":
        text = _fmt_duration(number)
    elif kind == "int" or (kind in ("qty", "number") and number.is_integer()):
        text = f"{round(number):,}"
    elif kind == "money":
        text = f"{number:,.2f}"
    elif kind == "ratio":
        text = f"{number:,.3f}"
    elif kind == "qty":
        text = f"{number:,.10g}"
    elif abs(number) >= 1.0:
        text = f"{number:,.4f}"
    else:
        # small prices and quantities (0.00012 BTC) keep their significant digits
        text = f"{number:.6g}"
    # -0.001 printed with 2 decimals is no loss
    return text[1:] if text.startswith("-") and not text.strip("-0.,% ") else text


def _sign_class(value: Any) -> str:
    if _is_missing(value) or isinstance(value, str):
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "pos" if number > 0 else "neg" if number < 0 else ""


def _td(text: str, *classes: str) -> str:
    """A table cell of ``text`` (escaped here), with its non-empty CSS classes."""
    names = " ".join(name for name in classes if name)
    attribute = f' class="{names}"' if names else ""
    return f"<td{attribute}>{html.escape(text)}</td>"


def _fmt_meta(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key}={_fmt_meta(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def _name_list(names: list[str], most: int = 20) -> str:
    if len(names) <= most:
        return ", ".join(names)
    return f"{', '.join(names[:most])} and {len(names) - most:,} more"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


# --- sections ------------------------------------------------------------------------


def _header(title: str, meta: Mapping[str, Any] | None) -> str:
    parts = [f"<header><h1>{html.escape(title)}</h1>"]
    if meta:
        rows = "".join(
            f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(_fmt_meta(value))}</td></tr>"
            for key, value in meta.items()
        )
        parts.append(f'<table class="meta">{rows}</table>')
    parts.append("</header>")
    return "".join(parts)


def _stats_section(stats: Mapping[str, Any]) -> str:
    parts = ['<section id="statistics"><h2>Statistics</h2>']
    if not stats:
        parts.append(_note("No statistics were given."))
        return "".join(parts) + "</section>"
    listed = {key for _, keys in _STATS_GROUPS for key in keys}
    groups = [(title, [key for key in keys if key in stats]) for title, keys in _STATS_GROUPS]
    groups.append(("Other", [key for key in stats if key not in listed]))
    parts.append('<div class="stats">')
    for caption, keys in groups:
        if not keys:
            continue
        rows = []
        for key in keys:
            label, kind = _STATS_FORMAT.get(key, (str(key), "number"))
            value = stats[key]
            sign = _sign_class(value) if key in _SIGNED_STATS else ""
            cell = _td(_fmt_value(value, kind), "num", sign)
            rows.append(f"<tr><th>{html.escape(label)}</th>{cell}</tr>")
        parts.append(f"<table><caption>{html.escape(caption)}</caption>{''.join(rows)}</table>")
    parts.append("</div></section>")
    return "".join(parts)



def _trades_section(trades: pd.DataFrame) -> str:
    parts = ['<section id="trades"><h2>Trades</h2>']
    n = len(trades)
    if n == 0:
        parts.append(_note("No trades."))
        return "".join(parts) + "</section>"
    half = MAX_TRADE_ROWS // 2
    blocks = [(0, trades)] if n <= MAX_TRADE_ROWS else [(0, trades.iloc[:half])]
    if n > MAX_TRADE_ROWS:
        blocks.append((n - half, trades.iloc[n - half :]))
        parts.append(
            _note(f"{n:,} trades: the first and last {half} are listed, {n - 2 * half:,} omitted.")
        )
    columns = [str(column) for column in trades.columns]
    head = "".join(f"<th>{html.escape(column)}</th>" for column in ["#", *columns])
    rows = [f'<div class="trades-wrap"><table class="trades"><thead><tr>{head}</tr></thead><tbody>']
    for number, (offset, block) in enumerate(blocks):
        if number:
            omitted = n - 2 * half
            rows.append(
                f'<tr class="omitted"><td colspan="{len(columns) + 1}">'
                f"… {omitted:,} trades omitted …</td></tr>"
            )
        for position, record in enumerate(block.itertuples(index=False, name=None)):
            cells = [_td(f"{offset + position + 1:,}", "num")]
            for column, value in zip(columns, record):
                kind = _TRADE_FORMAT.get(column, "number")
                if column == "exit_time" and _is_missing(value):
                    text = "open"
                else:
                    text = _fmt_value(value, kind)
                signed = _sign_class(value) if column in ("pnl", "pnl_pct") else ""
                numeric = "num" if kind != "time" and not isinstance(value, str) else ""
                cells.append(_td(text, numeric, signed))
            rows.append(f"<tr>{''.join(cells)}</tr>")
    rows.append("</tbody></table></div>")
    parts.extend(rows)
    return "".join(parts) + "</section>"
