"""The Redis backend: redis-py (``decode_responses=True``) against a real server.

redis-py is imported when a store is opened, never by ``import finchan.kvstore``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from finchan.errors import FinchanError, StoreError
from finchan.interface.kvstore import AbsKvStore
from finchan.kvstore._common import group_plain_sets, wrong_type

__all__ = ["RedisKvStore", "mask_url"]

_F = TypeVar("_F", bound=Callable[..., Any])
_QUEUED = object()


def mask_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for messages)."""
    from finchan._secrets import mask_secrets

    return mask_secrets(url)


def _check_db(url: str, shown: str) -> None:
    """Refuse a database number that is not a number (redis-py would quietly use db 0)."""
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError as exc:
        raise StoreError(f"kvstore URL {shown!r}: malformed URL ({exc})") from None
    candidates = [value for name, value in pairs if name == "db"]
    if parts.scheme.lower() in ("redis", "rediss"):
        path = parts.path.strip("/")
        if path:
            candidates.append(path)
    for value in candidates:
        if not value.isdigit():
            raise StoreError(
                f"kvstore URL {shown!r}: database {value!r} is not a number "
                "(redis://host:port/N, N = 0, 1, ...)"
            )


def _subject(args: tuple[Any, ...]) -> str:
    """The key (or keys) a command was about, for messages."""
    return repr(args[0]) if args else ""


class _Closed:
    """Stands for the client of a closed store: every use raises."""

    def __init__(self, url: str) -> None:
        self._url = url

    def __getattr__(self, name: str) -> Any:
        raise StoreError(f"{self._url} store is closed")


def _translated(method: _F) -> _F:
    """Report redis-py's errors as finchan's (WrongTypeError, StoreError)."""

    prim = method.__name__

    @functools.wraps(method)
    def wrapper(self: RedisKvStore, *args: Any) -> Any:
        try:
            return method(self, *args)
        except self._redis_error as exc:
            raise self._error(prim, args, exc) from None

    return wrapper  # type: ignore[return-value]


class RedisKvStore(AbsKvStore):
    """A store in a Redis database (``redis://host:port/db``).

    Parameters
    ----------
    url:
        a redis-py URL (``redis://``, ``rediss://``, ``unix://``); its query
        string may set redis-py options.
    prefix:
        prepended to every key name.
    timeout:
        seconds to connect and to wait for a reply.

    Durability and concurrency are the server's: each command is atomic, a
    pipeline runs in ``MULTI``/``EXEC``; how much survives a server crash
    depends on its ``appendonly``/``appendfsync`` settings.
    """

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "", timeout: float = 10.0
    ) -> None:
        super().__init__(prefix=prefix)
        #: the URL the store was opened with
        self.url = url
        self._shown = mask_url(url)
        try:
            import redis
        except ImportError:
            raise StoreError(
                f"cannot open {self._shown}: redis-py is not installed (pip install redis)"
            ) from None
        _check_db(url, self._shown)
        self._response_error: type[Exception] = redis.ResponseError
        self._redis_error: type[Exception] = redis.RedisError
        try:
            client = redis.Redis.from_url(
                url, decode_responses=True, socket_connect_timeout=timeout, socket_timeout=timeout
            )
            client.ping()
        except (redis.RedisError, ValueError, OSError) as exc:
            raise StoreError(f"cannot connect to Redis at {self._shown}: {exc}") from None
        # Any: with decode_responses=True every reply is a str, which redis-py's
        # annotations (bytes | str, whatever the option) cannot express
        self._r: Any = client
        # what commands go to: the client, or a redis-py pipeline while one is built
        self._c: Any = client

    def close(self) -> None:
        """Close the connections."""
        if not isinstance(self._r, _Closed):
            self._r.close()
            self._r = self._c = _Closed(self._shown)

    def __repr__(self) -> str:
        return f"<RedisKvStore {self._shown!r} prefix={self.prefix!r}>"

    def _error(self, prim: str, args: tuple[Any, ...], exc: Exception) -> FinchanError:
        """The finchan error for a redis-py error of primitive ``prim``."""
        op = prim[1:]
        if isinstance(exc, self._response_error):
            text = str(exc)
            if text.startswith("WRONGTYPE") and args and isinstance(args[0], str):
                return wrong_type(op, args[0], None, "")
            return StoreError(f"{op} {_subject(args)}: {text}")
        return StoreError(f"Redis at {self._shown}: {exc}")

    def _run_pipeline(
        self, commands: list[tuple[str, tuple[Any, ...]]], transaction: bool = True
    ) -> list[Any]:
        # consecutive plain SETs travel as one MSET (see group_plain_sets)
        grouped = group_plain_sets(commands)
        if len(grouped) == len(commands):
            return self._run_commands(commands, transaction)
        results = self._run_commands([(prim, args) for prim, args, _ in grouped], transaction)
        expanded: list[Any] = []
        for (_, _, count), result in zip(grouped, results):
            expanded.extend([result] * count if count > 1 else [result])
        return expanded

    def _run_commands(
        self, commands: list[tuple[str, tuple[Any, ...]]], transaction: bool
    ) -> list[Any]:
        pipe = self._r.pipeline(transaction=transaction)
        builder = copy.copy(self)
        builder._c = pipe
        slots: list[Any] = []
        for prim, args in commands:
            queued = len(pipe)
            try:
                value = getattr(builder, prim)(*args)
            except FinchanError as exc:
                value = exc
            slots.append(_QUEUED if len(pipe) > queued else value)
        try:
            replies = iter(pipe.execute(raise_on_error=False))
        except self._redis_error as exc:
            raise StoreError(f"Redis at {self._shown}: pipeline failed: {exc}") from None
        finally:
            pipe.reset()
        results: list[Any] = []
        for (prim, args), slot in zip(commands, slots):
            if slot is _QUEUED:
                slot = next(replies)
                if isinstance(slot, self._redis_error):
                    slot = self._error(prim, args, slot)
            results.append(slot)
        return results

    # -- strings ----------------------------------------------------------------------
    @_translated
    def _set(self, key: str, value: str, nx: bool, xx: bool, get: bool) -> bool | str | None:
        return self._c.set(key, value, nx=nx, xx=xx, get=get)

    @_translated
    def _get(self, key: str) -> str | None:
        return self._c.get(key)

    @_translated
    def _mset(self, pairs: list[tuple[str, str]]) -> bool:
        return self._c.mset(dict(pairs))

    @_translated
    def _mget(self, keys: list[str]) -> list[str | None]:
        if not keys:
            return []
        return self._c.mget(keys)

    @_translated
    def _setnx(self, key: str, value: str) -> bool:
        return self._c.setnx(key, value)

    @_translated
    def _delete(self, keys: list[str]) -> int:
        return self._c.delete(*keys)

    # -- hashes -----------------------------------------------------------------------
    @_translated
    def _hset(self, key: str, pairs: list[tuple[str, str]]) -> int:
        # a field given twice counts once either way, so a dict gives Redis's answer
        return self._c.hset(key, mapping=dict(pairs))

    @_translated
    def _hget(self, key: str, field: str) -> str | None:
        return self._c.hget(key, field)

    @_translated
    def _hmset(self, key: str, pairs: list[tuple[str, str]]) -> bool:
        # HMSET replies OK (True), HSET a count; redis-py's hmset() only adds a warning
        return self._c.execute_command("HMSET", key, *[x for pair in pairs for x in pair])

    @_translated
    def _hmget(self, key: str, fields: list[str]) -> list[str | None]:
        return self._c.hmget(key, fields)

    @_translated
    def _hgetall(self, key: str) -> dict[str, str]:
        return self._c.hgetall(key)

    @_translated
    def _hsetnx(self, key: str, field: str, value: str) -> int:
        return self._c.hsetnx(key, field, value)

    @_translated
    def _hdel(self, key: str, fields: list[str]) -> int:
        return self._c.hdel(key, *fields)

    @_translated
    def _hexists(self, key: str, field: str) -> bool:
        return self._c.hexists(key, field)

    @_translated
    def _hkeys(self, key: str) -> list[str]:
        return self._c.hkeys(key)

    @_translated
    def _hvals(self, key: str) -> list[str]:
        return self._c.hvals(key)

    @_translated
    def _hlen(self, key: str) -> int:
        return self._c.hlen(key)

    # -- lists ------------------------------------------------------------------------
    @_translated
    def _lpop(self, key: str, count: int | None) -> str | list[str] | None:
        return self._c.lpop(key, count)

    @_translated
    def _rpop(self, key: str, count: int | None) -> str | list[str] | None:
        return self._c.rpop(key, count)

    @_translated
    def _lpush(self, key: str, values: list[str]) -> int:
        return self._c.lpush(key, *values)

    @_translated
    def _rpush(self, key: str, values: list[str]) -> int:
        return self._c.rpush(key, *values)

    @_translated
    def _lset(self, key: str, index: int, value: str) -> bool:
        return self._c.lset(key, index, value)

    @_translated
    def _lrange(self, key: str, start: int, end: int) -> list[str]:
        return self._c.lrange(key, start, end)

    @_translated
    def _ltrim(self, key: str, start: int, end: int) -> bool:
        return self._c.ltrim(key, start, end)

    @_translated
    def _llen(self, key: str) -> int:
        return self._c.llen(key)
