"""One sweep task: one backtest in its own Env, returned as plain data.

This is the only code that runs on Dask workers. The strategy travels as its
``"module:Class"`` text and the data as a scattered object (or a path), so
nothing the user built is pickled.
"""

from __future__ import annotations

import math
import time
import traceback
from typing import Any

__all__ = ["MAX_POINTS", "run_task", "run_tasks"]

#: at most this many equity points per task are kept (for DSR, PBO and the charts)
MAX_POINTS = 4096


def _sample(times: Any, values: Any) -> tuple[bytes, bytes]:
    import numpy as np

    n = len(values)
    if n > MAX_POINTS:
        stride = math.ceil(n / MAX_POINTS)
        picks = np.arange(0, n, stride)
        if picks[-1] != n - 1:
            picks = np.append(picks, n - 1)
        times, values = times[picks], values[picks]
    return (
        np.ascontiguousarray(times, dtype="float64").tobytes(),
        np.ascontiguousarray(values, dtype="float64").tobytes(),
    )


def _one_line(exc: BaseException) -> str:
    """The error in one line, naming where the user's code raised it."""
    from finchan.errors import FinchanError

    text = f"{type(exc).__name__}: {exc}"
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if not isinstance(root, FinchanError):  # finchan's own errors name the user's code already
        frames = traceback.extract_tb(root.__traceback__)
        if frames:
            where = frames[-1]
            text += f" (raised in {where.name}, {where.filename}:{where.lineno})"
    return text.replace("\n", " ")


def run_task(task: dict[str, Any], data: Any) -> dict[str, Any]:
    """Run ``task`` (strategy, params, backtest options, span) on ``data``.

    A failing backtest is a result too (``error`` set, ``stats`` None): user
    code that raises is not retried. A worker that dies is Dask's to retry.
    """
    from finchan.trade import backtest

    t0 = time.perf_counter()
    row: dict[str, Any] = {
        "key": task["key"],
        "stage": task["stage"],
        "window": task["window"],
        "params": task["params_text"],
        "stats": None,
        "error": None,
        "times": None,
        "equity": None,
    }
    try:
        result = backtest(
            task["strategy"],
            data,
            params=task["params"],
            start=task.get("start"),
            end=task.get("end"),
            report=False,
            **task["options"],
        )
        equity = result.equity
        row["stats"] = dict(result.stats)
        seconds = equity.index.asi8 / 1e9 if len(equity) else equity.to_numpy()
        row["times"], row["equity"] = _sample(seconds, equity.to_numpy())
    except Exception as exc:  # the user's strategy failed: record it, keep the sweep going
        row["error"] = _one_line(exc)
    row["seconds"] = time.perf_counter() - t0
    return row


def run_tasks(tasks: list[dict[str, Any]], data: Any) -> list[dict[str, Any]]:
    """Several tasks in one Dask task (a chunk of short backtests): their rows, in order."""
    return [run_task(task, data) for task in tasks]
