"""The finchan.exts.kvstore extension: which store a run gets, and its lifetime."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from finchan.errors import ConfigError, StoreError
from finchan.event import Event, SysEvents
from finchan.kvstore import MemoryKvStore, SqliteKvStore, open_store

EXT = "finchan.exts.kvstore"
DAYS = {"start_dt": "2020-01-01", "end_dt": "2020-01-03"}


def store_env(make_env: Callable[..., Any], mode: str, options: dict[str, Any] | None,
              tmp_path: Path) -> Any:
    section = "backtrack_exts" if mode == "backtest" else "live_track_exts"
    return make_env({"run_mode": mode, "work_dir": str(tmp_path / "work"),
                     section: {EXT: options}, "dispatcher.backtest": DAYS})


def test_a_backtest_gets_a_memory_store_and_leaves_work_dir_alone(
        make_env: Callable[..., Any], tmp_path: Path) -> None:
    env = store_env(make_env, "backtest", None, tmp_path)
    env.load_exts(EXT)
    assert isinstance(env.get_ext_obj(EXT), MemoryKvStore)
    assert not (tmp_path / "work" / "state.db").exists()


def test_live_gets_the_sqlite_file_in_work_dir(make_env: Callable[..., Any],
                                               tmp_path: Path) -> None:
    env = store_env(make_env, "live", None, tmp_path)
    env.load_exts(EXT)
    store = env.get_ext_obj(EXT)
    assert isinstance(store, SqliteKvStore)
    assert Path(store.path) == tmp_path / "work" / "state.db"
    env.ext_manager.unload_exts()
    with pytest.raises(StoreError):
        store.get("a")


def test_a_configured_url_is_used_in_backtest_too_relative_to_work_dir(
        make_env: Callable[..., Any], tmp_path: Path) -> None:
    env = store_env(make_env, "backtest", {"url": "sqlite://bt.db", "prefix": "sma:"}, tmp_path)
    env.load_exts(EXT)
    store = env.get_ext_obj(EXT)
    store.set("position", 10)
    store.close()
    with open_store(tmp_path / "work" / "bt.db") as raw:
        assert raw.get("sma:position") == "10"


def test_the_run_writes_through_the_store_and_cleanup_closes_it(
        make_env: Callable[..., Any], tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/state.db"
    env = store_env(make_env, "backtest", {"url": url}, tmp_path)
    env.load_exts(EXT)
    store = env.get_ext_obj(EXT)

    def on_started(event: Event) -> None:
        kv = event.env.get_ext_obj(EXT)
        kv.hset("state", "started", event.env.now.isoformat())

    env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, on_started)
    env.run()
    with pytest.raises(StoreError):
        store.hgetall("state")
    with open_store(url) as reopened:
        assert reopened.hgetall("state") == {"started": "2020-01-01T00:00:00+00:00"}


def test_a_strategy_resumes_from_the_state_of_the_previous_run(
        make_env: Callable[..., Any], tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/resume.db"
    seen = []
    for _ in range(3):
        env = store_env(make_env, "backtest", {"url": url, "prefix": "counter:"}, tmp_path)
        env.load_exts(EXT)

        def on_started(event: Event) -> None:
            kv = event.env.get_ext_obj(EXT)
            runs = int(kv.get("runs") or 0) + 1
            kv.set("runs", runs)
            seen.append(runs)

        env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, on_started)
        env.run()
    assert seen == [1, 2, 3]


@pytest.mark.parametrize(("options", "message"), [
    ({"ulr": "memory://"}, "ulr: unknown key \\(did you mean 'url'\\?\\)"),
    ({"url": 5}, "url: not a string \\(got 5\\)"),
    ({"prefix": ["a"]}, "prefix: not a string"),
])
def test_bad_options_raise_config_error_naming_the_extension(
        make_env: Callable[..., Any], tmp_path: Path, options: dict[str, Any],
        message: str) -> None:
    env = store_env(make_env, "backtest", options, tmp_path)
    with pytest.raises(ConfigError, match=f"backtrack_exts.{EXT}.{message}"):
        env.load_exts(EXT)


def test_an_unreachable_server_fails_the_load_naming_the_url(
        make_env: Callable[..., Any], tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"redis://127.0.0.1:{port}/0"
    env = store_env(make_env, "live", {"url": url}, tmp_path)
    with pytest.raises(StoreError, match=f"cannot connect to Redis at {url}"):
        env.load_exts(EXT)
