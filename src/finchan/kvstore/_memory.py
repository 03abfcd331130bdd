"""The memory backend: a dict in the process, for tests and throwaway backtests."""

from __future__ import annotations

import threading
from collections import deque
from itertools import islice
from typing import Any

from finchan.errors import FinchanError, StoreError, WrongTypeError
from finchan.interface.kvstore import AbsKvStore
from finchan.kvstore._common import HASH, LIST, STRING, clip_range, wrong_type

__all__ = ["MemoryKvStore"]

_TYPE_NAMES: dict[type, str] = {str: STRING, dict: HASH, deque: LIST}


def _wrong_type(op: str, key: str, held: object, want: str) -> WrongTypeError:
    return wrong_type(op, key, _TYPE_NAMES[type(held)], want)


class _ClosedData(dict):
    """Stands for the data of a closed store: every access raises."""

    def _closed(self, *args: Any) -> Any:
        raise StoreError("memory:// store is closed")

    get = __getitem__ = __setitem__ = __delitem__ = __contains__ = pop = update = _closed  # type: ignore[assignment]


class MemoryKvStore(AbsKvStore):
    """A store in a dict of this process (``memory://``); its data ends with it.

    Safe to use from several threads; a pipeline runs under one lock, so
    other threads see all of it or none of it.
    """

    url = "memory://"

    def __init__(self, *, prefix: str = "") -> None:
        super().__init__(prefix=prefix)
        self._d: dict[str, Any] = {}
        self._lock = threading.RLock()

    def close(self) -> None:
        """Drop the data; later operations raise StoreError."""
        self._d = _ClosedData()

    def __repr__(self) -> str:
        return f"<MemoryKvStore prefix={self.prefix!r}>"

    def _run_pipeline(
        self, commands: list[tuple[str, tuple[Any, ...]]], transaction: bool = True
    ) -> list[Any]:
        results: list[Any] = []
        with self._lock:
            for prim, args in commands:
                try:
                    results.append(getattr(self, prim)(*args))
                except FinchanError as exc:
                    results.append(exc)
        return results

    # -- typed access ---------------------------------------------------------------
    def _hash(self, op: str, key: str) -> dict[str, str] | None:
        held = self._d.get(key)
        if held is None or type(held) is dict:
            return held
        raise _wrong_type(op, key, held, HASH)

    def _list(self, op: str, key: str) -> deque[str] | None:
        held = self._d.get(key)
        if held is None or type(held) is deque:
            return held
        raise _wrong_type(op, key, held, LIST)

    # -- strings ----------------------------------------------------------------------
    def _set(self, key: str, value: str, nx: bool, xx: bool, get: bool) -> bool | str | None:
        with self._lock:
            held = self._d.get(key)
            if get and held is not None and type(held) is not str:
                raise _wrong_type("set", key, held, STRING)
            if (nx and held is not None) or (xx and held is None):
                return held if get else None
            self._d[key] = value
            return held if get else True

    def _get(self, key: str) -> str | None:
        held = self._d.get(key)
        if held is None or type(held) is str:
            return held
        raise _wrong_type("get", key, held, STRING)

    def _mset(self, pairs: list[tuple[str, str]]) -> bool:
        with self._lock:
            self._d.update(pairs)
        return True

    def _mget(self, keys: list[str]) -> list[str | None]:
        with self._lock:
            get = self._d.get
            return [v if type(v) is str else None for v in map(get, keys)]

    def _setnx(self, key: str, value: str) -> bool:
        with self._lock:
            if key in self._d:
                return False
            self._d[key] = value
            return True

    def _delete(self, keys: list[str]) -> int:
        with self._lock:
            pop = self._d.pop
            return sum(pop(k, None) is not None for k in keys)

    # -- hashes -----------------------------------------------------------------------
    def _hset(self, key: str, pairs: list[tuple[str, str]], op: str = "hset") -> int:
        with self._lock:
            hash_ = self._hash(op, key)
            if hash_ is None:
                hash_ = self._d[key] = {}
            before = len(hash_)
            hash_.update(pairs)
            return len(hash_) - before

    def _hmset(self, key: str, pairs: list[tuple[str, str]]) -> bool:
        self._hset(key, pairs, "hmset")
        return True

    def _hget(self, key: str, field: str) -> str | None:
        with self._lock:
            hash_ = self._hash("hget", key)
            return None if hash_ is None else hash_.get(field)

    def _hmget(self, key: str, fields: list[str]) -> list[str | None]:
        with self._lock:
            hash_ = self._hash("hmget", key)
            if hash_ is None:
                return [None] * len(fields)
            return [hash_.get(f) for f in fields]

    def _hgetall(self, key: str) -> dict[str, str]:
        with self._lock:
            hash_ = self._hash("hgetall", key)
            return {} if hash_ is None else dict(hash_)

    def _hsetnx(self, key: str, field: str, value: str) -> int:
        with self._lock:
            hash_ = self._hash("hsetnx", key)
            if hash_ is None:
                self._d[key] = {field: value}
                return 1
            if field in hash_:
                return 0
            hash_[field] = value
            return 1

    def _hdel(self, key: str, fields: list[str]) -> int:
        with self._lock:
            hash_ = self._hash("hdel", key)
            if hash_ is None:
                return 0
            removed = sum(hash_.pop(f, None) is not None for f in fields)
            if not hash_:
                del self._d[key]
            return removed

    def _hexists(self, key: str, field: str) -> bool:
        with self._lock:
            hash_ = self._hash("hexists", key)
            return hash_ is not None and field in hash_

    def _hkeys(self, key: str) -> list[str]:
        with self._lock:
            hash_ = self._hash("hkeys", key)
            return [] if hash_ is None else list(hash_)

    def _hvals(self, key: str) -> list[str]:
        with self._lock:
            hash_ = self._hash("hvals", key)
            return [] if hash_ is None else list(hash_.values())

    def _hlen(self, key: str) -> int:
        with self._lock:
            hash_ = self._hash("hlen", key)
            return 0 if hash_ is None else len(hash_)

    # -- lists ------------------------------------------------------------------------
    def _pop(self, op: str, key: str, count: int | None, left: bool) -> str | list[str] | None:
        with self._lock:
            items = self._list(op, key)
            if items is None:
                return None
            take = items.popleft if left else items.pop
            if count is None:
                result: str | list[str] = take()
            else:
                result = [take() for _ in range(min(count, len(items)))]
            if not items:
                del self._d[key]
            return result

    def _lpop(self, key: str, count: int | None) -> str | list[str] | None:
        return self._pop("lpop", key, count, True)

    def _rpop(self, key: str, count: int | None) -> str | list[str] | None:
        return self._pop("rpop", key, count, False)

    def _lpush(self, key: str, values: list[str]) -> int:
        with self._lock:
            items = self._list("lpush", key)
            if items is None:
                items = self._d[key] = deque()
            items.extendleft(values)
            return len(items)

    def _rpush(self, key: str, values: list[str]) -> int:
        with self._lock:
            items = self._list("rpush", key)
            if items is None:
                items = self._d[key] = deque()
            items.extend(values)
            return len(items)

    def _lset(self, key: str, index: int, value: str) -> bool:
        with self._lock:
            items = self._list("lset", key)
            if items is None:
                raise StoreError(f"lset {key!r}: no such key")
            if not -len(items) <= index < len(items):
                raise StoreError(f"lset {key!r}: index {index} out of range")
            items[index] = value
            return True

    def _lrange(self, key: str, start: int, end: int) -> list[str]:
        with self._lock:
            items = self._list("lrange", key)
            if items is None:
                return []
            start, end = clip_range(start, end, len(items))
            if start > end:
                return []
            return list(islice(items, start, end + 1))

    def _ltrim(self, key: str, start: int, end: int) -> bool:
        with self._lock:
            items = self._list("ltrim", key)
            if items is None:
                return True
            start, end = clip_range(start, end, len(items))
            if start > end:
                del self._d[key]
            else:
                self._d[key] = deque(islice(items, start, end + 1))
            return True

    def _llen(self, key: str) -> int:
        with self._lock:
            items = self._list("llen", key)
            return 0 if items is None else len(items)
