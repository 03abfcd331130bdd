"""``python -m bench``: run every benchmark, print the tables, write ``bench/RESULTS.md``.

    python -m bench                       # full run, writes bench/RESULTS.md (minutes)
    python -m bench --quick               # small data, seconds; prints only
    python -m bench --quick --output x.md # ... and writes x.md
    python -m bench --only sma_cross memory

Benchmarks: ``dispatch``, ``sma_cross``, ``memory``, ``startup``,
``kvstore`` (when ``bench/kvstore.py`` has ``run()``), ``sweep``, ``resample``,
``brackets`` and ``live`` (Redis at ``FINCHAN_BENCH_REDIS``); each module's
``run(quick) -> list[dict]`` gives the rows. Every target gets a PASS/FAIL
mark; quick figures are indicative only (small data, one run).

Exit status: 0 when every benchmark ran and every correctness check passed
(the engines' fills agree, finchan's match the README), 1 otherwise. A
missed speed or memory target is marked in the output but is not an error:
figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["BENCHMARKS", "main"]

_HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = _HERE / "RESULTS.md"

Rows = list[dict[str, Any]]
#: (what, measured value as text, passed); passed None means "not measured"
Target = tuple[str, str, bool | None]


@dataclass
class _Section:
    """One benchmark's outcome."""

    name: str
    title: str
    rows: Rows = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and all(passed for _, passed in self.checks)


# --------------------------------------------------------------------------- targets


def _dispatch_targets(rows: Rows) -> tuple[list[Target], list[tuple[str, bool]]]:
    one, many = rows[0], rows[-1]
    slowdown = one["finchan_events_per_s"] / many["finchan_events_per_s"]
    targets = [
        ("1 source: finchan >= 2,000,000 events/s", f"{one['finchan_events_per_s']:,.0f}",
         one["finchan_events_per_s"] >= 2_000_000),
        ("1 source: finchan >= 0.5 x the plain loop", f"{one['ratio']:.2f}", one["ratio"] >= 0.5),
        ("100 sources at most 2x slower than 1 source", f"{slowdown:.2f}x", slowdown <= 2.0),
    ]
    return targets, []


def _sma_targets(rows: Rows) -> tuple[list[Target], list[tuple[str, bool]]]:
    from bench.sma_cross import ratios

    targets: list[Target] = []
    for ratio in ratios(rows):
        if not ratio["style"].startswith("incremental"):
            continue  # the vectorised style is reported, not held to the targets
        n = f"{ratio['bars']:,} bars"
        bt, btp = ratio["vs_backtrader"], ratio["vs_backtesting"]
        targets.append((f"{n}: finchan >= backtesting.py bars/s",
                        "not installed" if btp is None else f"{btp:.2f}x",
                        None if btp is None else btp >= 1.0))
        targets.append((f"{n}: finchan >= 17x backtrader bars/s",
                        "not installed" if bt is None else f"{bt:.1f}x",
                        None if bt is None else bt >= 17.0))
    checks = [
        (f"{row['bars']:,} bars, {row['engine']} {row['style']}: same fills as finchan SmaCross",
         bool(row["same_fills"])) for row in rows
    ]
    checks += [
        (f"{row['bars']:,} bars, finchan {row['style']}: fills md5 equals the README's",
         bool(row["readme_md5"])) for row in rows if row["readme_md5"] is not None
    ]
    return targets, checks


def _memory_targets(rows: Rows) -> tuple[list[Target], list[tuple[str, bool]]]:
    from bench.memory import RSS_LIMIT_MIB, TIME_RATIO_LIMIT

    largest = rows[-1]
    n = f"{largest['bars']:,} bars"
    targets: list[Target] = [
        (f"{n}: peak RSS < {RSS_LIMIT_MIB:,.0f} MiB", f"{largest['peak_rss_mib']:,.0f} MiB",
         largest["peak_rss_mib"] < RSS_LIMIT_MIB),
    ]
    if largest["time_ratio"] is not None:
        factor = largest["bars"] / rows[0]["bars"]
        targets.append((f"t({n}) / t({rows[0]['bars']:,} bars) <= {TIME_RATIO_LIMIT:g} "
                        f"({factor:g}x the bars)", f"{largest['time_ratio']:.2f}",
                        largest["time_ratio"] <= TIME_RATIO_LIMIT))
    checks = [(f"{row['bars']:,} bars: fills and final equity equal the README's",
               bool(row["expected"])) for row in rows if row["expected"] is not None]
    return targets, checks


def _kvstore_targets(rows: Rows) -> tuple[list[Target], list[tuple[str, bool]]]:
    targets: list[Target] = []
    for row in rows:
        target, ratio = row.get("target"), row.get("ratio")
        if not target or ratio is None:
            continue
        op, _, limit_text = str(target).partition(" ")
        limit = float(limit_text)
        passed = ratio <= limit if op == "<=" else ratio >= limit
        targets.append((f"{row['backend']} {row['op']}: ratio {target}", f"{ratio:.2f}", passed))
    return targets, []


def _sweep_targets(rows: Rows) -> tuple[list[Target], list[tuple[str, bool]]]:
    by_mode = {row["engine"] + ": " + row["mode"]: row for row in rows}
    parallel = next(row for row in rows if "Dask workers" in row["mode"])
    sequential = next(row for row in rows if row["mode"] == "sweep, in process")
    n = f"{parallel['combinations']} combinations, {parallel['bars']:,} bars"
    targets: list[Target] = [
        (f"{n}: 2 workers >= 1.8x in process", f"{parallel['speedup']:.2f}x",
         parallel["speedup"] >= 1.8),
        (f"{n}: overhead per task < 20 ms (2 workers)", f"{parallel['overhead_ms']:.1f} ms",
         parallel["overhead_ms"] < 20.0),
        (f"{n}: overhead per task < 20 ms (in process)", f"{sequential['overhead_ms']:.1f} ms",
         sequential["overhead_ms"] < 20.0),
    ]
    floor = parallel.get("floor_overhead_ms")
    if floor is not None:
        # the same target over bare backtests run two at a time (bench/sweep.py)
        targets.append((f"{n}: overhead per task < 20 ms (2 workers, over the 2-process floor)",
                        f"{floor:.1f} ms", floor < 20.0))
    idle = parallel.get("worker_idle_ms")
    if idle is not None:
        # what Dask itself costs, timed in the workers (bench/sweep.py)
        targets.append((f"{n}: Dask's own cost per task (worker idle time) < 20 ms",
                        f"{idle:.1f} ms", idle < 20.0))
    for peer in ("backtesting.py", "backtrader"):
        row = next((r for r in rows if r["engine"] == peer), None)
        targets.append((f"{n}: finchan 2 workers faster than {peer}",
                        "not installed" if row is None
                        else f"{row['seconds'] / parallel['seconds']:.2f}x",
                        None if row is None else parallel["seconds"] < row["seconds"]))
    checks = [(f"{n}: the 2-worker table equals the in-process table",
               bool(parallel["same_table"]))]
    checks += [(f"{what}: ran every combination", row["combinations"] == sequential["combinations"])
               for what, row in by_mode.items() if row["combinations"]]
    return targets, checks


def _brackets_targets(rows: Rows) -> tuple[list[Target], list[tuple[str, bool]]]:
    # report only: the figures stand beside backtrader's; the fills must agree
    checks = [(f"{row['bars']:,} bars: {row['engine']} fills equal finchan's",
               bool(row["same_fills"])) for row in rows if row["engine"] != "finchan"]
    return [], checks


def _resample_targets(rows: Rows) -> tuple[list[Target], list[tuple[str, bool]]]:
    # no speed target of its own: the figures are reported beside backtrader's
    checks = [(f"{row['bars']:,} bars, {row['case']}: {row['engine']} fills equal finchan's",
               bool(row["same_fills"])) for row in rows if row["engine"] != "finchan"]
    return [], checks


def _live_targets(rows: Rows) -> tuple[list[Target], list[tuple[str, bool]]]:
    def finchan(prefix: str, reader: str = "finchan") -> dict[str, Any]:
        return next(r for r in rows if r["case"].startswith(prefix)
                    and r["reader"].startswith(reader))  # fmt: skip

    p99 = finchan("latency 1,000")["p99_ms"]
    rate = finchan("throughput")["bars_per_s"]
    restart = finchan("restart", "finchan (latest snapshot)")["restart_s"]
    targets: list[Target] = [
        ("p99 XADD -> on_bar < 1 ms at 1,000 msg/s", f"{p99:.3f} ms", p99 < 1),
        (">= 50,000 bars/s through on_bar, durable state", f"{rate:,.0f}", rate >= 50_000),
        ("restart to the first new batch < 1 s", f"{restart:.3f} s", restart < 1),
    ]
    checks = [
        (f"{r['case']} ({r['reader']}): every message once, all committed",
         r["messages"] == r["expected"] == r.get("committed", r["expected"]))
        for r in rows
    ]  # fmt: skip
    return targets, checks


def _no_targets(rows: Rows) -> tuple[list[Target], list[tuple[str, bool]]]:
    return [], []


_Judge = Callable[[Rows], tuple[list[Target], list[tuple[str, bool]]]]

#: a column: (row key, header, format spec or "" for the default)
_Column = tuple[str, str, str]

#: name -> (title, how to judge the rows, columns to show, None for every key)
BENCHMARKS: dict[str, tuple[str, _Judge, list[_Column] | None]] = {
    "dispatch": ("Core dispatch: events per second", _dispatch_targets, [
        ("case", "case", ""), ("finchan_events_per_s", "finchan events/s", ",.0f"),
        ("plain_loop_events_per_s", "plain loop events/s", ",.0f"),
        ("ratio", "finchan / plain loop", ".2f"),
    ]),
    "sma_cross": ("SMA 10/30 cross: bars per second beside peers", _sma_targets, [
        ("bars", "bars", ""), ("engine", "engine", ""), ("style", "style", ""),
        ("bars_per_s", "bars/s", ",.0f"), ("seconds", "seconds", ".3f"), ("fills", "fills", ""),
        ("final_equity", "final equity", ",.2f"), ("same_fills", "same fills", ""),
        ("readme_md5", "README md5", ""), ("finchan_ratio", "finchan SmaCross / this", ".2f"),
    ]),
    "memory": ("Streaming memory: Parquet backtest in a child process", _memory_targets, [
        ("bars", "bars", ""), ("peak_rss_mib", "peak RSS MiB", ",.0f"),
        ("backtest_s", "backtest s", ".2f"), ("wall_s", "child wall s", ".2f"),
        ("bars_per_s", "bars/s", ",.0f"), ("fills", "fills", ""),
        ("final_equity", "final equity", ",.2f"), ("expected", "README figures", ""),
        ("time_ratio", "t / t(smallest)", ".2f"),
    ]),
    "startup": ("Start-up time", _no_targets, [
        ("command", "command", ""), ("seconds", "seconds", ".3f"),
        ("ratio", "x python -c pass", ".2f"),
    ]),
    "kvstore": ("Key-value stores: operations per second", _kvstore_targets, None),
    "sweep": ("Parameter sweep: SMA cross combinations, in process, on Dask, beside peers",
              _sweep_targets, [
        ("engine", "engine", ""), ("mode", "mode", ""), ("bars", "bars", ""),
        ("combinations", "combinations", ""), ("seconds", "seconds", ".2f"),
        ("ms_per_combination", "ms / combination", ".1f"),
        ("overhead_ms", "overhead ms / task", ".1f"),
        ("floor_overhead_ms", "overhead ms / task over the 2-process floor", ".1f"),
        ("worker_idle_ms", "worker idle ms", ".1f"),
        ("speedup", "speed-up", ".2f"),
        ("same_table", "same table", ""), ("cpu_s", "CPU s", ".2f"),
        ("cpu_overhead_ms", "CPU overhead ms / task", ".1f"),
    ]),
    "resample": ("Resampled bars: strategies on daily bars beside backtrader", _resample_targets, [
        ("bars", "bars", ""), ("case", "case", ""), ("engine", "engine", ""),
        ("bars_per_s", "bars/s", ",.0f"), ("seconds", "seconds", ".3f"), ("fills", "fills", ""),
        ("same_fills", "same fills", ""), ("finchan_ratio", "this s / finchan s", ".1f"),
    ]),
    "brackets": ("Brackets: the SMA cross with a bracket on every entry, beside backtrader",
                 _brackets_targets, [
        ("engine", "engine", ""), ("bars", "bars", ""), ("bars_per_s", "bars/s", ",.0f"),
        ("seconds", "seconds", ".3f"), ("fills", "fills", ""),
        ("final_equity", "final equity", ",.2f"), ("same_fills", "same fills", ""),
    ]),
    "live": ("Live through Redis Streams: latency, throughput, restart", _live_targets, [
        ("case", "case", ""), ("reader", "reader", ""), ("messages", "messages", ""),
        ("p50_ms", "p50 ms", ".3f"), ("p99_ms", "p99 ms", ".3f"), ("max_ms", "max ms", ".3f"),
        ("bars_per_s", "bars/s", ",.0f"), ("restart_s", "restart s", ".3f"),
    ]),
}


# --------------------------------------------------------------------------- running


def _run_one(name: str, quick: bool) -> _Section:
    title, judge, _ = BENCHMARKS[name]
    section = _Section(name, title)
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
        runner = getattr(module, "run", None)
        if runner is None:
            section.notes.append(f"not run: bench/{name}.py has no run()")
            return section
        section.rows = runner(quick)
        if section.rows:
            section.targets, section.checks = judge(section.rows)
        else:
            section.notes.append("no rows")
    except Exception as exc:  # one broken benchmark must not hide the others' figures
        section.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        section.seconds = time.perf_counter() - t0
    return section


def _cross_check(sections: list[_Section]) -> None:
    """Streaming from Parquet must give the fills of the in-memory run of the same bars."""
    by_name = {section.name: section for section in sections if section.error is None}
    if "memory" not in by_name or "sma_cross" not in by_name:
        return
    in_memory = {row["bars"]: row["fills_md5"] for row in by_name["sma_cross"].rows
                 if row["engine"] == "finchan" and row["style"].startswith("incremental")}
    memory = by_name["memory"]
    for row in memory.rows:
        what = f"{row['bars']:,} bars: streamed fills equal the in-memory run's (sma_cross)"
        if row["bars"] in in_memory and what not in dict(memory.checks):
            memory.checks.append((what, row["fills_md5"] == in_memory[row["bars"]]))


def _available(name: str) -> bool:
    return name != "kvstore" or (_HERE / "kvstore.py").exists()


# --------------------------------------------------------------------------- rendering


def _cell(value: Any, spec: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if spec:
        return format(value, spec)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:,.1f}"
        return f"{value:.3f}"
    return str(value).replace("|", "\\|")


def _table(rows: Rows, columns: list[_Column] | None) -> list[str]:
    if columns is None:
        keys: list[str] = []
        for row in rows:
            keys += [key for key in row if key not in keys]
        columns = [(key, key, "") for key in keys]
    lines = ["| " + " | ".join(header for _, header, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = (_cell(row.get(key), spec) for key, _, spec in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _mark(passed: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[passed]


def _render_section(section: _Section) -> list[str]:
    lines = [f"## {section.name}: {section.title}", ""]
    if section.error is not None:
        return [*lines, f"**FAILED**: {section.error}", ""]
    lines += [f"_{note}_" for note in section.notes]
    if section.rows:
        lines += _table(section.rows, BENCHMARKS[section.name][2])
        lines.append("")
        lines.append(f"Ran in {section.seconds:.0f} s.")
        lines.append("")
    lines.append("Targets:")
    lines.append("")
    if not section.targets:
        lines.append("- report only, no target")
    for what, measured, passed in section.targets:
        lines.append(f"- **{_mark(passed)}** {what}: {measured}")
    if section.checks:
        failed = [what for what, ok in section.checks if not ok]
        lines.append("")
        if failed:
            lines += [f"- **CHECK FAILED** {what}" for what in failed]
        else:
            lines.append(f"Correctness: all checks passed ({len(section.checks)}).")
    lines.append("")
    return lines


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _machine() -> list[str]:
    cpu, ram = platform.processor() or "unknown", "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:
        pass  # not Linux: keep what platform knows
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    packages = ", ".join(f"{p} {_version(p)}" for p in
                         ("finchan", "numpy", "pandas", "pyarrow", "backtrader", "backtesting"))
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; RAM {ram}",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- Packages: {packages}",
        f"- Load average at start (1, 5, 15 min): {load}",
    ]


def _render(sections: list[_Section], quick: bool, started: datetime, machine: list[str]) -> str:
    mode = "quick (small data, one run each: indicative only)" if quick else "full"
    lines = [
        "# finchan benchmark results",
        "",
        "<!-- Generated by `python -m bench`; do not edit by hand, run it again. -->",
        "This file is generated by `python -m bench` (see bench/README.md); do not edit it by",
        "hand, run the benchmarks again.",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; mode: {mode}",
        *machine,
        "",
        "Figures are the best of up to 3 runs on a shared machine; compare the rows of one",
        "run with each other, not with another machine's.",
        "",
        "## Summary",
        "",
        "| benchmark | targets passed | correctness |",
        "|---|---|---|",
    ]
    for section in sections:
        if section.error is not None:
            lines.append(f"| {section.name} | FAILED: {_cell(section.error)} | |")
            continue
        judged = [p for _, _, p in section.targets if p is not None]
        passed = f"{sum(judged)} / {len(judged)}" if judged else "report only"
        checks = ("" if not section.checks
                  else "ok" if all(ok for _, ok in section.checks) else "FAILED")
        lines.append(f"| {section.name} | {passed} | {checks} |")
    lines.append("")
    for section in sections:
        lines += _render_section(section)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command line: run the benchmarks, print the report, write it (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("--quick", action="store_true",
                        help="small data, one run each; prints only unless --output is given")
    parser.add_argument("--output", type=Path, default=None,
                        help="Markdown file to write (default: bench/RESULTS.md for a full run "
                             "of every benchmark, nothing otherwise)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=None,
                        metavar="NAME", help=f"run only these ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    names = [n for n in (args.only or BENCHMARKS) if _available(n)]
    output = args.output
    if output is None and not args.quick and args.only is None:
        output = DEFAULT_OUTPUT
    started = datetime.now(UTC)
    machine = _machine()  # before the run: the load average is the one we start under
    sections = []
    for name in names:
        print(f"== {name} ...", flush=True)
        section = _run_one(name, args.quick)
        sections.append(section)
        _cross_check(sections)
        print("\n".join(_render_section(section)), flush=True)
    text = _render(sections, args.quick, started, machine)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(f"written: {output}")
    return 0 if all(section.ok for section in sections) else 1


if __name__ == "__main__":
    sys.exit(main())
