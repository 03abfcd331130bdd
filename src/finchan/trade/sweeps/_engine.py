"""Where tasks run: in this process, or on Dask (a LocalCluster or an existing scheduler).

Both executors have the same three calls: ``submit(task)``, ``next_done()``
(blocks until some task finished, returns its row) and ``close()``; the
driver loop does not know which one it drives.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from finchan.errors import ConfigError, RunError
from finchan.trade.sweeps._task import run_task

__all__ = ["QUIET_WORKERS", "DaskExecutor", "SequentialExecutor", "local_cluster"]

#: Dask settings of the clusters a sweep starts. The defaults serve an
#: interactive dashboard: a statistical profiler samples each worker's task
#: thread every 10 ms (taking the GIL from the backtest), and the event-loop
#: tick (20 ms), the system monitor (500 ms) and the memory monitor (100 ms)
#: wake every worker, nanny and the scheduler. On two cores they took about
#: 10 % of the machine from the backtests (measured CPU of the workers and of
#: the driver during bench/sweep.py); a sweep starts no dashboard, so they go.
QUIET_WORKERS: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def local_cluster(workers: int, **options: Any) -> Any:
    """The ``LocalCluster`` a sweep starts: ``workers`` single-threaded processes on loopback,
    no dashboard, :data:`QUIET_WORKERS`. ``options`` go to ``LocalCluster`` (ports...)."""
    import dask
    from distributed import LocalCluster

    settings = {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": None,
        "host": "127.0.0.1",
        "silence_logs": logging.CRITICAL,
        **options,
    }
    # the nannies hand the configuration current at their creation to their workers
    with dask.config.set(QUIET_WORKERS):
        return LocalCluster(**settings)


class SequentialExecutor:
    """Runs each task in this process when its result is asked for."""

    slots = 1
    where = "in this process"

    def __init__(self, data: Any) -> None:
        self._data = data
        self._queue: deque[dict[str, Any]] = deque()

    def submit(self, task: dict[str, Any]) -> None:
        self._queue.append(task)

    def pending(self) -> int:
        return len(self._queue)

    def next_done(self) -> dict[str, Any]:
        return run_task(self._queue.popleft(), self._data)

    def close(self) -> None:
        self._queue.clear()


class DaskExecutor:
    """Tasks on a Dask cluster; the data is scattered to every worker once."""

    def __init__(
        self,
        data: Any,
        workers: int,
        scheduler: str | None = None,
        cluster_options: Mapping[str, Any] | None = None,
        connect_timeout: float = 3.0,
    ) -> None:
        from distributed import Client, as_completed

        self._cluster = None
        if scheduler is not None:
            try:
                self._client = Client(scheduler, timeout=f"{connect_timeout}s",
                                      set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})"
                ) from None
            self.where = f"on the Dask cluster at {scheduler}"
        else:
            self._cluster = local_cluster(workers, **dict(cluster_options or {}))
            self._client = Client(self._cluster, set_as_default=False)
            self.where = f"on a local Dask cluster of {workers} worker processes"
        try:
            threads = sum(self._client.nthreads().values()) or 1
            # two tasks per thread in flight: a worker never waits for the driver
            self.slots = 2 * threads
            # every worker gets the data now, once; tasks then refer to it by key
            (self._data,) = self._client.scatter([data], broadcast=True, hash=False)
            # with_results: each result arrives with its future, no round trip per task
            self._done = as_completed(loop=self._client.loop, with_results=True,
                                      raise_errors=False)
        except BaseException:
            self.close()
            raise
        self._tasks: dict[Any, dict[str, Any]] = {}

    def submit(self, task: dict[str, Any]) -> None:
        future = self._client.submit(run_task, task, self._data, pure=False)
        self._tasks[future.key] = task
        self._done.add(future)

    def pending(self) -> int:
        return len(self._tasks)

    def next_done(self) -> dict[str, Any]:
        future, result = next(self._done)
        task = self._tasks.pop(future.key)
        if future.status == "error" or isinstance(result, BaseException):
            # KilledWorker: the task took down a worker more than the scheduler allows
            exc = result if isinstance(result, BaseException) else future.exception()
            raise RunError(
                f"sweep task {task['params_text']} failed on the cluster: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        row: dict[str, Any] = result
        return row

    def close(self) -> None:
        try:
            self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()
