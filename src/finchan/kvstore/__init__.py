"""Key-value stores implementing :class:`~finchan.interface.kvstore.AbsKvStore`.

:func:`open_store` opens one by URL:

* ``memory://``: a dict in this process (tests, throwaway backtests);
* ``sqlite:///abs/path/state.db``, ``sqlite://relative/state.db`` or a plain
  path: one SQLite file (the default backend); query options
  ``synchronous=full|normal`` and ``timeout=SECONDS``;
* ``redis://host:port/db`` (also ``rediss://``, ``unix://``): a Redis
  server through redis-py.

Example
-------
>>> from finchan.kvstore import open_store
>>> with open_store("memory://", prefix="sma:") as store:
...     store.hset("position", "AAPL", 100)
...     store.hget("position", "AAPL")
1
'100'
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl

from finchan.errors import StoreError
from finchan.interface.kvstore import AbsKvStore, KvPipeline
from finchan.kvstore._memory import MemoryKvStore
from finchan.kvstore._redis import RedisKvStore, mask_url
from finchan.kvstore._sqlite import SqliteKvStore

__all__ = [
    "AbsKvStore",
    "KvPipeline",
    "MemoryKvStore",
    "RedisKvStore",
    "SqliteKvStore",
    "open_store",
]

_REDIS_SCHEMES = ("redis", "rediss", "unix")
_SQLITE_OPTIONS = ("synchronous", "timeout")


def open_store(
    url: str | os.PathLike[str], *, prefix: str = "", base_dir: str | os.PathLike[str] | None = None
) -> AbsKvStore:
    """Open the store at ``url``.

    Parameters
    ----------
    url:
        ``memory://``, ``sqlite:///path/to/file.db`` (a plain path works
        too) or ``redis://host:port/db``.
    prefix:
        prepended to every key name, so several strategies share one store.
    base_dir:
        where a relative SQLite path is taken from (default: the current
        directory).

    Raises
    ------
    StoreError
        the scheme is unknown, the file cannot be opened, the server cannot
        be reached; the message names the URL.
    """
    if not isinstance(url, str):
        return _open_sqlite(os.fspath(url), "", prefix, base_dir, os.fspath(url))
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _open_sqlite(url, "", prefix, base_dir, url)
    scheme = scheme.lower()
    if scheme == "memory":
        if rest:
            raise StoreError(f"kvstore URL {url!r}: memory:// takes no path or options")
        return MemoryKvStore(prefix=prefix)
    if scheme == "sqlite":
        path, _, query = rest.partition("?")
        return _open_sqlite(path, query, prefix, base_dir, url)
    if scheme in _REDIS_SCHEMES:
        return RedisKvStore(url, prefix=prefix)
    raise StoreError(
        f"kvstore URL {mask_url(url)!r}: unknown scheme {scheme!r} "
        "(use memory://, sqlite:///path/to/file.db or redis://host:port/db)"
    )


def _open_sqlite(
    path: str, query: str, prefix: str, base_dir: str | os.PathLike[str] | None, url: str
) -> SqliteKvStore:
    if not path:
        raise StoreError(f"kvstore URL {url!r}: no database file given")
    options: dict[str, str] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise StoreError(f"kvstore URL {url!r}: malformed options {query!r}") from None
    for name, value in pairs:
        if name not in _SQLITE_OPTIONS:
            raise StoreError(
                f"kvstore URL {url!r}: unknown option {name!r} "
                f"(SQLite takes {', '.join(_SQLITE_OPTIONS)})"
            )
        options[name] = value
    try:
        timeout = float(options.get("timeout", 30.0))
    except ValueError:
        raise StoreError(f"kvstore URL {url!r}: timeout must be a number of seconds") from None
    file = Path(path).expanduser()
    if not file.is_absolute() and base_dir is not None:
        file = Path(base_dir).expanduser() / file
    return SqliteKvStore(
        file, prefix=prefix, synchronous=options.get("synchronous", "full"), timeout=timeout
    )
