"""Conversions between what users write for a time and the float the engine keeps.

The engine orders events by a POSIX timestamp (float seconds). Users hand in
datetimes (aware or naive), dates, ISO strings or numbers. A naive datetime is
read in the Env's time zone (UTC unless ``timezone`` is configured), so the
same config gives the same timestamps on every machine whatever its local zone.
"""

from __future__ import annotations

import datetime as _dt
from zoneinfo import ZoneInfo

UTC = _dt.UTC


def get_tz(name: str | _dt.tzinfo | None) -> _dt.tzinfo:
    """Return a tzinfo for a zone name (``"UTC"``, ``"America/New_York"``) or pass one through."""
    if name is None:
        return UTC
    if isinstance(name, _dt.tzinfo):
        return name
    if name.upper() == "UTC":
        return UTC
    return ZoneInfo(name)


def to_timestamp(value: object, tz: _dt.tzinfo = UTC) -> float:
    """POSIX seconds of ``value``; naive datetimes and dates are read in ``tz``."""
    if isinstance(value, float):
        return value
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=tz)
        return value.timestamp()
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day, tzinfo=tz).timestamp()
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return to_timestamp(_dt.datetime.fromisoformat(value.strip()), tz)
    if hasattr(value, "astype") and hasattr(value, "dtype"):  # numpy.datetime64
        return float(value.astype("datetime64[ns]").astype("int64")) / 1e9
    raise TypeError(f"cannot read a time from {value!r}")


def from_timestamp(ts: float, tz: _dt.tzinfo = UTC) -> _dt.datetime:
    """An aware datetime in ``tz`` for POSIX seconds ``ts``."""
    return _dt.datetime.fromtimestamp(ts, tz)
