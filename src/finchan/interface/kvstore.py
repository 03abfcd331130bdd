"""kvstore Interface, inspired by redis-py.

:class:`AbsKvStore` is where strategies keep the state that must survive a
restart (positions, counters, the last processed time). The framework only
defines the interface; :func:`finchan.kvstore.open_store` returns the
implementations shipped with finchan (memory, SQLite, Redis) and the
``finchan.exts.kvstore`` extension publishes one to the run.

Every backend behaves like redis-py with ``decode_responses=True``:

* keys, fields and values go in as ``str``, ``bytes`` (UTF-8), ``int`` or
  ``float`` and come out as ``str``; numbers are stored in their string form
  (``repr``), so ``set("n", 1.5)`` then ``get("n")`` gives ``"1.5"``; ``bool``
  and ``None`` are refused, as redis-py refuses them (integer-like objects
  such as numpy integers, which redis-py refuses too, are accepted);
* return values are redis-py's: counts as ``int``, ``None`` for a missing
  key, ``True``/``False`` where redis-py returns booleans;
* a command on a key holding another type raises
  :class:`~finchan.errors.WrongTypeError` (Redis's ``WRONGTYPE``); any other
  command error (bad argument, ``lset`` out of range, a store that cannot be
  reached) raises :class:`~finchan.errors.StoreError`;
* a hash or list left empty ceases to exist, as in Redis;
* ``lrange``/``ltrim`` take Redis's inclusive ``start``/``end``, negative
  counting from the tail.

The order of ``hkeys``/``hvals``/``hgetall`` is unspecified (Redis changes it
with the size of the hash); ``hkeys`` and ``hvals`` of an unchanged hash
correspond.

Writing a backend
-----------------
The public methods validate and normalise their arguments (the key prefix is
applied there) and call one private primitive each (``_set``, ``_hgetall``,
...) with ``str`` arguments; a backend implements the abstract primitives,
may override the others for speed, and overrides :meth:`AbsKvStore._run_pipeline`
to make a pipeline atomic.

Size: the interface is the contract of ~40 redis-py commands, each with its
docstring (what redis-py returns, the errors), plus the argument encoding
all backends share and :class:`KvPipeline`, which buffers the same
commands; it is long because it is the documentation, not because it mixes
concerns.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TypeAlias

from finchan.errors import FinchanError, StoreError

__all__ = ["PREFIX_SEPARATOR", "AbsKvStore", "Encodable", "KvPipeline"]

#: what a key, field or value may be (stored as its string form)
Encodable: TypeAlias = str | bytes | int | float

#: a non-empty key prefix ends with this, so prefixes cannot collide (docs/kvstore.md)
PREFIX_SEPARATOR = ":"

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _encode(value: Any, op: str, key: str | None, what: str) -> str:
    """The stored string form of ``value``, as redis-py encodes it; ``key`` names it in errors."""
    kind = type(value)
    if kind is str:
        text: str = value
        return text
    if kind is int or kind is float:
        return repr(value)
    if isinstance(value, str):
        return str.__str__(value)
    where = op if key is None else f"{op} {key!r}"
    if isinstance(value, bool) or value is None:
        raise StoreError(f"{where}: invalid {what} {value!r} (use str, bytes, int or float)")
    # int.__repr__ keeps IntEnum and numpy-like subclasses numeric ("1", not "<E.A: 1>")
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise StoreError(f"{where}: {what} {bytes(value)[:40]!r} is not UTF-8") from None
    if hasattr(kind, "__index__"):
        # numpy integers: redis-py refuses them, but their meaning is not in doubt
        return repr(kind.__index__(value))
    raise StoreError(
        f"{where}: invalid {what} of type {kind.__name__} (use str, bytes, int or float)"
    )


def _index(value: Any, op: str, key: str, what: str) -> int:
    """An int64 argument (index, count), refused as Redis refuses it otherwise."""
    if type(value) is not int:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise StoreError(f"{op} {key!r}: {what} {value!r} is not an integer")
        value = value.__index__()
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise StoreError(f"{op} {key!r}: {what} {value} is out of range")
    number: int = value
    return number


def _list_or_args(keys: Any, args: tuple[Any, ...]) -> list[Any]:
    """redis-py's ``keys, *args`` form: one key, an iterable of keys, plus more keys."""
    if isinstance(keys, (str, bytes)):
        items = [keys]
    else:
        try:
            items = list(keys)
        except TypeError:
            items = [keys]
    items.extend(args)
    return items


def _unencodable(args: Any) -> str | None:
    """The first string in ``args`` (nested lists/tuples too) UTF-8 cannot encode, if any."""
    for arg in args:
        if type(arg) is str:
            if not arg.isascii():
                try:
                    arg.encode("utf-8")
                except UnicodeEncodeError:
                    return arg
        elif isinstance(arg, (list, tuple)):
            found = _unencodable(arg)
            if found is not None:
                return found
    return None


def _check_encodable(prim: str, args: tuple[Any, ...]) -> None:
    """Refuse text no backend can store (a lone surrogate), the same on every backend."""
    bad = _unencodable(args)
    if bad is not None:
        subject = f" {args[0]!r}" if args and type(args[0]) is str and args[0] != bad else ""
        raise StoreError(
            f"{prim[1:]}{subject}: {bad[:40]!r} is not valid text (a lone surrogate "
            "cannot be encoded as UTF-8)"
        )


def _ok(arg: Any) -> bool:
    """True when ``arg`` is surely encodable: an ASCII str, or not text at all (flags, counts)."""
    kind = arg.__class__
    if kind is str:
        return bool(arg.isascii())
    return kind is not list and kind is not tuple


def _guarded(prim: str, method: Any) -> Any:
    """``method`` behind the encodability check; one wrapper per arity keeps the hot path short."""
    code = method.__code__
    # with defaults or *args the arity is not fixed: the general wrapper
    fixed = not method.__defaults__ and not code.co_flags & 0x04
    arity = code.co_argcount - 1 if fixed else -1
    check = _check_encodable
    guarded: Any
    if arity == 1:
        def guarded(self: AbsKvStore, a: Any) -> Any:
            if not (a.__class__ is str and a.isascii()):
                check(prim, (a,))
            return method(self, a)
    elif arity == 2:
        def guarded(self: AbsKvStore, a: Any, b: Any) -> Any:
            if not (a.__class__ is str and a.isascii() and _ok(b)):
                check(prim, (a, b))
            return method(self, a, b)
    elif arity == 3:
        def guarded(self: AbsKvStore, a: Any, b: Any, c: Any) -> Any:
            if not (a.__class__ is str and a.isascii() and _ok(b) and _ok(c)):
                check(prim, (a, b, c))
            return method(self, a, b, c)
    elif arity == 5:  # _set(key, value, nx, xx, get): flags after two strings
        def guarded(self: AbsKvStore, a: Any, b: Any, c: Any, d: Any, e: Any) -> Any:
            if not (a.__class__ is str and a.isascii() and _ok(b)):
                check(prim, (a, b, c, d, e))
            return method(self, a, b, c, d, e)
    else:
        def guarded(self: AbsKvStore, *args: Any) -> Any:
            if not all(map(_ok, args)):
                check(prim, args)
            return method(self, *args)

    guarded.__name__ = getattr(method, "__name__", prim)
    guarded.__doc__ = method.__doc__
    guarded._finchan_guarded = True
    return guarded


#: the primitives every backend implements (and a pipeline buffers)
_PRIMITIVES = (
    "_set", "_get", "_mset", "_mget", "_setnx", "_delete",
    "_hset", "_hget", "_hmset", "_hmget", "_hgetall", "_hsetnx", "_hdel", "_hexists",
    "_hkeys", "_hvals", "_hlen",
    "_lpop", "_rpop", "_lpush", "_rpush", "_lset", "_lrange", "_ltrim", "_llen",
)  # fmt: skip


class AbsKvStore(abc.ABC):
    """KV store interface.

    init the kvstore connection. ``prefix`` is prepended to every key name
    (not to hash fields), so several strategies can share one store.

    A store is a context manager: ``with open_store(url) as store:`` closes it
    at the end. Operations on a closed store raise
    :class:`~finchan.errors.StoreError`.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # every backend's primitives refuse unencodable text before touching
        # their storage: the memory store would keep it, SQLite and Redis fail
        # in their own ways; one check gives one StoreError everywhere
        super().__init_subclass__(**kwargs)
        for prim in _PRIMITIVES:
            method = cls.__dict__.get(prim)
            if callable(method) and not getattr(method, "_finchan_guarded", False):
                setattr(cls, prim, _guarded(prim, method))

    def __init__(self, *, prefix: str = "") -> None:
        if not isinstance(prefix, str):
            raise StoreError(f"kvstore prefix must be a string, not {prefix!r}")
        if prefix and not prefix.endswith(PREFIX_SEPARATOR):
            raise StoreError(
                f"kvstore prefix {prefix!r} must end with {PREFIX_SEPARATOR!r} "
                f"(e.g. {prefix + PREFIX_SEPARATOR!r}), so that two prefixes cannot "
                "collide ('a' + 'bc' and 'ab' + 'c' are the same key)"
            )
        #: prepended to every key name
        self.prefix = prefix

    # -- argument helpers (hot path: str goes through without a call) ----------------
    def _key(self, name: Any, op: str) -> str:
        if type(name) is str:
            return self.prefix + name
        return self.prefix + _encode(name, op, None, "key name")

    # -- strings ----------------------------------------------------------------------
    def set(self, name: Encodable, value: Encodable, *, nx: bool = False, xx: bool = False,
            get: bool = False) -> bool | str | None:
        """Set the value at key name to value.

        Replaces whatever the key held, of any type. ``nx``: only if the key
        does not exist; ``xx``: only if it exists. Returns True, or None when
        ``nx``/``xx`` prevented the set; with ``get=True`` returns the old
        string value (None if there was none) instead.
        """
        key = self.prefix + name if type(name) is str else self._key(name, "set")
        if type(value) is not str:
            value = _encode(value, "set", key, "value")
        if nx and xx:
            raise StoreError(f"set {key!r}: nx and xx are mutually exclusive")
        return self._set(key, value, nx, xx, get)

    def get(self, name: Encodable) -> str | None:
        """Return the value at key name, or None if the key doesn't exist."""
        return self._get(self.prefix + name if type(name) is str else self._key(name, "get"))

    def mset(self, *args: Mapping[Encodable, Encodable], **kwargs: Encodable) -> bool:
        """Sets key/values based on a mapping.

        Mapping can be supplied as a single dictionary argument or as kwargs
        (both together: the dictionary wins). Returns True.
        """
        # keys are checked one by one below (self._key)
        items: Mapping[Any, Encodable] = kwargs
        if args:
            if len(args) != 1 or not isinstance(args[0], Mapping):
                raise StoreError("mset: give a single mapping or keyword arguments")
            items = {**kwargs, **args[0]}
        if not items:
            raise StoreError("mset: no key/value pairs given")
        pairs: dict[str, str] = {}
        for name, value in items.items():
            key = self._key(name, "mset")
            pairs[key] = _encode(value, "mset", key, "value")
        return self._mset(list(pairs.items()))

    def mget(self, keys: Encodable | Iterable[Encodable], *args: Encodable) -> list[str | None]:
        """Returns a list of values ordered identically to keys.

        None stands for a missing key or a key that does not hold a string.
        """
        names = _list_or_args(keys, args)
        return self._mget([self._key(k, "mget") for k in names])

    def setnx(self, name: Encodable, value: Encodable) -> bool:
        """Set the value of key name to value if key doesn't exist.

        Returns True if it was set, False if the key existed (of any type).
        """
        key = self._key(name, "setnx")
        return self._setnx(key, _encode(value, "setnx", key, "value"))

    def delete(self, *names: Encodable) -> int:
        """Delete the key and its value (keys of any type; several at once).

        Returns the number of keys that existed.
        """
        if not names:
            raise StoreError("delete: no key names given")
        return self._delete([self._key(k, "delete") for k in names])

    # -- hashes -----------------------------------------------------------------------
    def hset(self, name: Encodable, key: Encodable | None = None, value: Encodable | None = None,
             mapping: Mapping[Encodable, Encodable] | None = None,
             items: list[Encodable] | None = None) -> int:
        """Set key to value within hash name.

        Also ``mapping={field: value}`` and ``items=[field, value, ...]``
        (applied in the order items, key/value, mapping; the last wins).
        Returns the number of fields created (1 if HSET created a new field,
        otherwise 0, for a single field).
        """
        hkey = self.prefix + name if type(name) is str else self._key(name, "hset")
        pairs: list[tuple[Any, Any]] = []
        if items:
            if len(items) % 2:
                raise StoreError(f"hset {hkey!r}: items must hold field/value pairs")
            pairs.extend(zip(items[::2], items[1::2]))
        if key is not None:
            pairs.append((key, value))
        if mapping:
            pairs.extend(mapping.items())
        if not pairs:
            raise StoreError(f"hset {hkey!r}: no field/value pairs given")
        return self._hset(hkey, [(_encode(f, "hset", hkey, "field"),
                                  _encode(v, "hset", hkey, "value")) for f, v in pairs])

    def hget(self, name: Encodable, key: Encodable) -> str | None:
        """Return the value of key within the hash name (None if missing)."""
        hkey = self.prefix + name if type(name) is str else self._key(name, "hget")
        return self._hget(hkey, key if type(key) is str else _encode(key, "hget", hkey, "field"))

    def hmset(self, name: Encodable, mapping: Mapping[Encodable, Encodable]) -> bool:
        """Set key to value within hash name for each corresponding key and value
        from the mapping dict. Returns True."""
        hkey = self._key(name, "hmset")
        if not mapping:
            raise StoreError(f"hmset {hkey!r}: empty mapping")
        return self._hmset(hkey, [(_encode(f, "hmset", hkey, "field"),
                                   _encode(v, "hmset", hkey, "value")) for f, v in mapping.items()])

    def hmget(self, name: Encodable, keys: Encodable | Iterable[Encodable],
              *args: Encodable) -> list[str | None]:
        """Returns a list of values ordered identically to keys."""
        hkey = self._key(name, "hmget")
        fields = _list_or_args(keys, args)
        if not fields:
            raise StoreError(f"hmget {hkey!r}: no fields given")
        return self._hmget(hkey, [_encode(f, "hmget", hkey, "field") for f in fields])

    def hgetall(self, name: Encodable) -> dict[str, str]:
        """Return a Python dict of the hash's name/value pairs ({} if missing)."""
        return self._hgetall(
            self.prefix + name if type(name) is str else self._key(name, "hgetall"))

    def hsetnx(self, name: Encodable, key: Encodable, value: Encodable) -> int:
        """Set key to value within hash name if key does not exist.

        Returns 1 if HSETNX created a field, otherwise 0.
        """
        hkey = self._key(name, "hsetnx")
        return self._hsetnx(hkey, _encode(key, "hsetnx", hkey, "field"),
                            _encode(value, "hsetnx", hkey, "value"))

    def hdel(self, name: Encodable, *keys: Encodable) -> int:
        """Delete keys from hash name. Returns the number of fields removed."""
        hkey = self._key(name, "hdel")
        if not keys:
            raise StoreError(f"hdel {hkey!r}: no fields given")
        return self._hdel(hkey, [_encode(f, "hdel", hkey, "field") for f in keys])

    def hexists(self, name: Encodable, key: Encodable) -> bool:
        """Returns a boolean indicating if key exists within hash name."""
        hkey = self._key(name, "hexists")
        return self._hexists(hkey, _encode(key, "hexists", hkey, "field"))

    def hkeys(self, name: Encodable) -> list[str]:
        """Return the list of keys within hash name."""
        return self._hkeys(self._key(name, "hkeys"))

    def hvals(self, name: Encodable) -> list[str]:
        """Return the list of values within hash name."""
        return self._hvals(self._key(name, "hvals"))

    def hlen(self, name: Encodable) -> int:
        """Return the number of elements in hash name."""
        return self._hlen(self._key(name, "hlen"))

    # -- lists ------------------------------------------------------------------------
    def lpop(self, name: Encodable, count: int | None = None) -> str | list[str] | None:
        """Remove and return the first item of the list name.

        With ``count``, remove and return up to that many as a list (None if
        the key does not exist).
        """
        key = self._key(name, "lpop")
        if count is not None:
            count = _index(count, "lpop", key, "count")
            if count < 0:
                raise StoreError(f"lpop {key!r}: count must be positive, got {count}")
        return self._lpop(key, count)

    def lpush(self, name: Encodable, *values: Encodable) -> int:
        """Push values onto the head of the list name.

        Pushed one after the other, so ``lpush("l", 1, 2)`` makes ``["2", "1"]``.
        Returns the length of the list.
        """
        key = self.prefix + name if type(name) is str else self._key(name, "lpush")
        if not values:
            raise StoreError(f"lpush {key!r}: no values given")
        return self._lpush(key, [v if type(v) is str else _encode(v, "lpush", key, "value")
                                 for v in values])

    def rpop(self, name: Encodable, count: int | None = None) -> str | list[str] | None:
        """Remove and return the last item of the list name.

        With ``count``, up to that many, the last first.
        """
        key = self._key(name, "rpop")
        if count is not None:
            count = _index(count, "rpop", key, "count")
            if count < 0:
                raise StoreError(f"rpop {key!r}: count must be positive, got {count}")
        return self._rpop(key, count)

    def rpush(self, name: Encodable, *values: Encodable) -> int:
        """Push values onto the tail of the list name. Returns the length of the list."""
        key = self.prefix + name if type(name) is str else self._key(name, "rpush")
        if not values:
            raise StoreError(f"rpush {key!r}: no values given")
        return self._rpush(key, [v if type(v) is str else _encode(v, "rpush", key, "value")
                                 for v in values])

    def lset(self, name: Encodable, index: int, value: Encodable) -> bool:
        """Set position of list name to value.

        Returns True; StoreError if the key does not exist or ``index`` is
        out of range.
        """
        key = self._key(name, "lset")
        return self._lset(key, _index(index, "lset", key, "index"),
                          _encode(value, "lset", key, "value"))

    def lrange(self, name: Encodable, start: int, end: int) -> list[str]:
        """Return a slice of the list name between position start and end.

        start and end can be negative numbers just like Python slicing
        notation; as in Redis, ``end`` is included: ``lrange(name, 0, -1)``
        is the whole list.
        """
        key = self.prefix + name if type(name) is str else self._key(name, "lrange")
        if (type(start) is not int or type(end) is not int
                or not _INT64_MIN <= start <= _INT64_MAX or not _INT64_MIN <= end <= _INT64_MAX):
            start = _index(start, "lrange", key, "start")
            end = _index(end, "lrange", key, "end")
        return self._lrange(key, start, end)

    def ltrim(self, name: Encodable, start: int, end: int) -> bool:
        """Trim the list name, removing all values not within the slice
        between start and end.

        start and end can be negative numbers just like Python slicing
        notation; ``end`` is included, as in :meth:`lrange`. Returns True.
        """
        key = self._key(name, "ltrim")
        return self._ltrim(key, _index(start, "ltrim", key, "start"),
                           _index(end, "ltrim", key, "end"))

    def llen(self, name: Encodable) -> int:
        """Return the length of the list name"""
        return self._llen(self._key(name, "llen"))

    # -- batching and lifetime ------------------------------------------------------------
    def pipeline(self, transaction: bool = True) -> KvPipeline:
        """A batch of commands sent at once, as redis-py's ``pipeline()``.

        Commands return the pipeline (so they chain) and :meth:`KvPipeline.execute`
        returns their results in order. On SQLite and memory the batch runs
        in one transaction; on Redis in ``MULTI``/``EXEC`` when
        ``transaction`` is true. As in Redis, a command that fails (wrong
        type) does not undo the others; ``execute`` raises the first error.
        Used as a context manager, the pending commands are executed when the
        block ends without an exception, and discarded otherwise::

            with store.pipeline() as pipe:
                pipe.set("a", 1).hset("h", "f", 2)
        """
        return KvPipeline(self, transaction=transaction)

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection; later operations raise StoreError. Idempotent."""

    def __enter__(self) -> AbsKvStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _run_pipeline(self, commands: list[tuple[str, tuple[Any, ...]]],
                      transaction: bool = True) -> list[Any]:
        """Run buffered ``(primitive name, args)``; a failed command's result is its error.

        This default runs them one by one, without atomicity.
        """
        results: list[Any] = []
        for prim, args in commands:
            try:
                results.append(getattr(self, prim)(*args))
            except FinchanError as exc:
                results.append(exc)
        return results

    # -- primitives: arguments are validated, keys prefixed, values str --------------------
    @abc.abstractmethod
    def _set(self, key: str, value: str, nx: bool, xx: bool, get: bool) -> bool | str | None:
        ...

    @abc.abstractmethod
    def _get(self, key: str) -> str | None:
        ...

    def _mset(self, pairs: list[tuple[str, str]]) -> bool:
        for key, value in pairs:
            self._set(key, value, False, False, False)
        return True

    @abc.abstractmethod
    def _mget(self, keys: list[str]) -> list[str | None]:
        ...

    def _setnx(self, key: str, value: str) -> bool:
        return self._set(key, value, True, False, False) is not None

    @abc.abstractmethod
    def _delete(self, keys: list[str]) -> int:
        ...

    @abc.abstractmethod
    def _hset(self, key: str, pairs: list[tuple[str, str]]) -> int:
        ...

    @abc.abstractmethod
    def _hget(self, key: str, field: str) -> str | None:
        ...

    def _hmset(self, key: str, pairs: list[tuple[str, str]]) -> bool:
        self._hset(key, pairs)
        return True

    def _hmget(self, key: str, fields: list[str]) -> list[str | None]:
        values = self._hgetall(key)
        return [values.get(f) for f in fields]

    @abc.abstractmethod
    def _hgetall(self, key: str) -> dict[str, str]:
        ...

    @abc.abstractmethod
    def _hsetnx(self, key: str, field: str, value: str) -> int:
        ...

    @abc.abstractmethod
    def _hdel(self, key: str, fields: list[str]) -> int:
        ...

    def _hexists(self, key: str, field: str) -> bool:
        return self._hget(key, field) is not None

    def _hkeys(self, key: str) -> list[str]:
        return list(self._hgetall(key))

    def _hvals(self, key: str) -> list[str]:
        return list(self._hgetall(key).values())

    def _hlen(self, key: str) -> int:
        return len(self._hgetall(key))

    @abc.abstractmethod
    def _lpop(self, key: str, count: int | None) -> str | list[str] | None:
        ...

    @abc.abstractmethod
    def _rpop(self, key: str, count: int | None) -> str | list[str] | None:
        ...

    @abc.abstractmethod
    def _lpush(self, key: str, values: list[str]) -> int:
        ...

    @abc.abstractmethod
    def _rpush(self, key: str, values: list[str]) -> int:
        ...

    @abc.abstractmethod
    def _lset(self, key: str, index: int, value: str) -> bool:
        ...

    @abc.abstractmethod
    def _lrange(self, key: str, start: int, end: int) -> list[str]:
        ...

    @abc.abstractmethod
    def _ltrim(self, key: str, start: int, end: int) -> bool:
        ...

    def _llen(self, key: str) -> int:
        return len(self._lrange(key, 0, -1))


def _buffer(prim: str) -> Any:
    """A pipeline's form of a primitive: buffer the command, return the pipeline."""

    def buffered(self: KvPipeline, *args: Any) -> KvPipeline:
        self._commands.append((prim, args))
        return self

    buffered.__name__ = prim
    return buffered


class KvPipeline(AbsKvStore):
    """Commands buffered by :meth:`AbsKvStore.pipeline`, sent by :meth:`execute`.

    Arguments are checked when a command is buffered, so a bad argument
    raises at once and nothing is queued.
    """

    def __init__(self, store: AbsKvStore, transaction: bool = True) -> None:
        super().__init__(prefix=store.prefix)
        self._store = store
        #: whether Redis wraps the batch in MULTI/EXEC (always atomic elsewhere)
        self.transaction = transaction
        self._commands: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send the buffered commands; their results in order.

        With ``raise_on_error`` (the default) the first failed command's
        error is raised after all have run; otherwise errors are returned in
        place of results. The pipeline is empty afterwards and reusable.
        """
        commands, self._commands = self._commands, []
        if not commands:
            return []
        results = self._store._run_pipeline(commands, self.transaction)
        if raise_on_error:
            for result in results:
                if isinstance(result, FinchanError):
                    raise result
        return results

    def reset(self) -> None:
        """Discard the buffered commands."""
        self._commands = []

    def pipeline(self, transaction: bool = True) -> KvPipeline:
        """Pipelines do not nest."""
        raise StoreError("a pipeline cannot open another pipeline")

    def close(self) -> None:
        """Discard the buffered commands (the store stays open)."""
        self.reset()

    def __len__(self) -> int:
        return len(self._commands)

    def __enter__(self) -> KvPipeline:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None and self._commands:
            self.execute()
        self.reset()

    # every primitive buffers its command (the public methods above them check arguments)
    _set = _buffer("_set")
    _get = _buffer("_get")
    _mset = _buffer("_mset")
    _mget = _buffer("_mget")
    _setnx = _buffer("_setnx")
    _delete = _buffer("_delete")
    _hset = _buffer("_hset")
    _hget = _buffer("_hget")
    _hmset = _buffer("_hmset")
    _hmget = _buffer("_hmget")
    _hgetall = _buffer("_hgetall")
    _hsetnx = _buffer("_hsetnx")
    _hdel = _buffer("_hdel")
    _hexists = _buffer("_hexists")
    _hkeys = _buffer("_hkeys")
    _hvals = _buffer("_hvals")
    _hlen = _buffer("_hlen")
    _lpop = _buffer("_lpop")
    _rpop = _buffer("_rpop")
    _lpush = _buffer("_lpush")
    _rpush = _buffer("_rpush")
    _lset = _buffer("_lset")
    _lrange = _buffer("_lrange")
    _ltrim = _buffer("_ltrim")
    _llen = _buffer("_llen")
