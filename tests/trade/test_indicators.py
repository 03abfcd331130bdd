"""finchan.trade.indicators: hand values, incremental == vectorised, backtrader parity."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from finchan.errors import ConfigError, DataError
from finchan.trade.indicators import (
    ATR,
    EMA,
    MACD,
    RSI,
    SMA,
    BollingerBands,
    Highest,
    Lowest,
    atr,
    bollinger_bands,
    ema,
    highest,
    lowest,
    macd,
    rsi,
    sma,
)


def _bars(n: int, seed: int = 7, scale: float = 100.0) -> tuple[np.ndarray, ...]:
    """Random OHLC-like arrays with 4-decimal prices, like the reference data."""
    rng = np.random.default_rng(seed)
    close = np.round(scale * np.exp(np.cumsum(rng.normal(0.0, 0.002, n))), 4)
    prev = np.concatenate(([close[0]], close[:-1]))
    high = np.round(np.maximum(prev, close) * (1.0 + rng.uniform(0.0, 0.002, n)), 4)
    low = np.round(np.minimum(prev, close) * (1.0 - rng.uniform(0.0, 0.002, n)), 4)
    return high, low, close


def _feed(indicator: object, *columns: np.ndarray) -> np.ndarray:
    update = indicator.update  # type: ignore[attr-defined]
    return np.array([update(*row) for row in zip(*(c.tolist() for c in columns))], dtype=float)


def _assert_same(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> None:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    assert ok.any()
    assert np.max(np.abs(a[ok] - b[ok])) <= tol


# --- hand-computed values -----------------------------------------------------


def test_sma_is_nan_until_period_values_then_the_window_mean() -> None:
    s = SMA(3)
    out = [s.update(x) for x in (1.0, 2.0, 6.0, 7.0, 2.0)]
    assert math.isnan(out[0]) and math.isnan(out[1])
    assert out[2:] == [3.0, 5.0, 5.0]
    assert s.ready and s.value == 5.0


def test_sma_not_ready_reports_nan_value() -> None:
    s = SMA(2)
    assert not s.ready and math.isnan(s.value)
    s.update(1.0)
    assert not s.ready and math.isnan(s.value)


def test_sma_running_sum_is_resummed_exactly_each_time_the_window_wraps() -> None:
    s = SMA(3)
    for x in (1e20, 1.5, 2.25):
        s.update(x)
    # the running sum lost 1.5 + 2.25 to the outlier; the next wrap re-sums it
    s.update(3.0)
    s.update(0.125)
    assert s.update(7.5) == math.fsum([3.0, 0.125, 7.5]) / 3
    assert s.update(1.75) == math.fsum([0.125, 7.5, 1.75]) / 3


def test_ema_is_seeded_with_the_sma_of_the_first_period_values() -> None:
    e = EMA(3)  # alpha = 0.5
    out = [e.update(x) for x in (1.0, 2.0, 3.0, 5.0, 1.0)]
    assert math.isnan(out[0]) and math.isnan(out[1])
    assert out[2:] == [2.0, 3.5, 2.25]
    np.testing.assert_array_equal(ema([1.0, 2.0, 3.0, 5.0, 1.0], 3)[2:], [2.0, 3.5, 2.25])


def test_ema_accepts_an_explicit_alpha() -> None:
    e = EMA(2, alpha=0.25)
    out = [e.update(x) for x in (4.0, 8.0, 14.0)]
    assert out[1:] == [6.0, 6.0 * 0.75 + 14.0 * 0.25]


def test_rsi_uses_wilder_smoothing_seeded_with_the_mean_move() -> None:
    closes = [10.0, 11.0, 10.0, 12.0, 11.0]
    r = RSI(2)
    out = [r.update(x) for x in closes]
    assert all(math.isnan(v) for v in out[:2])
    # moves +1, -1, +2, -1; seeds up 0.5, down 0.5 -> RSI 50
    # then up = 0.5/2 + 2/2 = 1.25, down = 0.25 -> RS 5 -> 100 - 100/6
    # then up = 0.625, down = 0.625 -> 50
    assert out[2] == 50.0
    assert out[3] == pytest.approx(100.0 - 100.0 / 6.0, abs=1e-12)
    assert out[4] == 50.0
    _assert_same(out, rsi(closes, 2), tol=1e-12)


def test_rsi_is_100_without_down_moves_and_50_on_a_flat_series() -> None:
    assert rsi([1.0, 2.0, 3.0, 4.0], 2)[-1] == 100.0
    assert rsi([5.0, 5.0, 5.0, 5.0], 2)[-1] == 50.0
    r = RSI(2)
    assert [r.update(x) for x in (5.0, 5.0, 5.0)][-1] == 50.0


def test_atr_true_range_uses_the_previous_close_and_wilder_smoothing() -> None:
    high = [10.0, 12.0, 11.0, 15.0]
    low = [9.0, 11.0, 8.0, 14.0]
    close = [9.5, 11.5, 9.0, 14.5]
    # TR from bar 1: max(12, 9.5) - min(11, 9.5) = 2.5; 11.5 - 8 = 3.5;
    # 15 - 9 = 6 (gap above the previous close). ATR(2): seed 3.0, then 4.5
    a = ATR(2)
    out = [a.update(h, lo, c) for h, lo, c in zip(high, low, close)]
    assert math.isnan(out[0]) and math.isnan(out[1])
    assert out[2:] == [3.0, 4.5]
    _assert_same(out, atr(high, low, close, 2), tol=0.0)


def test_bollinger_bands_use_the_population_standard_deviation() -> None:
    b = BollingerBands(4, k=2.0)
    out = [b.update(x) for x in (1.0, 2.0, 3.0, 4.0)]
    mid, upper, lower = out[-1]
    width = 2.0 * math.sqrt(1.25)  # population variance of 1..4 is 1.25
    assert mid == 2.5
    assert upper == pytest.approx(2.5 + width, abs=1e-12)
    assert lower == pytest.approx(2.5 - width, abs=1e-12)
    assert (b.mid, b.upper, b.lower) == out[-1] == b.value
    assert all(math.isnan(v) for v in out[2])
    vmid, vupper, vlower = bollinger_bands([1.0, 2.0, 3.0, 4.0], 4)
    assert (vmid[-1], vupper[-1], vlower[-1]) == pytest.approx(out[-1], abs=1e-12)


def test_macd_signal_starts_after_slow_plus_signal_minus_one_updates() -> None:
    _, _, close = _bars(60)
    m = MACD(3, 6, 4)
    out = np.array([m.update(x) for x in close.tolist()])
    assert np.isnan(out[:5, 0]).all() and not np.isnan(out[5, 0])
    assert np.isnan(out[:8, 1]).all() and not np.isnan(out[8, 1])
    np.testing.assert_array_equal(out[:, 2], out[:, 0] - out[:, 1])
    line = ema(close, 3) - ema(close, 6)
    assert out[8, 1] == pytest.approx(math.fsum(line[5:9].tolist()) / 4, abs=1e-12)


def test_highest_and_lowest_follow_the_window() -> None:
    xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    hi, lo = Highest(3), Lowest(3)
    assert [hi.update(x) for x in xs][2:] == [4.0, 4.0, 5.0, 9.0, 9.0, 9.0]
    assert [lo.update(x) for x in xs][2:] == [1.0, 1.0, 1.0, 1.0, 2.0, 2.0]
    np.testing.assert_array_equal(highest(xs, 3)[2:], [4.0, 4.0, 5.0, 9.0, 9.0, 9.0])
    np.testing.assert_array_equal(lowest(xs, 3)[2:], [1.0, 1.0, 1.0, 1.0, 2.0, 2.0])


@given(
    st.lists(st.integers(-50, 50).map(float), min_size=1, max_size=60),
    st.integers(1, 12),
)
def test_rolling_windows_match_brute_force(xs: list[float], n: int) -> None:
    hi, lo, s = Highest(n), Lowest(n), SMA(n)
    for t, x in enumerate(xs):
        got = (hi.update(x), lo.update(x), s.update(x))
        if t + 1 < n:
            assert all(math.isnan(v) for v in got)
        else:
            window = xs[t + 1 - n : t + 1]
            assert got[0] == max(window) and got[1] == min(window)
            assert got[2] == pytest.approx(sum(window) / n, abs=1e-12)
    expected_hi = [max(xs[t + 1 - n : t + 1]) for t in range(n - 1, len(xs))]
    np.testing.assert_array_equal(highest(xs, n)[n - 1 :], expected_hi)
    expected_lo = [min(xs[t + 1 - n : t + 1]) for t in range(n - 1, len(xs))]
    np.testing.assert_array_equal(lowest(xs, n)[n - 1 :], expected_lo)


def test_vectorised_forms_are_all_nan_when_the_series_is_shorter_than_the_warm_up() -> None:
    xs = [1.0, 2.0]
    for out in (sma(xs, 3), ema(xs, 3), rsi(xs, 2), highest(xs, 3), atr(xs, xs, xs, 2)):
        assert out.shape == (2,) and np.isnan(out).all()
    assert all(np.isnan(a).all() for a in (*bollinger_bands(xs, 3), *macd(xs, 2, 3, 2)))


# --- incremental == vectorised ------------------------------------------------

_CASES: dict[str, tuple[Callable[[], object], Callable[..., object], int]] = {
    # name: (incremental factory, vectorised function, number of input columns)
    "sma10": (lambda: SMA(10), lambda c: sma(c, 10), 1),
    "sma200": (lambda: SMA(200), lambda c: sma(c, 200), 1),
    "ema10": (lambda: EMA(10), lambda c: ema(c, 10), 1),
    "ema50": (lambda: EMA(50), lambda c: ema(c, 50), 1),
    "rsi14": (lambda: RSI(14), lambda c: rsi(c, 14), 1),
    "atr14": (lambda: ATR(14), lambda h, lo, c: atr(h, lo, c, 14), 3),
    "bollinger20": (
        lambda: BollingerBands(20, 2.0),
        lambda c: np.array(bollinger_bands(c, 20, 2.0)).T,
        1,
    ),
    "macd": (lambda: MACD(12, 26, 9), lambda c: np.array(macd(c, 12, 26, 9)).T, 1),
    "highest20": (lambda: Highest(20), lambda c: highest(c, 20), 1),
    "lowest33": (lambda: Lowest(33), lambda c: lowest(c, 33), 1),
}


@pytest.mark.parametrize("name", sorted(_CASES))
@pytest.mark.parametrize("scale", [1.0, 100.0, 50_000.0])
def test_incremental_and_vectorised_forms_agree_on_a_long_random_series(
    name: str, scale: float
) -> None:
    factory, vectorised, columns = _CASES[name]
    high, low, close = _bars(20_000, seed=11, scale=scale)
    inputs = (high, low, close) if columns == 3 else (close,)
    _assert_same(_feed(factory(), *inputs), vectorised(*inputs))


# --- the reference SMA 10/30 cross (shared/data/README.md) --------------------


def _reference_closes(n: int) -> np.ndarray:
    # the close column of shared/data/make_bars.py
    rng = np.random.default_rng(42)
    return np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n))), 4)


def _signs(diff: np.ndarray) -> np.ndarray:
    return np.where(diff > 1e-9, 1, np.where(diff < -1e-9, -1, 0))


def test_sma_cross_signs_match_the_exact_integer_means_on_the_reference_bars() -> None:
    n = 100_000
    close = _reference_closes(n)
    ticks = np.rint(close * 10_000).astype(np.int64)
    csum = np.concatenate(([0], np.cumsum(ticks)))
    t = np.arange(29, n)
    # sign(mean10 - mean30) == sign(3 * sum10 - sum30), in exact integers
    exact = np.sign(3 * (csum[t + 1] - csum[t - 9]) - (csum[t + 1] - csum[t - 29]))

    fast, slow = SMA(10), SMA(30)
    diff = np.array([fast.update(x) - slow.update(x) for x in close.tolist()])
    np.testing.assert_array_equal(_signs(diff[29:]), exact)
    np.testing.assert_array_equal(_signs((sma(close, 10) - sma(close, 30))[29:]), exact)

    fills = []
    last = 0
    long = False
    for i, s in zip(t.tolist(), _signs(diff[29:]).tolist()):
        if s == 0:
            continue
        if last == -1 and s == 1 and not long:
            fills.append((i + 1, "BUY", close[i]))  # next bar's open == this close
            long = True
        elif last == 1 and s == -1 and long:
            fills.append((i + 1, "SELL", close[i]))
            long = False
        last = s
    assert len(fills) == 3872
    assert [(i, side, round(float(p), 4)) for i, side, p in fills[:5]] == [
        (67, "BUY", 100.3811),
        (68, "SELL", 100.3347),
        (130, "BUY", 99.3409),
        (136, "SELL", 98.9601),
        (146, "BUY", 99.1974),
    ]


# --- backtrader 1.9.78 parity -------------------------------------------------


def test_indicators_match_backtrader_values_and_warm_up() -> None:
    bt = pytest.importorskip("backtrader")
    pd = pytest.importorskip("pandas")
    high, low, close = _bars(300, seed=3)
    frame = pd.DataFrame(
        {"open": close, "high": high, "low": low, "close": close, "volume": 1000.0},
        index=pd.date_range("2021-01-01", periods=300, freq="1D"),
    )

    class Probe(bt.Strategy):
        def __init__(self) -> None:
            d = self.data
            self.probe = {
                "sma": bt.ind.SMA(d.close, period=10),
                "ema": bt.ind.EMA(d.close, period=10),
                "rsi": bt.ind.RSI(d.close, period=14, safediv=True),
                "atr": bt.ind.ATR(d, period=14),
                "bb": bt.ind.BollingerBands(d.close, period=20, devfactor=2.0),
                "macd": bt.ind.MACDHisto(d.close, period_me1=12, period_me2=26, period_signal=9),
                "hi": bt.ind.Highest(d.high, period=20),
                "lo": bt.ind.Lowest(d.low, period=20),
            }

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(Probe)
    p = cerebro.run()[0].probe

    def line(ind: object, name: str) -> np.ndarray:
        return np.array(getattr(ind.lines, name).array, dtype=float)  # type: ignore[attr-defined]

    mid, top, bot = bollinger_bands(close, 20, 2.0)
    m_line, m_signal, m_hist = macd(close, 12, 26, 9)
    expected = [
        (line(p["sma"], "sma"), sma(close, 10), _feed(SMA(10), close)),
        (line(p["ema"], "ema"), ema(close, 10), _feed(EMA(10), close)),
        (line(p["rsi"], "rsi"), rsi(close, 14), _feed(RSI(14), close)),
        (line(p["atr"], "atr"), atr(high, low, close, 14), _feed(ATR(14), high, low, close)),
        (line(p["bb"], "mid"), mid, _feed(BollingerBands(20), close)[:, 0]),
        (line(p["bb"], "top"), top, _feed(BollingerBands(20), close)[:, 1]),
        (line(p["bb"], "bot"), bot, _feed(BollingerBands(20), close)[:, 2]),
        (line(p["macd"], "macd"), m_line, _feed(MACD(), close)[:, 0]),
        (line(p["macd"], "signal"), m_signal, _feed(MACD(), close)[:, 1]),
        (line(p["macd"], "histo"), m_hist, _feed(MACD(), close)[:, 2]),
        (line(p["hi"], "highest"), highest(high, 20), _feed(Highest(20), high)),
        (line(p["lo"], "lowest"), lowest(low, 20), _feed(Lowest(20), low)),
    ]
    for theirs, vectorised, incremental in expected:
        _assert_same(vectorised, theirs)
        _assert_same(incremental, theirs)


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: SMA(0),
        lambda: EMA(2.5),
        lambda: EMA(3, alpha=0.0),
        lambda: RSI(True),
        lambda: MACD(12, 0, 9),
        lambda: Highest(-1),
        lambda: sma([1.0, 2.0], 0),
        lambda: ema([1.0, 2.0], 2, alpha=1.5),
    ],
)
def test_bad_period_or_alpha_raises_config_error(make: Callable[[], object]) -> None:
    with pytest.raises(ConfigError, match=r"(period|alpha|slow) must be"):
        make()


def test_two_dimensional_values_raise_data_error() -> None:
    with pytest.raises(DataError, match="sma: values must be 1-D"):
        sma(np.ones((3, 2)), 2)
    with pytest.raises(DataError, match="atr: high, low and close must have the same length"):
        atr([1.0, 2.0], [1.0], [1.0, 2.0], 1)
