"""Bar files the way users have them, and bad bar data as one-line data errors (issue 10)."""

from __future__ import annotations

import gzip
import logging
import textwrap

import pytest

from finchan.errors import DataError
from finchan.trade import backtest
from finchan.trade.data import load_bars
from finchan.trade.examples import SmaCross
from finchan_testing import run_finchan

YAHOO = (
    "Date,Open,High,Low,Close,Adj Close,Volume\n"
    "2020-01-02,10.0,11.0,9.0,10.0,5.0,300\n"
    "2020-01-03,10.0,12.0,9.5,11.0,5.5,200\n"
    "2020-01-06,11.0,12.0,10.0,12.0,6.0,100\n"
)


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def yahoo_rows(n: int) -> str:
    """A Yahoo-layout daily file with a rising then falling close (some SMA crosses)."""
    import datetime as dt

    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    day = dt.date(2020, 1, 1)
    for i in range(n):
        close = 100 + (i % 40 if (i // 40) % 2 == 0 else 40 - i % 40)
        lines.append(f"{day + dt.timedelta(days=i)},{close},{close + 1},{close - 1},{close},"
                     f"{close / 2},1000")
    return "\n".join(lines) + "\n"


def test_yahoo_layout_reads_with_no_options(tmp_path):
    path = write(tmp_path / "AAPL.csv", YAHOO)
    df = load_bars(path)
    assert df["symbol"].tolist() == ["AAPL"] * 3
    assert df["close"].tolist() == [10.0, 11.0, 12.0]  # Adj Close is not used unless asked
    assert df["volume"].tolist() == [300.0, 200.0, 100.0]
    assert df["datetime"].dt.strftime("%Y-%m-%d").tolist() == [
        "2020-01-02", "2020-01-03", "2020-01-06"]


def test_adjust_ohlc_scales_by_the_close_ratio(tmp_path):
    df = load_bars(write(tmp_path / "AAPL.csv", YAHOO), adjust="ohlc")
    assert df[["open", "high", "low", "close"]].values.tolist() == [
        [5.0, 5.5, 4.5, 5.0], [5.0, 6.0, 4.75, 5.5], [5.5, 6.0, 5.0, 6.0]]
    with pytest.raises(DataError, match=r"B\.csv: adjust='ohlc' needs an 'Adj Close' column"):
        load_bars(write(tmp_path / "B.csv", "date,open,high,low,close\n2020-01-01,1,2,1,1\n"),
                  adjust="ohlc")


@pytest.mark.parametrize(("header", "volume"), [
    ("Datetime,open,high,low,close,Vol", [7.0]),
    ("TIMESTAMP,OPEN,HIGH,LOW,CLOSE,VOLUME", [7.0]),
    ("time,Open,High,Low,Close", [0.0]),
])
def test_column_aliases_ignore_case(tmp_path, header, volume):
    cells = "2020-01-02 09:30,1,2,0.5,1.5" + (",7" if header.count(",") == 5 else "")
    df = load_bars(write(tmp_path / "X.csv", f"{header}\n{cells}\n"))
    assert df["close"].tolist() == [1.5] and df["volume"].tolist() == volume


def test_separate_date_and_time_columns_are_refused(tmp_path):
    path = write(tmp_path / "X.csv", "Date,Time,Open,High,Low,Close\n2020-01-02,09:30,1,2,1,1\n")
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == (
        f"{path}: separate date and time columns (Date, Time): join them into one column, "
        "or map one with columns={'datetime': ...}"
    )


def test_day_first_explicit_format_and_separator(tmp_path):
    path = write(tmp_path / "X.csv", "Date;Open;High;Low;Close\n01/02/2020;1;2;1;1\n"
                 "02/02/2020;1;2;1;1\n")
    days = load_bars(path, sep=";", dayfirst=True)["datetime"].dt.strftime("%Y-%m-%d")
    assert days.tolist() == ["2020-02-01", "2020-02-02"]
    path = write(tmp_path / "Y.csv", "Date,Open,High,Low,Close\n01.02.2020,1,2,1,1\n"
                 "2020-02-02,1,2,1,1\n")
    with pytest.raises(DataError) as info:
        load_bars(path, date_format="%d.%m.%Y")
    assert str(info.value) == (
        f"{path}: line 3, column 'Date': time '2020-02-02' does not match date_format '%d.%m.%Y'"
    )


def test_newest_first_file_is_sorted_with_a_note(tmp_path, caplog):
    rows = YAHOO.splitlines()
    path = write(tmp_path / "AAPL.csv", "\n".join([rows[0], *reversed(rows[1:])]) + "\n")
    with caplog.at_level(logging.WARNING, logger="finchan.trade.data"):
        df = load_bars(path, chunk_size=2)
    assert df["close"].tolist() == [10.0, 11.0, 12.0]
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: rows are newest first: read whole and sorted oldest first"]
    with pytest.raises(DataError, match=r"line 3: time 2020-01-03T00:00:00\+00:00 is before"):
        load_bars(path, sort=False)


@pytest.mark.parametrize(("cell", "message"), [
    ("NaT", "cannot read a time from 'NaT'"),
    ("09:30", "time '09:30' has no date"),
    ("3000-01-01", "time '3000-01-01' is out of range (years 1678 to 2261 only)"),
    ("1500-01-01 10:00", "time '1500-01-01 10:00' is out of range (years 1678 to 2261 only)"),
])
def test_bad_time_cells_are_data_errors(tmp_path, cell, message):
    path = write(tmp_path / "X.csv", f"datetime,open,high,low,close\n2020-01-01,1,2,1,1\n"
                 f"{cell},1,2,1,1\n")
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == f"{path}: line 3, column 'datetime': {message}"


def test_non_positive_prices_are_errors_unless_allowed(tmp_path):
    path = write(tmp_path / "X.csv", "datetime,open,high,low,close\n2020-01-01,1,2,1,1\n"
                 "2020-01-02,-1,2,-2,1\n")
    with pytest.raises(DataError) as info:
        load_bars(path)
    assert str(info.value) == (
        f"{path}: line 3, column 'open': price -1.0 is not positive "
        "(set allow_nonpositive_prices to accept such bars)"
    )
    assert load_bars(path, allow_nonpositive_prices=True)["open"].tolist() == [1.0, -1.0]


def test_yahoo_csv_backtests_with_no_options_in_python_and_config(tmp_path):
    path = write(tmp_path / "SPY.csv", yahoo_rows(200))
    result = backtest(SmaCross, path, params={"fast": 5, "slow": 20, "qty": 10},
                      report=False)
    assert len(result.fills) > 0 and set(result.fills["symbol"]) == {"SPY"}
    config = write(tmp_path / "finchan.yml", textwrap.dedent(f"""
        work_dir: {tmp_path / 'work'}
        enabled_backtest_exts: [finchan.exts.bars, finchan.exts.strategy]
        backtest_exts:
          finchan.exts.bars: {{files: [SPY.csv], timeframe: 1D}}
          finchan.exts.strategy:
            class: finchan.trade.examples:SmaCross
            params: {{fast: 5, slow: 20, qty: 10}}
            report: false
    """))
    cli = run_finchan("-c", str(config))
    assert cli.returncode == 0, cli.stderr
    runs = list((tmp_path / "work" / "runs").iterdir())
    import json

    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["final_equity"] == pytest.approx(result.final_equity)


def test_layout_options_through_the_config_are_checked(tmp_path):
    path = write(tmp_path / "X.csv", "Date;Open;High;Low;Close\n01/02/2020;1;2;1;1\n")
    config = write(tmp_path / "finchan.yml", textwrap.dedent(f"""
        work_dir: {tmp_path / 'work'}
        enabled_backtest_exts: [finchan.exts.bars]
        backtest_exts:
          finchan.exts.bars: {{files: [X.csv], sep: ';', dayfirts: true}}
    """))
    cli = run_finchan("-c", str(config))
    assert cli.returncode == 2
    assert cli.stderr.strip() == (
        f"finchan: error: {config}: backtest_exts.finchan.exts.bars.dayfirts: unknown key "
        "(did you mean 'dayfirst'?)"
    )
    assert path.exists()


def test_corrupt_gzip_is_one_line_exit_2(tmp_path):
    whole = gzip.compress(YAHOO.encode())
    (tmp_path / "AAPL.csv.gz").write_bytes(whole[: len(whole) // 2])
    config = write(tmp_path / "finchan.yml", textwrap.dedent(f"""
        work_dir: {tmp_path / 'work'}
        enabled_backtest_exts: [finchan.exts.bars]
        backtest_exts:
          finchan.exts.bars: {{files: [AAPL.csv.gz]}}
    """))
    cli = run_finchan("-c", str(config))
    assert cli.returncode == 2, cli.stderr
    assert cli.stderr.strip() == (
        f"finchan: error: {tmp_path / 'AAPL.csv.gz'}: cannot read as CSV: "
        "Compressed file ended before the end-of-stream marker was reached"
    )


def test_a_backtest_with_no_bar_warns_naming_both_spans(tmp_path, caplog):
    path = write(tmp_path / "AAPL.csv", YAHOO)
    with caplog.at_level(logging.WARNING, logger="finchan.trade.data"):
        result = backtest(SmaCross, path, start="2021-01-01", end="2021-02-01", report=False)
    assert result.final_equity == 100_000.0
    assert [r.getMessage() for r in caplog.records] == [
        f"BarFeed({path}): no bar in the backtest span 2021-01-01T00:00:00+00:00 to "
        "2021-02-02T00:00:00+00:00; the data spans 2020-01-02T00:00:00+00:00 to "
        "2020-01-06T00:00:00+00:00"
    ]


def test_synthetic_generator_has_a_public_name():
    from finchan.trade import _synthetic, synthetic

    assert _synthetic.make_bars is synthetic.make_bars
    assert len(synthetic.make_bars(5)) == 5
