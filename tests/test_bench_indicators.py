"""``python -m bench.indicators --quick`` runs and its SMA-cross variants agree on the fills."""

from __future__ import annotations

import re
import subprocess
import sys

from finchan_testing import ROOT


def test_quick_indicator_bench_runs_and_the_history_variants_trade_alike() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.indicators", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("TALib RSI(14)") and line.endswith("ns/update") for line in lines)
    fills = re.findall(r"^SMA cross, .*\((\d+) fills\)\s+[\d,]+ bars/s$", done.stdout, re.M)
    assert len(fills) == 3 and len(set(fills)) == 1 and int(fills[0]) > 0
