"""finchan.trade.sweep with real processes: in-process, a LocalCluster, an external Dask cluster,
a driver killed with SIGKILL, a worker killed during a task; walk-forward on a hand-made case."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from finchan.errors import ConfigError
from finchan.trade import sweep
from finchan.trade._synthetic import make_bars
from finchan_testing import ROOT, TEST_EXTS

BARS = make_bars(1500)
GRID = {"fast": [5, 8], "slow": [20, 30]}
GATED = "sweep_strategies:GatedSmaCross"
# this helper's loopback ports (18700-18799)
PORTS = iter(range(18700, 18798))


def _wait_for(condition: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)  # polling a condition, with a deadline


def _cluster_options() -> dict[str, Any]:
    # the scheduler's HTTP server (metrics) starts even without a dashboard: one of our ports too
    return {"scheduler_port": next(PORTS), "worker_port": f"{next(PORTS)}:{next(PORTS) + 5}",
            "dashboard_address": f"127.0.0.1:{next(PORTS)}"}


def _started(gate: Path) -> Counter[str]:
    return Counter(p.name.split("-")[1] + "-" + p.name.split("-")[2]
                   for p in gate.glob("started-*"))


@pytest.fixture(scope="module")
def sequential() -> pd.DataFrame:
    return sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, GRID, workers=0,
                 cash=1e6).table


@pytest.fixture
def external_cluster() -> Iterator[str]:
    """A real ``dask scheduler`` and two ``dask worker`` processes on loopback."""
    port = next(PORTS)
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TEST_EXTS), str(ROOT / "src")])}
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--dashboard-address",
                               f"127.0.0.1:{next(PORTS)}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for _ in range(2):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "dask", "worker", address, "--nworkers", "1", "--nthreads",
             "1", "--no-dashboard", "--host", "127.0.0.1", "--no-nanny"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        from distributed import Client

        def ready() -> bool:
            try:
                with Client(address, timeout="2s") as client:
                    client.wait_for_workers(2, timeout=60)
                    return True
            except OSError:
                return False

        _wait_for(ready, "the external Dask cluster")
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                # a worker whose scheduler is going may wait out its reconnect
                # timeout before it exits: nothing left to lose, so not longer
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_local_cluster_and_external_cluster_give_the_sequential_table(
    sequential: pd.DataFrame, external_cluster: str
) -> None:
    assert len(sequential) == 4
    assert sequential["sharpe"].is_monotonic_decreasing
    local = sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, GRID, workers=2, cash=1e6,
                  cluster_options=_cluster_options()).table
    pd.testing.assert_frame_equal(local, sequential)
    external = sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, GRID,
                     scheduler=external_cluster, cash=1e6).table
    pd.testing.assert_frame_equal(external, sequential)


_DRIVER = """
import sys
from finchan.trade import sweep
from finchan.trade._synthetic import make_bars
from finchan.trade.sweeps._engine import DaskExecutor
# one combination per Dask task: the other worker stores everything but the held one
# (chunks of short backtests are stored when the whole chunk is back)
DaskExecutor.CHUNK_SECONDS = 0.0
if __name__ == "__main__":
    workers, port = int(sys.argv[3]), int(sys.argv[4])
    sweep("sweep_strategies:GatedSmaCross", {"SYN": make_bars(1500)},
          {"fast": [3, 4, 5, 6], "slow": [20, 30]}, workers=workers, out=sys.argv[1], cash=1e6,
          params={"gate": sys.argv[2], "hold": "5/20"}, report=False,
          cluster_options={"scheduler_port": port, "dashboard_address": f"127.0.0.1:{port + 1}"})
"""


def _driver(
    tmp_path: Path, source: str, *args: str
) -> tuple[Path, Path, dict[str, str], list[str]]:
    """A sweep driver script to kill and rerun: its gate and out directories, its
    environment and its command (``out gate *args port``; the port after it is the
    dashboard's)."""
    gate, out = tmp_path / "gate", tmp_path / "out"
    gate.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(source, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(TEST_EXTS)}
    port = next(PORTS)
    next(PORTS)
    return gate, out, env, [sys.executable, str(driver), str(out), str(gate), *args, str(port)]


def _stored(out: Path) -> int:
    try:
        with sqlite3.connect(out / "results.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("workers", [0, 2])
def test_driver_killed_with_sigkill_then_rerun_completes_each_combination_once(
    tmp_path: Path, workers: int
) -> None:
    import psutil

    gate, out, env, command = _driver(tmp_path, _DRIVER, str(workers))
    first = subprocess.Popen(command, env=env)
    try:
        _wait_for(lambda: _started(gate)["5-20"] == 1, "the held combination to start")
        if workers == 0:
            assert _stored(out) == 4  # fast 3 and 4 are stored; 5/20 is held
        else:  # the other worker goes on: everything but 5/20 gets stored
            _wait_for(lambda: _stored(out) == 7, "the other combinations")
        children = psutil.Process(first.pid).children(recursive=True)
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
        # the local cluster's worker processes do not outlive their driver
        _wait_for(lambda: not [c for c in children if c.is_running()
                               and c.status() != psutil.STATUS_ZOMBIE], "the workers to exit")
    finally:
        if first.poll() is None:
            first.kill()
    (gate / "release").touch()
    second = subprocess.run(command, env=env, timeout=120, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    table = pd.read_csv(out / "results.csv")
    assert len(table) == 8
    assert sorted(zip(table["fast"], table["slow"])) == [
        (f, s) for f in (3, 4, 5, 6) for s in (20, 30)]
    runs = _started(gate)
    runs[f"{table['fast'][0]}-{table['slow'][0]}"] -= 1  # the best ran again for its report
    # the four stored before the kill did not run again; the held one ran twice
    assert runs == Counter({"3-20": 1, "3-30": 1, "4-20": 1, "4-30": 1, "5-20": 2, "5-30": 1,
                            "6-20": 1, "6-30": 1})
    expected = sweep(GATED, {"SYN": make_bars(1500)}, {"fast": [3, 4, 5, 6], "slow": [20, 30]},
                     workers=0, cash=1e6, params={"gate": str(gate), "hold": "5/20"}).table
    assert table["error"].isna().all()
    pd.testing.assert_frame_equal(table.drop(columns="error"), expected.drop(columns="error"),
                                  check_dtype=False, check_exact=False, rtol=1e-12)


def test_short_backtests_travel_in_chunks_and_each_row_comes_back_once(
    sequential: pd.DataFrame,
) -> None:
    from finchan.trade.sweeps._engine import DaskExecutor

    tasks = [{"key": f"search/-1/{i}", "stage": "search", "window": -1, "params_text": str(i),
              "params": {"fast": 5 + i % 4, "slow": 20 + i % 3, "qty": 100},
              "strategy": "finchan.trade.examples:SmaCross", "options": {"cash": 1e6}}
             for i in range(40)]
    executor = DaskExecutor({"SYN": BARS}, 2, cluster_options=_cluster_options())
    try:
        executor.CHUNK_SECONDS = 30.0  # backtests of 1,500 bars: many per chunk
        executor.expect(len(tasks))
        queue = iter(tasks)
        rows, slots = [], [executor.slots]
        for task in queue:
            executor.submit(task)
            if executor.pending() >= executor.slots:
                break
        while executor.pending():
            rows.append(executor.next_done())
            slots.append(executor.slots)
            while executor.pending() < executor.slots and (task := next(queue, None)):
                executor.submit(task)
    finally:
        executor.close()
    assert sorted(row["key"] for row in rows) == sorted(t["key"] for t in tasks)
    assert slots[0] == 4 and max(slots) > 4  # one combination per task, then chunks
    # guided: chunks shrink as the end nears, so both workers finish together
    assert slots[-1] == 4
    by_key = {row["key"]: row for row in rows}
    expected = {(f, s): v for f, s, v in zip(sequential["fast"], sequential["slow"],
                                             sequential["sharpe"], strict=True)}
    for task in tasks:
        params = task["params"]
        if (params["fast"], params["slow"]) in expected:
            assert by_key[task["key"]]["stats"]["sharpe"] == expected[
                params["fast"], params["slow"]]


def test_a_worker_killed_during_a_task_is_retried_and_the_sweep_completes(
    tmp_path: Path, sequential: pd.DataFrame
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    params = {"gate": str(gate), "hold": "8/30"}
    outcome: dict[str, Any] = {}

    def drive() -> None:
        try:
            outcome["result"] = sweep(GATED, {"SYN": BARS}, GRID, workers=2, cash=1e6,
                                      params=params, cluster_options=_cluster_options())
        except BaseException as exc:
            outcome["error"] = exc

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        marker = _wait_for(lambda: next(gate.glob("started-8-30-*"), None), "the held task")
        os.kill(int(marker.name.split("-")[3]), signal.SIGKILL)
    finally:
        (gate / "release").touch()
        driver.join(timeout=180)
    assert not driver.is_alive()
    assert "error" not in outcome, outcome.get("error")
    # killed once, then retried (Dask may also recompute results lost with the dead worker;
    # the store keeps each combination once whatever ran twice)
    assert _started(gate)["8-30"] >= 2
    table = outcome["result"].table
    assert len(table) == len(sequential)
    pd.testing.assert_frame_equal(table[sequential.columns], sequential)


# --------------------------------------------------------------------------- walk-forward

# flat bars, one a minute: fills happen at the next bar's open, which is its price
PRICES = [100, 100, 102, 104, 104, 105, 107, 107, 106, 104, 104, 104]


def _hand_bars() -> pd.DataFrame:
    times = pd.date_range("2024-01-01", periods=len(PRICES), freq="1min")
    price = np.asarray(PRICES, dtype=float)
    return pd.DataFrame({"datetime": times.strftime("%Y-%m-%dT%H:%M:%S"), "open": price,
                         "high": price, "low": price, "close": price, "volume": 1_000_000})


@pytest.mark.parametrize("anchored", [False, True])
def test_walk_forward_on_a_hand_made_case(tmp_path: Path, anchored: bool) -> None:
    spec = "train=4min,test=3min" + (",anchored" if anchored else "")
    result = sweep("sweep_strategies:Hold", {"X": _hand_bars()}, {"side": [0, 1]}, workers=0,
                   cash=10_000, metric="total_return", walk_forward=spec, out=tmp_path / "wf")
    w = result.windows
    t = pd.Timestamp("2024-01-01", tz="UTC")
    minute = pd.Timedelta(minutes=1)
    # rolling: train [0, 4) test [4, 7); train [3, 7) test [7, 10). anchored: train [0, 7)
    assert list(w["train_start"]) == [t, t if anchored else t + 3 * minute]
    assert list(w["train_end"]) == [t + 4 * minute, t + 7 * minute]
    assert list(w["test_start"]) == [t + 4 * minute, t + 7 * minute]
    assert list(w["test_end"]) == [t + 7 * minute, t + 10 * minute]
    assert list(w["side"]) == [1, 1]  # holding beat doing nothing in both training windows
    # in-sample: buy at bar 1's open 100, bar 3 closes 104: +40 on 10,000; window 1 rolling:
    # bought at bar 4's open 104, bar 6 closes 107: +30; anchored: 100 -> 107: +70
    assert list(w["is_return"]) == pytest.approx([0.004, 0.007 if anchored else 0.003])
    # out of sample: 105 -> 107 (+20), then 106 -> 104 (-20)
    assert list(w["oos_return"]) == pytest.approx([0.002, -0.002])
    equity = result.oos_equity
    assert list(equity.index) == [t + i * minute for i in range(4, 10)]
    assert equity.tolist() == pytest.approx([10_000, 10_000, 10_020, 10_020, 10_020,
                                             10_020 * 0.998])
    assert result.wfe["caveat"] is None
    assert result.wfe["wfe"] == pytest.approx(
        result.wfe["oos_annual_log_return"] / np.mean(w["is_annual_log_return"]))
    saved = pd.read_csv(tmp_path / "wf" / "windows.csv")
    assert list(saved["oos_return"]) == pytest.approx([0.002, -0.002])


def test_walk_forward_longer_than_the_data_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^--walk-forward train=10min,test=3min: the windows "
                                          r"\(10min \+ 3min\) are longer than the data"):
        sweep("sweep_strategies:Hold", {"X": _hand_bars()}, {"side": [0, 1]}, workers=0,
              walk_forward="train=10min,test=3min")


# --------------------------------------------------------------------------- search, resume


def test_random_search_is_seeded_and_optuna_resumes_its_study(tmp_path: Path) -> None:
    grid = {"fast": "3:12", "slow": "20:40:5"}
    a = sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, grid, samples=5, seed=3,
              workers=0).table
    b = sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, grid, samples=5, seed=3,
              workers=0).table
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 5 and len(set(zip(a["fast"], a["slow"]))) == 5
    out = tmp_path / "opt"
    first = sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, grid, optuna=6, seed=1,
                  workers=0, out=out, report=False)
    assert (out / "optuna.journal").exists()
    stored = _stored(out)
    assert stored == len(first.table) <= 6
    again = sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, grid, optuna=6, seed=1,
                  workers=0, out=out, report=False)
    assert _stored(out) == stored  # nothing ran again
    pd.testing.assert_frame_equal(again.table, first.table)


_OPTUNA_DRIVER = """
import sys
from finchan.trade import sweep
from finchan.trade._synthetic import make_bars
from finchan.trade.sweeps._engine import DaskExecutor
# one combination per Dask task: the other worker stores everything but the held one
# (chunks of short backtests are stored when the whole chunk is back)
DaskExecutor.CHUNK_SECONDS = 0.0
if __name__ == "__main__":
    port = int(sys.argv[3])
    sweep("sweep_strategies:GatedSmaCross", {"SYN": make_bars(1500)},
          {"fast": [5, 6, 7], "slow": [20]}, optuna=6, seed=2, workers=2, out=sys.argv[1],
          cash=1e6, params={"gate": sys.argv[2], "hold": "5/20"}, report=False,
          cluster_options={"scheduler_port": port, "dashboard_address": f"127.0.0.1:{port + 1}"})
"""


def test_optuna_on_a_local_cluster_agrees_with_the_table_and_a_killed_driver_resumes(
    tmp_path: Path,
) -> None:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna.trial import TrialState

    gate, out, env, command = _driver(tmp_path, _OPTUNA_DRIVER)

    def study_trials() -> list[Any]:
        storage = JournalStorage(JournalFileBackend(str(out / "optuna.journal")))
        return optuna.load_study(study_name="sweep", storage=storage).get_trials()

    first = subprocess.Popen(command, env=env)
    try:
        # seed 2 asks fast 6, 5, 6, 6 first: 5/20 is held on one worker while the other
        # stores 6/20
        _wait_for(lambda: _started(gate)["5-20"] == 1, "the held combination to start")
        _wait_for(lambda: _stored(out) >= 1, "a combination other than the held one")
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    stored_before = _stored(out)
    left = study_trials()
    assert any(t.state == TrialState.RUNNING for t in left)  # 5/20's trial, never told
    (gate / "release").touch()
    second = subprocess.run(command, env=env, timeout=120, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    trials = study_trials()
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert [t.params for t in trials[:len(left)]] == [t.params for t in left]
    table = pd.read_csv(out / "results.csv")
    by_params = {(int(f), int(s)): v for f, s, v in
                 zip(table["fast"], table["slow"], table["sharpe"], strict=True)}
    # every trial is a stored combination told its table value (a repeated suggestion is
    # answered from the store), every stored combination is a trial's, each stored once
    assert {(t.params["fast"], t.params["slow"]) for t in trials} == set(by_params)
    for t in trials:
        assert t.value == pytest.approx(by_params[t.params["fast"], t.params["slow"]], rel=1e-12)
    assert _stored(out) == len(table) == len(set(by_params)) >= stored_before
    runs = _started(gate)
    # what was stored before the kill did not run again; the held one ran twice
    assert runs["5-20"] == 2 + (table["fast"][0] == 5)  # + the best's own backtest
    assert all(n == 1 + (key == f"{table['fast'][0]}-20") for key, n in runs.items()
               if key != "5-20")


def test_a_directory_holding_another_sweep_is_refused(tmp_path: Path) -> None:
    sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, {"fast": [5]}, workers=0,
          out=tmp_path, report=False)
    with pytest.raises(ConfigError, match=r"holds a different sweep \(differs in: grid\)"):
        sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, {"fast": [6]}, workers=0,
              out=tmp_path, report=False)


def test_a_strategy_that_raises_is_a_failed_row_naming_its_function(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = sweep("sweep_strategies:Boom", {"X": _hand_bars()}, {"fail": [0, 1], "side": [0, 1]},
                   workers=0, metric="total_return", progress=True)
    assert result.failures == 2
    failed = result.table[result.table["error"].notna()]
    assert list(failed["fail"]) == [1, 1]
    assert failed["error"].str.match(
        r"CallbackError: callback sweep_strategies.Boom.on_bar failed on event 'bar' at 2024-01-01T00:00:00\+00:00: "
        r"RuntimeError: boom \(raised in on_bar, .*sweep_strategies\.py:\d+\)$").all()
    assert failed["sharpe"].isna().all()
    assert list(result.table["fail"][:2]) == [0, 0]  # failed rows sort last
    err = capsys.readouterr().err
    assert "4/4" in err and "failures 2" in err  # the progress bar's last state


# --------------------------------------------------------------------------- CLI


def _write_config(tmp_path: Path, bars_options: str) -> Path:
    """A sweep's config in ``tmp_path``: the SMA cross on the bars extension's ``bars_options``
    (YAML lines indented by 4)."""
    path = tmp_path / "finchan.yml"
    path.write_text(
        "version: 1\nrun_mode: backtest\n"
        f"work_dir: {tmp_path / 'work'}\n"
        "enabled_backtest_exts: [finchan.exts.bars, finchan.exts.strategy]\n"
        "backtest_exts:\n"
        f"  finchan.exts.bars:\n{bars_options}"
        "  finchan.exts.sim_broker:\n    cash: 1000000\n"
        "  finchan.exts.strategy:\n    class: finchan.trade.examples:SmaCross\n",
        encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return _write_config(tmp_path, "    synthetic: {n: 1500, symbol: SYN}\n")


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "fast5"], "--grid 'fast5': expected NAME=VALUES, e.g. fast=5,10,20 or slow=20:60:10"),
    (["--grid", "fsat=5,10"], "grid: SmaCross has no parameter 'fsat'; did you mean 'fast'? (known: fast, slow, qty)"),
    (["--grid", "fast=5,x"], "grid: SmaCross: parameter 'fast' must be int like its default 10, got 'x'"),
    (["--grid", "fast="], "--grid fast=: no values (give e.g. fast=5,10,20 or fast=5:20:5)"),
    (["--grid", "slow=60:20"], "--grid slow=60:20: STOP 20 is below START 60"),
    ([], "no --grid given: e.g. --grid fast=5,10,20 --grid slow=20:60:10"),
    (["--grid", "fast=5", "--walk-forward", "train=2D,test=1D"],
     "--walk-forward train=2D,test=1D: the windows (2D + 1D) are longer than the data"),
    (["--grid", "fast=5", "--scheduler", "tcp://127.0.0.1:18798"],
     "--scheduler tcp://127.0.0.1:18798: cannot reach the Dask scheduler"),
])
def test_cli_bad_input_is_one_line_with_exit_2(
    finchan_cli: Any, config: Path, args: list[str], message: str
) -> None:
    done = finchan_cli("sweep", "-c", str(config), *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"finchan: error: {message}")
    assert not (config.parent / "work" / "sweeps").exists()


def test_cli_reads_the_bars_with_every_option_of_the_bars_extension(
    finchan_cli: Any, tmp_path: Path
) -> None:
    # a file as downloaded: ';'-separated, a .txt suffix, its own date column name
    frame = BARS.rename(columns={"datetime": "Date"})
    frame.to_csv(tmp_path / "SYN.txt", sep=";", index=False)
    path = _write_config(
        tmp_path,
        "    files: [SYN.txt]\n    format: csv\n    sep: ';'\n"
        "    columns: {datetime: Date}\n    chunk_size: 500\n")
    out = tmp_path / "out"
    done = finchan_cli("sweep", "-c", str(path), "--grid", "fast=5,8", "--grid", "slow=20:30:10",
                       "--workers", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr
    expected = sweep("finchan.trade.examples:SmaCross", {"SYN": BARS}, GRID, workers=0,
                     cash=1e6).table
    table = pd.read_csv(out / "results.csv")
    assert list(zip(table["fast"], table["slow"])) == list(zip(expected["fast"],
                                                               expected["slow"]))
    np.testing.assert_allclose(table["sharpe"], expected["sharpe"], rtol=1e-12)
    path.write_text(path.read_text().replace("chunk_size: 500", "speed: 2"))
    refused = finchan_cli("sweep", "-c", str(path), "--grid", "fast=5", "--workers", "0")
    assert refused.returncode == 2
    assert refused.stderr == ("finchan: error: finchan.exts.bars: speed: only for live mode "
                              "(a backtest runs at full speed)\n")


def test_cli_sweep_writes_the_tables_summary_and_reports(finchan_cli: Any, config: Path) -> None:
    out = config.parent / "out"
    done = finchan_cli("sweep", "-c", str(config), "--grid", "fast=5,8", "--grid", "slow=20:30:10",
                       "--workers", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("finchan: sweep done: 4 results, 0 failed; best by sharpe: ")
    table = pd.read_csv(out / "results.csv")
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet")[["fast", "slow"]],
                                  table[["fast", "slow"]])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_params"] == {"fast": int(table["fast"][0]), "slow": int(table["slow"][0])}
    assert 0.0 <= summary["dsr"]["dsr"] <= 1.0 and 0.0 <= summary["pbo"]["pbo"] <= 1.0
    assert (out / "best" / "report.html").exists() and (out / "report.html").exists()
    again = finchan_cli("sweep", "-c", str(config), "--grid", "fast=5,8", "--grid",
                        "slow=20:30:10", "--workers", "0", "--out", str(out))
    assert again.returncode == 0 and pd.read_csv(out / "results.csv").equals(table)
