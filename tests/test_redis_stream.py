"""Live trading through Redis Streams: the backtest's fills, dead letters, a lost server.

Real parts only: the shared Redis at 127.0.0.1:6379 (databases 1 and 2 of
this test file; every stream key carries a uuid and is deleted), real
``finchan publish`` and ``finchan --mode live`` subprocesses, and a
``redis-server`` of the test's own on a spare port for the connection loss.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from finchan_testing import ROOT, TEST_EXTS, services_required

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]

REDIS = "redis://127.0.0.1:6379"
DB_INPROCESS = 1
DB_SUBPROCESS = 2
DB_STATE = 3  # live state kept in Redis
OWN_PORTS = range(16400, 16500)


def _require_redis(url: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        message = f"no Redis server at {url}: {exc}"
        if services_required():
            pytest.fail(f"{message} (FINCHAN_REQUIRE_SERVICES=1 requires it)", pytrace=False)
        pytest.skip(message)


@pytest.fixture
def stream_keys() -> Iterator[list[str]]:
    """Unique stream keys for a test; deleted (with their dead letters) afterwards."""
    import redis

    keys: list[str] = []
    yield keys
    for db in (DB_INPROCESS, DB_SUBPROCESS):
        client = redis.Redis.from_url(f"{REDIS}/{db}")
        try:
            names = [k for key in keys for k in (key, f"{key}:dead")]
            if names:
                client.delete(*names)
        except redis.ConnectionError:
            pass
        client.close()


def _key(keys: list[str], label: str) -> str:
    key = f"finchan-test:{label}:{uuid.uuid4().hex}"
    keys.append(key)
    return key


def _dump(path: Path, data: dict) -> Path:
    yaml = YAML(typ="safe", pure=True)
    with path.open("w", encoding="utf-8") as stream:
        yaml.dump(data, stream)
    return path


def _finchan(*args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "finchan", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(TEST_EXTS)},
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 90) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"finchan {proc.args} did not end; stderr: {err}") from None
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}: {err}"
    return out, err


def _wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _sma_config(tmp_path: Path, data: Path, url: str, stream: str, idle: float) -> Path:
    strategy = {
        "class": "finchan.trade.examples:SmaCross",
        "params": {"fast": 10, "slow": 30, "qty": 100},
        "report": False,
    }
    return _dump(
        tmp_path / "finchan.yml",
        {
            "version": 1,
            "work_dir": str(tmp_path / "work"),
            "enabled_backtest_exts": ["finchan.exts.bars", "finchan.exts.strategy"],
            "enabled_live_exts": ["finchan.exts.redis_stream", "finchan.exts.strategy"],
            "backtest_exts": {
                "finchan.exts.bars": {"files": [str(data)]},
                "finchan.exts.sim_broker": {"cash": 1_000_000},
                "finchan.exts.strategy": strategy,
            },
            "live_exts": {
                "finchan.exts.redis_stream": {
                    "url": url,
                    "streams": [stream],
                    "idle_timeout": idle,
                    "batch": 200,
                },
                "finchan.exts.sim_broker": {"cash": 1_000_000},
                "finchan.exts.strategy": strategy,
            },
        },
    )


def _sma_data(path: Path, n: int = 3000, start: int = 0, stop: int | None = None) -> Path:
    from finchan.trade._synthetic import make_bars

    path.parent.mkdir(parents=True, exist_ok=True)
    make_bars(n).iloc[start:stop].to_csv(path, index=False)
    return path


def _backtest_fills(config: Path) -> bytes:
    _finish(_finchan("-c", str(config), "-q"))
    (run_dir,) = (config.parent / "work" / "runs").iterdir()
    return (run_dir / "fills.csv").read_bytes()


def _live_dir(config: Path, name: str) -> Path:
    run_dir = config.parent / "work" / "live" / name
    assert not (run_dir / "INCOMPLETE").exists()
    return run_dir


# --------------------------------------------------------------------- same fills


def test_sma_cross_live_through_redis_fills_as_the_backtest(tmp_path, stream_keys):
    url = f"{REDIS}/{DB_SUBPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "sma")
    data = _sma_data(tmp_path / "data" / "SYN.csv")
    config = _sma_config(tmp_path, data, url, stream, idle=3.0)
    expected = _backtest_fills(config)
    assert expected.count(b"\n") > 50  # the comparison is about real trading
    # the live run and the publisher start together: bars flow while it trades
    live = _finchan("-c", str(config), "--mode", "live", "-q")
    publisher = _finchan("publish", str(data), "--redis", url, "--stream", stream, "-q")
    _finish(publisher)
    _finish(live)
    run_dir = _live_dir(config, "SmaCross")
    assert (run_dir / "fills.csv").read_bytes() == expected
    (backtest_dir,) = (tmp_path / "work" / "runs").iterdir()
    for name in ("orders.csv", "trades.csv", "equity.csv", "summary.json"):
        assert (run_dir / name).read_bytes() == (backtest_dir / name).read_bytes(), name


def test_multi_symbol_limit_stop_orders_live_fill_as_the_backtest(tmp_path, stream_keys):
    url = f"{REDIS}/{DB_SUBPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "multi")
    example = ROOT / "examples" / "multi_symbol"
    yaml = YAML(typ="safe", pure=True)
    config = yaml.load((example / "finchan.yml").read_text(encoding="utf-8"))
    files = [str(example / f) for f in config["backtest_exts"]["finchan.exts.bars"]["files"]]
    config["work_dir"] = str(tmp_path / "work")
    config["ext_manager"]["ext_paths"] = [str(example)]
    config["backtest_exts"]["finchan.exts.bars"]["files"] = files
    config["backtest_exts"]["finchan.exts.strategy"]["report"] = False
    live = {k: v for k, v in config["backtest_exts"].items() if k != "finchan.exts.bars"}
    live["finchan.exts.redis_stream"] = {"url": url, "streams": [stream], "idle_timeout": 1.0}
    config["live_exts"] = live
    config["enabled_live_exts"] = ["finchan.exts.redis_stream", "finchan.exts.strategy"]
    path = _dump(tmp_path / "finchan.yml", config)
    expected = _backtest_fills(path)
    orders = next((tmp_path / "work" / "runs").iterdir()) / "orders.csv"
    kinds = orders.read_text(encoding="utf-8")
    assert "limit" in kinds.lower() and "stop" in kinds.lower()
    _finish(_finchan("publish", *files, "--timeframe", "1D", "--redis", url, "--stream", stream))
    _finish(_finchan("-c", str(path), "--mode", "live", "-q"))
    assert (_live_dir(path, "Breakout") / "fills.csv").read_bytes() == expected


# ------------------------------------------------------------ malformed and poison


def _run_live_inprocess(
    tmp_path: Path,
    options: dict,
    save: bool = False,
    params: dict | None = None,
    name: str | None = None,
) -> object:
    from finchan.env import Env

    env = Env(
        {
            "work_dir": str(tmp_path / "work"),
            "run_mode": "live",
            "enabled_live_exts": ["finchan.exts.redis_stream", "finchan.exts.strategy"],
            "live_exts": {
                "finchan.exts.redis_stream": options,
                "finchan.exts.strategy": {
                    "class": "finchan.trade.examples:SmaCross",
                    "params": params or {"fast": 2, "slow": 3, "qty": 1},
                    "save": save,
                    "report": False,
                    **({"name": name} if name else {}),
                },
            },
        }
    )
    env.quiet = True
    env.run()
    return env


def test_malformed_and_poison_messages_go_to_the_dead_letter_stream(
    tmp_path, stream_keys, caplog
):
    import redis

    url = f"{REDIS}/{DB_INPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "dead")
    client = redis.Redis.from_url(url, decode_responses=True)
    client.xgroup_create(stream, "finchan", id="0", mkstream=True)
    poison = client.xadd(stream, {"symbol": "X", "ts": "1", "open": "1", "high": "1",
                                  "low": "1", "close": "1"})  # fmt: skip
    # delivered to this consumer 3 times and never acknowledged: a crash loop
    for _ in range(3):
        client.xreadgroup("finchan", "finchan", {stream: "0" if _ else ">"}, count=10)
    good = []
    for i in range(6):
        good.append(client.xadd(stream, {"symbol": "X", "ts": str(100 + i), "open": "1",
                                         "high": "2", "low": "0.5", "close": str(1 + i)}))  # fmt: skip
    no_close = client.xadd(stream, {"symbol": "X", "ts": "200", "open": "1", "high": "1",
                                    "low": "1"})  # fmt: skip
    bad_number = client.xadd(stream, {"symbol": "X", "ts": "201", "open": "one", "high": "1",
                                      "low": "1", "close": "1"})  # fmt: skip
    good.append(client.xadd(stream, {"symbol": "X", "datetime": "2020-01-01T00:00:00",
                                     "open": "1", "high": "1", "low": "1", "close": "9"}))  # fmt: skip
    env = _run_live_inprocess(
        tmp_path, {"url": url, "streams": [stream], "idle_timeout": 0.3, "max_deliveries": 3}
    )
    source = env.get_ext_obj("finchan.exts.redis_stream")
    dead = client.xrange(f"{stream}:dead")
    assert [(f["dead.id"], f["dead.stream"]) for _, f in dead] == [
        (poison, stream),
        (no_close, stream),
        (bad_number, stream),
    ]
    reasons = [f["dead.reason"] for _, f in dead]
    assert reasons[0] == "delivered 4 times (max_deliveries 3)"
    assert reasons[1] == "no 'close' field"
    assert reasons[2] == "open 'one' is not a number"
    assert dead[2][1]["open"] == "one"  # the message itself is kept
    assert source.dead_lettered == 3
    # the run went on: every good bar reached the strategy, all acknowledged
    account = env.get_ext_obj("finchan.exts.sim_broker")
    assert list(account.times) == [100.0, 101, 102, 103, 104, 105, 1577836800.0]
    assert client.xpending(stream, "finchan")["pending"] == 0
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"message {stream} {no_close} moved to dead-letter stream {stream}:dead" in logged
    client.close()


def test_a_restart_from_a_snapshot_gives_the_fills_and_order_ids_of_the_full_journal(
    tmp_path, stream_keys, caplog
):
    import sqlite3

    import redis

    from finchan.trade._synthetic import make_bars

    url = f"{REDIS}/{DB_INPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "snap")
    client = redis.Redis.from_url(url, decode_responses=True)
    bars = make_bars(600)

    def publish(frame) -> None:
        pipe = client.pipeline()
        for row in frame.itertuples():
            pipe.xadd(stream, {"symbol": "SYN", "datetime": row.datetime,
                               "open": repr(row.open), "high": repr(row.high),
                               "low": repr(row.low), "close": repr(row.close),
                               "volume": repr(float(row.volume))})  # fmt: skip
        pipe.execute()

    # the state in Redis (db 3 of this file, keys of a unique run name): same results
    redis_name = f"SmaCross-{uuid.uuid4().hex}"
    state_url = f"{REDIS}/{DB_STATE}"

    def run(where: str, group: str, snapshot_bars: int) -> object:
        options = {"url": url, "streams": [stream], "idle_timeout": 0.3, "batch": 50,
                   "group": group, "snapshot_bars": snapshot_bars, "status_interval": 0}  # fmt: skip
        if where == "redis":
            options["state"] = state_url
            return _run_live_inprocess(tmp_path / where, options, save=True, name=redis_name)
        return _run_live_inprocess(tmp_path / where, options, save=True)

    publish(bars.iloc[:400])
    run("snap", "snap", 150)  # snapshots at 150, 300 and at the clean stop (400)
    run("redis", "redis", 150)
    snap_dir = tmp_path / "snap" / "work" / "live" / "SmaCross"
    full_dir = tmp_path / "full" / "work" / "live" / "SmaCross"
    full_dir.mkdir(parents=True)
    shutil.copy(snap_dir / "state.db", full_dir / "state.db")
    db = sqlite3.connect(full_dir / "state.db")
    assert db.execute("SELECT seq FROM snapshot").fetchall() == [(400,)]
    with db:
        db.execute("DELETE FROM snapshot")
    db.close()
    publish(bars.iloc[400:])
    caplog.clear()
    # one restarts from the snapshot, the other hands the whole journal to the handlers
    run("snap", "snap", 150)
    run("full", "full", 0)  # a new group reads all 600; the 400 applied are skipped
    run("redis", "redis", 150)
    redis_dir = tmp_path / "redis" / "work" / "live" / redis_name
    state_client = redis.Redis.from_url(state_url)
    keys: list[str] = []
    try:
        keys = sorted(k.decode() for k in state_client.keys(f"finchan:live:{redis_name}:*"))
        assert [k.rsplit(":", 1)[1] for k in keys] == [
            "input", "journal", "snapshot", "snapshot_parts", "status"
        ]
        assert state_client.llen(f"finchan:live:{redis_name}:journal") == 600
    finally:
        if keys:
            state_client.delete(*keys)
        state_client.close()
    for name in ("fills.csv", "orders.csv"):
        assert (redis_dir / name).read_bytes() == (snap_dir / name).read_bytes(), name
    logged = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert [m.split(" in ")[0] for m in logged] == [
        "finchan.exts.redis_stream: recovered 400 bars (400 from a snapshot, 0 from the journal)",
        "finchan.exts.redis_stream: recovered 400 bars (0 from a snapshot, 400 from the journal)",
        "finchan.exts.redis_stream: recovered 400 bars (400 from a snapshot, 0 from the journal)",
    ]
    for name in ("fills.csv", "orders.csv", "equity.csv", "trades.csv"):
        assert (snap_dir / name).read_bytes() == (full_dir / name).read_bytes(), name
    orders = (snap_dir / "orders.csv").read_text().splitlines()
    assert len(orders) > 50  # SMA 2/3 on 600 bars: many orders, ids continuing
    client.close()


def test_timer_events_are_journaled_and_replayed_at_their_place(tmp_path, stream_keys):
    import sqlite3
    import threading

    import redis

    from finchan.env import Env
    from finchan.trade.journal import replay_live_run

    url = f"{REDIS}/{DB_INPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "timer")
    client = redis.Redis.from_url(url, decode_responses=True)
    env = Env(
        {
            "work_dir": str(tmp_path / "work"),
            "run_mode": "live",
            "enabled_live_exts": [
                "finchan.exts.timer_source",
                "finchan.exts.redis_stream",
                "finchan.exts.strategy",
            ],
            "live_exts": {
                "finchan.exts.redis_stream": {
                    "url": url, "streams": [stream], "block": 0.05, "status_interval": 0,
                },
                "finchan.exts.strategy": {"class": "stateful_sma:Ticking", "report": False},
            },
        }
    )
    env.quiet = True

    def publish() -> None:
        # bars spread over ~2.5 s, so 1-second timer events fall between them
        _wait_for(lambda: client.exists(stream), "the consumer group")
        for i in range(50):
            price = str(100 + i % 7)
            client.xadd(stream, {"symbol": "T", "ts": str(60 * i), "open": price,
                                 "high": price, "low": price, "close": price})  # fmt: skip
            time.sleep(0.05)  # the publisher's pace, not a synchronisation
        # the timer keeps a live run going: stop it (as SIGTERM would) once all is committed
        state_db = tmp_path / "work" / "live" / "Ticking" / "state.db"
        _wait_for(lambda: _journal_count(state_db) >= 50, "the 50 bars committed")
        env.dispatcher.stop()

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        env.run()
    finally:
        publisher.join()
    live_dir = tmp_path / "work" / "live" / "Ticking"
    db = sqlite3.connect(live_dir / "state.db")
    events = db.execute("SELECT pos, name, data FROM events ORDER BY n").fetchall()
    db.close()
    state = json.loads((live_dir / "state.json").read_text())
    assert state["bars"] == 50
    # every timer event is in the journal with its place among the bars
    assert [name for _, name, _ in events] == ["timer_source.timer"] * len(state["ticks"])
    assert [pos for pos, _, _ in events] == state["ticks"]
    assert any(0 < pos < 50 for pos in state["ticks"]), state
    assert (live_dir / "fills.csv").read_text().count("\n") > 1
    replay_dir = replay_live_run(live_dir, quiet=True)
    assert (replay_dir / "fills.csv").read_bytes() == (live_dir / "fills.csv").read_bytes()
    assert (replay_dir / "state.json").read_bytes() == (live_dir / "state.json").read_bytes()
    client.close()


def test_several_streams_one_per_symbol_without_a_symbol_field(tmp_path, stream_keys):
    import redis

    url = f"{REDIS}/{DB_INPROCESS}"
    _require_redis(url)
    acme, globex = _key(stream_keys, "ACME"), _key(stream_keys, "GLOBEX")
    client = redis.Redis.from_url(url, decode_responses=True)
    for i in range(3):
        for key, price in ((acme, 10 + i), (globex, 50 + i)):
            client.xadd(key, {"ts": str(60 * i), "open": str(price), "high": str(price),
                              "low": str(price), "close": str(price), "volume": "5"})  # fmt: skip
    env = _run_live_inprocess(
        tmp_path, {"url": url, "streams": {acme: "ACME", globex: "GLOBEX"}, "idle_timeout": 0.3}
    )
    account = env.get_ext_obj("finchan.exts.sim_broker")
    assert {s: list(p[1]) for s, p in account.prices.items()} == {
        "ACME": [10.0, 11.0, 12.0],
        "GLOBEX": [50.0, 51.0, 52.0],
    }
    for key in (acme, globex):
        assert client.xpending(key, "finchan")["pending"] == 0
    client.close()


def test_a_live_directory_refuses_another_strategys_journal(tmp_path, stream_keys):
    import redis

    from finchan.errors import ConfigError

    url = f"{REDIS}/{DB_INPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "other")
    client = redis.Redis.from_url(url)
    client.xadd(stream, {"symbol": "X", "ts": "60", "open": "1", "high": "1", "low": "1",
                         "close": "1"})  # fmt: skip
    client.close()
    options = {"url": url, "streams": [stream], "idle_timeout": 0.2, "block": 0.1}
    _run_live_inprocess(tmp_path, options, save=True)
    state = tmp_path / "work" / "live" / "SmaCross" / "state.db"
    from finchan.trade.journal import read_status

    assert read_status(state.parent)["bars"] == 1
    with pytest.raises(ConfigError, match=r"state.db holds the journal of .*'fast': 2.* not of .*'fast': 5"):
        _run_live_inprocess(tmp_path, options, save=True, params={"fast": 5, "slow": 6, "qty": 1})
    # the same strategy resumes: its bar is not handled twice
    _run_live_inprocess(tmp_path, options, save=True)
    assert read_status(state.parent)["bars"] == 1


def test_live_result_files_are_refreshed_while_the_run_goes(tmp_path, stream_keys, caplog):
    import redis

    from finchan.env import Env

    url = f"{REDIS}/{DB_INPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "refresh")
    caplog.set_level("INFO", logger="finchan")
    client = redis.Redis.from_url(url)
    for i in range(40):
        client.xadd(stream, {"symbol": "X", "ts": str(60 * i), "open": "1", "high": "1",
                             "low": "1", "close": str(10 + (i // 5) % 2)})  # fmt: skip
    client.close()
    env = Env(
        {
            "work_dir": str(tmp_path / "work"),
            "run_mode": "live",
            "enabled_live_exts": ["finchan.exts.redis_stream", "finchan.exts.strategy"],
            "live_exts": {
                # the shared server's default user takes any password: this one
                # must not reach the live directory's config.yml
                "finchan.exts.redis_stream": {"url": url.replace("//", "//:hunter2@"),
                                              "streams": [stream], "batch": 10,
                                              "idle_timeout": 0.2, "block": 0.1,
                                              "results_interval": 0.001,
                                              "status_interval": 0.001},
                "finchan.exts.strategy": {"class": "finchan.trade.examples:SmaCross",
                                          "params": {"fast": 2, "slow": 3, "qty": 1},
                                          "report": False},
            },
        }
    )  # fmt: skip
    env.quiet = True
    live_dir = tmp_path / "work" / "live" / "SmaCross"
    seen = {}
    # SYSTEM_EXITING comes before the final write: what is there was refreshed
    env.load_exts()
    env.dispatcher.subscribe(
        "system_event.system_will_exit",
        lambda event: seen.update((p.name, p.read_bytes()) for p in live_dir.glob("*.csv")),
    )
    env.run()
    assert sorted(seen) == ["equity.csv", "fills.csv", "open_trades.csv", "orders.csv", "trades.csv"]
    assert seen["fills.csv"].count(b"\n") > 2
    assert seen["fills.csv"] == (live_dir / "fills.csv").read_bytes()
    assert not (live_dir / ".refresh").exists()
    statuses = [r.getMessage() for r in caplog.records if r.getMessage().startswith("status:")]
    assert statuses, "no status line in the log"
    assert re.fullmatch(
        r"status: \d+ bars, \d+ bars/s, lag \d+, open orders \d+, positions .+, equity [\d.]+",
        statuses[-1],
    ), statuses[-1]
    assert statuses[-1].startswith("status: 40 bars")
    config = (live_dir / "config.yml").read_text(encoding="utf-8")
    assert "hunter2" not in config
    assert "url: redis://:***@127.0.0.1:6379/1" in config


def test_malformed_message_stops_the_run_when_asked(tmp_path, stream_keys):
    import redis

    from finchan.errors import DataError

    url = f"{REDIS}/{DB_INPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "stop")
    client = redis.Redis.from_url(url, decode_responses=True)
    bad = client.xadd(stream, {"symbol": "X", "ts": "soon", "open": "1", "high": "1",
                               "low": "1", "close": "1"})  # fmt: skip
    options = {"url": url, "streams": [stream], "idle_timeout": 5, "on_malformed": "stop"}
    with pytest.raises(DataError, match=f"malformed message {stream} {bad}: ts 'soon' is not a"):
        _run_live_inprocess(tmp_path, options)
    assert client.xpending(stream, "finchan")["pending"] == 1  # not acknowledged: not lost
    client.close()


# --------------------------------------------------------------- connection loss


class _OwnRedis:
    """A redis-server of the test's own on a spare loopback port, without persistence."""

    def __init__(self, tmp_path: Path) -> None:
        if shutil.which("redis-server") is None:
            if services_required():
                pytest.fail("redis-server is not installed", pytrace=False)
            pytest.skip("redis-server is not installed")
        self.dir = tmp_path
        self.port = self._spare_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def _spare_port() -> int:
        for port in OWN_PORTS:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise AssertionError("no spare port in 16400-16499")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip

        def up() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
            except redis.ConnectionError:
                return False

        _wait_for(up, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def test_lost_redis_connection_is_logged_and_nothing_is_lost(tmp_path, stream_keys):
    import redis

    server = _OwnRedis(tmp_path)
    server.start()
    live = None
    try:
        stream = _key(stream_keys, "lost")
        full = _sma_data(tmp_path / "full" / "SYN.csv", n=1200)
        first = _sma_data(tmp_path / "a" / "SYN.csv", n=1200, stop=600)
        second = _sma_data(tmp_path / "b" / "SYN.csv", n=1200, start=600)
        # ended by SIGTERM once everything is acknowledged, not by idleness: a
        # publisher slow to start on a loaded machine must not end the run early
        config = _sma_config(tmp_path, full, server.url, stream, idle=120.0)
        expected = _backtest_fills(config)
        live = _finchan("-c", str(config), "--mode", "live", "-q")
        _finish(_finchan("publish", str(first), "--redis", server.url, "--stream", stream))
        client = redis.Redis(port=server.port)

        def first_half_acked() -> bool:
            groups = client.xinfo_groups(stream)
            return bool(groups) and groups[0]["entries-read"] == 600 and not groups[0]["pending"]

        _wait_for(first_half_acked, "the first 600 bars to be processed")
        client.close()
        server.stop()
        server.start()  # empty: no persistence
        _finish(_finchan("publish", str(second), "--redis", server.url, "--stream", stream))
        client = redis.Redis(port=server.port)
        _wait_for(first_half_acked, "the last 600 bars to be processed", timeout=60.0)
        client.close()
        live.send_signal(signal.SIGTERM)
        _finish(live)
        live = None
    finally:
        if live is not None:
            live.kill()
            live.wait()
        server.stop()
    log = (tmp_path / "work" / "logs" / "finchan.log").read_text(encoding="utf-8")
    assert f"lost the connection to {server.url}" in log
    assert f"reconnected to {server.url} after" in log
    assert (_live_dir(config, "SmaCross") / "fills.csv").read_bytes() == expected


# ------------------------------------------------------------ replay and the CLI


def _sma_env(tmp_path: Path, mode: str, bars: dict) -> object:
    from finchan.env import Env

    section = "backtest_exts" if mode == "backtest" else "live_exts"
    env = Env(
        {
            "work_dir": str(tmp_path / "work"),
            "run_mode": mode,
            f"enabled_{mode}_exts": ["finchan.exts.bars", "finchan.exts.strategy"],
            section: {
                "finchan.exts.bars": {"synthetic": {"n": 800}, **bars},
                "finchan.exts.strategy": {
                    "class": "finchan.trade.examples:SmaCross",
                    "params": {"fast": 5, "slow": 15, "qty": 10},
                    "save": False,
                },
            },
        }
    )
    env.quiet = True
    env.run()
    return env.get_ext_obj("finchan.exts.strategy").result


def test_bar_replay_in_live_mode_fills_as_the_backtest(tmp_path):
    expected = _sma_env(tmp_path, "backtest", {})
    replayed = _sma_env(tmp_path, "live", {"speed": 0})
    assert len(expected.fills) > 20
    assert replayed.fills.equals(expected.fills)


def test_bar_replay_paces_bars_on_the_wall_clock(tmp_path):
    from finchan.env import Env

    env = Env(
        {
            "work_dir": str(tmp_path / "work"),
            "run_mode": "live",
            "enabled_live_exts": ["finchan.exts.bars"],
            # 20 one-minute bars at 3,000 x: 19 minutes of data in 0.38 s
            "live_exts": {"finchan.exts.bars": {"synthetic": {"n": 20}, "speed": 3000}},
        }
    )
    seen: list[float] = []
    env.dispatcher.subscribe("bar", lambda bar: seen.append(bar.timestamp))
    started = time.monotonic()
    env.run()
    assert len(seen) == 20 and seen == sorted(seen)
    assert time.monotonic() - started >= 19 * 60 / 3000


def test_bars_speed_is_refused_in_a_backtest(make_env):
    from finchan.errors import ConfigError

    env = make_env({"backtest_exts": {"finchan.exts.bars": {"synthetic": {"n": 5}, "speed": 2}}})
    with pytest.raises(ConfigError, match=r"finchan\.exts\.bars\.speed: only for live mode"):
        env.load_exts("finchan.exts.bars")


def test_live_mode_of_a_backtest_only_config_is_an_error_not_a_silent_wait(finchan_cli):
    result = finchan_cli("-c", str(ROOT / "examples" / "sma_cross"), "--mode", "live", timeout=30)
    assert result.returncode == 2
    assert "live mode: enabled_live_exts is empty (this config enables extensions for backtests only" in result.stderr
    assert "Traceback" not in result.stderr


def test_publish_never_prints_the_password(tmp_path, finchan_cli):
    data = _sma_data(tmp_path / "SYN.csv", n=10)
    result = finchan_cli(
        "publish", str(data), "--redis", "redis://:hunter2@127.0.0.1:1/0", "--stream", "k"
    )
    assert result.returncode == 2
    assert result.stderr.startswith("finchan: error: --redis redis://:***@127.0.0.1:1/0: cannot connect")
    assert "hunter2" not in result.stderr + result.stdout


def test_publish_names_a_missing_file(tmp_path, finchan_cli):
    result = finchan_cli(
        "publish", str(tmp_path / "nope.csv"), "--redis", f"{REDIS}/{DB_SUBPROCESS}", "--stream", "k"
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"finchan: error: {tmp_path / 'nope.csv'}: no such file\n"


# ------------------------------------------------------- SIGKILL, restart, replay


def _journal_count(path: Path) -> int:
    import sqlite3

    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1)
        try:
            return db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_sigkill_at_ten_seeded_moments_loses_and_repeats_nothing(tmp_path, stream_keys):
    import random
    import signal
    import sqlite3

    import redis

    url = f"{REDIS}/{DB_SUBPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "kill")
    data = _sma_data(tmp_path / "data" / "SYN.csv", n=1500)
    config = _sma_config(tmp_path, data, url, stream, idle=1.5)
    yaml = YAML(typ="safe", pure=True)
    raw = yaml.load(config.read_text(encoding="utf-8"))
    raw["live_exts"]["finchan.exts.redis_stream"].update(
        {"batch": 50, "max_deliveries": 100, "status_interval": 0, "snapshot_bars": 120}
    )
    # the SMA cross keeping variables in self.state: committed with each batch
    for section in ("live_exts", "backtest_exts"):
        raw[section]["finchan.exts.strategy"]["class"] = "stateful_sma:StatefulSma"
        raw[section]["finchan.exts.strategy"]["name"] = "SmaCross"
    _dump(config, raw)
    expected = _backtest_fills(config)
    (backtest_dir,) = (tmp_path / "work" / "runs").iterdir()
    expected_state = (backtest_dir / "state.json").read_bytes()
    assert b'"bars":1500' in expected_state
    live_dir = tmp_path / "work" / "live" / "SmaCross"
    state = live_dir / "state.db"
    targets = sorted(random.Random(11).sample(range(50, 1450), 10))
    # bars flow for ~10 s while the live run is killed and restarted
    publisher = _finchan("publish", str(data), "--redis", url, "--stream", stream,
                         "--rate", "150", "-q")  # fmt: skip
    live = None
    try:
        for target in targets:
            live = _finchan("-c", str(config), "--mode", "live", "-q")
            _wait_for(
                lambda t=target, p=live: _journal_count(state) >= t or p.poll() is not None,
                f"the journal to reach {target} bars",
            )
            live.send_signal(signal.SIGKILL)
            live.wait(timeout=10)
            assert live.returncode == -signal.SIGKILL, live.stderr.read()
            live = None
        # SIGTERM: a clean stop, exit 0, with what was handled committed. The
        # killed run may have caught up with the publisher before the kill
        # landed: then the new run's recovery (its signal handlers are in
        # place by then) is what to wait for
        log_path = tmp_path / "work" / "logs" / "finchan.log"
        runs_before = log_path.read_text(encoding="utf-8").count(" recovered ")
        live = _finchan("-c", str(config), "--mode", "live", "-q")
        before = _journal_count(state)
        _wait_for(
            lambda: _journal_count(state) > before
            or log_path.read_text(encoding="utf-8").count(" recovered ") > runs_before,
            "bars after the last kill, or the restarted run's recovery",
        )
        live.send_signal(signal.SIGTERM)
        _finish(live)
        live = None
        _finish(publisher)
        _finish(_finchan("-c", str(config), "--mode", "live", "-q"))
    finally:
        for proc in (live, publisher):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    # restarts took the account and strategy from a snapshot and the journal's tail
    log = (tmp_path / "work" / "logs" / "finchan.log").read_text(encoding="utf-8")
    recovered = re.findall(r"recovered (\d+) bars \((\d+) from a snapshot", log)
    assert any(0 < int(snap) < int(total) for total, snap in recovered), recovered
    # fills, orders and positions as if nothing had happened
    assert (live_dir / "fills.csv").read_bytes() == expected
    assert (live_dir / "orders.csv").read_bytes() == (backtest_dir / "orders.csv").read_bytes()
    import pandas as pd

    orders = pd.read_csv(live_dir / "orders.csv")
    assert orders["order_id"].is_unique
    fills = pd.read_csv(live_dir / "fills.csv")
    signed = fills["qty"].where(fills["side"].str.lower() == "buy", -fills["qty"])
    from finchan.trade.journal import read_status

    status = read_status(live_dir)
    held = {s: q for s, q in signed.groupby(fills["symbol"]).sum().items() if q}
    assert status["positions"] == held
    # the journal holds each message exactly once, in the stream's order
    client = redis.Redis.from_url(url, decode_responses=True)
    published = [mid for mid, _ in client.xrange(stream)]
    client.close()
    db = sqlite3.connect(state)
    journal = [mid for (mid,) in db.execute("SELECT id FROM journal ORDER BY seq")]
    (committed_state,) = db.execute("SELECT value FROM status WHERE key='state'").fetchone()
    db.close()
    # self.state as the uninterrupted run left it: committed, and in the live directory
    assert committed_state.encode() + b"\n" == expected_state
    assert (live_dir / "state.json").read_bytes() == expected_state
    assert len(published) == 1500
    assert journal == published
    # and the journal replayed as a backtest gives the live fills, byte for byte
    result = subprocess.run(
        [sys.executable, "-m", "finchan", "replay", str(live_dir), "-q"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(TEST_EXTS)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (replay_dir,) = (live_dir / "replay" / "runs").iterdir()
    assert (replay_dir / "fills.csv").read_bytes() == expected
    assert (replay_dir / "state.json").read_bytes() == expected_state
    # finchan status reads the same from the stored state
    result = subprocess.run(
        [sys.executable, "-m", "finchan", "status", str(live_dir)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "bars applied: 1,500"
    assert f"last applied ids: {{'{stream}': '{published[-1]}'}}" in lines
    held_text = ", ".join(f"{s} {q:g}" for s, q in held.items()) or "none"
    assert f"positions: {held_text}" in lines
    assert f"fills: {len(fills)}" in " ".join(lines)


def test_status_of_a_directory_without_live_state_is_one_line(tmp_path, finchan_cli):
    result = finchan_cli("status", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == (
        f"finchan: error: {tmp_path / 'state.db'}: no live state here "
        "(is it a live run directory?)\n"
    )


def test_publish_writes_each_bar_as_a_message_at_the_given_rate(tmp_path, stream_keys):
    import redis

    url = f"{REDIS}/{DB_SUBPROCESS}"
    _require_redis(url)
    stream = _key(stream_keys, "publish")
    data = tmp_path / "ACME.csv"
    data.write_text(
        "Date,O,H,L,C,V\n"
        + "".join(f"2020-01-02 09:{30 + i}:00,1.1,1.3,1.0,1.2{i},{100 + i}\n" for i in range(20)),
        encoding="utf-8",
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "finchan", "publish", str(data), "--redis", url, "--stream", stream,
         "--rate", "100", "--timezone", "America/New_York", "--column", "datetime=Date",
         "--column", "open=O", "--column", "high=H", "--column", "low=L", "--column", "close=C",
         "--column", "volume=V"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(f"finchan: published 20 bars to {stream} at {url} in ")
    assert elapsed >= 19 / 100  # paced: the 20th message no earlier than 0.19 s after the 1st
    client = redis.Redis.from_url(url, decode_responses=True)
    messages = [fields for _, fields in client.xrange(stream)]
    client.close()
    assert len(messages) == 20
    # 09:30 New York is 14:30 UTC
    assert messages[0] == {"symbol": "ACME", "ts": "1577975400.0", "open": "1.1", "high": "1.3",
                           "low": "1.0", "close": "1.2", "volume": "100.0"}  # fmt: skip
    assert messages[19]["close"] == "1.219" and messages[19]["ts"] == repr(1577975400.0 + 19 * 60)


def test_a_stream_behind_another_in_time_is_committed_and_the_run_ends(tmp_path, stream_keys):
    # the batches of the stream that is behind are handled (their markers come in
    # time order) before the earlier-read batches of the stream ahead: the reader
    # must still see every batch acknowledged, and end at its idle timeout
    import redis

    url = f"{REDIS}/{DB_INPROCESS}"
    _require_redis(url)
    ahead, behind = _key(stream_keys, "AHEAD"), _key(stream_keys, "BEHIND")
    client = redis.Redis.from_url(url, decode_responses=True)
    for i in range(40):
        for key, ts in ((ahead, 6000 + 60 * i), (behind, 60 * i)):
            client.xadd(key, {"ts": str(ts), "open": "1", "high": "1", "low": "1",
                              "close": "1", "volume": "5"})  # fmt: skip
    env = _run_live_inprocess(
        tmp_path,
        {"url": url, "streams": {ahead: "AHEAD", behind: "BEHIND"}, "batch": 5,
         "idle_timeout": 0.3},
    )  # fmt: skip
    source = env.get_ext_obj("finchan.exts.redis_stream")
    assert source.received == 80 and not source._in_flight
    account = env.get_ext_obj("finchan.exts.sim_broker")
    assert {s: len(p[1]) for s, p in account.prices.items()} == {"AHEAD": 40, "BEHIND": 40}
    for key in (ahead, behind):
        assert client.xpending(key, "finchan")["pending"] == 0
    client.close()
