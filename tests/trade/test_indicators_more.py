"""The indicators beyond the first eight: hand values, incremental == vectorised, TA-Lib parity."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from finchan.errors import ConfigError, DataError
from finchan.trade._synthetic import make_bars
from finchan.trade.indicators import (
    ADX,
    ATR,
    CCI,
    EMA,
    MACD,
    OBV,
    ROC,
    RSI,
    SMA,
    VWAP,
    BollingerBands,
    DonchianChannels,
    Highest,
    KeltnerChannels,
    Lowest,
    Momentum,
    ParabolicSAR,
    StdDev,
    Stochastic,
    TALib,
    WilliamsR,
    ZScore,
    adx,
    atr,
    bollinger_bands,
    cci,
    donchian_channels,
    ema,
    highest,
    keltner_channels,
    lowest,
    macd,
    momentum,
    obv,
    parabolic_sar,
    roc,
    rsi,
    sma,
    stddev,
    stochastic,
    vwap,
    williams_r,
    zscore,
)

talib = pytest.importorskip("talib")

N = 10_000


@pytest.fixture(scope="module")
def bars() -> dict[str, np.ndarray]:
    """10,000 generated 1-minute bars (finchan.trade._synthetic, the reference generator)."""
    frame = make_bars(N, seed=5, start="2020-03-05")
    cols = {k: frame[k].to_numpy(dtype=float) for k in ("open", "high", "low", "close", "volume")}
    stamps = np.array([datetime.fromisoformat(s + "+00:00").timestamp() for s in frame["datetime"]])
    cols["ts"] = stamps
    return cols


def _feed(indicator: object, *columns: np.ndarray) -> np.ndarray:
    update = indicator.update  # type: ignore[attr-defined]
    return np.array([update(*row) for row in zip(*(c.tolist() for c in columns))], dtype=float)


def _assert_same(ours: np.ndarray, theirs: np.ndarray, tol: float = 1e-9) -> None:
    """Same warm-up (NaN pattern) and values within ``tol``."""
    a = np.asarray(ours, dtype=float)
    b = np.asarray(theirs, dtype=float)
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    ok = ~np.isnan(a)
    assert ok.sum() > a.shape[0] // 2
    assert np.max(np.abs(a[ok] - b[ok])) <= tol


# --- hand-computed values -----------------------------------------------------


def test_stochastic_k_is_the_close_in_the_range_smoothed_twice() -> None:
    high = [10.0, 12.0, 11.0, 13.0, 12.0]
    low = [8.0, 9.0, 9.0, 10.0, 10.0]
    close = [9.0, 11.0, 10.0, 12.0, 11.0]
    s = Stochastic(3, 2, 1)
    out = [s.update(*bar) for bar in zip(high, low, close)]
    # fast %K from bar 2: (10-8)/(12-8)=50, (12-9)/(13-9)=75, (11-9)/(13-9)=50
    # %K = SMA2: 62.5, 62.5; %D = SMA1 = %K; first value at 3 + 2 + 1 - 3 = 3
    assert all(math.isnan(v) for bar in out[:3] for v in bar)
    assert np.allclose(out[3:], [(62.5, 62.5), (62.5, 62.5)], rtol=0, atol=1e-12)
    k, d = stochastic(high, low, close, 3, 2, 1)
    assert np.allclose(k[3:], [62.5, 62.5], rtol=0, atol=1e-12) and np.isnan(d[:3]).all()


def test_williams_r_is_zero_at_the_high_and_minus_100_at_the_low() -> None:
    w = WilliamsR(2)
    assert math.isnan(w.update(10.0, 8.0, 9.0))
    assert w.update(12.0, 9.0, 12.0) == 0.0
    assert w.update(11.0, 7.0, 7.0) == -100.0
    assert w.update(11.0, 11.0, 11.0) == 0.0  # range 11..7 still; close at the high
    np.testing.assert_array_equal(
        williams_r([10.0, 12.0, 11.0], [8.0, 9.0, 7.0], [9.0, 12.0, 7.0], 2)[1:], [0.0, -100.0]
    )


def test_obv_starts_at_the_first_volume_and_adds_signed_volumes() -> None:
    close = [10.0, 11.0, 11.0, 10.5, 12.0]
    volume = [100.0, 200.0, 300.0, 50.0, 10.0]
    o = OBV()
    assert [o.update(c, v) for c, v in zip(close, volume)] == [100.0, 300.0, 300.0, 250.0, 260.0]
    np.testing.assert_array_equal(obv(close, volume), [100.0, 300.0, 300.0, 250.0, 260.0])


def test_momentum_and_roc_compare_with_the_value_period_bars_ago() -> None:
    xs = [10.0, 11.0, 12.5, 0.0, 15.0]
    m, r = Momentum(2), ROC(2)
    assert [m.update(x) for x in xs][2:] == [2.5, -11.0, 2.5]
    out = [r.update(x) for x in xs]
    assert all(math.isnan(v) for v in out[:2])
    assert out[2] == pytest.approx(25.0, abs=1e-12)
    assert out[3] == -100.0 and out[4] == pytest.approx(20.0, abs=1e-12)
    np.testing.assert_array_equal(momentum(xs, 2)[2:], [2.5, -11.0, 2.5])
    # x / 0: TA-Lib gives 0
    assert roc([0.0, 1.0, 5.0], 1)[1] == 0.0
    zero = ROC(1)
    zero.update(0.0)
    assert zero.update(1.0) == 0.0


def test_stddev_is_the_population_std_and_zscore_is_zero_on_a_flat_window() -> None:
    s = StdDev(4)
    out = [s.update(x) for x in (1.0, 2.0, 3.0, 4.0)]
    assert out[3] == pytest.approx(math.sqrt(1.25), abs=1e-15) and s.mean == 2.5
    z = ZScore(4)
    assert [z.update(x) for x in (1.0, 2.0, 3.0, 4.0)][3] == pytest.approx(1.5 / math.sqrt(1.25))
    flat = ZScore(3)
    assert [flat.update(5.0) for _ in range(4)][2:] == [0.0, 0.0]
    assert zscore([5.0] * 4, 3)[2:].tolist() == [0.0, 0.0]
    assert stddev([1.0, 2.0, 3.0, 4.0], 4)[3] == pytest.approx(math.sqrt(1.25), abs=1e-15)


def test_donchian_channels_hold_the_extremes_and_their_midpoint() -> None:
    d = DonchianChannels(2)
    assert all(math.isnan(v) for v in d.update(10.0, 8.0))
    assert d.update(12.0, 9.0) == (10.0, 12.0, 8.0)
    assert d.update(11.0, 10.0) == (10.5, 12.0, 9.0)
    mid, up, dn = donchian_channels([10.0, 12.0, 11.0], [8.0, 9.0, 10.0], 2)
    assert (mid[2], up[2], dn[2]) == (10.5, 12.0, 9.0)


def test_vwap_resets_at_each_session_start_in_the_session_time_zone() -> None:
    ny = ZoneInfo("America/New_York")
    times = [
        datetime(2024, 3, 8, 9, 29, tzinfo=ny),  # previous day's session
        datetime(2024, 3, 8, 9, 30, tzinfo=ny),  # new session
        datetime(2024, 3, 8, 15, 0, tzinfo=ny),
        datetime(2024, 3, 11, 9, 30, tzinfo=ny),  # after the DST change: new session
    ]
    ts = [t.timestamp() for t in times]
    rows = [(11.0, 9.0, 10.0, 100.0), (21.0, 19.0, 20.0, 100.0), (32.0, 29.0, 29.0, 300.0)]
    rows.append((5.0, 5.0, 5.0, 0.0))
    v = VWAP("09:30", tz="America/New_York")
    out = [v.update(*row, t) for row, t in zip(rows, ts)]
    assert out[0] == 10.0
    assert out[1] == 20.0  # reset at 09:30 local
    assert out[2] == pytest.approx((20.0 * 100 + 30.0 * 300) / 400, abs=1e-12)
    assert math.isnan(out[3])  # new session with no volume yet
    h, lo, c, vol = (np.array(col) for col in zip(*rows))
    _assert_same(vwap(h, lo, c, vol, ts, "09:30", "America/New_York")[:3], out[:3], tol=1e-12)


def test_parabolic_sar_starts_long_and_reverses_on_a_penetration() -> None:
    high = [10.0, 11.0, 12.0, 13.0, 11.0]
    low = [9.0, 10.0, 11.0, 12.0, 9.0]
    p = ParabolicSAR(0.02, 0.2)
    out = [p.update(h, lo) for h, lo in zip(high, low)]
    assert math.isnan(out[0])
    assert out[1] == 9.0  # long: SAR at the first low, EP the second high
    # bar 2: new EP 12, af 0.04: 9 + 0.02 * (11 - 9) = 9.04 output, then 9.04 + .04*(12-9.04)
    assert out[2] == pytest.approx(9.04, abs=1e-12)
    assert out[4] == 13.0 and not p.long  # low 9.0 pierced the SAR: reverse to the EP
    _assert_same(parabolic_sar(high, low), talib.SAR(np.array(high), np.array(low)), tol=1e-12)


# --- incremental == vectorised, TA-Lib warm-up and values on 10,000 bars ------


def _h(b: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    return b["high"], b["low"], b["close"]


# name: (incremental factory, its input columns, vectorised, TA-Lib reference)
_Ref = Callable[[dict[str, np.ndarray]], object]
_PARITY: dict[str, tuple[Callable[[], object], tuple[str, ...], _Ref, _Ref]] = {
    "stochastic": (
        lambda: Stochastic(5, 3, 3),
        ("high", "low", "close"),
        lambda b: np.array(stochastic(*_h(b), 5, 3, 3)).T,
        lambda b: np.array(talib.STOCH(*_h(b), 5, 3, 0, 3, 0)).T,
    ),
    "stochastic_fast": (
        lambda: Stochastic(14, 1, 3),
        ("high", "low", "close"),
        lambda b: np.array(stochastic(*_h(b), 14, 1, 3)).T,
        lambda b: np.array(talib.STOCHF(*_h(b), 14, 3, 0)).T,
    ),
    "adx": (
        lambda: ADX(14),
        ("high", "low", "close"),
        lambda b: np.array(adx(*_h(b), 14)).T,
        lambda b: (
            np.array(
                [talib.ADX(*_h(b), 14), talib.PLUS_DI(*_h(b), 14), talib.MINUS_DI(*_h(b), 14)]
            ).T
        ),
    ),
    "cci": (
        lambda: CCI(20),
        ("high", "low", "close"),
        lambda b: cci(*_h(b), 20),
        lambda b: talib.CCI(*_h(b), 20),
    ),
    "obv": (
        OBV,
        ("close", "volume"),
        lambda b: obv(b["close"], b["volume"]),
        lambda b: talib.OBV(b["close"], b["volume"]),
    ),
    "williams_r": (
        lambda: WilliamsR(14),
        ("high", "low", "close"),
        lambda b: williams_r(*_h(b), 14),
        lambda b: talib.WILLR(*_h(b), 14),
    ),
    "momentum": (
        lambda: Momentum(10),
        ("close",),
        lambda b: momentum(b["close"], 10),
        lambda b: talib.MOM(b["close"], 10),
    ),
    "roc": (
        lambda: ROC(12),
        ("close",),
        lambda b: roc(b["close"], 12),
        lambda b: talib.ROC(b["close"], 12),
    ),
    "stddev": (
        lambda: StdDev(20),
        ("close",),
        lambda b: stddev(b["close"], 20),
        lambda b: talib.STDDEV(b["close"], 20, 1.0),
    ),
    "zscore": (
        lambda: ZScore(30),
        ("close",),
        lambda b: zscore(b["close"], 30),
        lambda b: (b["close"] - talib.SMA(b["close"], 30)) / talib.STDDEV(b["close"], 30, 1.0),
    ),
    "parabolic_sar": (
        lambda: ParabolicSAR(0.02, 0.2),
        ("high", "low"),
        lambda b: parabolic_sar(b["high"], b["low"], 0.02, 0.2),
        lambda b: talib.SAR(b["high"], b["low"], 0.02, 0.2),
    ),
    "donchian": (
        lambda: DonchianChannels(20),
        ("high", "low"),
        lambda b: np.array(donchian_channels(b["high"], b["low"], 20)).T,
        lambda b: (
            np.array(
                [
                    (talib.MAX(b["high"], 20) + talib.MIN(b["low"], 20)) / 2,
                    talib.MAX(b["high"], 20),
                    talib.MIN(b["low"], 20),
                ]
            ).T
        ),
    ),
    "keltner": (
        lambda: KeltnerChannels(20, 2.0, 10),
        ("high", "low", "close"),
        lambda b: np.array(keltner_channels(*_h(b), 20, 2.0, 10)).T,
        lambda b: (
            np.array(
                [
                    talib.EMA(b["close"], 20),
                    talib.EMA(b["close"], 20) + 2.0 * talib.ATR(*_h(b), 10),
                    talib.EMA(b["close"], 20) - 2.0 * talib.ATR(*_h(b), 10),
                ]
            ).T
        ),
    ),
    # the first eight, where TA-Lib defines them as they do (MACD: see below)
    "sma": (
        lambda: SMA(30),
        ("close",),
        lambda b: sma(b["close"], 30),
        lambda b: talib.SMA(b["close"], 30),
    ),
    "ema": (
        lambda: EMA(30),
        ("close",),
        lambda b: ema(b["close"], 30),
        lambda b: talib.EMA(b["close"], 30),
    ),
    "rsi": (
        lambda: RSI(14),
        ("close",),
        lambda b: rsi(b["close"], 14),
        lambda b: talib.RSI(b["close"], 14),
    ),
    "atr": (
        lambda: ATR(14),
        ("high", "low", "close"),
        lambda b: atr(*_h(b), 14),
        lambda b: talib.ATR(*_h(b), 14),
    ),
    "bollinger": (
        lambda: BollingerBands(20, 2.0),
        ("close",),
        lambda b: np.array(bollinger_bands(b["close"], 20, 2.0)).T,
        lambda b: np.array(talib.BBANDS(b["close"], 20, 2.0, 2.0, 0))[[1, 0, 2]].T,
    ),
    "highest": (
        lambda: Highest(20),
        ("high",),
        lambda b: highest(b["high"], 20),
        lambda b: talib.MAX(b["high"], 20),
    ),
    "lowest": (
        lambda: Lowest(20),
        ("low",),
        lambda b: lowest(b["low"], 20),
        lambda b: talib.MIN(b["low"], 20),
    ),
}


@pytest.mark.parametrize("name", sorted(_PARITY))
def test_incremental_vectorised_and_talib_agree_with_talibs_warm_up(
    name: str, bars: dict[str, np.ndarray]
) -> None:
    factory, columns, vectorised, reference = _PARITY[name]
    incremental = _feed(factory(), *(bars[c] for c in columns))
    vector = np.asarray(vectorised(bars))
    theirs = np.asarray(reference(bars))
    _assert_same(incremental, vector)
    _assert_same(vector, theirs)


def test_vwap_incremental_equals_vectorised_across_days_and_a_dst_change(
    bars: dict[str, np.ndarray],
) -> None:
    cols = (bars["high"], bars["low"], bars["close"], bars["volume"], bars["ts"])
    for start, tz in (("00:00", "UTC"), ("09:30", "America/New_York")):
        vec = vwap(*cols, session_start=start, tz=tz)
        _assert_same(_feed(VWAP(start, tz), *cols), vec, tol=1e-9)
        # a session boundary: the value there is that bar's typical price
        local = [datetime.fromtimestamp(t, ZoneInfo(tz)) for t in bars["ts"][:3000].tolist()]
        first = next(i for i, t in enumerate(local) if i and (t.hour, t.minute) == (9, 30))
        if start == "09:30":
            tp = (bars["high"][first] + bars["low"][first] + bars["close"][first]) / 3
            assert vec[first] == pytest.approx(tp, abs=1e-12)


def test_macd_follows_backtrader_and_converges_to_talib_after_its_seed_transient(
    bars: dict[str, np.ndarray],
) -> None:
    # TA-Lib seeds the fast EMA on the `fast` values ending at bar slow - 1 and
    # starts all three lines at slow + signal - 2; finchan's MACD is
    # backtrader's (each EMA seeded on its own first values), so the lines
    # differ by a transient that decays like (1 - 2 / (fast + 1)) ** t
    close = bars["close"]
    ours = macd(close, 12, 26, 9)
    theirs = talib.MACD(close, 12, 26, 9)
    for a, b in zip(ours[1:], theirs[1:]):  # signal and hist share TA-Lib's warm-up
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    for a, b in zip(ours, theirs):
        assert np.max(np.abs(a[200:] - b[200:])) <= 1e-9
    _assert_same(_feed(MACD(12, 26, 9), close), np.array(ours).T)


# --- the TA-Lib bridge ----------------------------------------------------------


def test_talib_bridge_is_exact_for_window_functions(bars: dict[str, np.ndarray]) -> None:
    h, lo, c = _h(bars)
    stoch = TALib("stoch", fastk_period=14)
    assert stoch.exact and stoch.inputs == ("high", "low", "close")
    assert stoch.outputs == ("slowk", "slowd") and stoch.window == stoch.lookback + 1
    got = _feed(stoch, h, lo, c)
    _assert_same(got, np.array(talib.STOCH(h, lo, c, fastk_period=14)).T)
    _assert_same(_feed(TALib("CCI", timeperiod=20), h, lo, c), talib.CCI(h, lo, c, 20))


@pytest.mark.parametrize(
    ("name", "params", "columns"),
    [
        ("RSI", {"timeperiod": 14}, ("close",)),
        ("EMA", {"timeperiod": 30}, ("close",)),
        ("ATR", {"timeperiod": 14}, ("high", "low", "close")),
        ("ADX", {"timeperiod": 14}, ("high", "low", "close")),
        ("MACD", {}, ("close",)),
    ],
)
def test_talib_bridge_default_window_settles_functions_with_memory_to_1e_9(
    name: str, params: dict[str, int], columns: tuple[str, ...], bars: dict[str, np.ndarray]
) -> None:
    bridge = TALib(name, **params)
    assert not bridge.exact and bridge.window == bridge.lookback + 1 + 30 * bridge.lookback
    cols = tuple(bars[c][:3000] for c in columns)
    got = _feed(bridge, *cols)
    ref = getattr(talib, name)(*cols, **params)
    ref = np.array(ref).T if isinstance(ref, tuple) else ref
    _assert_same(got, ref)


def test_talib_bridge_refuses_path_dependent_functions_and_bad_names() -> None:
    with pytest.raises(ConfigError, match=r"TALib\('OBV'\): TA-Lib marks OBV path-dependent"):
        TALib("OBV")
    assert TALib("OBV", window=50).window == 50  # accepted when asked for explicitly
    with pytest.raises(ConfigError, match="TA-Lib has no function 'NOPE'"):
        TALib("NOPE")
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) period; RSI takes timeperiod"):
        TALib("RSI", period=14)
    with pytest.raises(ConfigError, match="window must be an integer >= lookback"):
        TALib("SMA", timeperiod=10, window=5)
    with pytest.raises(DataError, match=r"update takes 3 value\(s\) \(high, low, close\), got 1"):
        TALib("WILLR").update(1.0)


# --- bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Stochastic(5, 0, 3), "slowk must be"),
        (lambda: ADX(0), "period must be"),
        (lambda: CCI(1.5), "period must be"),
        (lambda: VWAP("9h30"), "session_start must be 'HH:MM'"),
        (lambda: VWAP(tz="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (lambda: ParabolicSAR(-0.1), "acceleration and maximum must be >= 0"),
        (lambda: KeltnerChannels(20, 2.0, 0), "atr_period must be"),
    ],
)
def test_bad_parameters_raise_config_error(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def test_arrays_of_different_lengths_raise_data_error() -> None:
    with pytest.raises(DataError, match="cci: high, low and close must have the same length"):
        cci([1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(DataError, match="obv: close and volume must have the same length"):
        obv([1.0, 2.0], [1.0])


def test_either_indicator_module_can_be_imported_first() -> None:
    import subprocess
    import sys

    for first in ("finchan.trade._indicators_more", "finchan.trade.indicators"):
        code = f"import {first}; from finchan.trade.indicators import ADX, SMA, TALib; print(ADX)"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert "finchan.trade._indicators_more.ADX" in done.stdout
