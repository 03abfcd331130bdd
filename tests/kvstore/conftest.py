"""Fixtures of the kvstore tests: one store per backend, the Redis test database.

Redis tests use the server at redis://127.0.0.1:6379 on a database of their
own (15; one per xdist worker below it), flushed by the tests themselves.
Without a server they are skipped, unless FINCHAN_REQUIRE_SERVICES=1, which
turns a missing server into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from finchan.interface.kvstore import AbsKvStore
from finchan.kvstore import open_store

REDIS_HOST = "redis://127.0.0.1:6379"


def _redis_db() -> int:
    """15 for a plain run; 15, 14, ... for xdist workers gw0, gw1, ..."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return 15 - index % 8


@pytest.fixture(scope="session")
def redis_server() -> str:
    """URL of the Redis test database; skip (or fail, if required) without a server."""
    url = f"{REDIS_HOST}/{_redis_db()}"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        message = f"no Redis server at {url}: {exc}"
        if os.environ.get("FINCHAN_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message} (FINCHAN_REQUIRE_SERVICES=1 requires it)", pytrace=False)
        pytest.skip(message)
    return url


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """The Redis test database, empty at the start and flushed at the end."""
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    yield redis_server
    client.flushdb()
    client.close()


BACKENDS = [
    "memory",
    "sqlite",
    pytest.param("redis", marks=pytest.mark.services),
    "sqlite-prefixed",
]


def make_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> AbsKvStore:
    """A fresh, empty store of backend ``kind``."""
    if kind == "memory":
        return open_store("memory://")
    if kind == "sqlite":
        return open_store(tmp_path / "state.db")
    if kind == "sqlite-prefixed":
        return open_store(f"sqlite://{tmp_path / 'shared.db'}", prefix="strategy-a:")
    if kind == "redis":
        return open_store(request.getfixturevalue("redis_url"))
    raise ValueError(kind)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AbsKvStore]:
    """An empty store, once per backend: the contract suite runs on each."""
    kv = make_store(request.param, request, tmp_path)
    yield kv
    kv.close()
