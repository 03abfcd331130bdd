"""Strategy.history / Strategy.bars: right windows across symbols, views, bounds, errors."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pytest

from finchan.errors import ConfigError
from finchan.trade import Strategy, backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.bar import Bar
from finchan.trade.history import BarHistory


def _frames() -> dict[str, Any]:
    """Three symbols with different gaps, so their bars interleave unevenly."""
    frames = {}
    for k, (symbol, keep_every) in enumerate([("AAA", 1), ("BBB", 3), ("CCC", 7)]):
        frame = make_bars(2_000, seed=10 + k)
        rng = np.random.default_rng(k)
        kept = (np.arange(2_000) % keep_every == 0) & (rng.uniform(size=2_000) > 0.1)
        frames[symbol] = frame[kept].reset_index(drop=True)
    return frames


def _stamps(frame: Any) -> np.ndarray:
    return np.array([datetime.fromisoformat(s + "+00:00").timestamp() for s in frame["datetime"]])


class Probe(Strategy):
    """Checks every window against the data, for every symbol, on every bar."""

    params = {"n": 25}
    history_bars = 40
    expected: dict[str, Any] = {}
    checked = 0

    def on_bar(self, bar: Any) -> None:
        n = self.params.n
        for symbol, (stamps, frame) in self.expected.items():
            # the bars of `symbol` up to now; the current symbol's bar is included
            upto = int(np.searchsorted(stamps, bar.timestamp, side="left"))
            # a bar at the same time is delivered already if its symbol comes
            # first in the data (or is this bar)
            order = list(self.expected)
            if stamps[upto : upto + 1].tolist() == [bar.timestamp] and (
                order.index(symbol) <= order.index(bar.symbol)
            ):
                upto += 1
            lo = max(0, upto - n)
            got = self.history(symbol, n)
            np.testing.assert_array_equal(got, frame["close"].to_numpy()[lo:upto])
            window = self.bars(symbol, n)
            assert len(window) == upto - lo
            np.testing.assert_array_equal(window.timestamp, stamps[lo:upto])
            np.testing.assert_array_equal(window.high, frame["high"].to_numpy()[lo:upto])
            np.testing.assert_array_equal(
                self.history(symbol, 3, field="volume"),
                frame["volume"].to_numpy(float)[max(0, upto - 3) : upto],
            )
            type(self).checked += 1
        assert self.history(bar.symbol, 1)[-1] == bar.close


def test_history_returns_the_right_windows_across_symbol_interleavings() -> None:
    frames = _frames()
    Probe.expected = {s: (_stamps(f), f) for s, f in frames.items()}
    Probe.checked = 0
    backtest(Probe, frames, report=False)
    bars = sum(len(f) for f in frames.values())
    assert Probe.checked == 3 * bars


def test_windows_are_read_only_views_and_the_rings_do_not_grow() -> None:
    history = BarHistory(4)
    for t in range(10):
        history.record(Bar(None, "X", 60.0 * t, t, t + 1.0, t - 1.0, float(t), 5.0))
    size = history.nbytes
    first = history.window("X", 4)
    assert first.tolist() == [6.0, 7.0, 8.0, 9.0]
    assert not first.flags.writeable and not first.flags.owndata
    for t in range(10, 1_000):
        history.record(Bar(None, "X", 60.0 * t, t, t, t, float(t), 5.0))
    assert history.nbytes == size == 2 * 4 * 6 * 8
    again = history.window("X", 4)
    assert again.tolist() == [996.0, 997.0, 998.0, 999.0]
    assert np.shares_memory(again, history.window("X", 2))
    with pytest.raises(ValueError, match="read-only"):
        again[0] = 1.0


def test_fewer_bars_than_asked_give_a_shorter_window_and_growing_keeps_them() -> None:
    history = BarHistory(3)
    assert history.window("X", 3).shape == (0,)
    for t in range(2):
        history.record(Bar(None, "X", 60.0 * t, 1.0, 1.0, 1.0, 10.0 + t, 1.0))
    assert history.window("X", 3).tolist() == [10.0, 11.0]
    for t in range(2, 5):
        history.record(Bar(None, "X", 60.0 * t, 1.0, 1.0, 1.0, 10.0 + t, 1.0))
    history.grow(6)
    assert history.window("X", 6).tolist() == [12.0, 13.0, 14.0]
    for t in range(5, 9):
        history.record(Bar(None, "X", 60.0 * t, 1.0, 1.0, 1.0, 10.0 + t, 1.0))
    assert history.window("X", 6).tolist() == [13.0, 14.0, 15.0, 16.0, 17.0, 18.0]


class _Asks(Strategy):
    ask: dict[str, Any] = {}
    error: list[BaseException] = []

    def on_start(self) -> None:
        if "keep" in self.ask:
            self.keep_history(self.ask["keep"])

    def on_bar(self, bar: Any) -> None:
        if self.error:
            return
        try:
            self.history(bar.symbol, **self.ask["history"])
        except Exception as exc:
            type(self).error.append(exc)


@pytest.mark.parametrize(
    ("ask", "kind", "message"),
    [
        (
            {"history": {"n": 5}},
            ConfigError,
            r"_Asks.history: no history is kept; set history_bars = N on the strategy class",
        ),
        (
            {"keep": 10, "history": {"n": 11}},
            ConfigError,
            r"history\('SYN', 11\): n=11 is more than the 10 bars kept per symbol; set history_bars = 11",
        ),
        ({"keep": 10, "history": {"n": 0}}, ConfigError, "n must be an integer >= 1, got 0"),
        (
            {"keep": 10, "history": {"n": 5, "field": "closes"}},
            ConfigError,
            r"history\('SYN'\): unknown field 'closes'; one of timestamp, open, high, low, close, volume",
        ),
        (
            {"keep": 10, "history": {"n": 5, "timeframe": "60min"}},
            ConfigError,
            r"^_Asks.history\(timeframe='60min'\): _Asks.timeframes does not list '1h' "
            r"\(it lists: none\); add it there to get its bars and history$",
        ),
        (
            {"keep": 10, "history": {"n": 5, "timeframe": "2D"}},
            ConfigError,
            r"^_Asks.history\(timeframe='2D'\): timeframe '2D': days and weeks resample one "
            r"at a time \(1D\)$",
        ),
    ],
)
def test_history_misuse_raises_one_clear_error(
    ask: dict[str, Any], kind: type[BaseException], message: str
) -> None:
    _Asks.ask = ask
    _Asks.error = []
    backtest(_Asks, {"SYN": make_bars(50)}, report=False)
    assert len(_Asks.error) == 1
    with pytest.raises(kind, match=message):
        raise _Asks.error[0]


class _Counts(Strategy):
    seen: list[int] = []

    def on_start(self) -> None:
        type(self).seen.append(len(self.env.dispatcher.subscribers("bar")))


class _CountsWithHistory(_Counts):
    history_bars = 5


def test_a_strategy_without_history_adds_no_bar_subscriber() -> None:
    _Counts.seen = []
    backtest(_Counts, {"SYN": make_bars(50)}, report=False)
    backtest(_CountsWithHistory, {"SYN": make_bars(50)}, report=False)
    without, with_history = _Counts.seen
    assert with_history == without + 1


class _HistoryCross(Strategy):
    """The reference SMA cross with its means taken from history windows."""

    params = {"fast": 10, "slow": 30, "qty": 100}
    history_bars = 30

    def on_start(self) -> None:
        from finchan.trade.examples import SmaCross

        self.rule = SmaCross.trade_on_cross
        self.symbols: dict[str, Any] = {}

    def on_bar(self, bar: Any) -> None:
        from finchan.trade.examples import _SymbolState

        state = self.symbols.setdefault(bar.symbol, _SymbolState(1, 1))
        slow = self.history(bar.symbol, 30)
        if len(slow) == 30:
            self.rule(self, bar.symbol, state, slow[-10:].sum() / 10 - slow.sum() / 30)


def test_a_strategy_reading_history_trades_like_the_incremental_reference() -> None:
    from finchan.trade.examples import SmaCross

    data = {"AAA": make_bars(3_000, seed=1), "BBB": make_bars(2_000, seed=2)}
    ours = backtest(_HistoryCross, data, report=False).fills
    reference = backtest(SmaCross, data, report=False).fills
    assert len(reference) > 100
    assert ours.equals(reference)


class _TimeframeProbe(Strategy):
    """Checks the history of every (symbol, timeframe) against the resampled bars received."""

    timeframes = ("1h", "1D")
    history_bars = 30
    received: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    checked = 0

    def on_start(self) -> None:
        self.base = 0

    def on_bar(self, bar: Any) -> None:
        received = type(self).received
        if bar.timeframe is not None:
            row = (bar.timestamp, bar.open, bar.high, bar.low, bar.close, bar.volume)
            received.setdefault((bar.symbol, bar.timeframe), []).append(row)
        else:
            self.base += 1
            if self.base % 37:
                return  # every resampled bar is checked, and every 37th base bar
        for symbol in ("AAA", "BBB", "CCC"):
            for label, alias in (("1h", "60min"), ("1D", "1D")):
                want = np.array(received.get((symbol, label), [])[-25:]).reshape(-1, 6)
                window = self.bars(symbol, 25, timeframe=label)
                np.testing.assert_array_equal(np.column_stack(window).reshape(-1, 6), want)
                np.testing.assert_array_equal(
                    self.history(symbol, 4, "close", timeframe=alias), want[-4:, 4]
                )
                type(self).checked += 1
        # the feed's own bars are still the default
        assert self.history(bar.symbol, 1)[-1] == bar.close or bar.timeframe is not None


def test_history_of_each_listed_timeframe_is_its_resampled_bars_across_interleavings() -> None:
    from finchan.trade.data import load_bars
    from finchan.trade.resample import resample_frame

    frames = {}
    for k, (symbol, keep_every) in enumerate([("AAA", 1), ("BBB", 3), ("CCC", 7)]):
        frame = make_bars(4 * 1440, seed=20 + k)
        rng = np.random.default_rng(k)
        kept = (np.arange(4 * 1440) % keep_every == 0) & (rng.uniform(size=4 * 1440) > 0.1)
        frames[symbol] = frame[kept].reset_index(drop=True)
    _TimeframeProbe.received = {}
    _TimeframeProbe.checked = 0
    backtest(_TimeframeProbe, frames, report=False)
    received = _TimeframeProbe.received
    # what the histories were checked against is the resampled data, bar for bar
    loaded = load_bars(frames)
    for label in ("1h", "1D"):
        expected = resample_frame(loaded, label)
        for symbol in ("AAA", "BBB", "CCC"):
            rows = expected[expected["symbol"] == symbol]
            got = np.array(received[(symbol, label)])[:, 1:]
            want = rows[["open", "high", "low", "close", "volume"]].to_numpy(float)
            np.testing.assert_array_equal(got, want)
    assert [len(received[(s, "1D")]) for s in ("AAA", "BBB", "CCC")] == [4, 4, 4]
    assert len(received[("AAA", "1h")]) == 96
    hourly = sum(len(received[(s, "1h")]) for s in ("AAA", "BBB", "CCC"))
    base = sum(len(f) for f in frames.values())
    assert _TimeframeProbe.checked == 6 * (hourly + 12 + base // 37)


class _Grows(Strategy):
    timeframes = ("1D",)
    seen: list[list[float]] = []

    def on_start(self) -> None:
        self.keep_history(2)
        self.keep_history(5)  # grows the timeframes' histories too

    def on_stop(self) -> None:
        type(self).seen = [
            self.history("SYN", 5, timeframe="1D").tolist(),
            self.history("SYN", 5, "open", timeframe="1D").tolist(),
        ]


def test_keep_history_in_on_start_keeps_the_timeframes_too() -> None:
    from finchan.trade.data import load_bars
    from finchan.trade.resample import resample_frame

    bars = make_bars(6 * 1440)
    backtest(_Grows, {"SYN": bars}, report=False)
    daily = resample_frame(load_bars({"SYN": bars}), "1D")
    assert _Grows.seen == [daily["close"].tolist()[-5:], daily["open"].tolist()[-5:]]
