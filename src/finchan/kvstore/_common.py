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


def group_plain_sets(
    commands: list[tuple[str, tuple[Any, ...]]],
) -> list[tuple[str, tuple[Any, ...], int]]:
    """Commands with runs of plain SETs folded into MSETs: (prim, args, commands it stands for).

    A run of SETs without nx/xx/get has the effect of one MSET (the last value
    of a key wins, a key of another type becomes a string) and the same
    replies (True each), at the cost of one command instead of many: what
    pipelines are for. One pass, no call per command: it runs for every
    buffered command of every pipeline.
    """
    grouped: list[tuple[str, tuple[Any, ...], int]] = []
    run: list[tuple[str, str]] = []
    for command in commands:
        prim, args = command
        # _set's args are (key, value, nx, xx, get)
        if prim == "_set" and not (args[2] or args[3] or args[4]):
            run.append((args[0], args[1]))
            continue
        if run:
            _flush(run, grouped)
            run = []
        grouped.append((prim, args, 1))
    if run:
        _flush(run, grouped)
    return grouped


def _flush(run: list[tuple[str, str]], grouped: list[tuple[str, tuple[Any, ...], int]]) -> None:
    if len(run) == 1:
        key, value = run[0]
        grouped.append(("_set", (key, value, False, False, False), 1))
    else:
        grouped.append(("_mset", (run,), len(run)))
