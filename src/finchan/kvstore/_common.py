"""Helpers the backends share: Redis's range rules and the WRONGTYPE error."""

from __future__ import annotations

from finchan.errors import WrongTypeError

#: the type names Redis's TYPE command gives
STRING, HASH, LIST = "string", "hash", "list"


def wrong_type(op: str, key: str, held: str | None, want: str) -> WrongTypeError:
    """The error of ``op`` on ``key``, which holds a ``held`` (None: not known)."""
    holds = "another kind of value" if held is None else f"a {held}, not a {want}"
    return WrongTypeError(f"{op} {key!r}: WRONGTYPE, the key holds {holds}")


def clip_range(start: int, end: int, length: int) -> tuple[int, int]:
    """Redis's range rules: negative counts from the tail, ``end`` included, clipped.

    The range is empty when the returned ``start > end``.
    """
    if start < 0:
        start = max(length + start, 0)
    if end < 0:
        end += length
    elif end >= length:
        end = length - 1
    return start, end
