"""Env: documented members, published objects, several Envs in one process."""

import queue
import threading

import pytest

from finchan.env import Env, current_env, running_env
from finchan.env import env as current
from finchan.errors import ExtensionError

TIMER_CONFIG = {
    "enabled_backtest_exts": ["finchan.exts.timer_callback"],
    "backtest_exts": {"finchan.exts.timer_callback": {"step": 1, "max_step": 30}},
    "dispatcher.backtest": {"start_dt": "2020-01-01", "end_dt": "2020-01-03", "time_step": 3600},
}


def timer_calls(env):
    return [dt.isoformat() for dt in env.get_ext_obj("finchan.exts.timer_callback").calls]


def test_documented_members(make_env):
    env = make_env({"run_mode": "live", "live_exts": {"x": {"a": 1}, "y": None}})
    assert env.run_mode == "live_track"
    assert env.dispatcher.run_mode == "live_track"
    assert env.set_dispatcher(env.dispatcher) is True
    assert env.set_ext_manager(env.ext_manager) is True
    assert env.get_ext_options("x") == {"a": 1}
    assert env.get_ext_options("y") == {} and env.get_ext_options("missing") == {}
    assert env.now.tzinfo is not None


def test_ext_objects_are_published_per_env(make_env):
    first, second = make_env(), make_env()
    first.set_ext_obj("me", 1)
    assert first.get_ext_obj("me") == 1
    assert second.get_ext_obj("me", None) is None
    with pytest.raises(ExtensionError, match="no object published by extension 'me'"):
        second.get_ext_obj("me")


def test_work_dir_is_resolved_and_created(make_env, tmp_path):
    env = make_env({"work_dir": str(tmp_path / "w" / "x")})
    assert env.work_dir == tmp_path / "w" / "x" and env.work_dir.is_dir()


def test_env_import_gives_the_running_env(make_env):
    env = make_env(TIMER_CONFIG)
    seen = []
    env.dispatcher.subscribe("system_event.system_started", lambda e: seen.append(current.run_mode))
    env.dispatcher.subscribe(
        "system_event.system_started", lambda e: seen.append(running_env() is e.env)
    )
    assert running_env() is None
    env.run()
    assert seen == ["backtrack", True]
    assert running_env() is None
    assert current_env() is not env  # outside a run: the default Env


def test_two_envs_interleaved_give_the_results_each_gives_alone(make_env):
    alone_a = make_env({**TIMER_CONFIG, "seed": 1})
    alone_a.run()
    alone_b = make_env({**TIMER_CONFIG, "seed": 2})
    alone_b.run()
    assert timer_calls(alone_a) != timer_calls(alone_b)

    a = make_env({**TIMER_CONFIG, "seed": 1})
    b = make_env({**TIMER_CONFIG, "seed": 2})
    # interleave the two runs timer event by timer event, each in its thread:
    # a run pauses at every timer event until the test gives it the next turn
    reports: queue.Queue[tuple[int, str]] = queue.Queue()
    turns = [queue.Queue(), queue.Queue()]

    def pause(index):
        def at_timer(event):
            reports.put((index, "paused"))
            assert turns[index].get(timeout=60) == "go"

        return at_timer

    def run(index, env):
        assert turns[index].get(timeout=60) == "go"
        try:
            env.run()
        finally:
            reports.put((index, "finished"))

    threads = {}
    for index, env in enumerate((a, b)):
        env.dispatcher.subscribe("timer_source.timer", pause(index), prepend=True)
        threads[index] = threading.Thread(target=run, args=(index, env), daemon=True)
        threads[index].start()
    order = []
    while threads:
        for index in sorted(threads):
            turns[index].put("go")
            who, what = reports.get(timeout=60)
            assert who == index  # only the run that has the turn moves
            order.append(index)
            if what == "finished":
                threads.pop(index).join(60)
    # strictly alternating while both ran, then the longer run alone
    both = 2 * min(order.count(0), order.count(1))
    assert order[:both] == [0, 1] * (both // 2) and both > 20
    assert timer_calls(a) == timer_calls(alone_a)
    assert timer_calls(b) == timer_calls(alone_b)


def test_env_accepts_a_validated_config_and_a_mode_override(tmp_path):
    from finchan.config import validate_config

    config = validate_config({"work_dir": str(tmp_path)})
    assert Env(config, run_mode="live").run_mode == "live_track"


def test_two_runs_of_one_config_dispatch_identical_event_logs(make_env):
    def event_log(seed):
        env = make_env({**TIMER_CONFIG, "seed": seed})
        log = []
        for name in ("system_event.system_started", "timer_source.timer", "timer_callback.finished",
                     "system_event.system_will_exit"):
            env.dispatcher.subscribe(name, lambda e: log.append((e.id, e.name, e.timestamp)))
        env.run()
        return log

    first, second = event_log(5), event_log(5)
    assert first == second and len(first) > 100
    assert event_log(6) != first


def _live_config(tmp_path, enabled_backtest):
    path = tmp_path / "finchan.yml"
    path.write_text(
        f"run_mode: live\nwork_dir: {tmp_path / 'work'}\n"
        f"enabled_backtest_exts: [{enabled_backtest}]\n"
    )
    return path


@pytest.mark.parametrize(
    ("enabled_backtest", "hint"),
    [
        ("", ""),
        (
            "finchan.exts.timer_source",
            " (this config enables extensions for backtests only: list them under "
            "enabled_live_exts too, with a live source such as finchan.exts.redis_stream, "
            "or finchan.exts.bars to replay its files on the wall clock)",
        ),
    ],
)
def test_a_live_run_with_nothing_enabled_is_refused_from_python_and_the_cli_alike(
    tmp_path, finchan_cli, enabled_backtest, hint
):
    # issue 11: from Python it used to wait for a signal, silently
    from finchan.config import load_config
    from finchan.errors import ConfigError

    path = _live_config(tmp_path, enabled_backtest)
    message = f"{path}: live mode: enabled_live_exts is empty{hint}"
    env = Env(load_config(path))
    guard = threading.Timer(10, env.stop)  # without the check, fail instead of waiting forever
    guard.start()
    try:
        with pytest.raises(ConfigError) as info:
            env.run()
    finally:
        guard.cancel()
    assert str(info.value) == message
    result = finchan_cli("-c", str(path), timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == f"finchan: error: {message}"


def test_a_live_run_with_a_source_registered_from_python_is_not_refused(make_env):
    from finchan.interface.event_source import AbsEventSource

    class Once(AbsEventSource):
        async def gen_events(self, event_queue, limit_dt=None):
            self.exhausted = True

    env = make_env({"run_mode": "live"})
    env.dispatcher.register_event_source(Once())
    summary = env.run()
    assert summary.events == 0 and not summary.interrupted
