"""The run lifecycle, in order, in both modes, also when things fail."""

import pytest

from finchan.errors import CallbackError, RunError

EXPECTED_ORDER = [
    "load",
    "load second",
    "load third",
    "setup recorder",
    "setup second",
    "setup third",
    "started",
    "exiting",
    "cleanup third",
    "cleanup second",
    "cleanup recorder",
]


def lifecycle_env(make_env, mode, **recorder):
    section = "backtrack_exts" if mode == "backtest" else "live_track_exts"
    return make_env(
        {
            "run_mode": mode,
            f"enabled_{'backtrack' if mode == 'backtest' else 'live'}_exts": ["third"],
            section: {"recorder": recorder or None},
            "dispatcher.backtest": {"start_dt": "2020-01-01", "end_dt": "2020-01-02"},
        }
    )


def journal(env):
    return [entry.split(" 20")[0] for entry in env.get_ext_obj("recorder")]


@pytest.mark.parametrize("mode", ["backtest", "live"])
def test_lifecycle_order(make_env, mode):
    env = lifecycle_env(make_env, mode)
    if mode == "live":
        env.dispatcher.subscribe("system_event.system_started", lambda e: e.env.stop())
    env.run()
    assert env.ext_manager.loaded == ("finchan.exts.timer_source", "recorder", "second", "third")
    assert journal(env) == EXPECTED_ORDER


@pytest.mark.parametrize("mode", ["backtest", "live"])
def test_lifecycle_when_a_callback_raises(make_env, mode):
    env = lifecycle_env(make_env, mode, raise_at_start=True)
    if mode == "live":
        env.dispatcher.subscribe("system_event.system_started", lambda e: e.env.stop())
        env.run()  # live default policy: log and go on
        assert env.dispatcher.summary.callback_errors == 1
    else:
        with pytest.raises(
            CallbackError, match="on_started failed on event 'system_event.system_started'"
        ):
            env.run()
    assert journal(env) == EXPECTED_ORDER


@pytest.mark.parametrize("mode", ["backtest", "live"])
def test_lifecycle_when_setup_of_one_extension_fails(make_env, mode):
    env = lifecycle_env(make_env, mode)
    env.set_ext_options("second", {"fail_setup": True})
    with pytest.raises(
        RunError, match="extension 'second' failed in setup: ValueError: second cannot start"
    ):
        env.run()
    # nothing is dispatched; only the extension set up before it is cleaned up
    assert journal(env) == [
        "load",
        "load second",
        "load third",
        "setup recorder",
        "cleanup recorder",
    ]


def test_cleanup_failure_does_not_skip_other_cleanups(make_env, monkeypatch):
    import second

    env = lifecycle_env(make_env, "backtest")

    async def failing_cleanup(env):
        raise OSError("disk full")

    monkeypatch.setattr(second, "cleanup", failing_cleanup)
    with pytest.raises(RunError, match="extension 'second' failed in cleanup: OSError: disk full"):
        env.run()
    assert journal(env)[-2:] == ["cleanup third", "cleanup recorder"]
