"""Process-wide state under concurrent Envs: the GC tuning and sys.path.

Two backtests run at once in threads, each held at its SYSTEM_STARTED by an
explicit hand-off (queues), so the test decides which finishes first and
checks the process state before, while both run, between and after.
"""

from __future__ import annotations

import gc
import queue
import sys
import threading

from finchan._process import GC_THRESHOLD, gc_paused, quiet_gc
from finchan.env import Env
from finchan.event import SysEvents

WAIT = 30  # seconds; only reached if a run hangs


class HeldRun:
    """A backtest in a thread that reports at SYSTEM_STARTED and waits for a go."""

    def __init__(self, config):
        self.env = Env(config)
        self.started: queue.Queue[str] = queue.Queue()
        self.go: queue.Queue[str] = queue.Queue()
        self.env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, self._hold)
        self.thread = threading.Thread(target=self.env.run, daemon=True)

    def _hold(self, event):
        self.started.put("started")
        assert self.go.get(timeout=WAIT) == "go"

    def start(self):
        self.thread.start()
        assert self.started.get(timeout=WAIT) == "started"

    def finish(self):
        self.go.put("go")
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


def config(tmp_path, *paths):
    return {
        "work_dir": str(tmp_path / "work"),
        "ext_manager": {"ext_paths": [str(p) for p in paths]},
        "dispatcher.backtest": {"start_dt": "2020-01-01", "end_dt": "2020-01-02"},
    }


def test_two_concurrent_envs_neither_undoes_the_others_gc_or_sys_path(tmp_path):
    shared, own_b = tmp_path / "shared", tmp_path / "own_b"
    shared.mkdir()
    own_b.mkdir()
    threshold, frozen, path = gc.get_threshold(), gc.get_freeze_count(), list(sys.path)
    tuned = (max(threshold[0], GC_THRESHOLD), *threshold[1:])

    a = HeldRun(config(tmp_path, shared))
    b = HeldRun(config(tmp_path, shared, own_b))
    assert sys.path[:2] == [str(own_b), str(shared)]
    a.start()
    assert gc.get_threshold() == tuned and gc.get_freeze_count() > frozen
    b.start()
    assert gc.get_threshold() == tuned

    b.finish()  # the second run ends first: A still runs with its tuning
    assert b.env.dispatcher.failure is None and b.env.dispatcher.summary.end_ts is not None
    assert gc.get_threshold() == tuned and gc.get_freeze_count() > frozen
    b.env.close()  # own_b goes, the path A also uses stays
    assert str(own_b) not in sys.path and sys.path[0] == str(shared)

    a.finish()
    assert gc.get_threshold() == threshold and gc.get_freeze_count() == frozen
    a.env.close()
    assert sys.path == path


def test_an_env_as_a_context_manager_gives_its_path_back(tmp_path):
    before = list(sys.path)
    with Env(config(tmp_path, tmp_path)) as env:
        assert sys.path[0] == str(tmp_path)
        env.close()  # closing twice is harmless
    assert sys.path == before


def test_a_path_already_on_sys_path_is_never_removed(tmp_path):
    sys.path.insert(0, str(tmp_path))
    try:
        Env(config(tmp_path, tmp_path)).close()
        assert sys.path[0] == str(tmp_path)
    finally:
        sys.path.remove(str(tmp_path))


def test_gc_pauses_and_tunings_nest_and_restore_what_was_before():
    assert gc.isenabled()
    threshold = gc.get_threshold()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer holder still needs it off
        with quiet_gc(), quiet_gc():
            assert gc.get_threshold()[0] == max(threshold[0], GC_THRESHOLD)
        assert gc.get_threshold() == threshold
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_a_finished_runs_garbage_is_collected_after_the_next_run_when_due(monkeypatch):
    """A loop of backtests must not keep every finished run alive.

    A run freezes the objects it finds (quiet_gc); a finished run's Env is
    cyclic garbage, so the next run froze it again and no collection ever
    freed it. With collections always due, the first run's Env is gone once
    the second ended; with none due, it is still there (what the spacing
    trades for time).
    """
    import weakref

    import finchan._process as process
    from finchan.trade import backtest
    from finchan.trade._synthetic import make_bars
    from finchan.trade.examples import SmaCross

    bars = {"SYN": make_bars(300)}

    def run() -> weakref.ref:
        result = backtest(SmaCross, bars, params={"fast": 3, "slow": 8}, report=False)
        return weakref.ref(result._account)

    for spacing, alive in ((0, False), (10**12, True)):
        gc.collect()
        monkeypatch.setattr(process, "FULL_COLLECTION_SPACING", spacing)
        monkeypatch.setattr(process, "_full_end", 0.0)
        monkeypatch.setattr(process, "_full_cost", 1.0)
        first = run()
        run()
        assert (first() is not None) is alive, spacing


def test_a_finished_bar_feed_holds_no_bar_lists():
    """The feed's cursors let go of their blocks' lists when the input ends."""
    from finchan.trade import backtest
    from finchan.trade._data.feed import BarFeed
    from finchan.trade._synthetic import make_bars
    from finchan.trade.examples import SmaCross

    result = backtest(SmaCross, {"SYN": make_bars(300)}, params={"fast": 3, "slow": 8},
                      report=False)
    env = result._account.env
    feeds = [s for s in env.dispatcher.event_sources if isinstance(s, BarFeed)]
    assert len(feeds) == 1
    for cursor in feeds[0]._cursors:
        assert cursor.done
        assert (cursor.ts, cursor.open, cursor.high, cursor.low, cursor.close,
                cursor.volume) == (None,) * 6
