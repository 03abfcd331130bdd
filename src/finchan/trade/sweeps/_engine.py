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
from finchan.trade.sweeps._task import run_task, run_tasks

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

    def expect(self, tasks: int) -> None:
        """How many tasks the driver will submit (chunking needs it; one by one does not)."""

    def submit(self, task: dict[str, Any]) -> None:
        self._queue.append(task)

    def pending(self) -> int:
        return len(self._queue)

    def next_done(self) -> dict[str, Any]:
        return run_task(self._queue.popleft(), self._data)

    def close(self) -> None:
        self._queue.clear()


class DaskExecutor:
    """Tasks on a Dask cluster; the data is scattered to every worker once.

    Short backtests travel in chunks: one Dask task then runs several
    combinations (:func:`run_tasks`), so that a task's round trip (about
    2 ms of scheduler, network and driver time) stays small beside the work.
    The chunk size follows the backtests' measured time, aiming at
    :attr:`CHUNK_SECONDS` per Dask task; it starts at one combination, and
    backtests longer than that go one by one. Told how many tasks will come
    (:meth:`expect`), chunks shrink as the end nears (guided scheduling: at
    most 1/(2 x threads) of what is left in one chunk), so that no worker
    sits idle while another finishes a long last chunk. Each row is still stored on its
    own as its chunk arrives; a driver killed meanwhile loses at most the
    chunks in flight, which the rerun computes again (each still stored once).
    ``chunking=False`` sends every combination alone (Optuna's trials, whose
    next suggestions wait for results).
    """

    #: the wall time a chunk of backtests aims at
    CHUNK_SECONDS = 0.25
    #: and the most combinations in one chunk
    MAX_CHUNK = 64

    def __init__(
        self,
        data: Any,
        workers: int,
        scheduler: str | None = None,
        cluster_options: Mapping[str, Any] | None = None,
        connect_timeout: float = 3.0,
        chunking: bool = True,
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
            self._threads = sum(self._client.nthreads().values()) or 1
            # every worker gets the data now, once; tasks then refer to it by key
            (self._data,) = self._client.scatter([data], broadcast=True, hash=False)
            # with_results: each result arrives with its future, no round trip per task
            self._done = as_completed(loop=self._client.loop, with_results=True,
                                      raise_errors=False)
        except BaseException:
            self.close()
            raise
        self._chunking = chunking
        self._chunk = 1
        # tasks the driver will still submit (expect()); None: unknown
        self._unsubmitted: int | None = None
        self._buffer: list[dict[str, Any]] = []
        self._ready: deque[dict[str, Any]] = deque()
        self._tasks: dict[Any, list[dict[str, Any]]] = {}
        self._running = 0
        self._seconds = 0.0
        self._measured = 0

    @property
    def slots(self) -> int:
        """Combinations to keep in flight: two chunks per worker thread, so that a
        worker never waits for the driver."""
        return 2 * self._threads * self._chunk

    def expect(self, tasks: int) -> None:
        """The driver will submit ``tasks`` more: chunks shrink as the end nears."""
        self._unsubmitted = tasks

    def submit(self, task: dict[str, Any]) -> None:
        self._buffer.append(task)
        if self._unsubmitted is not None:
            self._unsubmitted -= 1
        if len(self._buffer) >= self._chunk:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        chunk, self._buffer = self._buffer, []
        future: Any
        if len(chunk) == 1:
            future = self._client.submit(run_task, chunk[0], self._data, pure=False)
        else:
            future = self._client.submit(run_tasks, chunk, self._data, pure=False)
        self._tasks[future.key] = chunk
        self._running += len(chunk)
        self._done.add(future)

    def pending(self) -> int:
        return len(self._buffer) + self._running + len(self._ready)

    def next_done(self) -> dict[str, Any]:
        if not self._ready:
            self._flush()  # the last, partial chunk
            future, result = next(self._done)
            chunk = self._tasks.pop(future.key)
            self._running -= len(chunk)
            if future.status == "error" or isinstance(result, BaseException):
                # KilledWorker: the task took down a worker more than the scheduler allows
                exc = result if isinstance(result, BaseException) else future.exception()
                what = ", ".join(t["params_text"] for t in chunk)
                raise RunError(
                    f"sweep task {what} failed on the cluster: {type(exc).__name__}: {exc}"
                ) from exc
            rows: list[dict[str, Any]] = [result] if len(chunk) == 1 else result
            self._ready.extend(rows)
            self._measure(rows)
        return self._ready.popleft()

    def _measure(self, rows: list[dict[str, Any]]) -> None:
        if not self._chunking:
            return
        self._seconds += sum(row["seconds"] for row in rows)
        self._measured += len(rows)
        mean = self._seconds / self._measured
        chunk = min(self.MAX_CHUNK, int(self.CHUNK_SECONDS / max(mean, 1e-6)))
        if self._unsubmitted is not None:
            # guided: at most a share of what is left per chunk, so that the workers
            # finish together (the last chunks hold one combination each)
            chunk = min(chunk, self._unsubmitted // (2 * self._threads))
        self._chunk = max(1, chunk)

    def close(self) -> None:
        try:
            self._client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()
