"""BarFeed and load_bars: reading each format, merging symbols, streaming, validation."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finchan.errors import ConfigError, DataError
from finchan.trade._synthetic import make_bars
from finchan.trade.bar import Bar
from finchan.trade.data import BAR_COLUMNS, BarFeed, load_bars

T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC).timestamp()  # 2020-01-01T00:00:00Z
INF = float("inf")

CSV = """datetime,open,high,low,close,volume
2020-01-01T00:00:00,10.0,10.5,9.5,10.2,100
2020-01-01T00:01:00,10.2,10.8,10.1,10.7,200
2020-01-01T00:02:00,10.7,10.9,10.3,10.4,300
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(bars: list[Bar]) -> list[tuple]:
    return [(b.symbol, b.timestamp, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def frame(n: int, start: str = "2020-01-01", freq: str = "1min", base: float = 10.0):
    """n simple bars: close = base + i, open = close - 0.5, high/low 1 away."""
    close = base + np.arange(n, dtype=float)
    return pd.DataFrame(
        {
            "datetime": pd.date_range(start, periods=n, freq=freq).strftime("%Y-%m-%dT%H:%M:%S"),
            "open": close - 0.5,
            "high": close + 1.0,
            "low": close - 1.0,
            "close": close,
            "volume": np.arange(n) * 10,
        }
    )


@pytest.fixture
def env(make_env):
    return make_env()


# --------------------------------------------------------------------------- reading


def test_csv_file_gives_one_bar_event_per_row_with_symbol_from_file_stem(tmp_path, env):
    path = write(tmp_path, "AAPL.csv", CSV)
    feed = BarFeed(env, path)
    bars = feed.events_until(INF)
    assert rows(bars) == [
        ("AAPL", T0, 10.0, 10.5, 9.5, 10.2, 100.0),
        ("AAPL", T0 + 60, 10.2, 10.8, 10.1, 10.7, 200.0),
        ("AAPL", T0 + 120, 10.7, 10.9, 10.3, 10.4, 300.0),
    ]
    assert [b.name for b in bars] == ["bar"] * 3
    assert all(b.env is env for b in bars)
    assert [b.id for b in bars] == [1, 2, 3]  # taken from env.event_ids
    assert next(env.event_ids) == 4
    assert bars[1].dt == dt.datetime(2020, 1, 1, 0, 1, tzinfo=dt.UTC)
    assert feed.exhausted
    assert feed.symbols == ["AAPL"]


def test_parquet_file_gives_the_same_bars_as_the_csv(tmp_path, env):
    df = pd.read_csv(write(tmp_path, "AAPL.csv", CSV))
    df["datetime"] = pd.to_datetime(df["datetime"])
    df.to_parquet(tmp_path / "AAPL.parquet", row_group_size=2)
    from_csv = rows(BarFeed(None, tmp_path / "AAPL.csv").events_until(INF))
    from_parquet = rows(BarFeed(env, tmp_path / "AAPL.parquet", chunk_size=2).events_until(INF))
    assert from_parquet == from_csv


def test_parquet_with_text_times_and_an_index_column_is_read(tmp_path):
    df = frame(3).set_index("datetime")
    df.to_parquet(tmp_path / "X.parquet")  # datetime is stored as the pandas index
    bars = BarFeed(None, str(tmp_path / "X.parquet")).events_until(INF)
    assert [b.timestamp for b in bars] == [T0, T0 + 60, T0 + 120]


def test_gzip_csv_is_read_and_symbol_drops_both_suffixes(tmp_path):
    path = tmp_path / "MSFT.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(CSV)
    bars = BarFeed(None, path).events_until(INF)
    assert [(b.symbol, b.close) for b in bars] == [("MSFT", 10.2), ("MSFT", 10.7), ("MSFT", 10.4)]


def test_dataframe_is_read_as_given_with_its_symbol(env):
    df = frame(3)
    bars = BarFeed(env, {"X": df}).events_until(INF)
    assert rows(bars) == [
        ("X", T0, 9.5, 11.0, 9.0, 10.0, 0.0),
        ("X", T0 + 60, 10.5, 12.0, 10.0, 11.0, 10.0),
        ("X", T0 + 120, 11.5, 13.0, 11.0, 12.0, 20.0),
    ]


def test_dataframe_datetime_index_serves_as_datetime_column():
    df = frame(2)
    df.index = pd.DatetimeIndex(df.pop("datetime"), name="Date")
    bars = BarFeed(None, [df], symbols=["X"]).events_until(INF)
    assert [b.timestamp for b in bars] == [T0, T0 + 60]


def test_column_mapping_and_case_insensitive_names(tmp_path):
    text = (
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2020-01-02,10,12,9,11,5.5,1000\n"
        "2020-01-03,11,13,10,12,6.0,2000\n"
    )
    path = write(tmp_path, "AAPL.csv", text)
    feed = BarFeed(None, path, columns={"datetime": "Date", "close": "Adj Close"}, timeframe="1D")
    bars = feed.events_until(INF)
    day = 86400.0
    assert rows(bars) == [
        ("AAPL", T0 + day, 10.0, 12.0, 9.0, 5.5, 1000.0),
        ("AAPL", T0 + 2 * day, 11.0, 13.0, 10.0, 6.0, 2000.0),
    ]
    assert (feed.timeframe, feed.timeframe_seconds) == ("1D", 86400.0)


def test_missing_volume_column_gives_volume_zero(tmp_path):
    text = "datetime,open,high,low,close\n2020-01-01,1,2,0.5,1.5\n"
    bars = BarFeed(None, write(tmp_path, "X.csv", text)).events_until(INF)
    assert [(b.close, b.volume) for b in bars] == [(1.5, 0.0)]


def test_naive_times_are_read_in_the_given_timezone(tmp_path):
    text = "datetime,open,high,low,close\n2020-01-02 09:30:00,1,2,0.5,1.5\n"
    bars = BarFeed(None, write(tmp_path, "X.csv", text), timezone="America/New_York").events_until(
        INF
    )
    assert bars[0].timestamp == dt.datetime(2020, 1, 2, 14, 30, tzinfo=dt.UTC).timestamp()


def test_times_with_an_offset_keep_it_whatever_the_timezone(tmp_path):
    text = (
        "datetime,open,high,low,close\n"
        "2020-01-02T09:30:00+01:00,1,2,0.5,1.5\n"
        "2020-01-02T08:31:00Z,1,2,0.5,1.5\n"
    )
    bars = BarFeed(None, write(tmp_path, "X.csv", text), timezone="Asia/Tokyo").events_until(INF)
    assert [b.timestamp for b in bars] == [
        dt.datetime(2020, 1, 2, 8, 30, tzinfo=dt.UTC).timestamp(),
        dt.datetime(2020, 1, 2, 8, 31, tzinfo=dt.UTC).timestamp(),
    ]


def test_digits_only_dates_in_a_csv_are_read_as_dates(tmp_path):
    text = "datetime,open,high,low,close\n20200102,1,2,0.5,1.5\n20200103,1,2,0.5,1.5\n"
    bars = BarFeed(None, write(tmp_path, "X.csv", text)).events_until(INF)
    assert [b.timestamp for b in bars] == [T0 + 86400, T0 + 2 * 86400]


def test_blank_lines_are_skipped(tmp_path):
    text = CSV.replace("\n2020-01-01T00:01", "\n\n2020-01-01T00:01") + "\n\n"
    bars = BarFeed(None, write(tmp_path, "X.csv", text), chunk_size=2).events_until(INF)
    assert [b.close for b in bars] == [10.2, 10.7, 10.4]


# --------------------------------------------------------------------------- merging


def test_several_symbols_merge_in_time_order_with_ties_in_input_order(tmp_path):
    a = frame(3, start="2020-01-01 00:00", freq="2min")  # 00:00 00:02 00:04
    b = frame(3, start="2020-01-01 00:02", freq="1min", base=50)  # 00:02 00:03 00:04
    # BBB is given first: at 00:02 and 00:04 it comes before AAA
    bars = BarFeed(None, [b, a], symbols=["BBB", "AAA"]).events_until(INF)
    assert [(b.symbol, (b.timestamp - T0) / 60) for b in bars] == [
        ("AAA", 0),
        ("BBB", 2),
        ("AAA", 2),
        ("BBB", 3),
        ("BBB", 4),
        ("AAA", 4),
    ]


def test_mapping_input_order_decides_ties():
    a, b = frame(1), frame(1, base=50)
    assert [x.symbol for x in BarFeed(None, {"A": a, "B": b}).events_until(INF)] == ["A", "B"]
    assert [x.symbol for x in BarFeed(None, {"B": b, "A": a}).events_until(INF)] == ["B", "A"]


LONG = """symbol,datetime,open,high,low,close
MSFT,2020-01-01T00:00:00,20,21,19,20.5
AAPL,2020-01-01T00:00:00,10,11,9,10.5
AAPL,2020-01-01T00:01:00,10.5,11,10,10.8
IBM,2020-01-01T00:01:00,30,31,29,30.5
MSFT,2020-01-01T00:01:00,20.5,21,20,20.7
AAPL,2020-01-01T00:02:00,10.8,11,10,10.9
"""


def test_symbol_column_file_gives_each_row_its_symbol_in_row_order(tmp_path):
    path = write(tmp_path, "universe.csv", LONG)
    feed = BarFeed(None, path, symbol_column="symbol")
    got = [(b.symbol, (b.timestamp - T0) / 60, b.close) for b in feed.events_until(INF)]
    assert got == [
        ("MSFT", 0, 20.5),
        ("AAPL", 0, 10.5),
        ("AAPL", 1, 10.8),
        ("IBM", 1, 30.5),
        ("MSFT", 1, 20.7),
        ("AAPL", 2, 10.9),
    ]
    assert feed.symbols == ["MSFT", "AAPL", "IBM"]


def test_symbols_with_a_symbol_column_keep_only_those(tmp_path):
    path = write(tmp_path, "universe.csv", LONG)
    feed = BarFeed(None, path, symbol_column="symbol", symbols=["IBM", "AAPL"])
    assert [b.symbol for b in feed.events_until(INF)] == ["AAPL", "AAPL", "IBM", "AAPL"]
    assert feed.symbols == ["IBM", "AAPL"]


def test_symbol_column_keeps_leading_zeros(tmp_path):
    text = "code,datetime,open,high,low,close\n000001,2020-01-01,1,2,0.5,1.5\n"
    bars = BarFeed(None, write(tmp_path, "cn.csv", text), symbol_column="code").events_until(INF)
    assert bars[0].symbol == "000001"


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 1000])
def test_chunk_boundaries_give_the_same_bars_as_one_chunk(tmp_path, chunk_size):
    a = frame(23, freq="1min")
    a.to_csv(tmp_path / "A.csv", index=False)
    b = frame(11, start="2020-01-01 00:05", freq="2min", base=70)
    b.to_parquet(tmp_path / "B.parquet")
    write(tmp_path, "U.csv", LONG)
    inputs = [tmp_path / "A.csv", tmp_path / "B.parquet", {"C": a.iloc[::3]}]

    def read(size):
        feeds = [
            BarFeed(None, [*inputs[:2], inputs[2]["C"]], symbols=["A", "B", "C"], chunk_size=size),
            BarFeed(None, tmp_path / "U.csv", symbol_column="symbol", chunk_size=size),
        ]
        return [rows(f.events_until(INF)) for f in feeds]

    assert read(chunk_size) == read(10**6)


def test_events_until_windows_give_each_bar_once_and_exclude_the_limit(tmp_path):
    frame(10).to_csv(tmp_path / "X.csv", index=False)
    feed = BarFeed(None, tmp_path / "X.csv", chunk_size=3)
    assert feed.first_timestamp() == T0
    got = []
    for minutes in (0, 2.5, 3, 3, 7, 9):  # limits inside and on chunk borders
        got.append([(b.timestamp - T0) / 60 for b in feed.events_until(T0 + 60 * minutes)])
        assert not feed.exhausted
    assert got == [[], [0, 1, 2], [], [], [3, 4, 5, 6], [7, 8]]
    assert feed.first_timestamp() == T0 + 9 * 60
    assert [(b.timestamp - T0) / 60 for b in feed.events_until(T0 + 600)] == [9]
    assert feed.exhausted
    assert feed.events_until(INF) == []
    assert feed.first_timestamp() is None


def test_start_and_end_keep_bars_between_them_inclusive(tmp_path):
    frame(10).to_csv(tmp_path / "X.csv", index=False)
    feed = BarFeed(
        None, tmp_path / "X.csv", start="2020-01-01 00:02", end=T0 + 5 * 60, chunk_size=4
    )
    assert feed.first_timestamp() == T0 + 120
    assert [(b.timestamp - T0) / 60 for b in feed.events_until(INF)] == [2, 3, 4, 5]
    assert feed.exhausted


def test_start_naive_is_read_in_the_feed_timezone(tmp_path):
    text = "datetime,open,high,low,close\n2020-01-02 09:30,1,2,0.5,1.5\n2020-01-02 09:31,1,2,1,1\n"
    feed = BarFeed(
        None,
        write(tmp_path, "X.csv", text),
        timezone="America/New_York",
        start="2020-01-02 09:31",
    )
    assert [b.dt.isoformat() for b in feed.events_until(INF)] == ["2020-01-02T14:31:00+00:00"]


def test_fast_built_bars_equal_bar_constructor_slot_by_slot(env):
    bar = BarFeed(env, {"X": frame(1)}).events_until(INF)[0]
    ref = Bar(env, "X", T0, 9.5, 11.0, 9.0, 10.0, 0.0, event_id=bar.id)
    slots = [s for cls in type(ref).__mro__ for s in getattr(cls, "__slots__", ())]
    assert {s: getattr(bar, s) for s in slots} == {s: getattr(ref, s) for s in slots}
    assert type(bar) is Bar


def test_bars_without_env_number_themselves():
    bars = BarFeed(None, {"X": frame(3)}).events_until(INF)
    assert bars[0].env is None
    assert bars[1].id == bars[0].id + 1 and bars[2].id == bars[0].id + 2


def test_stop_closes_the_feed(tmp_path):
    frame(10).to_csv(tmp_path / "X.csv", index=False)
    feed = BarFeed(None, tmp_path / "X.csv", chunk_size=3)
    assert len(feed.events_until(T0 + 60)) == 1
    feed.stop()
    assert feed.exhausted and feed.events_until(INF) == []


def test_load_bars_returns_one_validated_frame(tmp_path):
    write(tmp_path, "A.csv", CSV)
    df = load_bars([tmp_path / "A.csv", frame(2)], symbols=["A", "B"], timezone="Europe/Paris")
    assert list(df.columns) == ["datetime", "symbol", "open", "high", "low", "close", "volume"]
    assert df["symbol"].tolist() == ["A", "B", "A", "B", "A"]
    assert df["close"].tolist() == [10.2, 10.0, 10.7, 11.0, 10.4]
    assert str(df["datetime"].dt.tz) == "Europe/Paris"
    # naive times were read in Europe/Paris, so 00:00 there is 23:00 UTC the day before
    assert df["datetime"].iloc[0] == pd.Timestamp("2020-01-01 00:00", tz="Europe/Paris")
    assert df.attrs["timeframe"] == "1min"


def test_load_bars_with_no_rows_gives_an_empty_frame(tmp_path):
    df = load_bars(write(tmp_path, "X.csv", "datetime,open,high,low,close\n"))
    assert len(df) == 0 and list(df.columns)[:2] == ["datetime", "symbol"]


def test_bar_columns_are_the_default_names():
    assert BAR_COLUMNS == ("datetime", "open", "high", "low", "close", "volume")


def test_synthetic_bars_reproduce_the_reference_csv():
    text = make_bars(100_000).to_csv(index=False, float_format="%.4f")
    assert hashlib.md5(text.encode()).hexdigest() == "d1714af3227eb6334ad513305606f26b"


def test_synthetic_bars_are_valid_bars():
    df = load_bars({"SYN": make_bars(2000)})
    assert len(df) == 2000
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
    assert (df["open"].iloc[1:].to_numpy() == df["close"].iloc[:-1].to_numpy()).all()


# --------------------------------------------------------------------------- bad input


def error_of(*args, **kwargs) -> str:
    """The message of the DataError reading these inputs raises (while opening or reading)."""
    with pytest.raises(DataError) as info:
        BarFeed(None, *args, **kwargs).events_until(INF)
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.csv"
    assert error_of(path) == f"bar file not found: {path}"


def test_unknown_suffix_is_refused(tmp_path):
    path = write(tmp_path, "x.json", "{}")
    assert error_of(path) == (
        f"{path}: unknown bar file format '.json' "
        "(expected .csv, .txt or .parquet, optionally compressed, or set format)"
    )


def test_file_that_is_not_parquet_is_refused(tmp_path):
    path = write(tmp_path, "x.parquet", CSV)
    assert error_of(path).startswith(f"{path}: cannot read as Parquet: ")


def test_binary_file_named_csv_is_refused(tmp_path):
    df = frame(2)
    df.to_parquet(tmp_path / "x.parquet")
    path = tmp_path / "x.csv"
    path.write_bytes((tmp_path / "x.parquet").read_bytes())
    assert error_of(path) == f"{path}: cannot read as CSV: binary content (NUL bytes)"


def test_empty_csv_is_refused(tmp_path):
    path = write(tmp_path, "x.csv", "")
    assert error_of(path) == f"{path}: empty file, expected a CSV header line"


def test_missing_column_is_named_with_the_columns_present(tmp_path):
    path = write(tmp_path, "x.csv", "datetime,open,high,close\n2020-01-01,1,2,1\n")
    assert (
        error_of(path)
        == f"{path}: missing column 'low'; columns present: datetime, open, high, close"
    )


def test_missing_mapped_column_names_the_mapping(tmp_path):
    path = write(tmp_path, "x.csv", CSV)
    assert error_of(path, columns={"close": "Adj Close"}) == (
        f"{path}: missing column 'Adj Close' (for close); "
        "columns present: datetime, open, high, low, close, volume"
    )


def test_mapped_volume_column_is_required(tmp_path):
    path = write(tmp_path, "x.csv", "datetime,open,high,low,close\n2020-01-01,1,2,0.5,1\n")
    assert "missing column 'Vol' (for volume)" in error_of(path, columns={"volume": "Vol"})


def bad_csv(tmp_path: Path, line: int, new: str) -> Path:
    """A 10-bar CSV whose file line ``line`` (header = 1) is replaced by ``new``."""
    lines = frame(10).to_csv(index=False).splitlines()
    lines[line - 1] = new
    return write(tmp_path, "bad.csv", "\n".join(lines) + "\n")


@pytest.mark.parametrize("chunk_size", [1, 3, 100])
def test_bad_number_names_file_line_column_and_text(tmp_path, chunk_size):
    path = bad_csv(tmp_path, 8, "2020-01-01T00:06:00,15.5,17.0,15.0,1O.5,60")
    assert (
        error_of(path, chunk_size=chunk_size)
        == f"{path}: line 8, column 'close': bad number '1O.5'"
    )


@pytest.mark.parametrize("chunk_size", [2, 100])
def test_line_numbers_count_blank_lines(tmp_path, chunk_size):
    text = CSV.replace("\n2020-01-01T00:01", "\n\n\n2020-01-01T00:01").replace("10.4,300", "x,300")
    path = write(tmp_path, "x.csv", text)
    assert (
        error_of(path, chunk_size=chunk_size) == f"{path}: line 6, column 'close': bad number 'x'"
    )


def test_bad_number_in_a_mapped_column_names_the_file_column(tmp_path):
    path = write(tmp_path, "x.csv", "Date,open,high,low,Price\n2020-01-01,1,2,0.5,abc\n")
    options = {"columns": {"datetime": "Date", "close": "Price"}}
    assert error_of(path, **options) == f"{path}: line 2, column 'Price': bad number 'abc'"


@pytest.mark.parametrize("cell", ["", "NaN", "nan"])
def test_empty_or_nan_price_is_refused(tmp_path, cell):
    path = bad_csv(tmp_path, 4, f"2020-01-01T00:02:00,11.5,13.0,{cell},12.0,20")
    assert error_of(path) == f"{path}: line 4, column 'low': empty or NaN price"


def test_empty_volume_is_refused(tmp_path):
    path = bad_csv(tmp_path, 3, "2020-01-01T00:01:00,10.5,12.0,10.0,11.0,")
    assert error_of(path) == f"{path}: line 3, column 'volume': empty or NaN volume"


def test_negative_volume_is_refused(tmp_path):
    path = bad_csv(tmp_path, 3, "2020-01-01T00:01:00,10.5,12.0,10.0,11.0,-5")
    assert error_of(path) == f"{path}: line 3, column 'volume': negative volume -5.0"


def test_high_below_low_is_refused(tmp_path):
    path = bad_csv(tmp_path, 5, "2020-01-01T00:03:00,12.5,12.0,14.0,13.0,30")
    assert error_of(path) == f"{path}: line 5: high 12.0 is below low 14.0"


def test_open_or_close_outside_high_low_is_accepted_with_one_warning(tmp_path, caplog):
    lines = frame(6).to_csv(index=False).splitlines()
    lines[2] = "2020-01-01T00:01:00,13.0,12.0,10.0,11.0,10"  # open above high
    lines[4] = "2020-01-01T00:03:00,12.5,14.0,12.0,11.0,30"  # close below low
    path = write(tmp_path, "x.csv", "\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="finchan.trade.data"):
        bars = BarFeed(None, path, chunk_size=2).events_until(INF)
    assert [b.open for b in bars][1] == 13.0
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"{path}: line 3: open or close outside [low, high] (bar accepted; "
        "later such bars of this input are only counted)",
        f"{path}: 2 bars in all have open or close outside [low, high]",
    ]


@pytest.mark.parametrize("chunk_size", [1, 4, 100])
def test_unsorted_times_are_refused_with_file_and_line(tmp_path, chunk_size):
    path = bad_csv(tmp_path, 6, "2020-01-01T00:01:30,14.5,16.0,14.0,15.0,40")
    assert error_of(path, chunk_size=chunk_size) == (
        f"{path}: line 6: time 2020-01-01T00:01:30+00:00 is before the previous bar's time "
        "2020-01-01T00:03:00+00:00 (bars must be in time order)"
    )


@pytest.mark.parametrize("chunk_size", [1, 4, 100])
def test_duplicate_time_is_refused_with_file_and_line(tmp_path, chunk_size):
    path = bad_csv(tmp_path, 6, "2020-01-01T00:03:00,14.5,16.0,14.0,15.0,40")
    assert error_of(path, chunk_size=chunk_size) == (
        f"{path}: line 6: duplicate time 2020-01-01T00:03:00+00:00"
    )


@pytest.mark.parametrize("chunk_size", [1, 2, 100])
def test_duplicate_time_for_one_symbol_of_a_symbol_column_is_refused(tmp_path, chunk_size):
    path = write(
        tmp_path,
        "u.csv",
        LONG + "IBM,2020-01-01T00:02:00,1,2,0.5,1\nAAPL,2020-01-01T00:02:00,1,2,0.5,1\n",
    )
    assert error_of(path, symbol_column="symbol", chunk_size=chunk_size) == (
        f"{path}: line 9: duplicate time 2020-01-01T00:02:00+00:00 for AAPL"
    )


def test_symbol_column_file_out_of_time_order_is_refused(tmp_path):
    path = write(tmp_path, "u.csv", LONG + "IBM,2020-01-01T00:01:00,1,2,0.5,1\n")
    assert error_of(path, symbol_column="symbol") == (
        f"{path}: line 8: time 2020-01-01T00:01:00+00:00 is before the previous row's time "
        "2020-01-01T00:02:00+00:00 (rows must be in time order)"
    )


@pytest.mark.parametrize("chunk_size", [1, 100])
def test_unreadable_datetime_is_named(tmp_path, chunk_size):
    path = bad_csv(tmp_path, 9, "2020-01-01 25:00,16.5,18.0,16.0,17.0,70")
    assert error_of(path, chunk_size=chunk_size) == (
        f"{path}: line 9, column 'datetime': cannot read a time from '2020-01-01 25:00'"
    )


def test_empty_datetime_is_named(tmp_path):
    path = bad_csv(tmp_path, 2, ",9.5,11.0,9.0,10.0,0")
    assert error_of(path) == f"{path}: line 2, column 'datetime': empty time"


def test_local_time_that_does_not_exist_is_named(tmp_path):
    text = "datetime,open,high,low,close\n2020-03-08 01:59,1,2,0.5,1\n2020-03-08 02:30,1,2,0.5,1\n"
    path = write(tmp_path, "x.csv", text)
    assert error_of(path, timezone="America/New_York") == (
        f"{path}: line 3, column 'datetime': time '2020-03-08 02:30' is ambiguous "
        "or does not exist in America/New_York"
    )


def test_first_problem_in_line_order_is_reported_whatever_the_chunk_size(tmp_path):
    lines = frame(10).to_csv(index=False).splitlines()
    lines[2] = "2020-01-01T00:01:00,10.5,9.0,10.0,11.0,10"  # line 3: high < low
    lines[5] = "2020-01-01T00:04:00,13.5,15.0,13.0,oops,40"  # line 6: bad number
    path = write(tmp_path, "x.csv", "\n".join(lines) + "\n")
    expected = f"{path}: line 3: high 9.0 is below low 10.0"
    assert error_of(path, chunk_size=100) == expected
    assert error_of(path, chunk_size=2) == expected


def test_error_in_a_later_chunk_comes_after_the_earlier_bars(tmp_path):
    path = bad_csv(tmp_path, 9, "2020-01-01T00:07:00,16.5,18.0,16.0,bad,70")
    feed = BarFeed(None, path, chunk_size=3)
    assert len(feed.events_until(T0 + 5 * 60)) == 5
    with pytest.raises(DataError, match="line 9, column 'close': bad number 'bad'"):
        feed.events_until(INF)


def test_parquet_problems_are_located_by_row(tmp_path):
    df = frame(5)
    df["datetime"] = pd.to_datetime(df["datetime"])
    df.loc[3, "close"] = np.nan
    df.to_parquet(tmp_path / "x.parquet")
    path = tmp_path / "x.parquet"
    assert error_of(path, chunk_size=2) == f"{path}: row 4, column 'close': empty or NaN price"


def test_dataframe_problems_are_located_by_row():
    df = frame(4)
    df.loc[2, "high"] = 5.0
    assert error_of({"X": df}) == "DataFrame #1 (X): row 3: high 5.0 is below low 11.0"


def test_numbers_in_a_datetime_column_are_not_times():
    df = frame(2).assign(datetime=[1577836800.0, 1577836860.0])
    assert error_of({"X": df}) == (
        "DataFrame #1 (X): row 1, column 'datetime': cannot read a time from "
        "'1577836800.0' (numbers are not times)"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone: unknown time zone 'Mars/Olympus'"),
        ({"timeframe": "often"}, "timeframe: 'often' is not a duration such as"),
        ({"chunk_size": 0}, "chunk_size: expected a positive integer, got 0"),
        ({"columns": {"price": "close"}}, "columns: unknown bar column 'price'"),
        ({"start": "yesterday-ish"}, "start: cannot read a time from 'yesterday-ish'"),
        ({"symbols": ["A", "B"]}, "symbols: 2 symbols for 1 inputs"),
    ],
)
def test_bad_options_are_config_errors(tmp_path, kwargs, message):
    path = write(tmp_path, "x.csv", CSV)
    with pytest.raises(ConfigError) as info:
        BarFeed(None, path, **kwargs)
    assert str(info.value).startswith(message)


def test_dataframe_without_symbol_is_refused():
    with pytest.raises(ConfigError, match=r"input #1 is a DataFrame: give its symbol"):
        BarFeed(None, frame(2))


def test_same_symbol_from_two_inputs_is_refused(tmp_path):
    write(tmp_path, "A.csv", CSV)
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub, "A.csv", CSV)
    with pytest.raises(ConfigError, match="symbol 'A' is given by two inputs"):
        BarFeed(None, [tmp_path / "A.csv", sub / "A.csv"])
