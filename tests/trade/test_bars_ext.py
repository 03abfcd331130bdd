"""The extension finchan.exts.bars: options, paths, and bars through a whole run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finchan.config import load_config
from finchan.env import Env
from finchan.errors import ConfigError, DataError
from finchan.trade._synthetic import make_bars
from finchan.trade.data import BarFeed
from finchan.trade.exts import bars as bars_ext

EXT = "finchan.exts.bars"
SEC = f"backtrack_exts.{EXT}"
T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()


def bars_env(make_env, options, **dispatcher):
    return make_env(
        {
            "enabled_backtrack_exts": [EXT],
            "backtrack_exts": {EXT: options},
            "dispatcher.backtrack": dispatcher or {},
        }
    )


def run_and_collect(env: Env) -> list:
    env.load_exts()
    seen = []
    env.dispatcher.subscribe(
        "bar", lambda e: seen.append((e.symbol, e.timestamp, e.close, e.env.now_ts))
    )
    env.run()
    return seen


def write_csv(path: Path, n: int, start: str = "2020-01-01", base: float = 10.0) -> Path:
    close = base + np.arange(n, dtype=float)
    pd.DataFrame(
        {
            "Date": pd.date_range(start, periods=n, freq="1min").strftime("%Y-%m-%d %H:%M"),
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
        }
    ).to_csv(path, index=False)
    return path


def test_extension_registers_its_feed_and_publishes_it(make_env):
    env = bars_env(make_env, {"synthetic": {"n": 50}})
    env.load_exts()
    feed = env.get_ext_obj(EXT)
    assert isinstance(feed, BarFeed)
    assert feed in env.dispatcher.event_sources
    assert feed.symbols == ["SYN"] and feed.timeframe == "1min"


def test_synthetic_bars_run_through_the_dispatcher_in_order(make_env):
    env = bars_env(make_env, {"synthetic": {"n": 3000, "symbol": "S"}})
    seen = run_and_collect(env)
    ref = make_bars(3000)
    assert len(seen) == 3000
    assert [s[2] for s in seen] == ref["close"].tolist()
    assert [s[1] for s in seen] == [T0 + 60 * i for i in range(3000)]
    # the clock is at each bar's time while it is dispatched
    assert all(ts == now for _sym, ts, _close, now in seen)
    assert {s[0] for s in seen} == {"S"}


def test_bars_before_start_dt_are_skipped_and_end_dt_is_respected(make_env):
    env = bars_env(
        make_env,
        {"synthetic": {"n": 600}},
        start_dt="2020-01-01 01:00",
        end_dt="2020-01-01 02:00",
        time_step=900,
    )
    seen = run_and_collect(env)
    assert [s[1] for s in seen] == [T0 + 3600 + 60 * i for i in range(60)]


def test_relative_files_resolve_against_the_config_directory(tmp_path, monkeypatch):
    conf_dir = tmp_path / "conf"
    (conf_dir / "data").mkdir(parents=True)
    write_csv(conf_dir / "data" / "AAA.csv", 3)
    write_csv(conf_dir / "data" / "BBB.csv", 2, base=50)
    (conf_dir / "finchan.yml").write_text(
        f"""
work_dir: {tmp_path / "work"}
enabled_backtrack_exts: [{EXT}]
backtrack_exts:
  {EXT}:
    files: [data/BBB.csv, data/AAA.csv]
    columns: {{datetime: Date}}
    timezone: UTC
    timeframe: 1min
    chunk_size: 2
"""
    )
    monkeypatch.chdir(tmp_path)  # not the config's directory
    env = Env(load_config(conf_dir / "finchan.yml"))
    seen = run_and_collect(env)
    assert [(s[0], (s[1] - T0) / 60) for s in seen] == [
        ("BBB", 0),
        ("AAA", 0),
        ("BBB", 1),
        ("AAA", 1),
        ("AAA", 2),
    ]


def test_relative_file_without_a_config_directory_resolves_against_the_cwd(
    tmp_path, monkeypatch, make_env
):
    write_csv(tmp_path / "quotes.csv", 2)
    monkeypatch.chdir(tmp_path)
    env = bars_env(
        make_env, {"file": "quotes.csv", "symbols": "Q", "columns": {"datetime": "Date"}}
    )
    assert [(s[0], s[2]) for s in run_and_collect(env)] == [("Q", 10.0), ("Q", 11.0)]


def test_one_file_with_a_symbol_column(tmp_path, make_env):
    path = tmp_path / "u.csv"
    path.write_text(
        "sym,datetime,open,high,low,close\n"
        "A,2020-01-01T00:00,1,2,0.5,1.5\n"
        "B,2020-01-01T00:00,5,6,4.5,5.5\n"
        "A,2020-01-01T00:01,1,2,0.5,1.6\n"
    )
    env = bars_env(make_env, {"file": str(path), "symbol_column": "sym", "symbols": ["A"]})
    assert [(s[0], s[2]) for s in run_and_collect(env)] == [("A", 1.5), ("A", 1.6)]


def test_missing_file_fails_at_load_with_a_data_error(tmp_path, make_env):
    env = bars_env(make_env, {"files": [str(tmp_path / "nope.csv")]})
    with pytest.raises(DataError) as info:
        env.load_exts()
    assert str(info.value) == f"bar file not found: {tmp_path / 'nope.csv'}"


def test_bad_row_stops_the_run_with_the_data_error(tmp_path, make_env):
    path = write_csv(tmp_path / "X.csv", 5)
    text = path.read_text().replace("2020-01-01 00:03,13.0", "2020-01-01 00:03,1e")
    path.write_text(text)
    env = bars_env(make_env, {"file": str(path), "columns": {"datetime": "Date"}, "chunk_size": 2})
    with pytest.raises(DataError, match=r"X\.csv: line 5, column 'open': bad number '1e'$"):
        run_and_collect(env)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, f"{SEC}: no bar data: set files, file or synthetic"),
        ({"fils": ["a.csv"]}, f"{SEC}.fils: unknown key (did you mean 'files'?)"),
        ({"file": "a.csv", "files": ["b.csv"]}, f"{SEC}: give file or files, not both"),
        ({"files": [1, 2]}, f"{SEC}.files: expected a path or a list of paths, got [1, 2]"),
        (
            {"synthetic": {"n": 5}, "timezone": "Nowhere/City"},
            f"{SEC}.timezone: unknown time zone",
        ),
        ({"synthetic": {"n": -1}}, f"{SEC}.synthetic.n: must be greater than or equal to 0"),
        ({"synthetic": {"rows": 5}}, f"{SEC}.synthetic.rows: unknown key (known: n, symbol, "),
        ({"synthetic": 5}, f"{SEC}.synthetic: not a mapping (got 5)"),
    ],
)
def test_bad_options_are_config_errors_naming_the_extension(make_env, options, message):
    env = bars_env(make_env, options or None)
    with pytest.raises(ConfigError) as info:
        env.load_exts()
    assert str(info.value).startswith(f"config: {message}")


def test_make_feed_builds_the_feed_without_an_env(tmp_path):
    path = write_csv(tmp_path / "X.csv", 2)
    feed = bars_ext.make_feed(None, {"file": path, "columns": {"datetime": "Date"}})
    assert [b.close for b in feed.events_until(float("inf"))] == [10.0, 11.0]


def test_cli_reports_a_bad_data_file_in_one_line_with_exit_2(tmp_path, finchan_cli):
    (tmp_path / "bad.csv").write_text("datetime,open,high,low,close\n2020-01-01,1,2,3,1\n")
    (tmp_path / "finchan.yml").write_text(
        f"""
work_dir: {tmp_path / "work"}
enabled_backtrack_exts: [{EXT}]
backtrack_exts:
  {EXT}: {{file: bad.csv, symbols: X}}
"""
    )
    result = finchan_cli("-c", str(tmp_path / "finchan.yml"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"finchan: error: {tmp_path / 'bad.csv'}: line 2: high 2.0 is below low 3.0"]
