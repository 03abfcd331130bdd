"""Live trading through Redis Streams: latency XADD -> on_bar, and sustained throughput.

Rows (every finchan row with durable state: ``state.db`` committed per batch,
``synchronous=FULL``, then ``XACK``):

* ``latency``: a publisher process XADDs bar messages at 1,000 and 10,000
  msg/s (30 s each; ``--quick``: 2 s) whose ``ts`` is the wall time of the
  XADD; the live run's SmaCross strategy handles each bar and a handler right
  after it records ``time.time() - bar.timestamp``: p50, p99, max.
* ``baseline latency``: the same publisher, read by redis-py asyncio alone
  (``XREAD BLOCK``), same measure: the floor any Redis reader pays.
* ``throughput``: a backlog of N messages drained by the live run (SmaCross,
  durable state): bars per second from the first bar to the last, and a
  check that every message reached on_bar exactly once.
* ``baseline throughput``: the same backlog drained by redis-py alone
  (``XREADGROUP COUNT 1000`` + ``XACK``).
* ``restart``: the live run of the throughput row started again on its
  journal (200,000 bars; ``--quick``: 20,000) with one new message waiting:
  seconds from building the Env to the first new batch handled, from the
  latest snapshot (the journal's tail after it handed to the handlers) and,
  for comparison, from the whole journal (``snapshot_bars: 0``); both must
  end with the same fills.

Targets (issue 11): p99 < 1 ms at 1,000 msg/s; >= 50,000 bars/s sustained.

Run ``python bench/live.py [--quick]``; ``run(quick)`` returns the rows.
Redis at ``FINCHAN_BENCH_REDIS`` (default ``redis://127.0.0.1:6379/14``);
only keys ``finchan-bench:live:*`` are written, and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

__all__ = ["main", "run"]

_REDIS_URL = os.environ.get("FINCHAN_BENCH_REDIS", "redis://127.0.0.1:6379/14")
_PREFIX = "finchan-bench:live:"


def _message(ts: float, i: int) -> dict[str, str]:
    price = 100.0 + (i % 100) * 0.01
    return {"symbol": "LIVE", "ts": repr(ts), "open": repr(price), "high": repr(price + 0.05),
            "low": repr(price - 0.05), "close": repr(price + 0.01), "volume": "100.0"}  # fmt: skip


def _publish(url: str, stream: str, rate: float, seconds: float, go: Any) -> None:
    """XADD at ``rate`` msg/s for ``seconds`` (own process) once ``go`` is set; ts = XADD time."""
    import redis

    client = redis.Redis.from_url(url)
    go.wait(60)
    start = time.monotonic()
    total = int(rate * seconds)
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        if due <= sent:
            time.sleep(max(0.0, start + sent / rate - time.monotonic()))
            continue
        pipe = client.pipeline(transaction=False)
        for i in range(sent, due):
            pipe.xadd(stream, _message(time.time(), i))  # type: ignore[arg-type]
        pipe.execute()
        sent = due
    client.close()


def _backlog(url: str, stream: str, n: int) -> None:
    import redis

    client = redis.Redis.from_url(url)
    for start in range(0, n, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(n, start + 1000)):
            pipe.xadd(stream, _message(1_600_000_000.0 + i * 60, i))  # type: ignore[arg-type]
        pipe.execute()
    client.close()


def _live_env(
    url: str, stream: str, work: Path, idle: float, snapshot_bars: int = 20_000
) -> Any:
    from finchan.env import Env

    env = Env(
        {
            "run_mode": "live",
            "work_dir": str(work),
            "enabled_live_exts": ["finchan.exts.redis_stream", "finchan.exts.strategy"],
            "live_exts": {
                "finchan.exts.redis_stream": {
                    "url": url, "streams": [stream], "idle_timeout": idle, "block": 0.05,
                    "status_interval": 0, "snapshot_bars": snapshot_bars,
                },
                "finchan.exts.sim_broker": {"cash": 1_000_000},
                "finchan.exts.strategy": {
                    "class": "finchan.trade.examples:SmaCross",
                    "params": {"fast": 10, "slow": 30, "qty": 1},
                    "report": False, "name": stream.rsplit(":", 1)[-1],
                },
            },
        }
    )  # fmt: skip
    env.quiet = True
    return env


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    return {
        "p50_ms": statistics.median(values) * 1000,
        "p99_ms": values[min(len(values) - 1, int(len(values) * 0.99))] * 1000,
        "max_ms": values[-1] * 1000,
    }


def _latency_finchan(url: str, rate: float, seconds: float, work: Path) -> dict[str, Any]:
    stream = f"{_PREFIX}{uuid.uuid4().hex}"
    env = _live_env(url, stream, work, idle=1.0)
    delays: list[float] = []
    now = time.time
    env.load_exts()
    env.dispatcher.subscribe("bar", lambda bar: delays.append(now() - bar.timestamp))
    go = multiprocessing.Event()
    # the run is started (and its reader connecting) before the first message
    env.dispatcher.subscribe("system_event.system_started", lambda event: go.set())
    publisher = multiprocessing.Process(target=_publish, args=(url, stream, rate, seconds, go))
    publisher.start()
    try:
        env.run()
    finally:
        publisher.join()
        _delete(url, stream)
    return {"case": f"latency {rate:,.0f} msg/s", "reader": "finchan (durable state)",
            "messages": len(delays), "expected": int(rate * seconds),
            **_percentiles(delays)}  # fmt: skip


def _latency_baseline(url: str, rate: float, seconds: float) -> dict[str, Any]:
    import redis.asyncio as aioredis

    stream = f"{_PREFIX}{uuid.uuid4().hex}"
    total = int(rate * seconds)
    delays: list[float] = []

    async def read() -> None:
        client = aioredis.Redis.from_url(url)
        await client.ping()
        go.set()
        last: Any = "0-0"
        while len(delays) < total:
            reply: Any = await client.xread({stream: last}, count=1000, block=2000)
            if not reply:
                break
            for _, entries in reply:
                for msg_id, fields in entries:
                    delays.append(time.time() - float(fields[b"ts"]))
                    last = msg_id
        await client.aclose()

    go = multiprocessing.Event()
    publisher = multiprocessing.Process(target=_publish, args=(url, stream, rate, seconds, go))
    publisher.start()
    try:
        asyncio.run(read())
    finally:
        publisher.join()
        _delete(url, stream)
    return {"case": f"latency {rate:,.0f} msg/s", "reader": "redis-py asyncio XREAD",
            "messages": len(delays), "expected": total, **_percentiles(delays)}  # fmt: skip


def _restart(url: str, stream: str, work: Path, n: int, snapshot_bars: int) -> dict[str, Any]:
    """Start the live run again on its journal; seconds to the first new batch handled."""
    from finchan.trade.exts.redis_stream import BATCH_EVENT

    clock = time.perf_counter
    first: list[float] = []
    start = clock()
    env = _live_env(url, stream, work, idle=0.2, snapshot_bars=snapshot_bars)
    env.load_exts()
    env.dispatcher.subscribe(BATCH_EVENT, lambda event: first.append(clock()))
    env.run()
    fills = len(env.get_ext_obj("finchan.exts.sim_broker").broker.fills)
    how = "latest snapshot" if snapshot_bars else "whole journal"
    return {"case": f"restart on a journal of {n:,}", "reader": f"finchan ({how})",
            "messages": len(first), "expected": 1,
            "restart_s": first[0] - start if first else float("nan"), "fills": fills}  # fmt: skip


def _throughput_finchan(
    url: str, n: int, work: Path, restart_bars: int = 0
) -> list[dict[str, Any]]:
    stream = f"{_PREFIX}{uuid.uuid4().hex}"
    _backlog(url, stream, n)
    env = _live_env(url, stream, work, idle=0.5)
    seen: list[float] = []
    env.load_exts()
    clock = time.perf_counter
    env.dispatcher.subscribe("bar", lambda bar: seen.append(clock()))
    restarts = []
    try:
        env.run()
        if restart_bars:
            restarts = _restarts(url, stream, work, restart_bars)
    finally:
        _delete(url, stream)
    from finchan.trade.journal import read_status

    committed = read_status(env.get_ext_obj("finchan.exts.strategy").run_dir)["bars"]
    seconds = seen[-1] - seen[0] if len(seen) > 1 else float("nan")
    return [{"case": f"throughput, backlog of {n:,}", "reader": "finchan (durable state)",
             "messages": len(seen), "expected": n, "bars_per_s": (len(seen) - 1) / seconds,
             "committed": committed}, *restarts]  # fmt: skip


def _restarts(url: str, stream: str, work: Path, n: int) -> list[dict[str, Any]]:
    """Restart rows on a journal of ``n`` bars (the drained backlog, topped up)."""
    import shutil

    import redis

    client = redis.Redis.from_url(url)
    live = work / "live" / stream.rsplit(":", 1)[-1]
    rows = []
    for snapshot_bars in (20_000, 0):
        # the same journal for both: a copy of the live directory before each restart
        copy = work / f"restart-{snapshot_bars}"
        shutil.copytree(live, copy)
        client.xadd(stream, _message(1_600_000_000.0 + (n + snapshot_bars) * 60, n))  # type: ignore[arg-type]
        rows.append(_restart(url, stream, work, n, snapshot_bars))
        shutil.rmtree(live)
        copy.rename(live)
    client.close()
    return rows


def _throughput_baseline(url: str, n: int) -> dict[str, Any]:
    import redis.asyncio as aioredis

    stream = f"{_PREFIX}{uuid.uuid4().hex}"
    _backlog(url, stream, n)

    async def drain() -> tuple[int, float]:
        client = aioredis.Redis.from_url(url)
        await client.xgroup_create(stream, "g", id="0")
        got = 0
        start = time.perf_counter()
        while got < n:
            reply: Any = await client.xreadgroup("g", "c", {stream: ">"}, count=1000, block=1000)
            if not reply:
                break
            for _, entries in reply:
                got += len(entries)
                await client.xack(stream, "g", *[e[0] for e in entries])
        seconds = time.perf_counter() - start
        await client.aclose()
        return got, seconds

    try:
        got, seconds = asyncio.run(drain())
    finally:
        _delete(url, stream)
    return {"case": f"throughput, backlog of {n:,}", "reader": "redis-py XREADGROUP+XACK",
            "messages": got, "expected": n, "bars_per_s": got / seconds}  # fmt: skip


def _delete(url: str, stream: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.delete(stream, f"{stream}:dead")
    client.close()


def run(quick: bool = False) -> list[dict[str, Any]]:
    """The rows: latency at 1,000 and 10,000 msg/s and throughput, finchan beside redis-py."""
    import logging

    logging.getLogger("finchan").setLevel(logging.ERROR)
    url = _REDIS_URL
    seconds = 2.0 if quick else 30.0
    backlog = 20_000 if quick else 200_000
    rows = []
    with tempfile.TemporaryDirectory(prefix="finchan-bench-live-") as tmp:
        work = Path(tmp)
        for rate in (1_000.0, 10_000.0):
            rows.append(_latency_baseline(url, rate, seconds))
            rows.append(_latency_finchan(url, rate, seconds, work))
        rows.append(_throughput_baseline(url, backlog))
        rows += _throughput_finchan(url, backlog, work, restart_bars=backlog)
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        figures = ", ".join(
            f"{key} {value:,.3f}" if isinstance(value, float) else f"{key} {value}"
            for key, value in row.items()
            if key not in ("case", "reader")
        )
        print(f"{row['case']:<32} {row['reader']:<26} {figures}")
    lost = [row for row in rows if row["messages"] != row["expected"]
            or row.get("committed", row["expected"]) != row["expected"]]  # fmt: skip
    p99 = next(r["p99_ms"] for r in rows if r["case"].startswith("latency 1,000")
               and r["reader"].startswith("finchan"))  # fmt: skip
    rate = next(r["bars_per_s"] for r in rows if r["case"].startswith("throughput")
                and r["reader"].startswith("finchan"))  # fmt: skip
    print(f"target p99 < 1 ms at 1,000 msg/s: {p99:.3f} ms {'PASS' if p99 < 1 else 'FAIL'}")
    print(f"target >= 50,000 bars/s sustained: {rate:,.0f} {'PASS' if rate >= 50_000 else 'FAIL'}")
    restart = next((r["restart_s"] for r in rows if r["reader"] == "finchan (latest snapshot)"),
                   float("nan"))  # fmt: skip
    print(f"target restart < 1 s: {restart:.3f} s {'PASS' if restart < 1 else 'FAIL'}")
    print("nothing lost: " + ("PASS" if not lost else f"FAIL ({len(lost)} row(s))"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s per rate, 20,000-bar backlog")
    args = parser.parse_args(argv)
    rows = run(args.quick)
    _print(rows)
    whole = all(
        row["messages"] == row["expected"] == row.get("committed", row["expected"]) for row in rows
    )
    return 0 if whole else 1


if __name__ == "__main__":
    sys.exit(main())
