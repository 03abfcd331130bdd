"""The progress bar shows on a terminal (a real pseudo-terminal here) and nowhere else."""

import os
import pty
import subprocess
import sys

from finchan_testing import ROOT, TEST_EXTS


def run_on_terminal(*args):
    """Run finchan with stderr on a pseudo-terminal; return (exit code, what the terminal got)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "finchan", *args], stdout=subprocess.DEVNULL, stderr=slave,
        env={**os.environ, "PYTHONPATH": str(TEST_EXTS), "COLUMNS": "120"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_terminal_shows_bars_per_second_and_the_simulated_date(tmp_path):
    code, screen = run_on_terminal("-c", str(ROOT / "examples" / "sma_cross"), "--set", f"work_dir={tmp_path}",
                                   "--set", "backtest_exts.finchan.exts.strategy.report=false")
    assert code == 0
    assert "bars/s" in screen
    assert " at 2020-0" in screen  # the simulated date


def test_quiet_shows_no_progress(tmp_path):
    code, screen = run_on_terminal("-c", str(ROOT / "examples" / "sma_cross"), "--set", f"work_dir={tmp_path}",
                                   "--set", "backtest_exts.finchan.exts.strategy.report=false", "-q")
    assert code == 0 and "bars/s" not in screen and screen.strip() == ""
