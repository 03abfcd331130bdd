"""Numbers you can trust (issue 10): order API mistakes, open positions, the
benchmark, annualisation, hook errors that keep their cause, a failing hook
that loses nothing with ``on_callback_error: log``, the broker's config forms.
"""

from __future__ import annotations

import logging
import math
import re
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finchan.env import Env
from finchan.errors import CallbackError, ConfigError
from finchan.trade import Strategy, backtest
from finchan.trade.broker import FixedPerOrder, PercentOfValue, PerShare
from finchan.trade.data import BarFeed
from finchan.trade.exts.sim_broker import BrokerOptions, build_commission, build_slippage
from finchan.trade.exts.strategy import print_stats
from finchan_testing import ROOT

HERE = Path(__file__).resolve()

# -- a 10-bar buy and hold, by hand ---------------------------------------------------------

CLOSES = [10.0, 11.0, 12.0, 11.0, 13.0, 14.0, 12.0, 15.0, 16.0, 18.0]
OPENS = [10.0, 10.5, 11.5, 12.0, 11.0, 13.0, 14.0, 12.0, 15.0, 16.0]


def _ten_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "datetime": pd.bdate_range("2024-01-01", periods=10),
            "open": OPENS,
            "high": [max(o, c) + 0.5 for o, c in zip(OPENS, CLOSES, strict=True)],
            "low": [min(o, c) - 0.5 for o, c in zip(OPENS, CLOSES, strict=True)],
            "close": CLOSES,
            "volume": [1_000] * 10,
        }
    )


class BuyAndHold(Strategy):
    params = {"qty": 10.0}

    def on_bar(self, bar):
        if not self.position(bar.symbol) and not self.open_orders():
            self.buy(bar.symbol, self.params.qty)


def _hold(**kwargs):
    return backtest(BuyAndHold, {"X": _ten_bars()}, cash=1_000.0, **kwargs)


def test_buy_and_hold_statistics_by_hand_on_ten_bars():
    result = _hold()
    stats = result.stats
    # bought 10 at bar 1's open, 10.5: cash 895, then 895 + 10 * close
    equity = [1000.0] + [895.0 + 10 * c for c in CLOSES[1:]]
    assert result.equity.tolist() == equity
    assert stats["final_equity"] == 1075.0
    assert stats["total_return"] == pytest.approx(0.075, abs=1e-15)
    # the open position counts: held on bars 1..9 of 10
    assert stats["exposure"] == 0.9
    assert stats["trades"] == 0 and stats["open_trades"] == 1
    assert math.isnan(stats["win_rate"])  # closed trades only
    # buy and hold of the data: 1000 * close / first close
    assert result.benchmark.tolist() == [100.0 * c for c in CLOSES]
    assert stats["benchmark_return"] == pytest.approx(0.8, abs=1e-15)
    assert stats["periods_per_year"] == 252.0
    assert stats["periods_per_year_source"] == "inferred: daily bars, 252 a year"
    assert stats["cagr"] == pytest.approx(1.075 ** (252 / 9) - 1, rel=1e-12)
    assert stats["max_drawdown"] == pytest.approx(1015.0 / 1035.0 - 1, rel=1e-12)
    # Sharpe, alpha and beta from their formulas (docs/statistics.md)
    r = np.diff(equity) / equity[:-1]
    b = np.diff(CLOSES) / CLOSES[:-1]
    assert stats["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252), rel=1e-12)
    beta = float(np.sum((b - b.mean()) * (r - r.mean())) / np.sum((b - b.mean()) ** 2))
    assert stats["beta"] == pytest.approx(beta, rel=1e-12)
    assert stats["alpha"] == pytest.approx((1 + np.mean(r - beta * b)) ** 252 - 1, rel=1e-9)
    # the open round trip, marked at the last close
    (row,) = result.open_trades.itertuples(index=False)
    assert (row.symbol, row.side, row.qty, row.entry_price, row.exit_price) == (
        "X", "LONG", 10.0, 10.5, 18.0,
    )
    assert pd.isna(row.exit_time) and row.entry_time == pd.Timestamp("2024-01-02", tz="UTC")
    assert row.pnl == 75.0 and row.pnl_pct == pytest.approx(75.0 / 105.0, rel=1e-15)
    assert row.bars_held == 9
    assert result.summary()["open_trades"] == 1
    assert result.trades.empty


def test_alpha_and_beta_equal_empyricals():
    ep = pytest.importorskip("empyrical")
    result = _hold(risk_free_rate=0.03)
    stats = result.stats
    returns = result.equity.pct_change().dropna()
    factor = result.benchmark.pct_change().dropna()
    rf = 1.03 ** (1 / 252) - 1
    alpha, beta = ep.alpha_beta(returns, factor, risk_free=rf, annualization=252)
    assert stats["alpha"] == pytest.approx(alpha, rel=1e-9)
    assert stats["beta"] == pytest.approx(beta, rel=1e-9)


def test_sharpe_scales_with_periods_per_year_and_says_it_was_given():
    daily = _hold().stats
    weekly = _hold(periods_per_year=52).stats
    assert weekly["periods_per_year"] == 52.0
    assert weekly["periods_per_year_source"] == "given"
    assert weekly["sharpe"] == pytest.approx(daily["sharpe"] * math.sqrt(52 / 252), rel=1e-12)
    assert weekly["annual_volatility"] == pytest.approx(
        daily["annual_volatility"] * math.sqrt(52 / 252), rel=1e-12
    )
    # a risk-free rate lowers each excess return by the per-bar rate
    with_rf = _hold(periods_per_year=252, risk_free_rate=0.02).stats
    equity = np.array([1000.0] + [895.0 + 10 * c for c in CLOSES[1:]])
    x = np.diff(equity) / equity[:-1] - (1.02 ** (1 / 252) - 1)
    assert with_rf["risk_free_rate"] == 0.02
    assert with_rf["sharpe"] == pytest.approx(x.mean() / x.std(ddof=1) * math.sqrt(252), rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"periods_per_year": 0}, "periods_per_year: must be greater than 0"),
        ({"risk_free_rate": float("nan")}, "risk_free_rate"),
    ],
)
def test_bad_annualisation_is_a_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _hold(**kwargs)


def test_report_and_summary_show_the_benchmark_the_open_trade_and_the_calendar(tmp_path, capsys):
    result = _hold()
    html = result.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert '"name":"buy and hold"' in html
    assert "Buy and hold return" in html and "Open trades" in html
    assert "inferred: daily bars, 252 a year" in html
    assert re.search(r"<td[^>]*>open</td>", html)  # the open trade's exit time
    print_stats(result)
    out = capsys.readouterr().out
    assert re.search(r"periods_per_year\s+│\s+252\.00 \(inferred: daily bars, 252 a year\)", out)
    assert re.search(r"open_trades\s+│\s+1 │", out)
    assert re.search(r"benchmark_return\s+│\s+80\.00 %", out)
    assert re.search(r"exposure\s+│\s+90\.00 %", out)
    saved = result.save(tmp_path / "run", report=False)
    assert (saved / "open_trades.csv").read_text().splitlines()[1].startswith("X,LONG,10.0,")


def test_several_symbols_benchmark_is_equal_weight():
    frame = _ten_bars()
    other = frame.assign(close=[20.0] * 9 + [30.0], open=20.0, high=31.0, low=19.0)
    result = backtest(BuyAndHold, {"X": frame, "Y": other}, cash=1_000.0)
    # half the cash in each: X ends at 1.8, Y at 1.5 times its first close
    assert result.stats["benchmark_return"] == pytest.approx((1.8 + 1.5) / 2 - 1, rel=1e-12)
    assert result.benchmark.iloc[0] == 1_000.0


# -- intraday sessions -------------------------------------------------------------------------


class Idle(Strategy):
    pass


def _minute_bars(days: pd.DatetimeIndex, per_day: int, start: str = "14:30") -> pd.DataFrame:
    times = [
        day + pd.Timedelta(start + ":00") + pd.Timedelta(minutes=m)
        for day in days
        for m in range(per_day)
    ]
    n = len(times)
    close = 100.0 + np.sin(np.arange(n) / 7.0)
    return pd.DataFrame({"datetime": times, "open": close, "high": close + 0.1,
                         "low": close - 0.1, "close": close, "volume": 1_000})


def test_exchange_hours_minute_bars_get_their_sessions_not_a_24_7_calendar():
    frame = _minute_bars(pd.bdate_range("2024-01-02", periods=4), 390)
    stats = backtest(Idle, {"SPY": frame}, data_options={"timeframe": "1min"}).stats
    assert stats["periods_per_year"] == 390 * 252
    assert stats["periods_per_year_source"] == "inferred: 390 bars a day x 252 trading days (weekdays)"


def test_round_the_clock_minute_bars_keep_the_24_7_calendar():
    frame = _minute_bars(pd.date_range("2024-01-01", periods=3), 1440, start="00:00")
    stats = backtest(Idle, {"BTC": frame}, data_options={"timeframe": "1min"}).stats
    assert stats["periods_per_year"] == 1440 * 365.25 == 525_960.0


def test_bars_on_a_single_date_warn_that_the_sessions_cannot_be_seen(caplog):
    frame = _minute_bars(pd.DatetimeIndex(["2024-01-02"]), 390)
    with caplog.at_level(logging.WARNING, logger="finchan.trade.stats"):
        stats = backtest(Idle, {"SPY": frame}, data_options={"timeframe": "1min"}).stats
    assert stats["periods_per_year"] == 525_960.0
    assert stats["periods_per_year_source"] == "inferred: 24/7 calendar (bars on a single date)"
    assert [r.getMessage() for r in caplog.records] == [
        "periods_per_year: bars on a single date cannot show the trading sessions; assumed a "
        "24/7 calendar (525,960 bars a year): pass periods_per_year"
    ]


# -- the order API ----------------------------------------------------------------------------


class UnknownTif(Strategy):
    def on_start(self):
        self.seen = []

    def on_bar(self, bar):
        if not self.seen:
            self.buy(bar.symbol, 1, limit=bar.close, tif="IOC")

    def on_order(self, order):
        self.seen.append((order.status, order.reason))


def test_an_unknown_tif_is_rejected_with_a_reason_not_raised():
    result = backtest(UnknownTif, {"X": _ten_bars()})
    (row,) = result.orders.itertuples(index=False)
    assert (row.status, row.tif) == ("REJECTED", "IOC")
    assert row.reason == "tif must be GTC or DAY, not 'IOC'"
    assert result.fills.empty


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("order_target(bar.symbol, math.nan)", "order_target('X'): qty must be a finite number, not nan"),
        ("order_target_percent(bar.symbol, math.inf)",
         "order_target_percent('X'): pct must be a finite number, not inf"),
        ("buy(bar.symbol, math.nan)", "buy('X'): qty must be a finite number, not nan"),
        ("sell(bar.symbol, 1, limit=math.nan)", "sell('X'): limit must be a finite number, not nan"),
        ("buy(bar.symbol, 1, stop=-math.inf)", "buy('X'): stop must be a finite number, not -inf"),
        ("buy(bar.symbol, '1')", "buy('X'): qty must be a number, not str '1'"),
    ],
)
def test_non_finite_order_numbers_raise_naming_the_call(call, message):
    namespace: dict = {}
    exec(
        "import math\n"
        "from finchan.trade import Strategy\n"
        "class NonFinite(Strategy):\n"
        f"    def on_bar(self, bar):\n        self.{call}\n",
        namespace,
    )
    with pytest.raises(CallbackError) as info:
        backtest(namespace["NonFinite"], {"X": _ten_bars()})
    assert "NonFinite.on_bar failed on event 'bar'" in str(info.value)
    assert str(info.value).endswith(message)
    assert str(info.value.__cause__) == message


# -- hook errors: chained, named --------------------------------------------------------------


class FailsOnFill(Strategy):
    def on_bar(self, bar):
        if not self.position(bar.symbol) and not self.open_orders():
            self.buy(bar.symbol, 1)

    def on_fill(self, fill):
        raise ZeroDivisionError("the user's own bug")


class FailsOnStart(Strategy):
    def on_start(self):
        raise KeyError("missing")


def test_a_hook_error_reaches_backtest_chained_and_named_after_the_hook():
    with pytest.raises(CallbackError) as info:
        backtest(FailsOnFill, {"X": _ten_bars()})
    error = info.value
    assert str(error) == (
        f"callback {__name__}.FailsOnFill.on_fill failed on event 'bar' at "
        "2024-01-02T00:00:00+00:00: ZeroDivisionError: the user's own bug"
    )
    assert "_make_bar_handler" not in str(error) and "SimAccount" not in str(error)
    cause = error.__cause__
    assert isinstance(cause, ZeroDivisionError)
    # the traceback shows the user's file and line
    last = traceback.extract_tb(cause.__traceback__)[-1]
    assert (Path(last.filename), last.name) == (HERE, "on_fill")
    assert last.line == 'raise ZeroDivisionError("the user\'s own bug")'
    assert "The above exception was the direct cause" in "".join(traceback.format_exception(error))


def test_on_start_errors_name_the_hook_not_the_runner():
    with pytest.raises(CallbackError) as info:
        backtest(FailsOnStart, {"X": _ten_bars()})
    assert str(info.value).startswith(f"callback {__name__}.FailsOnStart.on_start failed")
    assert isinstance(info.value.__cause__, KeyError)


# -- on_callback_error: log loses nothing -------------------------------------------------------


class TwoFillsABar(Strategy):
    """Two orders on bar 0, both filled on bar 1; on_fill fails on the first."""

    def on_start(self):
        self.fills = []
        self.orders = []
        self.bars = 0

    def on_bar(self, bar):
        self.bars += 1
        if self.bars == 1:
            self.buy(bar.symbol, 1)
            self.buy(bar.symbol, 2)

    def on_order(self, order):
        self.orders.append((order.id, str(order.status)))

    def on_fill(self, fill):
        self.fills.append(fill.qty)
        if len(self.fills) == 1:
            raise RuntimeError("first fill")


def test_a_failing_on_fill_with_on_callback_error_log_loses_no_notice_and_no_equity_point(caplog):
    env = Env({"dispatcher.backtest": {"on_callback_error": "log"}}, run_mode="backtrack")
    env.quiet = True
    env.dispatcher.register_event_source(BarFeed(env, {"X": _ten_bars()}, timeframe="1D"))
    env.set_ext_options("finchan.exts.sim_broker", {"cash": 1_000.0})
    env.set_ext_options("finchan.exts.strategy",
                        {"class": TwoFillsABar, "save": False, "progress": False})
    env.load_exts("finchan.exts.strategy")
    with caplog.at_level(logging.ERROR, logger="finchan.dispatcher"):
        summary = env.run()
    runner = env.get_ext_obj("finchan.exts.strategy")
    strategy = runner.strategy
    assert summary.callback_errors == 1
    assert [r.getMessage() for r in caplog.records] == [
        f"callback {__name__}.TwoFillsABar.on_fill failed on event 'bar' at "
        "2024-01-02T00:00:00+00:00: RuntimeError: first fill"
    ]
    # the second fill's notices reached the strategy, after the failing first
    assert strategy.fills == [1.0, 2.0]
    assert strategy.orders == [(1, "ACCEPTED"), (2, "ACCEPTED"), (1, "FILLED"), (2, "FILLED")]
    # every bar has its equity point, and the strategy's view is the broker's
    assert len(runner.result.equity) == 10 and strategy.bars == 10
    assert runner.result.equity.iloc[1] == 1_000.0 - 3 * 10.5 + 3 * 11.0
    assert strategy.position("X") == 3.0


# -- the broker's config forms ------------------------------------------------------------------


def _yaml_blocks(path: Path) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M)


def test_the_broker_docs_yaml_examples_are_valid_options():
    from ruamel.yaml import YAML

    blocks = _yaml_blocks(ROOT / "docs" / "broker.md")
    models = []
    for block in blocks:
        config = YAML(typ="safe", pure=True).load(block)
        options = BrokerOptions.model_validate(config["backtrack_exts"]["finchan.exts.sim_broker"])
        models.append((build_commission(options.commission), build_slippage(options.slippage)))
    assert [repr(m) for m in models] == [
        repr((PercentOfValue(0.001), None)),
        repr((PercentOfValue(0.001, minimum=1.0), None)),
        repr((PerShare(0.005, minimum=1.0), None)),
        repr((FixedPerOrder(4.95), None)),
        "(None, BpsSlippage(5.0))",
        "(None, TickSlippage(2.0, 0.01))",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"commission": {"rat": 0.001}},
         "commission: unknown key 'rat' (valid: rate, per_share, fixed, minimum)"),
        ({"slippage": {"bp": 5}}, "slippage: unknown key 'bp' (valid: bps, ticks, tick_size)"),
        ({"commission": {"per_share": 0.01, "fixed": 1.0}},
         "commission: takes exactly one of rate, per_share, fixed (given: per_share, fixed)"),
        ({"commission": {"minimum": 1.0}},
         "commission: takes exactly one of rate, per_share, fixed (given: none)"),
        ({"slippage": {"tick_size": 0.01}},
         "slippage: takes exactly one of bps, ticks (given: none)"),
        ({"commission": {"rate": "x"}}, "commission: rate must be a number >= 0, not 'x'"),
        ({"commission": -1}, "commission: a rate must be a number >= 0, not -1"),
        ({"slippage": {"ticks": 1, "tick_size": 0}},
         "slippage: tick_size must be a number > 0, not 0"),
        ({"slippage": 5}, "slippage: expected a mapping with one of bps, ticks"),
    ],
)
def test_a_wrong_commission_or_slippage_key_names_the_valid_ones(options, message):
    with pytest.raises(ConfigError) as info:
        backtest(BuyAndHold, {"X": _ten_bars()}, **options)
    text = str(info.value)
    assert message in text
    assert "Options" not in text  # no pydantic class name


# -- the broker's rule for orders across symbols at one time -----------------------------------


def _bar(symbol: str, ts: float, price: float = 10.0, volume: float = 100.0):
    from finchan.trade.bar import Bar

    return Bar(None, symbol, ts, price, price, price, price, volume)


def test_orders_of_all_symbols_meet_the_first_bar_of_a_time_once_in_submission_order():
    from finchan.trade.broker import SimBroker
    from finchan.trade.orders import Order

    broker = SimBroker(10_000.0, volume_limit=0.1)  # 10 units a bar
    times = {t: [_bar("A", t), _bar("B", t)] for t in (0.0, 60.0, 120.0)}
    broker.bars_at = lambda ts: times[ts]
    for bar in times[0.0]:
        broker.process_bar(bar)
    broker.submit(Order("B", "BUY", 5))
    broker.submit(Order("A", "BUY", 25))
    notices = broker.process_bar(times[60.0][0])  # A's bar: B's order, older, fills first
    assert [(n.order.id, n.fill.symbol, n.fill.qty, str(n.status)) for n in notices] == [
        (1, "B", 5.0, "FILLED"), (2, "A", 10.0, "PARTIALLY_FILLED"),
    ]
    # an order placed now for B does not meet B's bar of this time, and A's
    # partly filled order is not matched a second time on it
    broker.submit(Order("B", "BUY", 1))
    assert broker.process_bar(times[60.0][1]) == ()
    notices = broker.process_bar(times[120.0][0])
    assert [(n.order.id, n.fill.qty) for n in notices] == [(2, 10.0), (3, 1.0)]
    assert broker.process_bar(times[120.0][1]) == ()
    assert [(f.order_id, f.timestamp) for f in broker.fills] == [
        (1, 60.0), (2, 60.0), (2, 120.0), (3, 120.0),
    ]
