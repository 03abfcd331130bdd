"""``finchan.trade.sweep``: the driver of a parameter sweep.

Size: the driver is one procedure (check the inputs, fingerprint the data,
resume from the store, hand tasks to the executor, gather, rank, write the
outputs) whose steps share the store and the search space; the pieces with
their own rules are elsewhere in this package (``_grid``, ``_engine``,
``_store``, ``_task``, ``_walkforward``, ``_overfit``, ``_report``).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import itertools
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from finchan.errors import ConfigError
from finchan.trade.sweeps._grid import Space, params_key
from finchan.trade.sweeps._overfit import deflated_sharpe_ratio, pbo_cscv, sharpe_per_period
from finchan.trade.sweeps._store import ResultStore
from finchan.trade.sweeps._walkforward import (
    WalkForward,
    Window,
    annualised_log_return,
    make_windows,
    parse_walk_forward,
    stitch,
)

if TYPE_CHECKING:
    import pandas as pd

    from finchan.trade.result import BacktestResult

__all__ = ["LOWER_IS_BETTER", "SweepResult", "sweep"]

#: metrics where a smaller value is the better one; every other metric is maximised
LOWER_IS_BETTER = frozenset(
    {"annual_volatility", "max_drawdown_duration_s", "max_drawdown_bars", "total_commission"}
)
# statistics that are not metrics (text, or the same for every combination)
_NOT_METRICS = frozenset({"start", "end", "duration_s", "bars", "periods_per_year",
                          "risk_free_rate", "start_equity"})
# backtest() arguments the sweep sets itself
_OWN_ARGUMENTS = frozenset({"strategy", "data", "params", "start", "end", "save", "report",
                            "progress", "work_dir", "options"})


class SweepResult:
    """What a sweep produced.

    Attributes
    ----------
    table:
        one row per combination (per training window with walk-forward):
        the parameters, then every statistic, then ``error``; sorted by the
        metric, best first (then in grid order).
    best_params:
        the best combination's parameters (of the whole data; with
        walk-forward, of the last training window).
    dsr, pbo:
        the deflated Sharpe ratio of the best (:func:`deflated_sharpe_ratio`'s
        dict) and the probability of backtest overfitting (:func:`pbo_cscv`'s
        dict without the logits, which are in ``pbo_logits``).
    windows, oos_equity, wfe:
        walk-forward only: per window its span, chosen parameters, in- and
        out-of-sample metric and returns; the stitched out-of-sample equity;
        the walk-forward efficiency with its caveat.
    out:
        the sweep directory, or None when the sweep wrote no files.
    """

    def __init__(self, **values: Any) -> None:
        self.table: pd.DataFrame = values["table"]
        self.metric: str = values["metric"]
        self.best_params: dict[str, Any] = values["best_params"]
        self.dsr: dict[str, float] = values["dsr"]
        self.pbo: dict[str, Any] = values["pbo"]
        self.pbo_logits: list[float] = values["pbo_logits"]
        self.windows: pd.DataFrame | None = values.get("windows")
        self.oos_equity: pd.Series | None = values.get("oos_equity")
        self.wfe: dict[str, Any] | None = values.get("wfe")
        self.out: Path | None = values.get("out")
        self.failures: int = values.get("failures", 0)
        self.best: BacktestResult | None = values.get("best")
        self.equities: dict[str, Any] = values.get("equities", {})

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly summary written as ``summary.json``."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        return clean({
            "metric": self.metric,
            "combinations": len(self.table),
            "failures": self.failures,
            "best_params": self.best_params,
            "dsr": self.dsr,
            "pbo": self.pbo,
            "wfe": self.wfe,
        })

    def __repr__(self) -> str:
        return (f"<SweepResult {len(self.table)} rows, best {self.best_params} "
                f"by {self.metric}, DSR {self.dsr.get('dsr', math.nan):.3f}, "
                f"PBO {self.pbo.get('pbo', math.nan):.3f}>")


# --------------------------------------------------------------------------- inputs


def _strategy(spec: Any) -> tuple[type, str]:
    from finchan.trade.strategy import Strategy

    cls: Any
    if isinstance(spec, type):
        cls = spec
    else:
        text = str(spec)
        module_name, sep, name = text.partition(":")
        if not sep or not module_name or not name:
            raise ConfigError(f"strategy {text!r}: expected 'package.module:ClassName'")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigError(f"strategy {text!r}: cannot import {module_name!r}: {exc}") from None
        cls = getattr(module, name, None)
        if cls is None:
            raise ConfigError(f"strategy {text!r}: module {module_name!r} has no {name!r}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"strategy {spec!r} is not a finchan.trade.Strategy subclass")
    return cls, f"{cls.__module__}:{cls.__qualname__}"


def _read_path(path: Path, options: Mapping[str, Any]) -> Any:
    """A data file as a DataFrame, read as BarFeed would (``file_format``, ``sep``)."""
    import pandas as pd

    from finchan.errors import DataError

    if not path.exists():
        raise DataError(f"{path}: no such data file")
    suffix = "".join(path.suffixes[-2:]).lower()
    file_format = options.get("file_format")
    if file_format == "parquet" or (
            file_format is None and (".parquet" in suffix or suffix.endswith(".pq"))):
        return pd.read_parquet(path)
    return pd.read_csv(path, sep=options.get("sep") or ",")


def _materialise(data: Any, options: Mapping[str, Any]) -> Any:
    """Paths read into DataFrames once, here: tasks then never read a file."""
    if isinstance(data, str | os.PathLike):
        path = Path(data).expanduser()
        return {path.name.split(".")[0]: _read_path(path, options)}
    if isinstance(data, Mapping):
        return {
            str(symbol): (_read_path(Path(v).expanduser(), options)
                          if isinstance(v, str | os.PathLike) else v)
            for symbol, v in data.items()
        }
    if isinstance(data, list | tuple):
        out: dict[str, Any] = {}
        for item in data:
            out.update(_materialise(item, options))
        return out
    return data


def _frames(data: Any) -> list[Any]:
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return [data]
    if isinstance(data, Mapping):
        return [v for v in data.values() if isinstance(v, pd.DataFrame)]
    return []


def _column_bytes(values: Any) -> bytes:
    """A column's values as bytes: numeric ones as their memory, others as text."""
    import numpy as np

    array = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    if array.dtype.kind in "biufcmM":
        return np.ascontiguousarray(array).tobytes()
    return "\x1f".join(map(str, array.tolist())).encode()


def _fingerprint(data: Any) -> str:
    """A digest of the data's values, so that a sweep directory refuses other data.

    Each column is hashed as its memory (numbers, times) or its text: about
    10 ms for 100,000 bars, where pandas' row hashes took 110 ms, all of it
    time the workers of a Dask sweep spent waiting for their first task.
    """
    digest = hashlib.blake2b(digest_size=16)
    for frame in _frames(data):
        digest.update(repr([(str(name), str(frame[name].dtype)) for name in frame.columns])
                      .encode())
        digest.update(_column_bytes(frame.index))
        for name in frame.columns:
            digest.update(_column_bytes(frame[name]))
    if isinstance(data, Mapping):
        digest.update(repr(sorted(map(str, data))).encode())
    return digest.hexdigest()


def _span(data: Any, data_options: Mapping[str, Any]) -> tuple[Any, Any]:
    """(first bar time, last bar time + one bar spacing) over all symbols, UTC."""
    import pandas as pd

    column = dict(data_options.get("columns") or {}).get("datetime", "datetime")
    firsts, ends = [], []
    for frame in _frames(data):
        times = (pd.to_datetime(frame[column], utc=True) if column in frame.columns
                 else pd.to_datetime(frame.index, utc=True))
        times = pd.DatetimeIndex(times).sort_values()
        if len(times) == 0:
            continue
        spacing = times[-1] - times[-2] if len(times) > 1 else pd.Timedelta(0)
        firsts.append(times[0])
        ends.append(times[-1] + spacing)
    if not firsts:
        raise ConfigError("--walk-forward needs bar data given as DataFrames or files")
    return min(firsts), max(ends)


def _check_metric(metric: str) -> None:
    import difflib

    from finchan.trade.stats import STATS_KEYS

    known = [k for k in STATS_KEYS if k not in _NOT_METRICS]
    if metric not in known:
        close = difflib.get_close_matches(metric, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"--metric {metric!r}: not a statistic{hint} (known: {', '.join(known)})")


def _check_options(options: Mapping[str, Any]) -> None:
    from finchan.trade import api, backtest

    allowed = {name for name, p in inspect.signature(backtest).parameters.items()
               if p.kind is p.KEYWORD_ONLY} | set(getattr(api, "_BROKER_OPTIONS", ()))
    allowed -= _OWN_ARGUMENTS
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"sweep(): unknown backtest option(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(allowed))})")


def _data_options(options: Any) -> dict[str, Any]:
    """``data_options`` checked before anything runs (not once per task): the options given."""
    from finchan.trade.data import BarFeedOptions

    try:
        given = BarFeedOptions.of(options)
        given.resolve()
    except ConfigError as exc:
        raise ConfigError(f"data_options: {exc}") from None
    return given.given()


# --------------------------------------------------------------------------- running


def _better(metric: str) -> Callable[[float], float]:
    """Sort key: smaller is better, NaN last."""
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0

    def key(value: float) -> float:
        return math.inf if value is None or not math.isfinite(value) else sign * value

    return key


class _Progress:
    """A rich progress bar (done/total, failures, ETA) on stderr, or nothing."""

    def __init__(self, enabled: bool, description: str) -> None:
        self._bar: Any = None
        self.description = description
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("failures {task.fields[failures]}"), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True),
            )

    def start(self, total: int, done: int) -> None:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=total, completed=done,
                                            failures=0)

    def advance(self, failures: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, failures=failures)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _run_tasks(executor: Any, store: ResultStore, tasks: Iterable[dict[str, Any]],
               progress: _Progress, total: int) -> int:
    """Run the tasks not yet stored; each result is stored as it arrives. Returns failures."""
    tasks = list(tasks)
    done = store.done_keys()
    todo = [t for t in tasks if t["key"] not in done]
    mine = {t["key"] for t in tasks}
    failures = sum(1 for r in store.rows() if r["error"] is not None and r["key"] in mine)
    progress.start(total, total - len(todo))
    executor.expect(len(todo))
    try:
        queue = iter(todo)
        for task in queue:
            executor.submit(task)
            if executor.pending() >= executor.slots:
                break
        while executor.pending():
            row = executor.next_done()
            store.add(row)
            failures += row["error"] is not None
            progress.advance(failures)
            # slots may have grown (Dask chunks short backtests): fill them
            while executor.pending() < executor.slots:
                nxt = next(queue, None)
                if nxt is None:
                    break
                executor.submit(nxt)
    finally:
        progress.stop()
    return failures


def _run_optuna(executor: Any, store: ResultStore, space: Space, make_task: Any,
                trials: int, seed: int, metric: str, out: Path | None,
                progress: _Progress) -> int:
    """Optuna TPE: the driver asks for trials and tells results; workers only backtest.

    The study lives in a journal file of the sweep directory, so a rerun
    resumes it: trials left running by a killed driver are run again (or
    answered from the store when their result was already stored).
    """
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if out is None:
        storage: Any = optuna.storages.InMemoryStorage()
    else:
        storage = JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
    direction: Literal["minimize", "maximize"] = (
        "minimize" if metric in LOWER_IS_BETTER else "maximize")
    study = optuna.create_study(study_name="sweep", storage=storage, direction=direction,
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                load_if_exists=True)
    distributions: dict[str, Any] = {}
    for name in space.names:
        values = space.values[name]
        steps = {b - a for a, b in itertools.pairwise(values)}
        if (all(isinstance(v, int) and not isinstance(v, bool) for v in values)
                and len(steps) == 1 and min(steps) > 0):
            distributions[name] = IntDistribution(values[0], values[-1], step=steps.pop())
        elif len(values) == 1 and isinstance(values[0], int) and not isinstance(values[0], bool):
            distributions[name] = IntDistribution(values[0], values[0])
        else:
            distributions[name] = CategoricalDistribution(values)

    def value_of(row: dict[str, Any]) -> float | None:
        if row["stats"] is None:
            return None
        value = row["stats"].get(metric)
        return value if value is not None and math.isfinite(value) else None

    def tell(number: int, row: dict[str, Any]) -> None:
        value = value_of(row)
        if value is None:
            study.tell(number, state=TrialState.FAIL)
        else:
            study.tell(number, value)

    stored = {row["key"]: row for row in store.rows()}
    failures = sum(1 for r in stored.values() if r["error"] is not None)
    in_flight: dict[str, list[int]] = {}

    def start(number: int, combo: dict[str, Any]) -> None:
        task = make_task(combo)
        if task["key"] in stored:
            tell(number, stored[task["key"]])  # a repeated suggestion costs no backtest
            progress.advance(failures)
        elif task["key"] in in_flight:
            in_flight[task["key"]].append(number)
        else:
            in_flight[task["key"]] = [number]
            executor.submit(task)

    finished = [t for t in study.get_trials(deepcopy=False)
                if t.state in (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)]
    progress.start(trials, min(len(finished), trials))
    try:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            start(trial.number, dict(trial.params))
        asked = len(study.trials)
        while asked < trials or executor.pending():
            while asked < trials and executor.pending() < executor.slots:
                asking = study.ask(distributions)
                asked += 1
                start(asking.number, {n: asking.params[n] for n in space.names})
            if not executor.pending():
                continue
            row = executor.next_done()
            store.add(row)
            stored[row["key"]] = row
            failures += row["error"] is not None
            for number in in_flight.pop(row["key"]):
                tell(number, row)
                progress.advance(failures)
    finally:
        progress.stop()
    return failures


# --------------------------------------------------------------------------- results


def _series(row: dict[str, Any]) -> tuple[Any, Any]:
    import numpy as np

    return (np.frombuffer(row["times"], dtype="float64"),
            np.frombuffer(row["equity"], dtype="float64"))


def _returns(row: dict[str, Any]) -> Any:
    import numpy as np

    _, values = _series(row)
    return np.diff(values) / values[:-1] if len(values) > 1 else np.zeros(0)


def _table(rows: list[dict[str, Any]], space: Space, metric: str, order: dict[str, int],
           by_window: bool) -> Any:
    import pandas as pd

    from finchan.trade.stats import STATS_KEYS

    key = _better(metric)
    rows = sorted(rows, key=lambda r: ((r["window"] if by_window else 0),
                                       key((r["stats"] or {}).get(metric, math.nan)),
                                       order.get(r["key"], 0)))
    records = []
    for row in rows:
        record = {"window": row["window"]} if by_window else {}
        record.update({name: row["params"][name] for name in space.names})
        stats = row["stats"] or {}
        record.update({k: stats.get(k) for k in STATS_KEYS})
        record.update({k: v for k, v in stats.items() if k not in record})
        record["error"] = row["error"]
        records.append(record)
    return pd.DataFrame.from_records(records) if records else pd.DataFrame(
        columns=[*space.names, *STATS_KEYS, "error"])


def _overfitting(rows: list[dict[str, Any]], best: dict[str, Any] | None,
                 blocks: int) -> tuple[dict[str, float], dict[str, Any], list[float]]:
    import numpy as np

    good = [r for r in rows if r["stats"] is not None and r["equity"]]
    if best is None or best["stats"] is None or not good:
        return {"dsr": math.nan}, {"pbo": math.nan}, []
    series = [_returns(r) for r in good]
    length = min(len(s) for s in series)
    sharpes = [sharpe_per_period(s[:length]) for s in series]
    dsr = deflated_sharpe_ratio(_returns(best)[:length], sharpes)
    matrix = np.column_stack([s[:length] for s in series]) if length else np.zeros((0, len(good)))
    pbo = pbo_cscv(matrix, blocks=blocks)
    logits = pbo.pop("logits")
    return dsr, pbo, logits


def sweep(
    strategy: type | str,
    data: Any,
    grid: Mapping[str, Sequence[Any] | str],
    *,
    metric: str = "sharpe",
    params: Mapping[str, Any] | None = None,
    samples: int | None = None,
    optuna: int | None = None,
    seed: int = 0,
    walk_forward: str | WalkForward | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = False,
    report: bool = True,
    pbo_blocks: int = 16,
    cluster_options: Mapping[str, Any] | None = None,
    **backtest_options: Any,
) -> SweepResult:
    """Backtest ``strategy`` on ``data`` for every combination of ``grid``.

    Parameters
    ----------
    strategy:
        a :class:`~finchan.trade.Strategy` subclass or ``"module:ClassName"``;
        on Dask the class travels as that text, so it must be importable there.
    data:
        bars as :func:`~finchan.trade.backtest` takes them (DataFrames or
        CSV/Parquet paths, per symbol); files are read once by the driver.
    grid:
        ``{parameter: values}``: a list, or text ``"5,10,20"`` or
        ``"20:60:10"`` (stop included). Names and value types are checked
        against the strategy's ``params``.
    metric:
        the statistic to rank by (a key of ``compute_stats``); maximised,
        except ``annual_volatility``, ``max_drawdown_duration_s``,
        ``max_drawdown_bars`` and ``total_commission``.
    samples, optuna, seed:
        random search of ``samples`` combinations, or ``optuna`` trials of
        Optuna's TPE sampler; both seeded by ``seed``. Default: the full grid.
    walk_forward:
        ``"train=6M,test=1M[,anchored]"``: optimise on each training window,
        run the best on the next test window, stitch the out-of-sample equity.
    workers, scheduler:
        ``workers=0`` runs in this process; otherwise a Dask LocalCluster of
        ``workers`` processes (default: one per CPU), or the existing Dask
        scheduler at ``scheduler`` (``tcp://host:port``).
    out:
        the sweep directory (results store, tables, report); a rerun with the
        same directory resumes. None: nothing is written.
    **backtest_options:
        passed to every backtest: ``cash``, ``commission``, ``slippage``,
        ``time_step``, ``data_options``, broker options...

    Example
    -------
    >>> from finchan.trade import sweep
    >>> from finchan.trade._synthetic import make_bars
    >>> result = sweep("finchan.trade.examples:SmaCross", {"SYN": make_bars(600)},
    ...                {"fast": [5, 10], "slow": [20, 30]}, workers=0, cash=1e6)
    >>> len(result.table)
    4
    """
    # ---- every check before anything starts
    cls, strategy_text = _strategy(strategy)
    _check_metric(metric)
    _check_options(backtest_options)
    space = Space(cls, grid, params)
    if samples is not None and optuna is not None:
        raise ConfigError("give --samples or --optuna, not both")
    for name, value in (("samples", samples), ("optuna", optuna)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"--{name}: expected a positive number, got {value!r}")
    wf = parse_walk_forward(walk_forward) if walk_forward is not None else None
    if wf is not None and optuna is not None:
        raise ConfigError(
            "--walk-forward with --optuna is not supported: use the grid or --samples"
        )
    if workers is not None and workers < 0:
        raise ConfigError(f"--workers: expected 0 or more, got {workers}")
    data_options = _data_options(backtest_options.get("data_options"))
    data = _materialise(data, data_options)
    windows: list[Window] = []
    if wf is not None:
        first, end = _span(data, data_options)
        windows = make_windows(wf, first, end)
    if optuna is not None:
        combos = []
    elif samples is not None:
        combos = space.sample(samples, seed)
    else:
        combos = list(space.grid())
    spec = {
        "strategy": strategy_text,
        "grid": {n: space.values[n] for n in space.names},
        "params": space.base,
        "search": ("optuna", optuna, seed, metric) if optuna else
                  ("samples", samples, seed) if samples else ("grid",),
        "walk_forward": str(wf) if wf else None,
        "options": {k: repr(v) for k, v in sorted(backtest_options.items())},
        "data": _fingerprint(data),
    }
    out_dir = Path(out).expanduser() if out is not None else None
    # ---- the engine (an unreachable scheduler is reported before any file is written)
    from finchan.trade.sweeps._engine import DaskExecutor, SequentialExecutor

    executor: Any
    if (workers != 0 or scheduler is not None) and cls.__module__ == "__main__":
        raise ConfigError(
            f"strategy {cls.__name__}: defined in __main__, which Dask workers cannot import; "
            "move it to a module (or run with workers=0)"
        )
    if workers == 0 and scheduler is None:
        executor = SequentialExecutor(data)
        strategy_ref: Any = cls  # in this process the class itself is fine
    else:
        count = workers or os.cpu_count() or 1
        executor = DaskExecutor(data, count, scheduler, cluster_options,
                                chunking=optuna is None)
        strategy_ref = strategy_text
    try:
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        store = ResultStore(out_dir / "results.sqlite" if out_dir else Path(":memory:"))
        store.check_spec(spec)

        def task(combo: Mapping[str, Any], stage: str = "search", window: Window | None = None,
                 test: bool = False) -> dict[str, Any]:
            text = params_key(combo)
            index = -1 if window is None else window.index
            start = end = None
            if window is not None:
                start = window.test_start if test else window.train_start
                end = window.test_end if test else window.train_end
            return {
                "key": f"{stage}/{index}/{text}",
                "stage": stage,
                "window": index,
                "params_text": text,
                "params": space.full_params(combo),
                "strategy": strategy_ref,
                "options": dict(backtest_options),
                "start": None if start is None else start.isoformat(),
                "end": None if end is None else end.isoformat(),
            }

        described = f"sweep {cls.__name__}"
        failures = 0
        if wf is None:
            if optuna is not None:
                failures = _run_optuna(executor, store, space, task, optuna, seed, metric,
                                       out_dir, _Progress(progress, described))
            else:
                tasks = [task(c) for c in combos]
                failures = _run_tasks(executor, store, tasks, _Progress(progress, described),
                                      len(tasks))
        else:
            tasks = [task(c, "train", w) for w in windows for c in combos]
            failures = _run_tasks(executor, store, tasks,
                                  _Progress(progress, f"{described}: training windows"),
                                  len(tasks))
            chosen = {}
            for w in windows:
                trained = list(store.rows("train", w.index))
                order = {t["key"]: i for i, t in enumerate(tasks)}
                trained.sort(key=lambda r: (_better(metric)((r["stats"] or {}).get(metric,
                                                                                    math.nan)),
                                            order.get(r["key"], 0)))
                if trained and trained[0]["stats"] is not None:
                    chosen[w.index] = trained[0]
            tests = [task(chosen[w.index]["params"], "test", w, test=True)
                     for w in windows if w.index in chosen]
            failures += _run_tasks(executor, store, tests,
                                   _Progress(progress, f"{described}: test windows"), len(tests))
    finally:
        executor.close()
    return _finish(store, space, metric, combos, wf, windows, out_dir, failures, pbo_blocks,
                   cls, strategy_text, data, backtest_options, report)


def _finish(store: ResultStore, space: Space, metric: str, combos: list[dict[str, Any]],
            wf: WalkForward | None, windows: list[Window], out: Path | None, failures: int,
            blocks: int, cls: type, strategy_text: str, data: Any,
            options: Mapping[str, Any], report: bool) -> SweepResult:
    order = {params_key(c): i for i, c in enumerate(combos)}
    stage = "search" if wf is None else "train"
    rows = list(store.rows(stage))
    keyed = {r["key"]: order.get(json.dumps(r["params"], sort_keys=True,
                                            separators=(",", ":")), len(order)) for r in rows}
    table = _table(rows, space, metric, keyed, by_window=wf is not None)
    extra: dict[str, Any] = {}
    sort_key = _better(metric)
    if wf is None:
        ranked = sorted(rows, key=lambda r: (sort_key((r["stats"] or {}).get(metric, math.nan)),
                                             keyed[r["key"]]))
        best = ranked[0] if ranked else None
        dsr, pbo, logits = _overfitting(rows, best, blocks)
    else:
        best, dsr, pbo, logits, extra = _walk_forward_results(
            store, windows, metric, blocks, float(options.get("cash", 100_000.0)), space)
    best_params = {} if best is None else {n: best["params"][n] for n in space.names}
    result = SweepResult(table=table, metric=metric, best_params=best_params, dsr=dsr, pbo=pbo,
                         pbo_logits=logits, out=out, failures=failures,
                         equities={r["key"]: r for r in rows}, **extra)
    store.close()
    if out is not None:
        _write_outputs(result, out, cls, data, options, space, report)
    return result


def _walk_forward_results(store: ResultStore, windows: list[Window], metric: str, blocks: int,
                          cash: float, space: Space) -> tuple[Any, ...]:
    import numpy as np
    import pandas as pd

    tests = {r["window"]: r for r in store.rows("test")}
    records, pieces = [], []
    best: dict[str, Any] | None = None
    dsr: dict[str, float] = {"dsr": math.nan}
    pbo: dict[str, Any] = {"pbo": math.nan}
    logits: list[float] = []
    is_rates, oos_seconds, oos_growth = [], 0.0, 1.0
    for w in windows:
        test = tests.get(w.index)
        trained = [r for r in store.rows("train", w.index)]
        chosen = None
        if test is not None:
            chosen = next(r for r in trained if r["params"] == test["params"])
        w_dsr, w_pbo, w_logits = _overfitting(trained, chosen, blocks)
        record: dict[str, Any] = {
            "window": w.index, "train_start": w.train_start, "train_end": w.train_end,
            "test_start": w.test_start, "test_end": w.test_end,
        }
        if chosen is not None and test is not None and test["stats"] is not None:
            record.update({n: chosen["params"][n] for n in space.names})
            is_stats, oos_stats = chosen["stats"], test["stats"]
            train_s = (w.train_end - w.train_start).total_seconds()
            test_s = (w.test_end - w.test_start).total_seconds()
            is_rate = annualised_log_return(is_stats["total_return"], train_s)
            oos_rate = annualised_log_return(oos_stats["total_return"], test_s)
            record.update({
                f"is_{metric}": is_stats.get(metric), f"oos_{metric}": oos_stats.get(metric),
                "is_return": is_stats["total_return"], "oos_return": oos_stats["total_return"],
                "is_annual_log_return": is_rate, "oos_annual_log_return": oos_rate,
                "wfe": oos_rate / is_rate if is_rate else math.nan,
                "dsr": w_dsr.get("dsr", math.nan), "pbo": w_pbo.get("pbo", math.nan),
            })
            is_rates.append(is_rate)
            oos_seconds += test_s
            oos_growth *= 1.0 + oos_stats["total_return"]
            pieces.append(_series(test))
            best, dsr, pbo, logits = chosen, w_dsr, w_pbo, w_logits
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    is_mean = float(np.mean(is_rates)) if is_rates else math.nan
    oos_rate = annualised_log_return(oos_growth - 1.0, oos_seconds)
    caveat = None
    if not is_mean > 0:
        caveat = ("in-sample annualised return is not positive: the efficiency ratio's "
                  "sign and size mean nothing here")
    wfe = {
        "wfe": oos_rate / is_mean if is_mean else math.nan,
        "oos_annual_log_return": oos_rate,
        "is_annual_log_return_mean": is_mean,
        "caveat": caveat,
    }
    equity = stitch(pieces, cash)
    return best, dsr, pbo, logits, {"windows": frame, "oos_equity": equity, "wfe": wfe}


def _write_outputs(result: SweepResult, out: Path, cls: type, data: Any,
                   options: Mapping[str, Any], space: Space, report: bool) -> None:
    from finchan.trade import backtest

    table = result.table
    _replace(out / "results.csv", lambda p: table.to_csv(p, index=False))
    _replace(out / "results.parquet", lambda p: table.to_parquet(p, index=False))
    if result.windows is not None:
        windows = result.windows
        _replace(out / "windows.csv", lambda p: windows.to_csv(p, index=False))
    if result.oos_equity is not None:
        equity = result.oos_equity
        _replace(out / "oos_equity.csv", lambda p: equity.to_csv(p))
    text = json.dumps(result.summary(), indent=2, default=str) + "\n"
    _replace(out / "summary.json", lambda p: p.write_text(text, encoding="utf-8"))
    if result.best_params:
        result.best = backtest(cls, data, params=space.full_params(result.best_params),
                               report=False, **options)
        result.best.save(out / "best", report=report)
    if report:
        from finchan.trade.sweeps._report import write_sweep_report

        write_sweep_report(out / "report.html", result, space)


def _replace(path: Path, write: Callable[[Path], Any]) -> None:
    """Write to a temporary name, then rename: a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)
