"""Redis stream messages as bars, for :mod:`finchan.trade.exts.redis_stream`.

A message is read as Redis sends it, a flat ``[field, value, ...]`` list (no
dict per message): :class:`MessageParser` finds the bar's fields by position
for each field layout it meets, and falls back to a checked path that says
what is wrong with a malformed message. Also: hiredis command packing for
the reader's connection.
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo
from typing import Any

__all__ = [
    "BAR_FIELDS",
    "Malformed",
    "MessageParser",
    "fast_connection",
    "pairs",
    "raw_reply",
]

#: the bar fields a message maps to, and their default message field names
BAR_FIELDS = ("symbol", "ts", "datetime", "open", "high", "low", "close", "volume")


class Malformed(Exception):
    """A message that is not a bar (the reason is the message)."""


def _stream_bar_class() -> type:
    from finchan.trade.bar import Bar

    class StreamBar(Bar):
        """A bar that knows the stream message it came from (for the journal)."""

        __slots__ = ("stream_id", "stream_key")

    return StreamBar


class MessageParser:
    """Messages to bars (``StreamBar``: a bar with ``stream_key`` and ``stream_id`` slots).

    Parameters
    ----------
    fields:
        bar field -> message field name (every name of :data:`BAR_FIELDS`).
    symbols:
        stream key -> symbol, for messages without a symbol field.
    tz:
        the zone of naive ``datetime`` values.
    """

    def __init__(self, fields: dict[str, bytes], symbols: dict[bytes, str], tz: tzinfo) -> None:
        self._field = fields
        self._symbols = symbols
        self._tz = tz
        self._bar_class = _stream_bar_class()
        #: ``to_bar(env, key, flat)``: the bar of a message, or :class:`Malformed`
        self.to_bar = self._make_parser()

    def _make_parser(self) -> Any:
        """The message -> bar function: a fast path for well-formed messages.

        A message comes as Redis sends it, ``[field, value, field, value, ...]``
        (no dict per message). The positions of the bar's fields are worked
        out once per field layout (a publisher sends one layout), then each
        message is checked against that layout and read by position.
        """
        f = self._field
        wanted = (f["symbol"], f["ts"], f["open"], f["high"], f["low"], f["close"], f["volume"])
        make = self._bar_class
        isfinite = math.isfinite
        slow = self.checked
        mapped = self._symbols
        symbols: dict[bytes, str] = {}
        # the last layout seen (its field names) and where the bar's fields are in it
        layout: list[Any] = [None, None]

        def positions(names: list[bytes]) -> tuple[int, ...] | None:
            # the last occurrence of a repeated name wins, as in a dict
            where = {name: 2 * i + 1 for i, name in enumerate(names)}
            at = tuple(where.get(name, -1) for name in wanted)
            # ts, open, high, low, close are required here; the slow path says why
            return None if min(at[1:6]) < 0 else at

        def to_bar(env: Any, key: bytes, flat: list[bytes]) -> Any:
            names = flat[0::2]
            if names != layout[0]:
                layout[0], layout[1] = names, positions(names)
            at = layout[1]
            if at is None:
                return slow(env, key, flat)
            i_sym, i_ts, i_o, i_h, i_l, i_c, i_v = at
            try:
                symbol: str | None
                if i_sym < 0:
                    symbol = mapped[key]
                else:
                    raw_symbol = flat[i_sym]
                    symbol = symbols.get(raw_symbol)
                    if symbol is None:
                        symbol = symbols[raw_symbol] = raw_symbol.decode()
                ts = float(flat[i_ts])
                o = float(flat[i_o])
                h = float(flat[i_h])
                lo = float(flat[i_l])
                c = float(flat[i_c])
                v = 0.0 if i_v < 0 else float(flat[i_v])
            except (KeyError, ValueError, UnicodeDecodeError):
                return slow(env, key, flat)  # says what is wrong
            if not isfinite(ts + o + h + lo + c + v):
                return slow(env, key, flat)
            return make(env, symbol, ts, o, h, lo, c, v)

        return to_bar

    def checked(self, env: Any, key: bytes, flat: list[bytes]) -> Any:
        """The slow path: the bar, or :class:`Malformed` saying what is wrong."""
        f = self._field
        fields = pairs(flat)
        raw_symbol = fields.get(f["symbol"])
        if raw_symbol is not None:
            symbol = raw_symbol.decode()
        else:
            mapped = self._symbols.get(key)
            if mapped is None:
                raise Malformed(f"no {f['symbol'].decode()!r} field")
            symbol = mapped
        raw_ts = fields.get(f["ts"])
        if raw_ts is not None:
            ts = _number(raw_ts, f["ts"])
        else:
            raw_dt = fields.get(f["datetime"])
            if raw_dt is None:
                raise Malformed(f"no {f['ts'].decode()!r} or {f['datetime'].decode()!r} field")
            ts = self._parse_datetime(raw_dt)
        values = []
        for name in ("open", "high", "low", "close"):
            raw = fields.get(f[name])
            if raw is None:
                raise Malformed(f"no {f[name].decode()!r} field")
            values.append(_number(raw, f[name]))
        raw_volume = fields.get(f["volume"])
        volume = 0.0 if raw_volume is None else _number(raw_volume, f["volume"])
        return self._bar_class(env, symbol, ts, values[0], values[1], values[2], values[3], volume)

    def _parse_datetime(self, raw: bytes) -> float:
        try:
            value = datetime.fromisoformat(raw.decode())
        except (ValueError, UnicodeDecodeError):
            raise Malformed(f"datetime {raw!r} is not ISO 8601") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self._tz)
        return value.timestamp()



def fast_connection(url: str) -> dict[str, Any]:
    """``connection_class`` packing commands with hiredis (C) for plain TCP URLs, else ``{}``.

    redis-py's asyncio connection packs every argument in Python: an
    ``XACK`` of 1,000 ids costs about 3 microseconds per id; hiredis packs it
    at C speed.
    """
    if not url.startswith("redis://"):
        return {}
    try:
        import hiredis
        import redis.asyncio as aioredis
    except ImportError:
        return {}
    pack: Any = getattr(hiredis, "pack_command", None)
    if pack is None:
        return {}

    class HiredisPackedConnection(aioredis.Connection):
        def pack_command(self, *args: Any) -> list[bytes]:
            first = args[0]
            # "XINFO GROUPS" style names are split by redis-py's packer; floats
            # are formatted by redis-py's encoder: leave both to it
            if (b" " in first if isinstance(first, bytes) else " " in first) or any(
                arg.__class__ is float for arg in args
            ):
                return super().pack_command(*args)
            return [pack(args)]

    return {"connection_class": HiredisPackedConnection}


def pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """A message's ``[field, value, ...]`` as a dict (the last of a repeated field wins)."""
    it = iter(flat)
    return dict(zip(it, it))


def raw_reply(response: Any, **options: Any) -> Any:
    """``XREADGROUP``'s reply nearly as Redis sends it: ``[(key, [[id, [field, value, ...]],
    ...]), ...]`` (RESP3 sends a map of keys, RESP2 a list of pairs).

    redis-py's own callback makes a dict of every message; the parser reads
    the flat list by position instead.
    """
    if isinstance(response, dict):
        return list(response.items())
    return response


def _number(raw: bytes, name: bytes) -> float:
    try:
        value = float(raw)
    except ValueError:
        text = raw.decode(errors="replace")
        raise Malformed(f"{name.decode()} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise Malformed(f"{name.decode()} is {value}")
    return value
