"""The SQLite backend: one file, WAL mode, every completed write durable.

Layout (schema version 1, kept in ``PRAGMA user_version``):

* ``finchan_kv(key, type, value)``: one row per key; ``type`` 0 string (the
  value is here), 1 hash, 2 list;
* ``finchan_hash(key, field, value)``;
* ``finchan_list(key, pos, value)``: a list's items hold consecutive ``pos``
  integers, the head the smallest. Pushing at the head takes ``min(pos) - 1``
  and at the tail ``max(pos) + 1``, and pops and trims only remove from the
  ends, so no operation ever renumbers; index ``i`` is ``min(pos) + i``.

Concurrency: every write is one statement in autocommit mode or runs in a
``BEGIN IMMEDIATE`` transaction (it takes the write lock before reading, so
two processes never deadlock upgrading a read lock); a busy connection waits
up to ``timeout`` seconds. Reads are single statements, each a consistent
snapshot. A connection is shared by threads under a lock.

Durability: a write returns after its transaction committed to the WAL; with
``synchronous=full`` (the default) the WAL is fsynced at each commit, so the
write survives a process kill and a power loss. ``synchronous=normal`` skips
that fsync: still safe against a killed process (the WAL is in the OS's
cache), not against power loss; several times faster per write.

Size: one class, because every command of the redis-py-like interface
(strings, hashes, lists, pipelines) is a short SQL transaction over the same
three tables and the same write lock; split by command family the schema
and its invariants would be spread over several files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from types import TracebackType
from typing import Any

from finchan.errors import FinchanError, StoreError
from finchan.interface.kvstore import AbsKvStore
from finchan.kvstore._common import HASH, LIST, STRING, clip_range, group_plain_sets, wrong_type

__all__ = ["SqliteKvStore"]

_STR, _HASH, _LIST = 0, 1, 2
_TYPE_NAMES = (STRING, HASH, LIST)
_SCHEMA_VERSION = 1
_SYNCHRONOUS = ("off", "normal", "full", "extra")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS finchan_kv (
        key TEXT PRIMARY KEY, type INTEGER NOT NULL, value TEXT) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS finchan_hash (
        key TEXT NOT NULL, field TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (key, field)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS finchan_list (
        key TEXT NOT NULL, pos INTEGER NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (key, pos)) WITHOUT ROWID""",
)

# Statements are constants so sqlite3's statement cache prepares each once.
_TYPE = "SELECT type FROM finchan_kv WHERE key = ?"
_GET = "SELECT type, value FROM finchan_kv WHERE key = ?"
_SET = (
    "INSERT INTO finchan_kv (key, type, value) VALUES (?1, 0, ?2) "
    "ON CONFLICT (key) DO UPDATE SET value = ?2 WHERE type = 0"
)
_SETNX = "INSERT INTO finchan_kv (key, type, value) VALUES (?, 0, ?) ON CONFLICT (key) DO NOTHING"
_RETYPE = "UPDATE finchan_kv SET type = 0, value = ? WHERE key = ?"
_MGET = (
    "SELECT kv.type, kv.value FROM json_each(?) AS j "
    "LEFT JOIN finchan_kv AS kv ON kv.key = j.value ORDER BY j.key"
)
_NEW_KEY = "INSERT INTO finchan_kv (key, type) VALUES (?, ?)"
_DEL_KEY = "DELETE FROM finchan_kv WHERE key = ?"
_DEL_KEY_RETURNING = "DELETE FROM finchan_kv WHERE key = ? RETURNING type"

_HGET = "SELECT value FROM finchan_hash WHERE key = ? AND field = ?"
_HMGET = (
    "SELECT h.value FROM json_each(?2) AS j LEFT JOIN finchan_hash AS h "
    "ON h.key = ?1 AND h.field = j.value ORDER BY j.key"
)
_HGETALL = "SELECT field, value FROM finchan_hash WHERE key = ?"
_HKEYS = "SELECT field FROM finchan_hash WHERE key = ?"
_HVALS = "SELECT value FROM finchan_hash WHERE key = ?"
_HLEN = "SELECT count(*) FROM finchan_hash WHERE key = ?"
_HEXISTS = "SELECT 1 FROM finchan_hash WHERE key = ? AND field = ?"
_HANY = "SELECT 1 FROM finchan_hash WHERE key = ? LIMIT 1"
_HINSERT = "INSERT OR IGNORE INTO finchan_hash (key, field, value) VALUES (?, ?, ?)"
_HUPDATE = "UPDATE finchan_hash SET value = ? WHERE key = ? AND field = ?"
_HDEL = "DELETE FROM finchan_hash WHERE key = ? AND field = ?"
_HDEL_ALL = "DELETE FROM finchan_hash WHERE key = ?"

# min()/max() as separate scalar subqueries: each is one index probe, a single
# SELECT min(pos), max(pos) would scan the whole list.
_MIN = "(SELECT min(pos) FROM finchan_list WHERE key = ?1)"
_MAX = "(SELECT max(pos) FROM finchan_list WHERE key = ?1)"
_LMETA = f"SELECT type, {_MIN}, {_MAX} FROM finchan_kv WHERE key = ?1"
_LLEN = f"SELECT {_MAX} - {_MIN} + 1"
_LRANGE = (
    "SELECT value FROM finchan_list WHERE key = ?1 AND pos BETWEEN "
    f"(CASE WHEN ?2 < 0 THEN {_MAX} + 1 + ?2 ELSE {_MIN} + ?2 END) AND "
    f"(CASE WHEN ?3 < 0 THEN {_MAX} + 1 + ?3 ELSE {_MIN} + ?3 END) ORDER BY pos"
)
_LSET = (
    "UPDATE finchan_list SET value = ?3 WHERE key = ?1 AND pos = "
    f"(CASE WHEN ?2 < 0 THEN {_MAX} + 1 + ?2 ELSE {_MIN} + ?2 END)"
)
_LINSERT = "INSERT INTO finchan_list (key, pos, value) VALUES (?, ?, ?)"
# a push onto a list that has items needs no type check: only lists have items
_LPUSH_ONE = (
    "INSERT INTO finchan_list (key, pos, value) SELECT ?1, m - 1, ?2 "
    f"FROM (SELECT {_MIN} AS m) WHERE m IS NOT NULL RETURNING {_MAX} - pos + 1"
)
_RPUSH_ONE = (
    "INSERT INTO finchan_list (key, pos, value) SELECT ?1, m + 1, ?2 "
    f"FROM (SELECT {_MAX} AS m) WHERE m IS NOT NULL RETURNING pos - {_MIN} + 1"
)
_LPOP_ONE = "DELETE FROM finchan_list WHERE key = ? AND pos = ? RETURNING value"
_LPOP_MANY = "DELETE FROM finchan_list WHERE key = ? AND pos BETWEEN ? AND ? RETURNING pos, value"
_LTRIM = "DELETE FROM finchan_list WHERE key = ? AND (pos < ? OR pos > ?)"
_LDEL_ALL = "DELETE FROM finchan_list WHERE key = ?"


class _Failure(StoreError):
    """SQLite itself failed (I/O, locked past the timeout, closed): a pipeline stops."""


class _Write:
    """The write transaction of a store; re-entrant so a pipeline wraps many commands."""

    __slots__ = ("_store",)

    def __init__(self, store: SqliteKvStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        store = self._store
        store._lock.acquire()
        if store._depth == 0:
            try:
                store._x("BEGIN IMMEDIATE")
            except BaseException:
                store._lock.release()
                raise
        store._depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        store = self._store
        store._depth -= 1
        try:
            if store._depth == 0:
                if exc_type is None:
                    try:
                        store._x("COMMIT")
                    except BaseException:
                        if store._conn.in_transaction:
                            store._x("ROLLBACK")
                        raise
                elif store._conn.in_transaction:
                    store._x("ROLLBACK")
        finally:
            store._lock.release()


class SqliteKvStore(AbsKvStore):
    """A store in one SQLite file (``sqlite:///path/to/file.db``).

    Parameters
    ----------
    path:
        the database file, created if missing.
    prefix:
        prepended to every key name.
    synchronous:
        ``"full"`` (default: each write durable against power loss) or
        ``"normal"`` (durable against a killed process only; faster).
    timeout:
        seconds to wait for another process's write lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        prefix: str = "",
        synchronous: str = "full",
        timeout: float = 30.0,
    ) -> None:
        super().__init__(prefix=prefix)
        #: the database file
        self.path = os.fspath(path)
        #: the URL the store was opened with
        self.url = f"sqlite:///{self.path}" if os.path.isabs(self.path) else self.path
        if synchronous.lower() not in _SYNCHRONOUS:
            raise StoreError(
                f"{self.url}: synchronous={synchronous!r} is not one of {', '.join(_SYNCHRONOUS)}"
            )
        self._lock = threading.RLock()
        self._depth = 0
        self._write = _Write(self)
        try:
            conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from None
        try:
            _prepare(conn, synchronous.lower(), timeout)
        except (sqlite3.Error, StoreError) as exc:
            conn.close()
            raise StoreError(f"cannot open SQLite store {self.path}: {exc}") from None
        self._conn = conn
        self._x = conn.execute
        self._xmany = conn.executemany

    def close(self) -> None:
        """Close the file (its WAL is checkpointed if no one else has it open)."""
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"<SqliteKvStore {self.path!r} prefix={self.prefix!r}>"

    def _failure(self, exc: sqlite3.Error) -> _Failure:
        return _Failure(f"SQLite store {self.path}: {exc}")

    def _run_pipeline(
        self, commands: list[tuple[str, tuple[Any, ...]]], transaction: bool = True
    ) -> list[Any]:
        results: list[Any] = []
        try:
            with self._write:
                # runs of plain SETs as one MSET: one executemany (see group_plain_sets)
                for prim, args, count in group_plain_sets(commands):
                    try:
                        result = getattr(self, prim)(*args)
                    except _Failure:
                        raise
                    except FinchanError as exc:
                        result = exc
                    results.extend([result] * count if count > 1 else [result])
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return results

    # Every primitive catches sqlite3.Error itself: a decorator would cost more
    # than the rest of the call on the read path.

    # -- type checks (called with the lock held) ----------------------------------
    def _check(self, op: str, key: str, want: int) -> None:
        """Raise WrongTypeError if ``key`` exists with a type other than ``want``."""
        row = self._x(_TYPE, (key,)).fetchone()
        if row is not None and row[0] != want:
            raise wrong_type(op, key, _TYPE_NAMES[row[0]], _TYPE_NAMES[want])

    def _ensure(self, op: str, key: str, want: int) -> None:
        """In a write: create ``key`` as ``want`` if missing, else check its type."""
        row = self._x(_TYPE, (key,)).fetchone()
        if row is None:
            self._x(_NEW_KEY, (key, want))
        elif row[0] != want:
            raise wrong_type(op, key, _TYPE_NAMES[row[0]], _TYPE_NAMES[want])

    def _drop_items(self, key: str, held: int) -> None:
        if held == _HASH:
            self._x(_HDEL_ALL, (key,))
        elif held == _LIST:
            self._x(_LDEL_ALL, (key,))

    def _list_meta(self, op: str, key: str) -> tuple[int, int] | None:
        """``(min pos, max pos)`` of the list at ``key``, None if missing."""
        row = self._x(_LMETA, (key,)).fetchone()
        if row is None:
            return None
        if row[0] != _LIST:
            raise wrong_type(op, key, _TYPE_NAMES[row[0]], LIST)
        return row[1], row[2]

    # -- strings ----------------------------------------------------------------------
    def _set(self, key: str, value: str, nx: bool, xx: bool, get: bool) -> bool | str | None:
        try:
            if not (nx or xx or get):
                with self._lock:
                    # one autocommitted statement unless the key holds a hash or a list
                    if self._x(_SET, (key, value)).rowcount:
                        return True
            with self._write:
                row = self._x(_GET, (key,)).fetchone()
                if get and row is not None and row[0] != _STR:
                    raise wrong_type("set", key, _TYPE_NAMES[row[0]], STRING)
                old = row[1] if get and row is not None else None
                if (nx and row is not None) or (xx and row is None):
                    return old if get else None
                if row is None or row[0] == _STR:
                    self._x(_SET, (key, value))
                else:
                    self._drop_items(key, row[0])
                    self._x(_RETYPE, (value, key))
                return old if get else True
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def _get(self, key: str) -> str | None:
        try:
            with self._lock:
                row = self._x(_GET, (key,)).fetchone()
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        if row is None:
            return None
        if row[0] == _STR:
            return row[1]
        raise wrong_type("get", key, _TYPE_NAMES[row[0]], STRING)

    def _mset(self, pairs: list[tuple[str, str]]) -> bool:
        try:
            with self._write:
                if self._xmany(_SET, pairs).rowcount != len(pairs):
                    # some keys held a hash or a list: write the pairs again in
                    # order, turning those keys into strings (the last value of
                    # a key repeated in pairs wins, as in Redis)
                    for key, value in pairs:
                        held = self._x(_TYPE, (key,)).fetchone()[0]
                        if held != _STR:
                            self._drop_items(key, held)
                            self._x(_RETYPE, (value, key))
                        else:
                            self._x(_SET, (key, value))
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return True

    def _mget(self, keys: list[str]) -> list[str | None]:
        encoded = json.dumps(keys)
        try:
            with self._lock:
                if "\\u0000" in encoded:
                    # json_each cuts strings at NUL: look such keys up one by one
                    with self._write:
                        rows = [self._x(_GET, (k,)).fetchone() or (None, None) for k in keys]
                else:
                    rows = self._x(_MGET, (encoded,)).fetchall()
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return [value if held == _STR else None for held, value in rows]

    def _setnx(self, key: str, value: str) -> bool:
        try:
            with self._lock:
                return self._x(_SETNX, (key, value)).rowcount == 1
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def _delete(self, keys: list[str]) -> int:
        deleted = 0
        try:
            with self._write:
                for key in keys:
                    rows = self._x(_DEL_KEY_RETURNING, (key,)).fetchall()
                    if rows:
                        deleted += 1
                        self._drop_items(key, rows[0][0])
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return deleted

    # -- hashes -----------------------------------------------------------------------
    def _hset(self, key: str, pairs: list[tuple[str, str]], op: str = "hset") -> int:
        try:
            if len(pairs) == 1:
                with self._lock:
                    # updating a field that exists is one statement (only hashes have fields)
                    if self._x(_HUPDATE, (pairs[0][1], key, pairs[0][0])).rowcount:
                        return 0
            with self._write:
                self._ensure(op, key, _HASH)
                if len(pairs) == 1:
                    field, value = pairs[0]
                    added = self._x(_HINSERT, (key, field, value)).rowcount
                    if not added:
                        self._x(_HUPDATE, (value, key, field))
                    return added
                added = self._xmany(_HINSERT, [(key, f, v) for f, v in pairs]).rowcount
                if added < len(pairs):
                    # fields that existed (or came twice) take their last value
                    self._xmany(_HUPDATE, [(v, key, f) for f, v in pairs])
                return added
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def _hget(self, key: str, field: str) -> str | None:
        try:
            with self._lock:
                row = self._x(_HGET, (key, field)).fetchone()
                if row is not None:
                    return row[0]
                self._check("hget", key, _HASH)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return None

    def _hmset(self, key: str, pairs: list[tuple[str, str]]) -> bool:
        self._hset(key, pairs, "hmset")
        return True

    def _hmget(self, key: str, fields: list[str]) -> list[str | None]:
        encoded = json.dumps(fields)
        try:
            with self._lock:
                if "\\u0000" in encoded:
                    with self._write:
                        values = [self._hget(key, f) for f in fields]
                else:
                    values = [row[0] for row in self._x(_HMGET, (key, encoded)).fetchall()]
                if values.count(None) == len(values):
                    self._check("hmget", key, _HASH)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return values

    def _hgetall(self, key: str) -> dict[str, str]:
        try:
            with self._lock:
                rows = self._x(_HGETALL, (key,)).fetchall()
                if not rows:
                    self._check("hgetall", key, _HASH)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return dict(rows)

    def _hsetnx(self, key: str, field: str, value: str) -> int:
        try:
            with self._write:
                self._ensure("hsetnx", key, _HASH)
                return self._x(_HINSERT, (key, field, value)).rowcount
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def _hdel(self, key: str, fields: list[str]) -> int:
        try:
            with self._write:
                row = self._x(_TYPE, (key,)).fetchone()
                if row is None:
                    return 0
                if row[0] != _HASH:
                    raise wrong_type("hdel", key, _TYPE_NAMES[row[0]], HASH)
                removed = self._xmany(_HDEL, [(key, f) for f in fields]).rowcount
                if removed and self._x(_HANY, (key,)).fetchone() is None:
                    self._x(_DEL_KEY, (key,))
                return removed
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def _hexists(self, key: str, field: str) -> bool:
        try:
            with self._lock:
                if self._x(_HEXISTS, (key, field)).fetchone() is not None:
                    return True
                self._check("hexists", key, _HASH)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return False

    def _hcolumn(self, op: str, sql: str, key: str) -> list[str]:
        try:
            with self._lock:
                rows = self._x(sql, (key,)).fetchall()
                if not rows:
                    self._check(op, key, _HASH)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return [row[0] for row in rows]

    def _hkeys(self, key: str) -> list[str]:
        return self._hcolumn("hkeys", _HKEYS, key)

    def _hvals(self, key: str) -> list[str]:
        return self._hcolumn("hvals", _HVALS, key)

    def _hlen(self, key: str) -> int:
        try:
            with self._lock:
                count = self._x(_HLEN, (key,)).fetchone()[0]
                if not count:
                    self._check("hlen", key, _HASH)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return count

    # -- lists ------------------------------------------------------------------------
    def _push(self, op: str, key: str, values: list[str], head: bool) -> int:
        try:
            if len(values) == 1:
                with self._lock:
                    # one statement when the list has items (so it is a list)
                    rows = self._x(_LPUSH_ONE if head else _RPUSH_ONE, (key, values[0])).fetchall()
                if rows:
                    return rows[0][0]
            with self._write:
                bounds = self._list_meta(op, key)
                if bounds is None:
                    self._x(_NEW_KEY, (key, _LIST))
                    low, high = 0, -1
                else:
                    low, high = bounds
                if head:
                    items = [(key, low - 1 - i, v) for i, v in enumerate(values)]
                else:
                    items = [(key, high + 1 + i, v) for i, v in enumerate(values)]
                self._xmany(_LINSERT, items)
                return high - low + 1 + len(items)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None

    def _lpush(self, key: str, values: list[str]) -> int:
        return self._push("lpush", key, values, True)

    def _rpush(self, key: str, values: list[str]) -> int:
        return self._push("rpush", key, values, False)

    def _pop(self, op: str, key: str, count: int | None, head: bool) -> str | list[str] | None:
        try:
            with self._write:
                bounds = self._list_meta(op, key)
                if bounds is None:
                    return None
                low, high = bounds
                length = high - low + 1
                if count is None:
                    value = self._x(_LPOP_ONE, (key, low if head else high)).fetchall()[0][0]
                    if length == 1:
                        self._x(_DEL_KEY, (key,))
                    return value
                count = min(count, length)
                if not count:
                    return []
                first, last = (low, low + count - 1) if head else (high - count + 1, high)
                rows = self._x(_LPOP_MANY, (key, first, last)).fetchall()
                if count == length:
                    self._x(_DEL_KEY, (key,))
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        rows.sort(reverse=not head)
        return [row[1] for row in rows]

    def _lpop(self, key: str, count: int | None) -> str | list[str] | None:
        return self._pop("lpop", key, count, True)

    def _rpop(self, key: str, count: int | None) -> str | list[str] | None:
        return self._pop("rpop", key, count, False)

    def _lset(self, key: str, index: int, value: str) -> bool:
        try:
            with self._lock:
                if self._x(_LSET, (key, index, value)).rowcount:
                    return True
                missing = self._list_meta("lset", key) is None
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        if missing:
            raise StoreError(f"lset {key!r}: no such key")
        raise StoreError(f"lset {key!r}: index {index} out of range")

    def _lrange(self, key: str, start: int, end: int) -> list[str]:
        try:
            with self._lock:
                rows = self._x(_LRANGE, (key, start, end)).fetchall()
                if not rows:
                    self._check("lrange", key, _LIST)
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return [row[0] for row in rows]

    def _ltrim(self, key: str, start: int, end: int) -> bool:
        try:
            with self._write:
                bounds = self._list_meta("ltrim", key)
                if bounds is None:
                    return True
                low, high = bounds
                start, end = clip_range(start, end, high - low + 1)
                if start > end:
                    self._x(_LDEL_ALL, (key,))
                    self._x(_DEL_KEY, (key,))
                else:
                    self._x(_LTRIM, (key, low + start, low + end))
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return True

    def _llen(self, key: str) -> int:
        try:
            with self._lock:
                length = self._x(_LLEN, (key,)).fetchone()[0]
                if length is None:
                    self._check("llen", key, _LIST)
                    return 0
        except sqlite3.Error as exc:
            raise self._failure(exc) from None
        return length


def _prepare(conn: sqlite3.Connection, synchronous: str, timeout: float) -> None:
    """Switch to WAL and create the schema (in a write transaction: safe when racing)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode.lower() != "wal":
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            # switching to WAL needs the file to itself and SQLite reports a
            # concurrent opener as "locked" at once, without its busy handler
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    if mode.lower() != "wal":
        raise StoreError(f"WAL mode is not available (journal_mode is {mode})")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise StoreError("the file is a SQLite database of another program")
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        elif version != _SCHEMA_VERSION:
            raise StoreError(
                f"kvstore schema version {version} is not supported "
                f"(this finchan reads version {_SCHEMA_VERSION})"
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
