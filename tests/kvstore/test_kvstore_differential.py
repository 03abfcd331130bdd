"""A long seeded random sequence of operations: real Redis, SQLite and memory agree at every step.

Redis (through raw redis-py, not finchan) is the reference. Each step's
outcome is its result, or the kind of error (finchan's WrongTypeError for
Redis's WRONGTYPE, StoreError for its other errors). Orders Redis does not
define (hkeys, hvals) are compared sorted.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finchan.errors import StoreError, WrongTypeError
from finchan.interface.kvstore import AbsKvStore
from finchan.kvstore import open_store

pytestmark = pytest.mark.services

SEED = 20240611
STEPS = 3000
KEYS = ["a", "b", "c", "d", "é", "k:1", "e"]
OWN_KEYS = {"s": ["a", "b"], "h": ["c", "d"], "l": ["é", "k:1"]}
FIELDS = ["f", "g", "h", "ü", ""]
VALUES = ["", "0", "x", "é🚀", "v" * 40, 7, -3, 2.5, 1e20, b"bytes"]
UNORDERED = {"hkeys", "hvals"}
OPS = ["set", "get", "mset", "mget", "setnx", "delete", "hset", "hget", "hmset", "hmget",
       "hgetall", "hsetnx", "hdel", "hexists", "hkeys", "hvals", "hlen", "lpop", "lpush",
       "rpop", "rpush", "lset", "lrange", "ltrim", "llen"]


def random_command(rng: random.Random) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """One operation with arguments in one of its accepted forms.

    Each type mostly works on keys of its own (so lists and hashes grow), and
    sometimes on any key (so wrong types and type changes happen too).
    """

    def field() -> str:
        return rng.choice(FIELDS)

    def value() -> Any:
        return rng.choice(VALUES)

    def index() -> int:
        return rng.randint(-6, 6)

    def keys(n: int) -> list[str]:
        return rng.sample(KEYS if rng.random() < 0.2 else OWN_KEYS["s"] + ["e"], n)

    # pushes and sets twice as often, so lists and hashes grow
    op = rng.choice([*OPS, "set", "hset", "lpush", "rpush", "lrange"])
    family = "l" if op[0] in "lr" else "h" if op[0] == "h" else "s"
    key = rng.choice(OWN_KEYS[family] if rng.random() < 0.9 else KEYS)
    if op == "set":
        flags = rng.choice([{}, {}, {"nx": True}, {"xx": True}, {"get": True},
                            {"nx": True, "get": True}, {"xx": True, "get": True}])
        return op, (key, value()), flags
    if op in ("get", "hgetall", "hkeys", "hvals", "hlen", "llen"):
        return op, (key,), {}
    if op == "mset":
        return op, ({k: value() for k in keys(rng.randint(1, 3))},), {}
    if op == "mget":
        names = keys(rng.randint(1, 3))
        return op, ((names,) if rng.random() < 0.5 else tuple(names)), {}
    if op == "setnx":
        return op, (key, value()), {}
    if op == "delete":
        return op, tuple(rng.sample(KEYS, rng.randint(1, 2))), {}
    if op == "hset":
        form = rng.randrange(3)
        if form == 0:
            return op, (key, field(), value()), {}
        if form == 1:
            return op, (key,), {"mapping": {field(): value() for _ in range(rng.randint(1, 3))}}
        return op, (key,), {"items": [x for _ in range(rng.randint(1, 3)) for x in (field(), value())]}
    if op == "hget" or op == "hexists":
        return op, (key, field()), {}
    if op == "hmset":
        return op, (key, {field(): value() for _ in range(rng.randint(1, 3))}), {}
    if op == "hmget":
        names = rng.sample(FIELDS, rng.randint(1, 3))
        return op, ((key, names) if rng.random() < 0.5 else (key, *names)), {}
    if op == "hsetnx":
        return op, (key, field(), value()), {}
    if op == "hdel":
        return op, (key, *rng.sample(FIELDS, rng.randint(1, 3))), {}
    if op in ("lpop", "rpop"):
        return op, ((key,) if rng.random() < 0.6 else (key, rng.randint(0, 4))), {}
    if op in ("lpush", "rpush"):
        return op, (key, *[value() for _ in range(rng.randint(1, 3))]), {}
    if op == "lset":
        return op, (key, index(), value()), {}
    if op in ("lrange", "ltrim"):
        return op, (key, index(), index()), {}
    raise AssertionError(op)


def outcome(op: str, call: Any) -> Any:
    """What a call gave, comparable across backends."""
    try:
        result = call()
    except WrongTypeError:
        return "error: WRONGTYPE"
    except StoreError:
        return "error: other"
    return sorted(result) if op in UNORDERED and isinstance(result, list) else result


def redis_outcome(op: str, call: Any) -> Any:
    """The same for raw redis-py, its errors classified as finchan classifies them."""
    import redis

    try:
        result = call()
    except redis.ResponseError as exc:
        return "error: WRONGTYPE" if str(exc).startswith("WRONGTYPE") else "error: other"
    except redis.DataError:
        return "error: other"
    return sorted(result) if op in UNORDERED and isinstance(result, list) else result


def raw_call(client: Any, op: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call redis-py as a user would; hmset through hset(mapping) as redis-py advises."""
    if op == "hmset":
        client.hset(args[0], mapping=args[1])
        return True
    return getattr(client, op)(*args, **kwargs)


def dump(store: AbsKvStore) -> dict[str, Any]:
    """Every key's content, whatever its type."""
    state: dict[str, Any] = {}
    for key in KEYS:
        for read in (store.get, store.hgetall, lambda k: store.lrange(k, 0, -1)):
            try:
                state[key] = read(key)
                break
            except WrongTypeError:
                continue
    return state


@pytest.fixture
def stores(tmp_path: Path, redis_url: str) -> Iterator[dict[str, AbsKvStore]]:
    opened = {"sqlite": open_store(f"sqlite://{tmp_path}/state.db?synchronous=normal"),
              "memory": open_store("memory://")}
    yield opened
    for kv in opened.values():
        kv.close()


def test_backends_agree_with_redis_at_every_step_of_a_random_sequence(
        stores: dict[str, AbsKvStore], redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    finchan_redis = open_store(redis_url, prefix="finchan:")
    stores = {**stores, "redis": finchan_redis}
    rng = random.Random(SEED)
    succeeded: set[str] = set()
    wrong_types = 0
    for step in range(STEPS):
        op, args, kwargs = random_command(rng)
        expected = redis_outcome(op, lambda: raw_call(client, op, args, kwargs))  # noqa: B023
        if expected == "error: WRONGTYPE":
            wrong_types += 1
        elif expected not in (None, [], {}, 0, "error: other"):
            succeeded.add(op)
        for name, kv in stores.items():
            got = outcome(op, lambda: getattr(kv, op)(*args, **kwargs))  # noqa: B023
            assert got == expected, f"step {step}: {op}{args}{kwargs} on {name}"
    reference = dump(stores["memory"])
    for name, kv in stores.items():
        assert dump(kv) == reference, name
    # the sequence did exercise every operation and the type checks
    assert succeeded == set(OPS)
    assert wrong_types > STEPS // 20
    finchan_redis.close()
    client.close()


def test_pipelines_agree_with_redis_pipelines(stores: dict[str, AbsKvStore],
                                              redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    rng = random.Random(SEED + 1)
    for batch in range(60):
        commands = [random_command(rng) for _ in range(rng.randint(1, 8))]
        raw = client.pipeline()
        for op, args, kwargs in commands:
            if op == "hmset":
                raw.hset(args[0], mapping=args[1])
            else:
                getattr(raw, op)(*args, **kwargs)
        replies = raw.execute(raise_on_error=False)
        expected = [
            ("error: WRONGTYPE" if str(r).startswith("WRONGTYPE") else "error: other")
            if isinstance(r, redis.RedisError)
            else (True if op == "hmset" else sorted(r) if op in UNORDERED else r)
            for (op, _, _), r in zip(commands, replies)
        ]
        for name, kv in stores.items():
            pipe = kv.pipeline()
            for op, args, kwargs in commands:
                getattr(pipe, op)(*args, **kwargs)
            results = pipe.execute(raise_on_error=False)
            got = [
                ("error: WRONGTYPE" if isinstance(r, WrongTypeError) else "error: other")
                if isinstance(r, StoreError | WrongTypeError)
                else (sorted(r) if op in UNORDERED else r)
                for (op, _, _), r in zip(commands, results)
            ]
            assert got == expected, f"batch {batch}: {commands} on {name}"
    client.close()
