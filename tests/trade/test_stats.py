"""finchan.trade.stats: hand-computed statistics and parity with empyrical."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from finchan.errors import ConfigError, DataError
from finchan.trade.stats import STATS_KEYS, compute_stats, infer_periods_per_year


def _curve(values: list[float], freq: str = "1D", start: str = "2024-01-01") -> pd.Series:
    index = pd.date_range(start, periods=len(values), freq=freq, tz="UTC")
    return pd.Series(values, index=index, dtype=float)


def _trades(pnl: list[float], **columns: list) -> pd.DataFrame:
    return pd.DataFrame({"pnl": pnl, **columns})


# --- hand-computed cases ------------------------------------------------------


def test_daily_curve_statistics_match_hand_computed_values() -> None:
    # returns +10 %, -10 %, +20 %, 0 %
    stats = compute_stats(_curve([100.0, 110.0, 99.0, 118.8, 118.8]))
    assert list(stats) == list(STATS_KEYS)
    assert stats["start"] == "2024-01-01T00:00:00+00:00"
    assert stats["end"] == "2024-01-05T00:00:00+00:00"
    assert stats["duration_s"] == 4 * 86400.0
    assert stats["bars"] == 5
    assert stats["periods_per_year"] == 252.0
    assert stats["risk_free_rate"] == 0.0
    assert stats["start_equity"] == 100.0 and stats["final_equity"] == 118.8
    assert stats["total_return"] == pytest.approx(0.188, rel=1e-12)
    cagr = 1.188 ** (252 / 4) - 1
    assert stats["cagr"] == pytest.approx(cagr, rel=1e-12)
    # mean 0.05, sample variance (0.05^2 + 0.15^2 + 0.15^2 + 0.05^2) / 3
    std = math.sqrt(0.05 / 3)
    assert stats["annual_volatility"] == pytest.approx(std * math.sqrt(252), rel=1e-12)
    assert stats["sharpe"] == pytest.approx(0.05 / std * math.sqrt(252), rel=1e-12)
    # downside deviation sqrt(mean([0, 0.01, 0, 0])) = 0.05 = the mean
    assert stats["sortino"] == pytest.approx(math.sqrt(252), rel=1e-12)
    assert stats["max_drawdown"] == pytest.approx(-0.1, rel=1e-12)
    assert stats["calmar"] == pytest.approx(cagr / 0.1, rel=1e-12)
    # peak on Jan 2, back above it on Jan 4
    assert stats["max_drawdown_duration_s"] == 2 * 86400.0
    assert stats["max_drawdown_bars"] == 2
    assert math.isnan(stats["exposure"])
    assert stats["trades"] == 0
    assert all(math.isnan(stats[k]) for k in STATS_KEYS[STATS_KEYS.index("win_rate") :])


def test_an_unrecovered_drawdown_lasts_until_the_last_bar() -> None:
    stats = compute_stats(_curve([100.0, 120.0, 90.0, 100.0], freq="1h"))
    assert stats["max_drawdown"] == pytest.approx(-0.25, rel=1e-12)
    assert stats["max_drawdown_bars"] == 2
    assert stats["max_drawdown_duration_s"] == 2 * 3600.0


def test_longest_drawdown_is_measured_separately_from_the_deepest() -> None:
    # a deep short drawdown (bars 1-3), then a shallow long one (bars 3-8)
    values = [100.0, 110.0, 55.0, 111.0, 110.0, 109.0, 110.5, 110.9, 112.0]
    stats = compute_stats(_curve(values, freq="1min"))
    assert stats["max_drawdown"] == pytest.approx(-0.5, rel=1e-12)
    assert stats["max_drawdown_bars"] == 5
    assert stats["max_drawdown_duration_s"] == 300.0


def test_unevenly_spaced_bars_give_drawdown_time_and_bars_from_the_index() -> None:
    index = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 00:01", "2024-01-01 03:00", "2024-01-01 03:01"],
        tz="UTC",
    )
    stats = compute_stats(pd.Series([100.0, 90.0, 95.0, 101.0], index=index))
    assert stats["max_drawdown_bars"] == 3
    assert stats["max_drawdown_duration_s"] == 3 * 3600.0 + 60.0


def test_trade_statistics_match_hand_computed_values() -> None:
    trades = _trades([10.0, -5.0, 20.0, 0.0, -15.0], commission=[1.0, 1.0, 0.5, 0.25, 0.25])
    stats = compute_stats(_curve([100.0, 101.0, 102.0]), trades, exposure=None)
    assert stats["trades"] == 5
    assert stats["win_rate"] == 0.4  # a zero-pnl trade is neither a win nor a loss
    assert stats["gross_profit"] == 30.0
    assert stats["gross_loss"] == -20.0
    assert stats["profit_factor"] == 1.5
    assert stats["avg_win"] == 15.0
    assert stats["avg_loss"] == -10.0
    assert stats["best_trade"] == 20.0
    assert stats["worst_trade"] == -15.0
    assert stats["avg_trade"] == 2.0
    assert stats["total_commission"] == 3.0


def test_no_losing_trade_gives_nan_profit_factor_and_nan_average_loss() -> None:
    stats = compute_stats(_curve([100.0, 101.0]), _trades([1.0, 2.0]))
    assert math.isnan(stats["exposure"])  # no entry_time / exit_time columns
    assert stats["win_rate"] == 1.0
    assert math.isnan(stats["profit_factor"]) and math.isnan(stats["avg_loss"])
    assert stats["gross_loss"] == 0.0
    assert math.isnan(stats["total_commission"])  # no commission column


def test_an_empty_trades_frame_counts_zero_trades_and_zero_exposure() -> None:
    empty = pd.DataFrame(columns=["pnl", "entry_time", "exit_time", "commission"])
    stats = compute_stats(_curve([100.0, 101.0]), empty)
    assert stats["trades"] == 0 and stats["exposure"] == 0.0
    assert stats["gross_profit"] == 0.0 and stats["total_commission"] == 0.0
    assert math.isnan(stats["win_rate"]) and math.isnan(stats["avg_trade"])


def test_exposure_from_trades_counts_bars_from_entry_to_before_exit() -> None:
    equity = _curve([100.0] * 10, freq="1min")
    t = equity.index
    trades = _trades(
        [1.0, -1.0, 2.0],
        entry_time=[t[2], t[3], t[7]],  # the first two overlap: bars 2-4 once
        exit_time=[t[5], t[4], t[8]],
    )
    assert compute_stats(equity, trades)["exposure"] == pytest.approx(0.4)


def test_exposure_from_a_position_series_or_a_boolean_series() -> None:
    equity = _curve([100.0, 101.0, 99.0, 100.0])
    size = pd.Series([0.0, 100.0, -50.0, 0.0], index=equity.index)
    assert compute_stats(equity, exposure=size)["exposure"] == 0.5
    flags = pd.Series([True, True, True, False], index=equity.index)
    assert compute_stats(equity, exposure=flags)["exposure"] == 0.75


def test_a_flat_curve_has_zero_volatility_and_undefined_ratios() -> None:
    stats = compute_stats(_curve([100.0] * 6))
    assert stats["annual_volatility"] == 0.0
    assert stats["max_drawdown"] == 0.0 and stats["max_drawdown_bars"] == 0
    assert stats["max_drawdown_duration_s"] == 0.0
    for key in ("sharpe", "sortino", "calmar"):
        assert math.isnan(stats[key]), key
    assert stats["cagr"] == 0.0 and stats["total_return"] == 0.0


def test_a_single_bar_gives_nan_for_everything_needing_returns() -> None:
    stats = compute_stats(_curve([50.0]))
    assert stats["bars"] == 1 and stats["duration_s"] == 0.0
    assert stats["total_return"] == 0.0 and stats["max_drawdown"] == 0.0
    for key in ("periods_per_year", "cagr", "annual_volatility", "sharpe", "sortino", "calmar"):
        assert math.isnan(stats[key]), key


def test_an_equity_falling_to_zero_has_cagr_minus_one() -> None:
    stats = compute_stats(_curve([100.0, 50.0, 0.0]))
    assert stats["cagr"] == -1.0 and stats["max_drawdown"] == -1.0
    assert math.isnan(stats["sharpe"])  # returns after a zero equity are undefined


def test_risk_free_rate_is_annual_and_compounded_per_bar() -> None:
    equity = _curve([100.0, 101.0, 100.5, 102.0, 101.0], freq="7D")
    stats = compute_stats(equity, risk_free_rate=0.04)
    assert stats["periods_per_year"] == 52.0
    r = equity.pct_change().dropna().to_numpy() - (1.04 ** (1 / 52) - 1)
    assert stats["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(52), rel=1e-12)


def test_naive_and_non_utc_indexes_are_reported_in_utc() -> None:
    naive = pd.Series([1.0, 2.0], index=pd.date_range("2024-03-01", periods=2, freq="1h"))
    assert compute_stats(naive)["start"] == "2024-03-01T00:00:00+00:00"
    paris = naive.tz_localize("Europe/Paris")
    assert compute_stats(paris)["start"] == "2024-02-29T23:00:00+00:00"


def test_result_is_json_serialisable_with_plain_python_types() -> None:
    trades = _trades([1.0, -2.0], commission=[0.1, 0.1])
    stats = compute_stats(_curve([100.0, 102.0, 101.0, 103.0]), trades)
    assert all(type(v) in (int, float, str) for v in stats.values())
    assert json.loads(json.dumps(stats))["bars"] == 4
    assert not any(isinstance(v, float) and math.isinf(v) for v in stats.values())


# --- periods per year ---------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (pd.bdate_range("2024-01-01", periods=30, tz="UTC"), 252.0),
        (pd.date_range("2024-01-01", periods=30, freq="1D", tz="UTC"), 252.0),
        (pd.date_range("2024-01-01", periods=30, freq="W-FRI", tz="UTC"), 52.0),
        (pd.date_range("2024-01-01", periods=30, freq="ME", tz="UTC"), 12.0),
        (pd.date_range("2024-01-01", periods=9, freq="QE", tz="UTC"), 4.0),
        (pd.date_range("2024-01-01", periods=5, freq="YE", tz="UTC"), 1.0),
        (pd.date_range("2024-01-01", periods=30, freq="1min", tz="UTC"), 525_960.0),
        (pd.date_range("2024-01-01", periods=30, freq="1h", tz="UTC"), 8766.0),
        (pd.date_range("2024-01-01", periods=30, freq="2D", tz="UTC"), 365.25 / 2),
    ],
)
def test_periods_per_year_follow_the_median_bar_spacing(
    index: pd.DatetimeIndex, expected: float
) -> None:
    assert infer_periods_per_year(index) == pytest.approx(expected, rel=1e-12)


def test_periods_per_year_override_wins_over_inference() -> None:
    stats = compute_stats(_curve([100.0, 101.0, 100.0], freq="1min"), periods_per_year=252 * 390)
    assert stats["periods_per_year"] == 98_280.0


# --- parity with empyrical ----------------------------------------------------


@pytest.mark.parametrize("freq", ["1D", "1h", "1min", "W-FRI"])
@pytest.mark.parametrize("risk_free_rate", [0.0, 0.03])
def test_ratios_match_empyrical_with_the_same_annualisation(
    freq: str, risk_free_rate: float
) -> None:
    ep = pytest.importorskip("empyrical")
    rng = np.random.default_rng(17)
    values = 1e6 * np.cumprod(1.0 + rng.normal(0.0004, 0.01, 400))
    equity = _curve(values.tolist(), freq=freq)
    stats = compute_stats(equity, risk_free_rate=risk_free_rate)

    ppy = stats["periods_per_year"]
    returns = equity.pct_change().dropna()
    # empyrical takes a risk-free return per period, finchan an annual rate
    rf_bar = (1.0 + risk_free_rate) ** (1.0 / ppy) - 1.0
    theirs = {
        "sharpe": ep.sharpe_ratio(returns, risk_free=rf_bar, annualization=ppy),
        "sortino": ep.sortino_ratio(returns, required_return=rf_bar, annualization=ppy),
        "max_drawdown": ep.max_drawdown(returns),
        "cagr": ep.annual_return(returns, annualization=ppy),
        "annual_volatility": ep.annual_volatility(returns, annualization=ppy),
        "calmar": ep.calmar_ratio(returns, annualization=ppy),
    }
    for key, value in theirs.items():
        assert stats[key] == pytest.approx(float(value), rel=1e-9), key


def test_where_empyrical_returns_infinity_finchan_returns_nan() -> None:
    ep = pytest.importorskip("empyrical")
    rising = _curve([100.0 * 1.01**i for i in range(20)])
    returns = rising.pct_change().dropna()
    stats = compute_stats(rising)
    assert math.isinf(ep.sortino_ratio(returns, annualization=252))
    assert math.isnan(stats["sortino"])
    assert math.isnan(ep.calmar_ratio(returns, annualization=252))
    assert math.isnan(stats["calmar"])
    assert stats["cagr"] == pytest.approx(ep.annual_return(returns, annualization=252))


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("equity", "message"),
    [
        ([1.0, 2.0], "equity: expected a pandas Series, got list"),
        (pd.Series([], dtype=float), "equity: the series is empty"),
        (pd.Series([1.0, 2.0]), "equity: index must be datetimes, got RangeIndex"),
        (
            pd.Series(
                [1.0, 2.0, 3.0],
                index=pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-01"]),
            ),
            "equity: index not strictly increasing at 2024-01-01T00:00:00",
        ),
        (_curve([1.0, float("nan")]), "equity: value nan at 2024-01-02T00:00:00"),
    ],
)
def test_malformed_equity_raises_one_line_data_error(equity: object, message: str) -> None:
    with pytest.raises(DataError) as info:
        compute_stats(equity)  # type: ignore[arg-type]
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_trades_without_a_finite_pnl_raise_data_error() -> None:
    equity = _curve([100.0, 101.0])
    with pytest.raises(DataError, match="trades: missing column 'pnl'"):
        compute_stats(equity, pd.DataFrame({"qty": [1]}))
    with pytest.raises(DataError, match="trades: column 'pnl' holds nan at row 1"):
        compute_stats(equity, _trades([1.0, float("nan")]), exposure=equity > 0)


def test_exposure_on_another_index_raises_data_error() -> None:
    equity = _curve([100.0, 101.0, 102.0])
    with pytest.raises(DataError, match="exposure: its index differs from the equity index"):
        compute_stats(equity, exposure=pd.Series([True, False], index=equity.index[:2]))


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_non_positive_periods_per_year_raises_config_error(bad: float) -> None:
    with pytest.raises(ConfigError, match="periods_per_year must be a positive number"):
        compute_stats(_curve([100.0, 101.0]), periods_per_year=bad)


def test_a_cagr_too_large_for_a_float_is_nan_not_infinite() -> None:
    stats = compute_stats(_curve([100.0, 200.0, 400.0], freq="1s"))
    assert math.isnan(stats["cagr"]) and math.isnan(stats["calmar"])
    assert stats["total_return"] == 3.0
