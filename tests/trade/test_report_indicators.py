"""Strategy.plot: series land in the result, indicators.csv and the HTML report."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from finchan.errors import ConfigError
from finchan.trade import Strategy, backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.indicators import RSI, SMA, rsi, sma


class Drawn(Strategy):
    plots = {"rsi": "oscillators"}

    def on_start(self) -> None:
        self.fast = {}
        self.rsi = {}

    def on_bar(self, bar: Any) -> None:
        fast = self.fast.setdefault(bar.symbol, SMA(10))
        osc = self.rsi.setdefault(bar.symbol, RSI(14))
        self.plot("sma10", fast.update(bar.close), symbol=bar.symbol, panel="price")
        self.plot("rsi", osc.update(bar.close), symbol=bar.symbol)
        if bar.symbol == "AAA":
            self.plot("cash", self.cash)


def _run(tmp_path: Path, name: str) -> Any:
    data = {"AAA": make_bars(300, seed=1), "BBB": make_bars(300, seed=2)}
    result = backtest(Drawn, data, report=True)
    result.save(tmp_path / name)
    return result, data


def test_plotted_series_land_in_the_result_with_their_panels(tmp_path: Path) -> None:
    result, data = _run(tmp_path, "a")
    table = result.indicators
    assert list(table.columns) == ["datetime", "name", "symbol", "panel", "value"]
    assert len(table) == 300 * 2 + 300 * 2 + 300
    series = table[(table["name"] == "sma10") & (table["symbol"] == "BBB")]
    assert set(series["panel"]) == {"price"}
    close = data["BBB"]["close"].to_numpy()
    np.testing.assert_allclose(series["value"].to_numpy(), sma(close, 10), rtol=0, atol=1e-9)
    assert math.isnan(series["value"].iloc[0])  # the warm-up is kept in the table
    osc = table[(table["name"] == "rsi") & (table["symbol"] == "AAA")]
    assert set(osc["panel"]) == {"oscillators"}  # from the class's plots mapping
    np.testing.assert_allclose(
        osc["value"].to_numpy(), rsi(data["AAA"]["close"].to_numpy(), 14), rtol=0, atol=1e-9
    )
    assert str(series["datetime"].dt.tz) == "UTC"
    assert series["datetime"].iloc[0] == pd.Timestamp("2020-01-01T00:00:00Z")
    cash = table[table["name"] == "cash"]
    assert set(cash["panel"]) == {"cash"} and set(cash["symbol"]) == {""}
    csv = pd.read_csv(tmp_path / "a" / "indicators.csv")
    assert len(csv) == len(table) and list(csv.columns) == list(table.columns)


def test_the_report_overlays_price_series_and_draws_own_panels(tmp_path: Path) -> None:
    _run(tmp_path, "a")
    _run(tmp_path, "b")
    page = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert page == (tmp_path / "b" / "report.html").read_text(encoding="utf-8")
    prices = page[page.index('<section id="prices">') : page.index('<section id="indicators">')]
    assert prices.count('"name":"sma10"') == 2  # on both symbols' price charts
    assert '"name":"rsi' not in prices
    panels = page[page.index('<section id="indicators">') :]
    panels = panels[: panels.index("</section>")]
    assert re.findall(r'"text":"([^"]+) \(UTC\)"', panels) == ["oscillators", "cash"]
    assert '"name":"rsi AAA"' in panels and '"name":"rsi BBB"' in panels
    # the warm-up NaNs are not drawn: rsi starts at its 15th bar
    first_x = re.search(r'"name":"rsi AAA".*?"x":\["([^"]+)"', panels)
    first_x = first_x or re.search(r'"x":\["([^"]+)"[^]]*\][^}]*"name":"rsi AAA"', panels)
    assert first_x is not None and first_x.group(1) == "2020-01-01T00:14:00"


def test_a_strategy_that_draws_nothing_writes_no_indicator_file(tmp_path: Path) -> None:
    from finchan.trade.examples import SmaCross

    result = backtest(SmaCross, {"SYN": make_bars(300)}, report=True)
    result.save(tmp_path / "run")
    assert result.indicators.empty and not (tmp_path / "run" / "indicators.csv").exists()
    assert '<section id="indicators">' not in (tmp_path / "run" / "report.html").read_text()


class _Bad(Strategy):
    plots = {"x": "osc"}
    call: dict[str, Any] = {}
    errors: list[BaseException] = []

    def on_bar(self, bar: Any) -> None:
        if not self.errors:
            try:
                self.plot(**self.call)
            except Exception as exc:
                type(self).errors.append(exc)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"name": "sma", "value": 1.0, "panel": "price"}, "panel 'price' overlays a symbol's price chart; pass symbol="),
        ({"name": "x", "value": 1.0, "panel": "other"}, r"panel 'other' differs from 'osc' declared in _Bad.plots"),
        ({"name": "y", "value": "high"}, "plot\\('y'\\): value must be a number, got 'high'"),
        ({"name": "", "value": 1.0}, "name must be a non-empty string"),
    ],
)
def test_plot_misuse_raises_one_clear_error(call: dict[str, Any], message: str) -> None:
    _Bad.call = call
    _Bad.errors = []
    backtest(_Bad, {"SYN": make_bars(20)}, report=False)
    with pytest.raises(ConfigError, match=message):
        raise _Bad.errors[0]
