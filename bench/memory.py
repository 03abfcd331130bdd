"""Streaming memory: the reference SMA cross over a 10,000,000-bar Parquet file.

``finchan.trade.backtest(SmaCross, {"SYN": path}, record_prices=False)``
reads the file chunk by chunk, so its memory should not grow with the
file: each size runs in a fresh child process whose peak RSS (``VmHWM``,
the child's own high-water mark, read by the child after the backtest and
its result; see ``_peak_rss_kib``) and times are reported.
Targets: peak RSS under 1 GiB at 10M bars, and t(10M) / t(1M) at most 11
(time of the backtest call inside the child; the child's wall time,
interpreter start and imports included, is reported beside it).

    python -m bench.memory [--quick] [--sizes 1000000 10000000] [--repeat 3]

The Parquet files (``bench/_data/bars_<n>.parquet``, ``make_bars`` bars,
row groups of 100,000) are generated once, each in its own child process
(10M bars take about 2 GB while generated).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.sma_cross import (
    CASH,
    EXPECTED,
    SYMBOL,
    bars_path,
    fills_md5,
    result_fills,
    write_parquet,
)

__all__ = ["main", "run"]

_ROOT = Path(__file__).resolve().parent.parent
_SIZES = (1_000_000, 10_000_000)
_QUICK_SIZES = (20_000, 200_000)
#: targets: peak RSS of the largest run, and time ratio largest / smallest
RSS_LIMIT_MIB = 1024.0
TIME_RATIO_LIMIT = 11.0
# a child running longer than this is not repeated
_REPEAT_BUDGET_S = 60.0


def _child(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "bench.memory", *argv], cwd=_ROOT,
                          capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        raise RuntimeError(f"python -m bench.memory {' '.join(argv)}: {lines[-1]}")


def _ensure_parquet(n: int) -> Path:
    path = bars_path(n, ".parquet")
    if not path.exists():
        # in a child: generating 10M bars at once peaks near 2 GB, which must
        # not count in this process (nor linger in its heap)
        _child(["--generate", str(n)])
    return path


def _generate(n: int) -> None:
    from finchan.trade.synthetic import make_bars

    path = bars_path(n, ".parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(make_bars(n), path)


def _backtest_file(path: str) -> None:
    """The child's work: one streaming backtest; prints a JSON line of figures."""
    # imported before the clock starts: the time ratio compares backtests, not imports
    import pyarrow.parquet  # noqa: F401

    import finchan.trade.data
    import finchan.trade.exts.sim_broker
    import finchan.trade.exts.strategy  # noqa: F401
    from finchan.trade.api import backtest
    from finchan.trade.examples import SmaCross

    t0 = time.perf_counter()
    result = backtest(SmaCross, {SYMBOL: path}, cash=CASH, record_prices=False)
    elapsed = time.perf_counter() - t0
    fills = result_fills(result)
    figures = {"backtest_s": elapsed, "fills": len(fills), "fills_md5": fills_md5(fills),
               "final_equity": round(result.final_equity, 2), "peak_rss_kib": _peak_rss_kib()}
    print(json.dumps(figures))


def _peak_rss_kib() -> int:
    """This process's own peak RSS in KiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this
    process's memory since its ``exec``. ``ru_maxrss`` (of ``RUSAGE_SELF``, or
    of the child from ``wait4``/``RUSAGE_CHILDREN``) would not do: Linux
    carries the parent's RSS at ``fork`` over into it, so a child started by a
    parent holding 700 MB of DataFrames reports at least 700 MB.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib // 1024 if sys.platform == "darwin" else kib  # bytes on macOS


def _measure(path: Path) -> dict[str, Any]:
    """Run one child: its figures, its peak RSS (MiB) and its wall time."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench.memory", "--child", str(path)],
                          cwd=_ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        raise RuntimeError(f"bench.memory child failed on {path}: {lines[-1]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_s"] = wall
    figures["peak_rss_mib"] = figures.pop("peak_rss_kib") / 1024.0
    return figures


def run(quick: bool = False, sizes: list[int] | None = None,
        repeat: int | None = None) -> list[dict[str, Any]]:
    """Measure each size in fresh children; one row per size, smallest first.

    Rows: ``bars``, ``peak_rss_mib`` (largest over the runs), ``backtest_s``
    and ``wall_s`` (best run), ``bars_per_s``, ``fills``, ``final_equity``,
    ``fills_md5`` (see :func:`bench.sma_cross.fills_md5`), ``expected``
    (fills md5 and equity equal the README's; None without a figure) and
    ``time_ratio`` (backtest time over the smallest size's; None on the
    smallest row). ``quick``: 20,000 and 200,000 bars, one run each.
    """
    sizes = sorted(sizes or (_QUICK_SIZES if quick else _SIZES))
    repeat = repeat or (1 if quick else 3)
    rows: list[dict[str, Any]] = []
    for n in sizes:
        path = _ensure_parquet(n)
        runs: list[dict[str, Any]] = []
        spent = 0.0
        for _ in range(repeat):
            runs.append(_measure(path))
            spent += runs[-1]["wall_s"]
            if spent > _REPEAT_BUDGET_S:
                break
        best = min(runs, key=lambda r: r["backtest_s"])
        want = EXPECTED.get(n)
        rows.append({
            "bars": n,
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
            "backtest_s": best["backtest_s"],
            "wall_s": min(r["wall_s"] for r in runs),
            "bars_per_s": n / best["backtest_s"],
            "fills": best["fills"],
            "final_equity": best["final_equity"],
            "fills_md5": best["fills_md5"],
            "expected": None if want is None else (
                best["fills_md5"] == want["fills_md5"]
                and best["final_equity"] == want["final_equity"]),
            "time_ratio": best["backtest_s"] / rows[0]["backtest_s"] if rows else None,
        })
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table."""
    head = (f"{'bars':>11} {'peak RSS MiB':>12} {'backtest s':>10} {'child wall s':>12} "
            f"{'bars/s':>9} {'fills':>6} {'final equity':>13} {'t / t(smallest)':>15}")
    lines = [head, "-" * len(head)]
    for row in rows:
        ratio = "" if row["time_ratio"] is None else f"{row['time_ratio']:.2f}"
        lines.append(
            f"{row['bars']:>11,} {row['peak_rss_mib']:>12,.0f} {row['backtest_s']:>10.2f} "
            f"{row['wall_s']:>12.2f} {row['bars_per_s']:>9,.0f} {row['fills']:>6} "
            f"{row['final_equity']:>13,.2f} {ratio:>15}"
        )
    largest = rows[-1]
    lines.append(f"targets: peak RSS < {RSS_LIMIT_MIB:,.0f} MiB at the largest size "
                 f"({largest['peak_rss_mib']:,.0f}), time ratio <= {TIME_RATIO_LIMIT:g} "
                 f"for 10x the bars ({largest['time_ratio']:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the table (``--child``/``--generate`` are the children's modes)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 and 200,000 bars, one run")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, metavar="N")
    parser.add_argument("--repeat", type=int, default=None, help="best of N runs (default 3)")
    parser.add_argument("--child", metavar="PATH", help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _backtest_file(args.child)
        return 0
    if args.generate:
        _generate(args.generate)
        return 0
    print(format_rows(run(args.quick, args.sizes, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
