"""Parameter sweeps: 64 SMA-cross combinations, in one process, on 2 Dask workers, and the peers.

On the reference bars (``make_bars(100_000)``), the 64 combinations
``fast`` in 5:40:5 and ``slow`` in 50:120:10 are run:

- ``finchan bare``: ``finchan.trade.backtest`` called 64 times in a loop (no sweep);
- ``finchan bare, 2 processes``: the same loop split over 2 plain processes
  (``multiprocessing``, no Dask, no sweep) started together: the floor any
  2-worker sweep stands on here, since two backtests at once run slower
  each than one alone (shared caches, memory bandwidth and clock on a
  2-core machine);
- ``finchan sweep, in process``: ``sweep(..., workers=0)``;
- ``finchan sweep, 2 workers``: ``sweep(..., scheduler=...)`` on the Dask
  LocalCluster ``sweep(workers=2)`` starts (2 single-threaded worker
  processes, the sweep's Dask settings), started beforehand (cluster
  start-up is reported on its own row, not in the sweep's time);
- ``backtesting.py Backtest.optimize`` (its own process pool) and
  ``backtrader optstrategy`` (``maxcpus=2``) on the same 64 combinations.

Per-task overhead = (sweep time x workers - bare time) / 64: what a task
costs beyond its backtest (statistics, equity sampling, storage, Dask).
For the 2-worker sweep it is also given over the 2-process floor,
(sweep time - floor time) x workers / 64: what the sweep adds to backtests
that run two at a time anyway.
``worker_idle_ms`` measures what Dask itself costs, apart from the machine's
pace: each worker records when every sweep task starts and ends, and
(wall time x workers - the tasks' time) / 64 is the time per task a worker
sat idle (the sweep's start before the first task, scheduling gaps, the
tail and the tables at the end).
Wall times on a shared machine move with its other load (the same loop took
10.7 s and 14.5 s on this machine minutes apart, and two processes at once
ran from 1.3x to 1.9x as fast as one), so the four finchan ways are run in
3 interleaved rounds (bare, floor, in process, 2 workers; then again) and
each row is its best round, as ``timeit`` reports its best. Each finchan row
also gives the CPU seconds its processes used (this one, which runs the
driver, the scheduler and the nannies, and the Dask workers) and the CPU
overhead per task, (CPU seconds - the bare loop's) / 64: what the sweep costs
the machine, whatever else runs on it.

    python -m bench.sweep [--quick]

``--quick``: 3,000 bars and 16 combinations (fast 5:20:5, slow 50:80:10).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from typing import Any

__all__ = ["main", "run"]

CASH = 1_000_000.0
QTY = 100
DEAD_BAND = 1e-9
FULL: dict[str, Any] = {"bars": 100_000, "fast": list(range(5, 41, 5)),
                        "slow": list(range(50, 121, 10)), "rounds": 3}
QUICK: dict[str, Any] = {"bars": 3_000, "fast": list(range(5, 21, 5)),
                         "slow": list(range(50, 81, 10)), "rounds": 1}
WORKERS = 2


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by this process and the processes ``pids``."""
    import psutil  # type: ignore[import-untyped]

    total = 0.0
    for pid in [os.getpid(), *pids]:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def _bare(bars: Any, combos: list[tuple[int, int]]) -> float:
    from finchan.trade import backtest
    from finchan.trade.examples import SmaCross

    t0 = time.perf_counter()
    for fast, slow in combos:
        backtest(SmaCross, {"SYN": bars}, cash=CASH, params={"fast": fast, "slow": slow},
                 report=False, record_prices=False)
    return time.perf_counter() - t0


def _bare_worker(combos: list[tuple[int, int]], n_bars: int, ready: Any, go: Any,
                 out: Any) -> None:
    """One of the floor's processes: warm up, wait for ``go``, run its loop, report."""
    from finchan.trade._synthetic import make_bars

    bars = make_bars(n_bars)
    _bare(bars.iloc[:500], combos[:1])  # imports and caches, untimed
    ready.set()
    go.wait()
    cpu0 = time.process_time()
    _bare(bars, combos)
    out.put((time.perf_counter(), time.process_time() - cpu0))


def _bare_parallel(n_bars: int, combos: list[tuple[int, int]], workers: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds of ``combos`` split over ``workers`` plain processes."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    readies = [ctx.Event() for _ in range(workers)]
    procs = [ctx.Process(target=_bare_worker,
                         args=(combos[i::workers], n_bars, readies[i], go, out))
             for i in range(workers)]
    for proc in procs:
        proc.start()
    for ready in readies:
        ready.wait()
    t0 = time.perf_counter()
    go.set()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    return max(end for end, _ in results) - t0, sum(cpu for _, cpu in results)


def _timed_tasks() -> bool:
    """Run on each Dask worker: record when each sweep task starts and ends (wall clock)."""
    import finchan.trade.sweeps._task as task_module

    if not hasattr(task_module, "bench_spans"):
        original = task_module.run_task

        def run_task(task: dict[str, Any], data: Any) -> dict[str, Any]:
            start = time.time()
            row = original(task, data)
            task_module.bench_spans.append((start, time.time()))  # type: ignore[attr-defined]
            return row

        task_module.run_task = run_task  # type: ignore[assignment]
    task_module.bench_spans = []  # type: ignore[attr-defined]
    return True


def _task_spans() -> list[tuple[float, float]]:
    import finchan.trade.sweeps._task as task_module

    return list(getattr(task_module, "bench_spans", []))


def _sweep(bars: Any, grid: dict[str, list[int]], **kwargs: Any) -> tuple[float, Any]:
    from finchan.trade import sweep

    t0 = time.perf_counter()
    result = sweep("finchan.trade.examples:SmaCross", {"SYN": bars}, grid, cash=CASH,
                   record_prices=False, **kwargs)
    return time.perf_counter() - t0, result


# --------------------------------------------------------------------------- peers


def _backtrader_class() -> Any:
    import backtrader as bt

    class BtSmaCross(bt.Strategy):
        params = (("fast", 10), ("slow", 30), ("qty", QTY))

        def __init__(self) -> None:
            self.fast = bt.indicators.SMA(self.data.close, period=self.p.fast)
            self.slow = bt.indicators.SMA(self.data.close, period=self.p.slow)
            self.last_sign = 0

        def next(self) -> None:
            diff = self.fast[0] - self.slow[0]
            sign = 1 if diff > DEAD_BAND else -1 if diff < -DEAD_BAND else 0
            if sign == 0 or sign == self.last_sign:
                return
            last, self.last_sign = self.last_sign, sign
            if last == 0:
                return
            held = self.position.size
            if sign > 0 and held == 0:
                self.buy(size=self.p.qty)
            elif sign < 0 and held > 0:
                self.sell(size=held)

    return _publish(BtSmaCross, "BtSmaCross")


def _publish(cls: Any, name: str) -> Any:
    """The peers' optimisers pickle the strategy class for their worker processes:
    it must be reachable by name, so it becomes an attribute of this module."""
    cls.__qualname__ = cls.__name__ = name
    cls.__module__ = __name__
    globals()[name] = cls
    return cls


def _backtrader(bars: Any, grid: dict[str, list[int]]) -> tuple[float, int]:
    import backtrader as bt
    import pandas as pd

    frame = bars.copy()
    frame.index = pd.to_datetime(frame.pop("datetime"))
    strategy = _backtrader_class()
    t0 = time.perf_counter()
    cerebro = bt.Cerebro(stdstats=False, optreturn=True, maxcpus=WORKERS)
    cerebro.broker.setcash(CASH)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame, openinterest=None))
    cerebro.optstrategy(strategy, fast=grid["fast"], slow=grid["slow"])
    runs = cerebro.run()
    return time.perf_counter() - t0, len(runs)


def _backtesting(bars: Any, grid: dict[str, list[int]]) -> tuple[float, int]:
    os.environ.setdefault("TQDM_DISABLE", "1")  # its progress bars would flood the output
    import backtesting
    import pandas as pd

    from bench.sma_cross import _backtesting_strategy

    frame = bars.copy()
    frame.index = pd.to_datetime(frame.pop("datetime"))
    frame.columns = ["Open", "High", "Low", "Close", "Volume"]
    strategy = _publish(_backtesting_strategy(), "BtpSmaCross")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        engine = backtesting.Backtest(frame, strategy, cash=CASH, commission=0.0,
                                      trade_on_close=False, exclusive_orders=False)
        _, heatmap = engine.optimize(fast=grid["fast"], slow=grid["slow"],
                                     maximize="Sharpe Ratio", return_heatmap=True)
        elapsed = time.perf_counter() - t0
    return elapsed, len(heatmap)


# --------------------------------------------------------------------------- running


def run(quick: bool = False, peers: bool = True) -> list[dict[str, Any]]:
    """Rows: one per way of running the combinations (see the module docstring).

    ``peers=False`` leaves out backtesting.py and backtrader (finchan's rows only).
    """
    import importlib.util

    from distributed import Client

    from finchan.trade._synthetic import make_bars
    from finchan.trade.sweeps._engine import local_cluster

    spec = QUICK if quick else FULL
    bars = make_bars(spec["bars"])
    grid = {"fast": spec["fast"], "slow": spec["slow"]}
    combos = [(f, s) for f in grid["fast"] for s in grid["slow"]]
    n = len(combos)
    rows: list[dict[str, Any]] = []

    def row(engine: str, mode: str, seconds: float, runs: int | None, **more: Any) -> None:
        rows.append({"engine": engine, "mode": mode, "bars": spec["bars"], "combinations": runs,
                     "seconds": seconds,
                     "ms_per_combination": None if runs is None else 1000 * seconds / runs,
                     **more})

    _bare(bars.iloc[:500], combos[:2])  # imports and caches, untimed
    # (seconds, cpu seconds) of each round, per way of running; the best round is reported
    best: dict[str, tuple[float, float]] = {}
    # of the best 2-worker round: worker seconds per task outside sweep tasks
    idle = math.nan

    def keep(name: str, seconds: float, cpu: float) -> None:
        if name not in best or seconds < best[name][0]:
            best[name] = (seconds, cpu)

    for _ in range(spec["rounds"]):
        cpu0 = _cpu([])
        keep("bare", _bare(bars, combos), _cpu([]) - cpu0)
        keep("floor", *_bare_parallel(spec["bars"], combos, WORKERS))
        cpu0 = _cpu([])
        seconds, seq_result = _sweep(bars, grid, workers=0)
        keep("sequential", seconds, _cpu([]) - cpu0)
        # the cluster sweep(workers=2) would start (its Dask settings), started here to
        # keep its start-up out of the sweep's row, and stopped after it: its scheduler
        # runs in this process, and an idle one slowed the in-process rows by ~10 %
        # a free port (0): two benchmark runs at once, or a test beside one, must not collide
        t0 = time.perf_counter()
        cluster = local_cluster(WORKERS, scheduler_port=0)
        client = Client(cluster)
        try:
            client.wait_for_workers(WORKERS)
            # a running cluster has imported finchan already: a small sweep does that, untimed
            _sweep(bars.iloc[:500], {"fast": grid["fast"][:2], "slow": grid["slow"][:2]},
                   scheduler=cluster.scheduler_address)
            keep("start", time.perf_counter() - t0, 0.0)
            pids = list(client.run(os.getpid).values())
            client.run(_timed_tasks)
            cpu0 = _cpu(pids)
            seconds, par_result = _sweep(bars, grid, scheduler=cluster.scheduler_address)
            keep("parallel", seconds, _cpu(pids) - cpu0)
            if best["parallel"][0] == seconds:
                busy = sum(end - start for spans in client.run(_task_spans).values()
                           for start, end in spans)
                idle = (seconds * WORKERS - busy) / n
        finally:
            client.close()
            cluster.close()
    (bare, bare_cpu), (floor, floor_cpu) = best["bare"], best["floor"]
    (sequential, seq_cpu), (parallel, par_cpu) = best["sequential"], best["parallel"]
    rounds = spec["rounds"]
    row("finchan", "bare backtest() loop", bare, n, cpu_s=bare_cpu, rounds=rounds)
    row("finchan", f"bare backtest() loop, {WORKERS} processes (no Dask)", floor, n,
        speedup=bare / floor, cpu_s=floor_cpu, rounds=rounds)
    row("finchan", "sweep, in process", sequential, len(seq_result.table),
        overhead_ms=1000 * (sequential - bare) / n, cpu_s=seq_cpu,
        cpu_overhead_ms=1000 * (seq_cpu - bare_cpu) / n, rounds=rounds)
    row("dask", f"LocalCluster start ({WORKERS} workers) and warm-up, not in the sweep rows",
        best["start"][0], None)
    row("finchan", f"sweep, {WORKERS} Dask workers", parallel, len(par_result.table),
        overhead_ms=1000 * (parallel * WORKERS - bare) / n, speedup=sequential / parallel,
        floor_overhead_ms=1000 * (parallel - floor) * WORKERS / n,
        same_table=bool(par_result.table.equals(seq_result.table)), cpu_s=par_cpu,
        cpu_overhead_ms=1000 * (par_cpu - bare_cpu) / n, worker_idle_ms=1000 * idle,
        rounds=rounds)
    if peers and importlib.util.find_spec("backtesting") is not None:
        seconds, runs = _backtesting(bars, grid)
        row("backtesting.py", "Backtest.optimize (process pool)", seconds, runs)
    if peers and importlib.util.find_spec("backtrader") is not None:
        seconds, runs = _backtrader(bars, grid)
        row("backtrader", f"optstrategy, maxcpus={WORKERS}", seconds, runs)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="3,000 bars, 16 combinations")
    parser.add_argument("--no-peers", action="store_true",
                        help="finchan's rows only (no backtesting.py, no backtrader)")
    args = parser.parse_args(argv)
    for item in run(args.quick, peers=not args.no_peers):
        print(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in item.items()))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    sys.exit(main())
