"""Helpers the backends share: Redis's range rules and the WRONGTYPE error."""

from __future__ import annotations

from typing import Any

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


def _is_plain_set(command: tuple[str, tuple[Any, ...]]) -> bool:
    prim, args = command
    return prim == "_set" and not any(args[2:])  # no nx, xx or get


def group_plain_sets(
    commands: list[tuple[str, tuple[Any, ...]]],
) -> list[tuple[str, tuple[Any, ...], int]]:
    """Commands with runs of plain SETs folded into MSETs: (prim, args, commands it stands for).

    A run of SETs without nx/xx/get has the effect of one MSET (the last value
    of a key wins, a key of another type becomes a string) and the same
    replies (True each), at the cost of one command instead of many: what
    pipelines are for.
    """
    grouped: list[tuple[str, tuple[Any, ...], int]] = []
    i, n = 0, len(commands)
    while i < n:
        j = i
        while j < n and _is_plain_set(commands[j]):
            j += 1
        if j - i > 1:
            pairs = [commands[k][1][:2] for k in range(i, j)]
            grouped.append(("_mset", (pairs,), j - i))
            i = j
        else:
            prim, args = commands[i]
            grouped.append((prim, args, 1))
            i += 1
    return grouped
