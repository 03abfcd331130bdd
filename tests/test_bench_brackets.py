"""``python -m bench.brackets --quick`` runs, and finchan and backtrader agree on the fills."""

from __future__ import annotations

import re
import subprocess
import sys

from finchan_testing import ROOT


def test_quick_bracket_bench_runs_and_both_engines_fill_alike() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.brackets", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"^(finchan|backtrader)\s+20,000\s+[\d,]+\s+[\d.]+\s+(\d+)\s+([\d,.]+)\s+True$",
                      done.stdout, re.M)
    assert [r[0] for r in rows] == ["finchan", "backtrader"]
    assert rows[0][1:] == rows[1][1:] and int(rows[0][1]) > 100
