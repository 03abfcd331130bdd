"""Live mode in a subprocess: wall-clock timers, signals, clean and forced exits.

The subprocess prints a line (flushed) at each step; the test waits for lines,
never sleeps to synchronise.
"""

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime

import pytest

from finchan_testing import TEST_EXTS

pytestmark = pytest.mark.timeout(60)


class LiveProcess:
    """A live finchan subprocess whose output lines arrive in queues (read by threads)."""

    def __init__(self, args):
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(TEST_EXTS)},
        )
        self.stdout: queue.Queue = queue.Queue()
        self.stderr: queue.Queue = queue.Queue()
        self.seen = {"stdout": [], "stderr": []}
        for stream, lines in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _pump(stream, lines):
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def read_until(self, text, stream="stdout", timeout=15.0):
        lines = getattr(self, stream)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no {stream} line with {text!r}; got {self.seen[stream]}")
            self.seen[stream].append(line)
            if text in line:
                return line

    def rest(self, stream="stdout"):
        """The remaining lines, once the process has exited."""
        lines = getattr(self, stream)
        out = []
        while (line := lines.get(timeout=10)) is not None:
            out.append(line)
        return out


@pytest.fixture(autouse=True)
def _no_orphans(monkeypatch):
    """Kill every live subprocess a test started, also when the test failed."""
    started = []
    original = LiveProcess.__init__

    def tracking_init(self, args):
        original(self, args)
        started.append(self.proc)

    monkeypatch.setattr(LiveProcess, "__init__", tracking_init)
    yield
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def start_live(tmp_path, **recorder):
    options = {"echo": True, "every_seconds": 1, **recorder}
    path = tmp_path / "live.yml"
    path.write_text(
        textwrap.dedent(f"""
        run_mode: live
        work_dir: {tmp_path / "work"}
        enabled_live_exts: [recorder]
        live_track_exts:
          recorder: {options}
        dispatcher.live: {{stop_check_interval: 5}}
    """)
    )
    return LiveProcess([sys.executable, "-m", "finchan", "-c", str(path), "-v"])


def test_timer_events_arrive_on_the_wall_clock(tmp_path):
    live = start_live(tmp_path)
    try:
        started = datetime.fromisoformat(live.read_until("started").split()[1]).timestamp()
        first = live.read_until("due ").split()
        second = live.read_until("due ").split()
    finally:
        live.proc.send_signal(signal.SIGINT)
        live.proc.wait(timeout=10)
    due1, due2 = (datetime.fromisoformat(line[1]).timestamp() for line in (first, second))
    sent1, sent2 = (datetime.fromisoformat(line[3]).timestamp() for line in (first, second))
    assert due1 - started == pytest.approx(1.0, abs=1e-3)  # one period after the job was added
    assert due2 - due1 == pytest.approx(1.0, abs=1e-3)
    # dispatched on the wall clock when due: not before, and not much later
    assert 0 <= sent1 - due1 < 0.5 and 0 <= sent2 - due2 < 0.5


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_gives_clean_exit_0_with_cleanups(tmp_path, signum):
    live = start_live(tmp_path)
    live.read_until("timer")
    live.proc.send_signal(signum)
    sent = time.monotonic()
    live.proc.wait(timeout=2.0)  # within 2 s of the signal, or TimeoutExpired fails the test
    assert time.monotonic() - sent < 2.0
    assert live.proc.returncode == 0
    assert live.rest()[-2:] == ["exiting", "cleanup recorder"]
    assert any("live run interrupted" in line for line in live.rest("stderr"))


def test_second_sigint_forces_exit(tmp_path):
    live = start_live(tmp_path, block_on_timer=True)
    live.read_until("blocking")  # a callback is now stuck in time.sleep(60)
    live.proc.send_signal(signal.SIGINT)
    # the first interrupt was handled (a stop was requested) but the callback still blocks
    live.read_until("got SIGINT: stopping", stream="stderr")
    live.proc.send_signal(signal.SIGINT)
    live.proc.wait(timeout=5)
    assert live.proc.returncode == 130
    assert "cleanup recorder" not in live.rest()


NESTED_SECOND_SIGINT = textwrap.dedent("""
    import io, logging, os, signal, sys
    from finchan.env import Env

    class OneWriterAtATime(io.TextIOBase):
        # CPython's buffered writer runs signal handlers while it holds its
        # lock, and a write re-entered from a handler raises RuntimeError
        def __init__(self):
            self.busy = False
            self.second_sent = False

        def write(self, text):
            if self.busy:
                raise RuntimeError("reentrant call inside <stderr>")
            self.busy = True
            try:
                os.write(2, text.encode())
                if "got SIGINT" in text and not self.second_sent:
                    self.second_sent = True
                    os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, mid-write
            finally:
                self.busy = False
            return len(text)

    sys.stderr = OneWriterAtATime()
    logging.basicConfig(stream=sys.stderr, force=True)
    env = Env({"run_mode": "live"})
    with env.dispatcher._signals_handled():
        os.kill(os.getpid(), signal.SIGINT)
        print("the second interrupt was lost", flush=True)
""")


def test_second_sigint_in_the_middle_of_a_log_write_still_exits():
    done = subprocess.run(
        [sys.executable, "-c", NESTED_SECOND_SIGINT], capture_output=True, text=True, timeout=30
    )
    assert "the second interrupt was lost" not in done.stdout
    assert done.returncode == 130, done.stderr
    assert "second interrupt: exiting now, cleanups skipped" in done.stderr
