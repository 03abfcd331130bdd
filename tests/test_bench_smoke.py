"""``python -m bench --quick``: every benchmark runs, and the engines agree on the fills.

One quick run (small data, one run each, ~20-40 s on 2 cores) is shared by
the tests of this file. No figure is asserted: speed depends on the machine.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from finchan_testing import ROOT

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTIONS = ["dispatch", "sma_cross", "memory", "startup"]
if (ROOT / "bench" / "kvstore.py").exists():
    SECTIONS.append("kvstore")
SECTIONS.append("sweep")
SECTIONS.append("resample")
SECTIONS.append("brackets")


class QuickRun:
    def __init__(self, done: subprocess.CompletedProcess[str], text: str) -> None:
        self.done = done
        self.text = text

    def section(self, name: str) -> str:
        match = re.search(rf"^## {name}:.*?(?=^## |\Z)", self.text, re.M | re.S)
        assert match, f"no section {name!r} in:\n{self.text}"
        return match.group(0)

    def table(self, name: str) -> list[dict[str, str]]:
        lines = [line for line in self.section(name).splitlines() if line.startswith("|")]
        header = [cell.strip() for cell in lines[0].strip("|").split("|")]
        return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|"))))
                for line in lines[2:]]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    output = tmp_path_factory.mktemp("bench") / "results.md"
    before = RESULTS.stat().st_mtime_ns if RESULTS.exists() else None
    done = subprocess.run(
        # live (Redis Streams, ~30 s) is left to `python bench/live.py --quick`
        [sys.executable, "-m", "bench", "--quick", "--output", str(output), "--only", *SECTIONS],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    after = RESULTS.stat().st_mtime_ns if RESULTS.exists() else None
    assert before == after, "a quick run rewrote bench/RESULTS.md"
    return QuickRun(done, output.read_text(encoding="utf-8") if output.exists() else "")


def test_quick_bench_exits_0_and_writes_every_section(quick_run: QuickRun) -> None:
    assert quick_run.done.returncode == 0, quick_run.done.stdout[-3000:] + quick_run.done.stderr[-3000:]
    assert quick_run.text.startswith("# finchan benchmark results\n")
    assert "do not edit by hand" in quick_run.text
    assert "mode: quick" in quick_run.text
    found = re.findall(r"^## (\w+): ", quick_run.text, re.M)
    assert found == SECTIONS
    for name in SECTIONS:
        assert "FAILED" not in quick_run.section(name)


def test_quick_bench_sma_engines_produce_the_same_fills(quick_run: QuickRun) -> None:
    rows = quick_run.table("sma_cross")
    engines = [(row["engine"], row["style"].split(" (")[0]) for row in rows]
    assert engines[:2] == [("finchan", "incremental indicators"), ("finchan", "vectorised indicators")]
    assert {"backtrader", "backtesting.py"} <= {engine for engine, _ in engines}  # both peers are test dependencies
    assert {row["bars"] for row in rows} == {"20,000"}
    assert [row["same fills"] for row in rows] == ["yes"] * len(rows)
    assert len({row["fills"] for row in rows}) == 1
    assert len({row["final equity"] for row in rows}) == 1
    assert f"Correctness: all checks passed ({len(rows)})." in quick_run.section("sma_cross")


def test_quick_bench_streamed_parquet_gives_the_in_memory_fills(quick_run: QuickRun) -> None:
    rows = quick_run.table("memory")
    assert [row["bars"] for row in rows] == ["20,000", "200,000"]
    assert rows[0]["fills"] == quick_run.table("sma_cross")[0]["fills"]
    section = quick_run.section("memory")
    assert "Correctness: all checks passed (1)." in section
    assert re.search(r"- \*\*(PASS|FAIL)\*\* 200,000 bars: peak RSS < 1,024 MiB: [\d,]+ MiB", section)


def test_quick_bench_marks_every_target_pass_or_fail(quick_run: QuickRun) -> None:
    marks = re.findall(r"^- \*\*(\w+)\*\* ", quick_run.text, re.M)
    assert len(marks) >= 3 + 2 + 2  # dispatch, sma_cross, memory
    assert set(marks) <= {"PASS", "FAIL", "n/a"}
    assert "- report only, no target" in quick_run.section("startup")


def test_quick_bench_sweep_runs_every_way_and_the_tables_agree(quick_run: QuickRun) -> None:
    rows = quick_run.table("sweep")
    assert [row["mode"] for row in rows] == [
        "bare backtest() loop", "bare backtest() loop, 2 processes (no Dask)",
        "sweep, in process",
        "LocalCluster start (2 workers) and warm-up, not in the sweep rows",
        "sweep, 2 Dask workers", "Backtest.optimize (process pool)", "optstrategy, maxcpus=2",
    ]
    assert [row["combinations"] for row in rows] == ["16", "16", "16", "", "16", "16", "16"]
    assert rows[4]["same table"] == "yes"
    assert rows[4]["overhead ms / task over the 2-process floor"] != ""
    section = quick_run.section("sweep")
    assert "Correctness: all checks passed (7)." in section
    assert re.search(r"- \*\*(PASS|FAIL)\*\* 16 combinations, 3,000 bars: 2 workers >= 1.8x", section)
    assert re.search(r"- \*\*(PASS|FAIL)\*\* 16 combinations, 3,000 bars: overhead per task "
                     r"< 20 ms \(2 workers, over the 2-process floor\)", section)
    # Dask's own cost, timed in the workers: a duration, not a blank
    assert float(rows[4]["worker idle ms"]) >= 0.0
    assert re.search(r"- \*\*(PASS|FAIL)\*\* 16 combinations, 3,000 bars: Dask's own cost per "
                     r"task \(worker idle time\) < 20 ms", section)
