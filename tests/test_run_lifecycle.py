"""One run lifecycle: the same failure gives the same steps in backtest and live.

Each case makes one step of a run fail (or stop it) through the
``lifecycle_probe`` test extension, runs it in both modes, and asserts the
exact sequence of lifecycle steps and how the run ended.
"""

from __future__ import annotations

import pytest

from finchan.errors import CallbackError, RunError

FULL = ["setup", "source start", "started", "tick", "exiting", "source stop", "cleanup"]

# case: (probe options, expected steps, expected exception and message, interrupted)
CASES = {
    "runs to the end": ({}, FULL, None, False),
    "source fails to start": (
        {"source_fails_to_start": True},
        ["setup", "source start", "cleanup"],
        (RunError, "event source ProbeSource failed to start: OSError: feed unreachable"),
        False,
    ),
    "source fails to produce": (
        {"source_fails_to_produce": True},
        ["setup", "source start", "started", "exiting", "source stop", "cleanup"],
        (RunError, "event source ProbeSource failed: OSError: feed lost"),
        False,
    ),
    "callback fails": (
        {"callback_fails": True},
        FULL,
        (CallbackError, "lifecycle_probe.on_tick failed on event 'tick' .*ValueError: bad tick"),
        False,
    ),
    "setup fails": (
        {"fail_setup": True},
        ["setup"],
        (RunError, "extension 'lifecycle_probe' failed in setup: ValueError: cannot set up"),
        False,
    ),
    "cleanup fails": (
        {"fail_cleanup": True},
        FULL,
        (RunError, "extension 'lifecycle_probe' failed in cleanup: OSError: cannot clean up"),
        False,
    ),
    "stop requested": ({"stop_on_tick": True}, FULL, None, False),
    "SIGINT": ({"sigint_on_tick": True}, FULL, None, True),
    "KeyboardInterrupt in a callback": (
        {"interrupt_on_tick": True},
        FULL,
        (KeyboardInterrupt, None),
        True,
    ),
}


def probe_env(make_env, mode, options):
    return make_env(
        {
            "run_mode": mode,
            "enabled_backtrack_exts": ["lifecycle_probe"],
            "enabled_live_exts": ["lifecycle_probe"],
            "backtrack_exts": {"lifecycle_probe": options or None},
            "live_track_exts": {"lifecycle_probe": options or None},
            # the same error policy in both modes, so the sequences can be equal
            "dispatcher.backtest": {
                "start_dt": "2020-01-01",
                "end_dt": "2020-01-02",
                "on_callback_error": "stop",
            },
            "dispatcher.live": {"on_callback_error": "stop"},
        }
    )


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("mode", ["backtest", "live"])
def test_the_same_lifecycle_in_both_modes(make_env, mode, case):
    options, steps, error, interrupted = CASES[case]
    env = probe_env(make_env, mode, options)
    if error is None:
        env.run()
    else:
        with pytest.raises(error[0], match=error[1]):
            env.run()
    assert env.get_ext_obj("lifecycle_probe") == steps
    assert env.dispatcher.summary.interrupted is interrupted
    # the dispatcher is idle again and can tell why the run ended
    assert env.dispatcher.event_sources[0].name == "ProbeSource"
    failure = env.dispatcher.failure
    if error is None or error[0] is KeyboardInterrupt:
        assert failure is None
    else:
        assert isinstance(failure, error[0])


def test_nothing_is_queued_once_exiting(make_env):
    """eq_put during SYSTEM_EXITING drops the events, in both modes alike."""
    from finchan.event import Event, SysEvents

    for mode in ("backtest", "live"):
        env = probe_env(make_env, mode, {})
        seen = []
        env.dispatcher.subscribe("late", seen.append)
        env.dispatcher.subscribe(
            SysEvents.SYSTEM_EXITING, lambda event: event.env.dispatcher.eq_put(
                Event(event.env, "late", dt=event.env.now_ts)
            )
        )
        env.run()
        assert seen == []
        assert env.get_ext_obj("lifecycle_probe") == FULL
