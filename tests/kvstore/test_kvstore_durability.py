"""SQLite durability and concurrency: SIGKILL at any moment, several processes, threads.

Processes are synchronised through their pipes (a line written after each
call returned), never with sleeps.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from finchan.interface.kvstore import AbsKvStore
from finchan.kvstore import open_store

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

WRITER = """
import sys
from finchan.kvstore import open_store

url, first = sys.argv[1], int(sys.argv[2])
store = open_store(url)
print("ready", flush=True)
i = first
while True:
    kind = i % 4
    if kind == 0:
        store.set(f"s{i}", i)
    elif kind == 1:
        store.hset("h", f"f{i}", i)
    elif kind == 2:
        store.rpush("l", i)
    else:
        with store.pipeline() as pipe:
            pipe.set(f"s{i}", i).hset("h", f"f{i}", i).rpush("l", i)
    print(i, flush=True)  # reported done: the call has returned
    i += 1
"""

TWIN = """
import sys
from finchan.kvstore import open_store

url, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("waiting", flush=True)
assert sys.stdin.readline() == "open\\n"
store = open_store(url)  # both open the new file at once
print("opened", flush=True)
assert sys.stdin.readline() == "write\\n"
for i in range(n):  # and write at once
    store.set(f"{name}:{i}", i)
    store.hset("h", f"{name}:{i}", i)
    store.rpush("shared", f"{name}:{i}")
    if i % 10 == 0:
        with store.pipeline() as pipe:
            pipe.lpush("heads", f"{name}:{i}").hsetnx("first", "writer", name)
store.close()
print("done", flush=True)
"""


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def applied(store: AbsKvStore, i: int, items: list[str]) -> list[bool]:
    """Which parts of write ``i`` are in the store (string, hash field, list item)."""
    kind = i % 4
    parts = []
    if kind in (0, 3):
        parts.append(store.get(f"s{i}") == str(i))
    if kind in (1, 3):
        parts.append(store.hget("h", f"f{i}") == str(i))
    if kind in (2, 3):
        parts.append(str(i) in items)
    return parts


def run_writer_until_killed(script: Path, url: str, first: int, kill_after: int) -> list[int]:
    """Start the writer, SIGKILL it after ``kill_after`` reports; every write it reported."""
    proc = subprocess.Popen([sys.executable, str(script), url, str(first)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        done = [int(proc.stdout.readline()) for _ in range(kill_after)]
        os.kill(proc.pid, signal.SIGKILL)
        # what it printed before dying; a last line cut by the kill does not count
        done += [int(line) for line in proc.stdout.read().split("\n")[:-1]]
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return done


@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_every_write_reported_done_survives_sigkill_and_the_file_stays_sound(
        tmp_path: Path, synchronous: str) -> None:
    path = tmp_path / "state.db"
    url = f"sqlite://{path}?synchronous={synchronous}"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(11)
    all_done: list[int] = []
    items: list[str] = []
    first = 0
    for _ in range(3):
        done = run_writer_until_killed(script, url, first, kill_after=rng.randint(15, 120))
        assert done == list(range(first, first + len(done)))
        in_flight = done[-1] + 1
        all_done += done
        assert integrity(path) == "ok"
        with open_store(url) as store:
            now = store.lrange("l", 0, -1)
            reported = items + [str(i) for i in done if i % 4 in (2, 3)]
            # the list holds what was reported, plus perhaps the write under way
            assert now in (reported, [*reported, str(in_flight)])
            items = now
            for i in all_done:
                assert all(applied(store, i, items)), i
            # the write under way at the kill is all there or not at all (a pipeline too)
            assert len(set(applied(store, in_flight, items))) == 1
            assert applied(store, in_flight + 1, items) == [False] * len(
                applied(store, in_flight + 1, items))
        first = in_flight + 1


def test_two_processes_writing_the_same_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    url = f"sqlite://{path}?synchronous=normal"
    script = tmp_path / "twin.py"
    script.write_text(TWIN)
    n = 300
    procs = [subprocess.Popen([sys.executable, str(script), url, name, str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for name in ("a", "b")]

    def tell_both(word: str, then_expect: str | None) -> None:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{word}\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.stdout is not None
            if then_expect:
                assert proc.stdout.readline() == then_expect

    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "waiting\n"
        tell_both("open", "opened\n")
        tell_both("write", None)
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    assert [out for out, _ in outputs] == ["done\n", "done\n"]
    assert integrity(path) == "ok"
    with open_store(url) as store:
        for name in ("a", "b"):
            names = [f"{name}:{i}" for i in range(n)]
            assert store.mget(names) == [str(i) for i in range(n)]
            assert store.hmget("h", names) == [str(i) for i in range(n)]
        shared = store.lrange("shared", 0, -1)
        assert len(shared) == 2 * n
        for name in ("a", "b"):
            assert [x for x in shared if x.startswith(name)] == [f"{name}:{i}" for i in range(n)]
        assert store.hlen("h") == 2 * n
        assert sorted(store.lrange("heads", 0, -1)) == sorted(
            f"{name}:{i}" for name in "ab" for i in range(0, n, 10))
        assert store.hget("first", "writer") in ("a", "b")


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_threads_sharing_one_store_lose_nothing(tmp_path: Path, url: str) -> None:
    if url == "sqlite":
        url = f"sqlite://{tmp_path}/state.db?synchronous=normal"
    threads, n = 4, 150
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    with open_store(url) as store:

        def work(t: int) -> None:
            try:
                barrier.wait()
                for i in range(n):
                    store.rpush("l", f"{t}:{i}")
                    store.hset("h", f"{t}:{i}", i)
                    with store.pipeline() as pipe:
                        pipe.lpush("l2", i).set(f"{t}:last", i)
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert errors == []
        items = store.lrange("l", 0, -1)
        assert len(items) == threads * n
        for t in range(threads):
            assert [x for x in items if x.startswith(f"{t}:")] == [f"{t}:{i}" for i in range(n)]
        assert store.hlen("h") == threads * n
        assert store.llen("l2") == threads * n
        assert store.mget([f"{t}:last" for t in range(threads)]) == [str(n - 1)] * threads
