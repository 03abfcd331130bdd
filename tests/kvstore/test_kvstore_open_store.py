"""open_store: URLs, options, clear errors naming the URL, key prefixes."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from finchan.errors import StoreError
from finchan.kvstore import MemoryKvStore, RedisKvStore, SqliteKvStore, open_store


def free_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_memory_url_opens_an_empty_store_of_its_own() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    assert isinstance(first, MemoryKvStore)
    first.set("a", 1)
    assert second.get("a") is None


def test_memory_url_with_a_path_is_refused() -> None:
    with pytest.raises(StoreError, match="memory://somewhere"):
        open_store("memory://somewhere")


def test_sqlite_url_with_an_absolute_path_creates_a_wal_file_there(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with open_store(f"sqlite://{path}") as store:
        assert isinstance(store, SqliteKvStore)
        store.set("a", 1)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()
    with open_store(f"sqlite://{path}") as store:
        assert store.get("a") == "1"


def test_plain_paths_open_sqlite(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "a.db")) as store:
        store.set("k", "str path")
    with open_store(tmp_path / "a.db") as store:
        assert isinstance(store, SqliteKvStore)
        assert store.get("k") == "str path"


def test_relative_paths_are_taken_from_base_dir(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "work").mkdir()
    with open_store("sqlite://rel.db", base_dir=tmp_path / "work") as store:
        store.set("k", 1)
    with open_store("cwd.db") as store:
        store.set("k", 2)
    assert (tmp_path / "work" / "rel.db").is_file()
    assert (tmp_path / "cwd.db").is_file()


def test_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with open_store("sqlite://~/home.db") as store:
        store.set("k", 1)
    assert (tmp_path / "home.db").is_file()


@pytest.mark.parametrize("query", ["synchronous=normal", "synchronous=FULL", "timeout=2.5",
                                   "synchronous=normal&timeout=1"])
def test_sqlite_options_are_accepted(tmp_path: Path, query: str) -> None:
    with open_store(f"sqlite://{tmp_path}/s.db?{query}") as store:
        assert store.set("k", 1) is True


@pytest.mark.parametrize(("query", "message"), [
    ("sync=full", "unknown option 'sync'"),
    ("synchronous=sometimes", "synchronous='sometimes'"),
    ("timeout=soon", "timeout must be a number"),
    ("novalue", "malformed options"),
])
def test_bad_sqlite_options_raise_naming_the_url(tmp_path: Path, query: str,
                                                 message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_store(f"sqlite://{tmp_path}/s.db?{query}")
    assert "s.db" in str(info.value)


def test_unknown_scheme_raises_naming_the_url() -> None:
    with pytest.raises(StoreError, match=r"'mongodb://db:27017/x'.*unknown scheme 'mongodb'"):
        open_store("mongodb://db:27017/x")


def test_sqlite_url_without_a_path_raises() -> None:
    with pytest.raises(StoreError, match="no database file"):
        open_store("sqlite://")


def test_a_missing_directory_raises_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "state.db"
    with pytest.raises(StoreError, match=f"cannot open SQLite store {missing}"):
        open_store(missing)


def test_a_file_that_is_not_sqlite_raises_naming_it(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just text" * 100)
    with pytest.raises(StoreError, match=f"{junk}.*not a database"):
        open_store(junk)


def test_a_database_of_another_program_is_not_touched(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="another program"):
        open_store(other)


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        open_store(path)


def test_unreachable_redis_raises_naming_the_url() -> None:
    url = f"redis://127.0.0.1:{free_port()}/3"
    with pytest.raises(StoreError, match=f"cannot connect to Redis at {url}"):
        open_store(url)


def test_redis_password_is_not_shown_in_errors() -> None:
    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert "s3cret" not in str(info.value)
    assert "user:***@127.0.0.1" in str(info.value)


@pytest.mark.services
def test_redis_url_opens_the_database_it_names(redis_url: str) -> None:
    import redis

    with open_store(redis_url) as store:
        assert isinstance(store, RedisKvStore)
        store.set("k", 1)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert client.get("k") == "1"
    client.close()


def test_prefixes_keep_two_strategies_apart_in_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with open_store(path, prefix="sma:") as sma, open_store(path, prefix="rsi:") as rsi:
        sma.set("position", 100)
        rsi.set("position", -5)
        sma.rpush("fills", "a")
        assert (sma.get("position"), rsi.get("position")) == ("100", "-5")
        assert rsi.llen("fills") == 0
        assert rsi.delete("position", "fills") == 1
        assert sma.get("position") == "100"
    with open_store(path) as everything:
        assert everything.mget("sma:position", "rsi:position") == ["100", None]
        assert everything.lrange("sma:fills", 0, -1) == ["a"]


@pytest.mark.services
def test_prefixes_keep_two_strategies_apart_in_one_redis_database(redis_url: str) -> None:
    with open_store(redis_url, prefix="sma:") as sma, open_store(redis_url, prefix="rsi:") as rsi:
        sma.hset("position", "AAPL", 100)
        rsi.hset("position", "AAPL", -5)
        with sma.pipeline() as pipe:
            pipe.hset("position", "MSFT", 1).set("last", "t1")
        assert sma.hgetall("position") == {"AAPL": "100", "MSFT": "1"}
        assert rsi.hgetall("position") == {"AAPL": "-5"}
        assert rsi.get("last") is None


def test_a_prefix_must_be_a_string() -> None:
    with pytest.raises(StoreError, match="prefix"):
        open_store("memory://", prefix=1)  # type: ignore[arg-type]


def test_importing_finchan_kvstore_does_not_import_redis() -> None:
    code = "import sys, finchan.kvstore; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "False\n"
