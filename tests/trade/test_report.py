"""finchan.trade.report: the downsampler, the page's content, determinism, a real browser."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from finchan.errors import ConfigError, DataError
from finchan.trade.report import (
    MAX_FILL_MARKERS,
    MAX_POINTS,
    MAX_SYMBOLS,
    MAX_TRADE_ROWS,
    downsample,
    write_report,
)
from finchan.trade.stats import compute_stats
from finchan_testing import services_required

PLOT_DIV = re.compile(r'<div id="(finchan-[^"]+)" class="plotly-graph-div"')
NOTE = re.compile(r'<p class="note">([^<]*)</p>')


def _walk(n: int, seed: int = 7, freq: str = "1min", start: str = "2024-01-01") -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return pd.Series(100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n))), index=index)


def _fills(close: pd.Series, symbol: str, count: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    at = np.sort(rng.choice(len(close), count, replace=False))
    return pd.DataFrame(
        {
            "datetime": close.index[at],
            "symbol": symbol,
            "side": np.where(np.arange(count) % 2 == 0, "BUY", "SELL"),
            "qty": 10.0,
            "price": close.to_numpy()[at],
            "commission": 1.0,
            "order_id": np.arange(count),
        }
    )


def _trades(fills: pd.DataFrame) -> pd.DataFrame:
    """Round trips pairing each BUY with the following SELL of ``fills``."""
    buys, sells = fills.iloc[::2].reset_index(drop=True), fills.iloc[1::2].reset_index(drop=True)
    n = min(len(buys), len(sells))
    buys, sells = buys.iloc[:n], sells.iloc[:n]
    pnl = (sells["price"] - buys["price"]) * 10.0 - 2.0
    return pd.DataFrame(
        {
            "symbol": buys["symbol"],
            "side": "LONG",
            "qty": 10.0,
            "entry_time": buys["datetime"],
            "exit_time": sells["datetime"],
            "entry_price": buys["price"],
            "exit_price": sells["price"],
            "pnl": pnl,
            "pnl_pct": pnl / (buys["price"] * 10.0),
            "commission": 2.0,
            "bars_held": 3,
        }
    )


def _run(n_bars: int = 3000, symbols: tuple[str, ...] = ("AAA", "BBB"), n_fills: int = 40):
    """Keyword arguments of write_report for a small multi-symbol hourly run."""
    closes = {s: _walk(n_bars, seed=i, freq="1h") for i, s in enumerate(symbols)}
    fills = pd.concat(
        [_fills(close, s, n_fills, seed=i) for i, (s, close) in enumerate(closes.items())],
        ignore_index=True,
    )
    trades = _trades(fills[fills["symbol"] == symbols[0]].reset_index(drop=True))
    equity = _walk(n_bars, seed=99, freq="1h") * 1000.0
    return {
        "equity": equity,
        "fills": fills,
        "trades": trades,
        "stats": compute_stats(equity, trades),
        "prices": closes,
        "meta": {"strategy": "SmaCross", "params": {"fast": 10, "slow": 30}, "run_id": "r-1"},
    }


def _plot_divs(page: str) -> list[str]:
    return PLOT_DIV.findall(page)


# --- the downsampler ----------------------------------------------------------


def test_downsample_keeps_first_min_max_and_last_of_each_bucket_in_time_order() -> None:
    # 20 values, 8 points: 2 buckets of 10
    values = [5.0, 3, 9, 4, 4, 4, 1, 4, 4, 6, 7, 7, 0, 7, 7, 12, 7, 7, 7, 8]
    series = pd.Series(values, index=pd.date_range("2024-01-01", periods=20, freq="1D", tz="UTC"))
    kept = downsample(series, max_points=8)
    assert kept.index.equals(series.index[[0, 2, 6, 9, 10, 12, 15, 19]])
    assert kept.tolist() == [5.0, 9.0, 1.0, 6.0, 7.0, 0.0, 12.0, 8.0]


@pytest.mark.parametrize("n", [5001, 5003, 9999, 10_001, 123_457, 2_000_003])
def test_downsample_output_never_exceeds_max_points(n: int) -> None:
    series = _walk(n, seed=n)
    for max_points in (4, 7, 1000, MAX_POINTS):
        kept = downsample(series, max_points)
        assert 4 <= len(kept) <= max_points


def test_downsample_keeps_global_extremes_endpoints_and_spikes() -> None:
    series = _walk(1_000_000)
    series.iloc[123_456] = 1e6  # a one-bar spike up
    series.iloc[654_321] = -1e6  # and down
    kept = downsample(series, 2000)
    assert len(kept) <= 2000
    assert kept.index.is_monotonic_increasing and kept.index.is_unique
    assert kept.index[0] == series.index[0] and kept.index[-1] == series.index[-1]
    assert kept.max() == 1e6 and kept.idxmax() == series.index[123_456]
    assert kept.min() == -1e6 and kept.idxmin() == series.index[654_321]
    assert (kept == series.loc[kept.index]).all()


def test_downsample_keeps_the_deepest_drawdown_of_the_full_curve() -> None:
    equity = _walk(500_000, seed=11)
    drawdown = equity / equity.cummax() - 1.0
    assert downsample(drawdown, MAX_POINTS).min() == drawdown.min()


def test_downsample_returns_a_short_series_whole_and_drops_nan() -> None:
    series = pd.Series([1.0, np.nan, 3.0, np.inf, 2.0])
    assert downsample(series).tolist() == [1.0, 3.0, 2.0]
    assert downsample(series).index.tolist() == [0, 2, 4]


@pytest.mark.parametrize("bad", [3, 0, 4.5, True])
def test_downsample_refuses_max_points_below_four_or_not_an_integer(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"^downsample: max_points must be an integer >= 4, got "):
        downsample(pd.Series([1.0, 2.0]), bad)


# --- the page ---------------------------------------------------------------------


def test_same_inputs_write_byte_identical_files(tmp_path: Path) -> None:
    run = _run()
    first = write_report(tmp_path / "a.html", **run).read_bytes()
    second = write_report(tmp_path / "b.html", **run).read_bytes()
    assert first == second
    # no uuid div ids: plotly's default would be a random one per figure
    page = first.decode()
    assert _plot_divs(page) == [
        "finchan-equity",
        "finchan-price-1",
        "finchan-price-2",
        "finchan-monthly",
    ]


def test_another_process_with_another_hash_seed_writes_the_same_bytes(tmp_path: Path) -> None:
    run = _run(n_bars=500, n_fills=10)
    pd.to_pickle(run, tmp_path / "run.pkl")
    here = write_report(tmp_path / "here.html", **run).read_bytes()
    script = (
        "import sys, pandas as pd; from finchan.trade.report import write_report; "
        "write_report(sys.argv[2], **pd.read_pickle(sys.argv[1]))"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run.pkl"), str(tmp_path / "there.html")],
        check=True,
        timeout=60,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert (tmp_path / "there.html").read_bytes() == here


def test_plotlyjs_is_embedded_once_and_nothing_is_loaded_from_the_network(tmp_path: Path) -> None:
    import plotly.offline

    page = write_report(tmp_path / "r.html", **_run()).read_text(encoding="utf-8")
    assert page.count(plotly.offline.get_plotlyjs()) == 1
    assert re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page) is None
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")


def test_header_and_statistics_are_formatted(tmp_path: Path) -> None:
    index = pd.date_range("2024-01-01", periods=5, freq="1D", tz="UTC")
    equity = pd.Series([100.0, 110.0, 99.0, 118.8, 118.8], index=index)
    page = write_report(
        tmp_path / "r.html",
        equity=equity,
        fills=pd.DataFrame(),
        trades=pd.DataFrame(),
        stats=compute_stats(equity),
        prices={},
        title="SMA <cross> & co",
        meta={"strategy": "SmaCross", "params": {"fast": 10, "slow": 30}},
    ).read_text(encoding="utf-8")
    assert "<title>SMA &lt;cross&gt; &amp; co</title>" in page
    assert "<h1>SMA &lt;cross&gt; &amp; co</h1>" in page
    assert "<tr><th>strategy</th><td>SmaCross</td></tr>" in page
    assert "<tr><th>params</th><td>fast=10, slow=30</td></tr>" in page

    def cell(label: str) -> str:
        match = re.search(rf"<tr><th>{re.escape(label)}</th><td[^>]*>([^<]*)</td></tr>", page)
        assert match, label
        return match.group(1)

    assert cell("Start") == "2024-01-01 00:00:00"
    assert cell("Duration") == "4d"
    assert cell("Bars") == "5"
    assert cell("Periods per year") == "252"
    assert cell("Final equity") == "118.80"
    assert cell("Total return") == "18.80 %"
    assert cell("Max drawdown") == "-10.00 %"
    assert cell("Longest drawdown") == "2d"
    assert cell("Sortino ratio") == "15.875"  # sqrt(252)
    assert cell("Win rate") == "n/a"  # NaN without trades
    assert cell("Trades") == "0"


def test_monthly_returns_are_month_end_over_previous_month_end(tmp_path: Path) -> None:
    index = pd.DatetimeIndex(
        ["2023-12-15", "2023-12-31", "2024-01-15", "2024-01-31", "2024-03-01"], tz="UTC"
    )
    equity = pd.Series([100.0, 80.0, 120.0, 88.0, 110.0], index=index)
    page = write_report(
        tmp_path / "r.html",
        equity=equity,
        fills=pd.DataFrame(),
        trades=pd.DataFrame(),
        stats=compute_stats(equity),
        prices={},
    ).read_text(encoding="utf-8")
    # Dec 2023: 80/100, Jan 2024: 88/80, no February, Mar 2024: 110/88
    blank = '""'
    dec = ",".join([blank] * 11 + ['"-20.0%"'])
    year_2024 = ",".join(['"10.0%"', blank, '"25.0%"'] + [blank] * 9)
    assert f'"text":[[{dec}],[{year_2024}]]' in page
    assert '"y":["2023","2024"]' in page


def test_empty_inputs_render_a_page_with_notes(tmp_path: Path) -> None:
    equity = pd.Series([1000.0], index=pd.DatetimeIndex(["2024-01-01"], tz="UTC"))
    page = write_report(
        tmp_path / "r.html",
        equity=equity,
        fills=pd.DataFrame(columns=["datetime", "symbol", "side", "qty", "price"]),
        trades=pd.DataFrame(),
        stats=compute_stats(equity),
        prices={},
    ).read_text(encoding="utf-8")
    assert NOTE.findall(page) == [
        "The equity curve has a single point: no returns, no drawdown.",
        "No prices and no fills: nothing to plot.",
        "Monthly returns need at least two equity points.",
        "No trades.",
    ]
    assert _plot_divs(page) == ["finchan-equity"]


def test_an_empty_equity_curve_and_no_stats_still_give_a_page(tmp_path: Path) -> None:
    equity = pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC"))
    close = _walk(50, freq="1h")
    page = write_report(
        tmp_path / "r.html", equity=equity, fills=None, trades=None, stats={}, prices={"X": close}
    ).read_text(encoding="utf-8")
    assert NOTE.findall(page) == [
        "No statistics were given.",
        "The equity curve is empty: nothing to plot.",
        "No fills: the prices are drawn without markers.",
        "Monthly returns need at least two equity points.",
        "No trades.",
    ]
    assert _plot_divs(page) == ["finchan-price-1"]
    assert "X (UTC), no fills" in page


def test_two_million_bar_equity_gives_a_small_file(tmp_path: Path) -> None:
    import plotly.offline

    equity = _walk(2_000_000) * 1000.0
    close = _walk(2_000_000, seed=8)
    fills = _fills(close, "AAA", 200)
    path = write_report(
        tmp_path / "big.html",
        equity=equity,
        fills=fills,
        trades=_trades(fills),
        stats=compute_stats(equity),
        prices={"AAA": close},
    )
    size = path.stat().st_size - len(plotly.offline.get_plotlyjs())
    assert size < 3_000_000
    page = path.read_text(encoding="utf-8")
    assert "of 2,000,000 points drawn" in page
    assert "AAA (UTC), close: " in page and "of 2,000,000 points drawn" in page
    # every drawn x value is one quoted timestamp: equity + drawdown + close + 200 fills
    drawn = len(re.findall(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"', page))
    assert 3 * MAX_POINTS // 2 < drawn <= 3 * MAX_POINTS + 1 + 200


def test_fill_markers_beyond_the_cap_are_subsampled_and_the_title_says_so(
    tmp_path: Path,
) -> None:
    close = _walk(20_000, freq="1min")
    fills = _fills(close, "AAA", MAX_FILL_MARKERS + 1000)
    page = write_report(
        tmp_path / "r.html",
        equity=close * 10.0,
        fills=fills,
        trades=pd.DataFrame(),
        stats={},
        prices={"AAA": close},
    ).read_text(encoding="utf-8")
    assert "AAA (UTC), close: " in page
    assert f"fill markers: {MAX_FILL_MARKERS:,} of {MAX_FILL_MARKERS + 1000:,} drawn" in page


def test_fills_without_a_time_or_a_price_are_left_off_the_chart(tmp_path: Path) -> None:
    close = _walk(10, freq="1h")
    fills = pd.DataFrame(
        {
            "datetime": [close.index[1], pd.NaT, close.index[3], close.index[5]],
            "symbol": "AAA",
            "side": ["buy", "SELL", "SELL", "SELL"],
            "qty": [1.0, 2.0, 3.0, 4.0],
            "price": [1.5, 2.5, np.nan, 3.5],
        }
    )
    page = write_report(
        tmp_path / "r.html", equity=close, fills=fills, trades=None, stats={}, prices={"AAA": close}
    ).read_text(encoding="utf-8")
    times = [t.strftime("%Y-%m-%dT%H:%M:%S") for t in close.index[[1, 5]]]
    assert f'"x":["{times[0]}"]' in page and '"name":"buy"' in page
    assert f'"x":["{times[1]}"]' in page and '"name":"sell"' in page


def test_symbols_beyond_the_cap_are_named_in_a_note(tmp_path: Path) -> None:
    symbols = tuple(f"S{i:02d}" for i in range(MAX_SYMBOLS + 2))
    run = _run(n_bars=200, symbols=symbols, n_fills=4)
    # S09 trades most: it gets a chart; S00 and S01 do not trade and are left out
    run["fills"] = run["fills"][~run["fills"]["symbol"].isin(["S00", "S01"])]
    extra = _fills(run["prices"]["S09"], "S09", 10, seed=5)
    run["fills"] = pd.concat([run["fills"], extra], ignore_index=True)
    page = write_report(tmp_path / "r.html", **run).read_text(encoding="utf-8")
    assert len(_plot_divs(page)) == 1 + MAX_SYMBOLS + 1
    assert f"10 symbols; the {MAX_SYMBOLS} with the most fills are drawn, not drawn: S00, S01." in (
        NOTE.findall(page)
    )
    assert '"text":"S09 (UTC)"' in page


def test_more_trades_than_the_cap_list_the_first_and_last_halves(tmp_path: Path) -> None:
    close = _walk(5000, freq="1h")
    fills = _fills(close, "AAA", 2 * (MAX_TRADE_ROWS + 100))
    trades = _trades(fills)
    assert len(trades) == MAX_TRADE_ROWS + 100
    page = write_report(
        tmp_path / "r.html",
        equity=close,
        fills=fills,
        trades=trades,
        stats={},
        prices={"AAA": close},
    ).read_text(encoding="utf-8")
    table = page[page.index('<table class="trades">') :]
    numbers = [
        int(n.replace(",", "")) for n in re.findall(r'<tr><td class="num">([\d,]+)</td>', table)
    ]
    half = MAX_TRADE_ROWS // 2
    assert numbers == [*range(1, half + 1), *range(100 + half + 1, MAX_TRADE_ROWS + 101)]
    assert "… 100 trades omitted …" in table
    assert (
        f"{MAX_TRADE_ROWS + 100:,} trades: the first and last {half} are listed, 100 omitted."
        in page
    )
    first = trades.iloc[0]
    row = re.search(r'<tr><td class="num">1</td>(.*?)</tr>', table).group(1)
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row)
    assert cells[:5] == [
        "AAA",
        "LONG",
        "10",
        first["entry_time"].strftime("%Y-%m-%d %H:%M:%S"),
        first["exit_time"].strftime("%Y-%m-%d %H:%M:%S"),
    ]
    assert cells[7] == f"{first['pnl']:,.2f}"
    assert cells[8] == f"{first['pnl_pct'] * 100:,.2f} %"


def test_naive_and_other_zone_times_are_shown_in_utc(tmp_path: Path) -> None:
    index = pd.date_range("2024-01-01 09:00", periods=3, freq="1h", tz="Europe/Paris")
    equity = pd.Series([1.0, 2.0, 3.0], index=index)
    trades = pd.DataFrame(
        {"symbol": ["X"], "entry_time": [index[0]], "exit_time": [pd.Timestamp("2024-01-01 10:00")]}
    )
    page = write_report(
        tmp_path / "r.html", equity=equity, fills=None, trades=trades, stats={}, prices={}
    ).read_text(encoding="utf-8")
    assert '"x":["2024-01-01T08:00:00","2024-01-01T09:00:00","2024-01-01T10:00:00"]' in page
    assert "<td>2024-01-01 08:00:00</td><td>2024-01-01 10:00:00</td>" in page


def test_wrong_input_types_and_missing_columns_are_one_line_data_errors(tmp_path: Path) -> None:
    run = _run(n_bars=50, n_fills=4)
    with pytest.raises(DataError, match=r"^equity: expected a pandas Series, got list$"):
        write_report(tmp_path / "r.html", **{**run, "equity": [1.0, 2.0]})
    with pytest.raises(DataError, match=r"^fills: missing column 'price'$"):
        write_report(tmp_path / "r.html", **{**run, "fills": run["fills"].drop(columns="price")})
    with pytest.raises(DataError, match=r"^equity: index must be datetimes, got RangeIndex$"):
        write_report(tmp_path / "r.html", **{**run, "equity": pd.Series([1.0])})
    assert not (tmp_path / "r.html").exists()


# --- a real browser -----------------------------------------------------------------

# Put first in <head>: records uncaught errors, rejected promises and
# console.error on the <html> element, which --dump-dom prints.
_ERROR_COLLECTOR = """<script>
(function () {
  var errors = [];
  var root = document.documentElement;
  function keep(text) { errors.push(String(text)); root.setAttribute("data-js-errors", JSON.stringify(errors)); }
  root.setAttribute("data-js-errors", "[]");
  window.addEventListener("error", function (e) { keep("error: " + e.message); });
  window.addEventListener("unhandledrejection", function (e) { keep("rejection: " + e.reason); });
  var original = console.error;
  console.error = function () { keep("console.error: " + Array.prototype.join.call(arguments, " ")); original.apply(console, arguments); };
  window.addEventListener("load", function () { root.setAttribute("data-loaded", "yes"); });
})();
</script>"""


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.access("/usr/bin/chromium", os.X_OK):
        found = "/usr/bin/chromium"
    if found is None:
        message = "chromium is not installed (Debian: apt-get install chromium)"
        if services_required():
            pytest.fail(f"{message} (FINCHAN_REQUIRE_SERVICES=1 requires it)", pytrace=False)
        pytest.skip(message)
    return found


def _render(chromium: str, report: Path, tmp_path: Path) -> tuple[str, str]:
    """(DOM after rendering, chromium's stderr) of ``report`` with the error collector."""
    page = report.read_text(encoding="utf-8")
    probe = tmp_path / f"probe-{report.name}"
    probe.write_text(page.replace("<head>", "<head>\n" + _ERROR_COLLECTOR, 1), encoding="utf-8")
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'chromium-profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,1000",
            "--virtual-time-budget=10000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def _assert_rendered_without_errors(dom: str, stderr: str, divs: list[str]) -> dict[str, str]:
    """Each plot div's part of the DOM, after checking plotly drew it and no script failed."""
    root = re.search(r"<html[^>]*>", dom).group(0)
    assert 'data-loaded="yes"' in root
    errors = re.search(r'data-js-errors="([^"]*)"', root).group(1)
    assert json.loads(html.unescape(errors)) == []
    console = [line for line in stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "Uncaught" in line or "Error" in line]
    starts = [dom.index(f'<div id="{div}"') for div in divs]
    parts = {}
    for div, start, end in zip(divs, starts, [*starts[1:], len(dom)]):
        parts[div] = dom[start:end]
        assert 'class="main-svg"' in parts[div], f"{div} was not rendered"
    return parts


def test_every_chart_renders_in_headless_chromium_without_errors(
    chromium: str, tmp_path: Path
) -> None:
    run = _run()
    report = write_report(tmp_path / "report.html", **run)
    divs = _plot_divs(report.read_text(encoding="utf-8"))
    assert divs == ["finchan-equity", "finchan-price-1", "finchan-price-2", "finchan-monthly"]
    dom, stderr = _render(chromium, report, tmp_path)
    parts = _assert_rendered_without_errors(dom, stderr, divs)
    assert parts["finchan-equity"].count('class="js-line"') == 2  # equity, drawdown
    for div in ("finchan-price-1", "finchan-price-2"):
        assert 'class="js-line"' in parts[div]
        # one drawn marker per fill: 40 per symbol
        assert len(re.findall(r'class="point plotly-customdata"', parts[div])) == 40
    assert 'class="heatmap-label"' in parts["finchan-monthly"]


def test_a_report_of_empty_inputs_renders_in_headless_chromium(
    chromium: str, tmp_path: Path
) -> None:
    equity = pd.Series([1000.0], index=pd.DatetimeIndex(["2024-01-01"], tz="UTC"))
    report = write_report(
        tmp_path / "empty.html",
        equity=equity,
        fills=pd.DataFrame(),
        trades=pd.DataFrame(),
        stats=compute_stats(equity),
        prices={},
    )
    dom, stderr = _render(chromium, report, tmp_path)
    _assert_rendered_without_errors(dom, stderr, ["finchan-equity"])
    assert "No trades." in dom
