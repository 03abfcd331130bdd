"""Key-value store throughput: finchan's backends beside the raw clients.

For set/get/hset/hgetall/lpush/lrange on each backend, operations per
second through finchan, beside raw sqlite3 (same file settings: WAL, same
``synchronous``, one commit per write) and raw redis-py doing the same work
in the same run. ``ratio`` of those rows is the overhead, raw ops/s divided
by finchan's (target: at most 1.5). The ``set (pipeline)`` rows compare
writes batched through ``pipeline()`` with the same writes one by one;
their ``ratio`` is the speedup (target: at least 10).

Run ``python bench/kvstore.py [--quick]``; ``run(quick)`` returns the rows.
Redis rows need a server at ``FINCHAN_BENCH_REDIS`` (default
``redis://127.0.0.1:6379/14``); only keys under ``finchan-bench:`` are
written and they are deleted afterwards.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finchan.errors import StoreError
from finchan.kvstore import open_store

__all__ = ["main", "run"]

_REDIS_URL = os.environ.get("FINCHAN_BENCH_REDIS", "redis://127.0.0.1:6379/14")
_PREFIX = "finchan-bench:"
_HASH_FIELDS = 20
_RANGE = 20
_OPS = ("set", "get", "hset", "hgetall", "lpush", "lrange")
_rounds = itertools.count()


def _fresh_value() -> str:
    """A 32-character value new to this round: rewriting a row with the bytes it
    already holds is skipped by SQLite (no commit to sync), so rounds differ."""
    return f"{next(_rounds):08d}" + "x" * 24


def _best_rate(n: int, fn: Callable[[int], None], repeats: int) -> float:
    """Operations per second of ``fn(n)`` (n operations), best of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - start)
    return n / best


def _store_ops(store: Any) -> dict[str, Callable[[int], None]]:
    """The finchan side: one callable per op, doing ``n`` operations."""
    value = "x" * 32

    def set_(n: int) -> None:
        value = _fresh_value()
        for i in range(n):
            store.set(f"k{i}", value)

    def get(n: int) -> None:
        for i in range(n):
            store.get(f"k{i}")

    def hset(n: int) -> None:
        value = _fresh_value()
        for i in range(n):
            store.hset("h", f"f{i}", value)

    def hgetall(n: int) -> None:
        for _ in range(n):
            store.hgetall("hsmall")

    def lpush(n: int) -> None:
        for _ in range(n):
            store.lpush("l", value)

    def lrange(n: int) -> None:
        for _ in range(n):
            store.lrange("l", 0, _RANGE - 1)

    store.hset("hsmall", mapping={f"f{i}": value for i in range(_HASH_FIELDS)})
    return {"set": set_, "get": get, "hset": hset, "hgetall": hgetall,
            "lpush": lpush, "lrange": lrange}


def _raw_sqlite_ops(path: Path, synchronous: str) -> tuple[dict[str, Callable[[int], None]],
                                                            Callable[[], None]]:
    """The raw sqlite3 side: the least SQL doing the same work, no type checks."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID")
    conn.execute("CREATE TABLE h (k TEXT, f TEXT, v TEXT, PRIMARY KEY (k, f)) WITHOUT ROWID")
    conn.execute("CREATE TABLE l (k TEXT, pos INTEGER, v TEXT, PRIMARY KEY (k, pos)) WITHOUT ROWID")
    x = conn.execute
    value = "x" * 32
    lpush_sql = ("INSERT INTO l VALUES (?1, (SELECT coalesce(min(pos), 0) - 1 FROM l "
                 "WHERE k = ?1), ?2)")

    def set_(n: int) -> None:
        value = _fresh_value()
        for i in range(n):
            x("INSERT OR REPLACE INTO kv VALUES (?, ?)", (f"k{i}", value))

    def get(n: int) -> None:
        for i in range(n):
            x("SELECT v FROM kv WHERE k = ?", (f"k{i}",)).fetchone()

    def hset(n: int) -> None:
        value = _fresh_value()
        for i in range(n):
            x("INSERT OR REPLACE INTO h VALUES (?, ?, ?)", ("h", f"f{i}", value))

    def hgetall(n: int) -> None:
        for _ in range(n):
            dict(x("SELECT f, v FROM h WHERE k = ?", ("hsmall",)).fetchall())

    def lpush(n: int) -> None:
        for _ in range(n):
            x(lpush_sql, ("l", value))

    def lrange(n: int) -> None:
        for _ in range(n):
            [r[0] for r in x("SELECT v FROM l WHERE k = ? ORDER BY pos LIMIT ?",
                             ("l", _RANGE)).fetchall()]

    conn.executemany("INSERT INTO h VALUES ('hsmall', ?, ?)",
                     [(f"f{i}", value) for i in range(_HASH_FIELDS)])
    def batch(n: int, value: str) -> None:
        x("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)",
                         [(f"p{i}", value) for i in range(n)])
        x("COMMIT")

    ops = {"set": set_, "get": get, "hset": hset, "hgetall": hgetall,
           "lpush": lpush, "lrange": lrange, "batch": batch}
    return ops, conn.close


def _raw_redis_ops(client: Any) -> dict[str, Callable[[int], None]]:
    """The raw redis-py side: the same commands, same keys under the bench prefix."""
    value = "x" * 32
    p = _PREFIX + "raw:"

    def set_(n: int) -> None:
        value = _fresh_value()
        for i in range(n):
            client.set(f"{p}k{i}", value)

    def get(n: int) -> None:
        for i in range(n):
            client.get(f"{p}k{i}")

    def hset(n: int) -> None:
        value = _fresh_value()
        for i in range(n):
            client.hset(f"{p}h", f"f{i}", value)

    def hgetall(n: int) -> None:
        for _ in range(n):
            client.hgetall(f"{p}hsmall")

    def lpush(n: int) -> None:
        for _ in range(n):
            client.lpush(f"{p}l", value)

    def lrange(n: int) -> None:
        for _ in range(n):
            client.lrange(f"{p}l", 0, _RANGE - 1)

    client.hset(f"{p}hsmall", mapping={f"f{i}": value for i in range(_HASH_FIELDS)})
    def batch(n: int, value: str) -> None:
        pipe = client.pipeline()
        for i in range(n):
            pipe.set(f"{p}p{i}", value)
        pipe.execute()

    return {"set": set_, "get": get, "hset": hset, "hgetall": hgetall,
            "lpush": lpush, "lrange": lrange, "batch": batch}


def _pipeline_rows(backend: str, store: Any, n: int, repeats: int,
                   raw_batch: tuple[str, Callable[[int, str], None]] | None = None,
                   target: str | None = ">= 10") -> list[dict[str, Any]]:
    """``set`` through one pipeline of ``n`` commands vs ``n`` separate calls.

    With ``raw_batch``, a second row compares the pipeline with the raw
    client's own batching, for information.
    """

    def one_by_one(count: int) -> None:
        value = _fresh_value()
        for i in range(count):
            store.set(f"p{i}", value)

    def batched(count: int) -> None:
        value = _fresh_value()
        with store.pipeline() as pipe:
            for i in range(count):
                pipe.set(f"p{i}", value)

    single = piped = 0.0
    for _ in range(repeats):
        single = max(single, _best_rate(n, one_by_one, 1))
        piped = max(piped, _best_rate(n, batched, 1))
    rows = [{"backend": backend, "op": "set (pipeline)", "ops_per_s": piped,
             "baseline": "finchan one by one", "baseline_ops_per_s": single,
             "ratio": piped / single, "target": target}]
    if raw_batch is not None:
        name, fn = raw_batch
        raw = _best_rate(n, lambda count: fn(count, _fresh_value()), repeats)
        rows.append({"backend": backend, "op": "set (pipeline)", "ops_per_s": piped,
                     "baseline": name, "baseline_ops_per_s": raw,
                     "ratio": raw / piped, "target": None})
    return rows


def _compare(backend: str, ours: dict[str, Callable[[int], None]],
             raw: dict[str, Callable[[int], None]] | None, baseline: str,
             sizes: dict[str, int], repeats: int) -> list[dict[str, Any]]:
    rows = []
    for op in _OPS:
        n = sizes[op]
        rate = raw_rate = 0.0
        # short chunks alternating raw and finchan, best of each: both see the same
        # machine load, and a chunk that ran undisturbed shows each side's speed
        chunk = max(n // 4, 10)
        for _ in range(4 * repeats):
            if raw:
                raw_rate = max(raw_rate, _best_rate(chunk, raw[op], 1))
            rate = max(rate, _best_rate(chunk, ours[op], 1))
        rows.append({"backend": backend, "op": op, "ops_per_s": rate,
                     "baseline": baseline if raw else None,
                     "baseline_ops_per_s": raw_rate if raw else None,
                     "ratio": raw_rate / rate if raw else None,
                     "target": "<= 1.5" if raw else None})
    return rows


def _sizes(quick: bool, writes_are_slow: bool, scale: float = 1.0) -> dict[str, int]:
    reads = 1000 if quick else 10000
    writes = (100 if quick else 1000) if writes_are_slow else reads
    sizes = {"set": writes, "get": reads, "hset": writes, "hgetall": reads,
             "lpush": writes, "lrange": reads}
    return {op: max(int(n * scale), 10) for op, n in sizes.items()}


def _bench_sqlite(quick: bool, synchronous: str, repeats: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="finchan-bench-") as tmp:
        url = f"sqlite:///{tmp}/finchan.db?synchronous={synchronous}"
        sizes = _sizes(quick, writes_are_slow=synchronous == "full")
        with open_store(url) as store:
            raw, close_raw = _raw_sqlite_ops(Path(tmp) / "raw.db", synchronous)
            try:
                rows = _compare(f"sqlite ({synchronous})", _store_ops(store), raw,
                                "raw sqlite3", sizes, repeats)
                rows += _pipeline_rows(f"sqlite ({synchronous})", store, sizes["set"], repeats,
                                       ("raw sqlite3 executemany", raw["batch"]))
            finally:
                close_raw()
    return rows


def _bench_memory(quick: bool, repeats: int) -> list[dict[str, Any]]:
    sizes = _sizes(quick, writes_are_slow=False)
    with open_store("memory://") as store:
        rows = _compare("memory", _store_ops(store), None, "", sizes, repeats)
        # nothing to save on a dict: the batching costs, shown for information
        rows += _pipeline_rows("memory", store, sizes["set"], repeats, target=None)
    return rows


def _bench_redis(quick: bool, repeats: int) -> list[dict[str, Any]]:
    try:
        store = open_store(_REDIS_URL, prefix=_PREFIX)
    except StoreError as exc:
        print(f"skipping Redis: {exc}", file=sys.stderr)
        return []
    import redis

    client = redis.Redis.from_url(_REDIS_URL, decode_responses=True)
    sizes = _sizes(quick, writes_are_slow=False, scale=0.3 if quick else 0.5)
    try:
        raw = _raw_redis_ops(client)
        rows = _compare("redis", _store_ops(store), raw, "raw redis-py", sizes, repeats)
        rows += _pipeline_rows("redis", store, sizes["set"], repeats,
                               ("raw redis-py pipeline", raw["batch"]))
    finally:
        for key in client.scan_iter(match=_PREFIX + "*", count=1000):
            client.delete(key)
        client.close()
        store.close()
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    """Measure every backend; rows of backend, op, ops_per_s, baseline_ops_per_s, ratio.

    Rows also carry ``baseline`` (what was compared with) and ``target``.
    ``quick`` runs in a few seconds (for smoke tests); the figures are noisier.
    """
    repeats = 2 if quick else 3
    rows = _bench_memory(quick, repeats)
    rows += _bench_sqlite(quick, "full", repeats)
    rows += _bench_sqlite(quick, "normal", repeats)
    rows += _bench_redis(quick, repeats)
    return rows


def _format(rows: list[dict[str, Any]]) -> str:
    head = f"{'backend':<16} {'op':<16} {'finchan op/s':>13} {'baseline op/s':>14} " \
           f"{'ratio':>7}  {'target':<7} baseline"
    lines = [head, "-" * len(head)]
    for row in rows:
        base = row["baseline_ops_per_s"]
        ratio = row["ratio"]
        lines.append(
            f"{row['backend']:<16} {row['op']:<16} {row['ops_per_s']:>13,.0f} "
            f"{'' if base is None else f'{base:,.0f}':>14} "
            f"{'' if ratio is None else f'{ratio:.2f}x':>7}  {row['target'] or '':<7} "
            f"{row['baseline'] or ''}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, noisier figures")
    args = parser.parse_args(argv)
    print(_format(run(args.quick)))
    print("ratio: overhead (baseline op/s / finchan op/s) for single operations; "
          "speedup over one-by-one for pipeline rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
