"""Resampling to higher timeframes (finchan.trade.resample) through the engine."""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd
import pytest

from finchan.env import Env
from finchan.errors import ConfigError
from finchan.trade import Strategy, backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.data import BarFeed, load_bars
from finchan.trade.resample import ResampledBar, parse_timeframe, resample_frame, resampled_event


def _minutes(rows: list[tuple[str, float]]) -> pd.DataFrame:
    """Bars at the given open times with the given closes (open = high = low = close)."""
    return pd.DataFrame(
        {
            "datetime": [t for t, _ in rows],
            "open": [c for _, c in rows],
            "high": [c for _, c in rows],
            "low": [c for _, c in rows],
            "close": [c for _, c in rows],
            "volume": [1.0] * len(rows),
        }
    )


class Log(Strategy):
    """Logs every bar it gets: (timeframe or '-', symbol, now, open/close)."""

    timeframes = ("5min", "1D")
    log_rows: list[tuple] = []

    def on_start(self) -> None:
        type(self).log_rows = self.rows = []

    def on_bar(self, bar) -> None:
        self.rows.append((bar.timeframe or "-", bar.symbol, f"{self.now:%d %H:%M}", bar.open,
                          bar.close, bar.volume))


def test_timeframes_parse_to_canonical_labels_and_bad_ones_say_what_is_expected():
    assert [parse_timeframe(t).label for t in ("5min", "60min", "1h", "2h", "1D", "1W")] == [
        "5min", "1h", "1h", "2h", "1D", "1W"]
    assert resampled_event("60min") == "bar.1h"
    for bad, words in (("1d", "unit min, h, D or W"), ("7min", "divide a day"),
                       ("2D", "one at a time"), ("0min", "at least 1"), ("24h", "'1D'")):
        with pytest.raises(ConfigError, match=words):
            parse_timeframe(bad)


def test_a_period_is_delivered_after_the_base_bar_of_its_end_for_every_symbol():
    # A has every minute; B misses 00:04 (the last of the first 5 minutes):
    # the clock reaching 00:05 with A's 00:04 bar closes B's period too
    a = _minutes([(f"2024-01-01 00:{m:02d}", 10.0 + m) for m in range(7)])
    b = _minutes([(f"2024-01-01 00:{m:02d}", 20.0 + m) for m in (0, 1, 2, 3, 5, 6)])
    backtest(Log, {"A": a, "B": b})
    rows = [r for r in Log.log_rows]
    assert rows[8:12] == [
        ("-", "A", "01 00:04", 14.0, 14.0, 1.0),
        ("5min", "A", "01 00:04", 10.0, 14.0, 5.0),
        ("5min", "B", "01 00:04", 20.0, 23.0, 4.0),
        ("-", "A", "01 00:05", 15.0, 15.0, 1.0),
    ]
    # the last open periods come when the data ends, shortest timeframe first
    assert rows[-4:] == [
        ("5min", "A", "01 00:06", 15.0, 16.0, 2.0),
        ("5min", "B", "01 00:06", 25.0, 26.0, 2.0),
        ("1D", "A", "01 00:06", 10.0, 16.0, 7.0),
        ("1D", "B", "01 00:06", 20.0, 26.0, 6.0),
    ]


class DailyBuyer(Strategy):
    """Buys 1 on every daily bar; records the daily bars' times."""

    timeframes = ("1D",)
    days: list = []

    def on_start(self) -> None:
        type(self).days = self.seen = []

    def on_bar(self, bar) -> None:
        if bar.timeframe == "1D":
            assert isinstance(bar, ResampledBar)
            self.seen.append((bar.dt, bar.start, bar.end))
            self.buy(bar.symbol, 1)


def test_an_order_decided_on_a_daily_bar_meets_the_next_base_bar():
    frame = make_bars(3 * 1440 + 2)  # three days and two minutes, UTC
    result = backtest(DailyBuyer, {"SYN": frame})
    times = [pd.Timestamp(t).tz_convert("UTC") for t in result.fills["datetime"]]
    # delivered after 23:59, the order fills at the next day's 00:00 open
    assert [t.strftime("%m-%d %H:%M") for t in times] == ["01-02 00:00", "01-03 00:00",
                                                           "01-04 00:00"]
    assert list(result.fills["price"][:3]) == list(frame["open"].iloc[[1440, 2880, 4320]])
    first_dt, start, end = DailyBuyer.days[0]
    assert first_dt.strftime("%H:%M") == "23:59"
    assert (start, end) == (1577836800.0, 1577836800.0 + 86400)
    assert len(DailyBuyer.days) == 4  # the last day's two minutes come at the end


def test_days_end_at_the_session_end_in_the_feeds_time_zone():
    # New York; an after-hours bar belongs to the next trading day
    frame = _minutes([("2024-03-11 15:59", 1.0), ("2024-03-11 16:30", 2.0),
                      ("2024-03-12 09:30", 3.0), ("2024-03-12 15:59", 4.0)])
    feed = BarFeed(None, {"X": frame}, timezone="America/New_York", session_end="16:00",
                   resample=["1D"])
    days = [b for b in feed.events_until(float("inf")) if b.timeframe]
    assert [(b.open, b.close, b.volume) for b in days] == [(1.0, 1.0, 1.0), (2.0, 4.0, 3.0)]
    ny = dt.timezone(dt.timedelta(hours=-4))  # daylight saving time began on March 10
    assert dt.datetime.fromtimestamp(days[1].end, ny) == dt.datetime(2024, 3, 12, 16, 0, tzinfo=ny)
    # the first day is delivered with its 15:59 bar, the second with its last
    assert [b.dt.astimezone(ny).strftime("%d %H:%M") for b in days] == ["11 15:59", "12 15:59"]
    assert feed.timeframes == ["1D"]


def test_weeks_are_iso_weeks_and_come_with_the_next_weeks_first_bar():
    frame = make_bars(14 * 1440, start="2020-01-06")[::60].reset_index(drop=True)  # hourly samples
    feed = BarFeed(None, {"X": frame}, timeframe="1min", resample=["1W"])
    bars = feed.events_until(float("inf"))
    weeks = [(i, b) for i, b in enumerate(bars) if b.timeframe == "1W"]
    assert [b.volume for _, b in weeks] == [frame["volume"][:168].sum(), frame["volume"][168:].sum()]
    first_index, first = weeks[0]
    assert bars[first_index - 1].dt.strftime("%a %H:%M") == "Mon 00:00"  # the next week's first bar
    assert first.dt.strftime("%Y-%m-%d") == "2020-01-13"


def test_bad_resampling_options_are_one_clear_error():
    frame = make_bars(10)
    cases = [
        ({"resample": ["1d"]}, "unit min, h, D or W"),
        ({"resample": ["1min"]}, "not a whole multiple of the feed's timeframe"),
        ({"resample": ["1h"], "session_end": "16:30"}, "16:30 is not on a 1h boundary"),
        ({"session_end": "4pm"}, "session_end: expected a local time"),
    ]
    for options, words in cases:
        with pytest.raises(ConfigError, match=words):
            BarFeed(None, {"X": frame}, **options)

    class Typo(Strategy):
        timeframes = ("1hour",)

    with pytest.raises(ConfigError, match=r"^Typo.timeframes: timeframe '1hour'"):
        backtest(Typo, {"X": frame})


def test_the_config_route_resamples_for_the_strategy_and_the_bars_extension_option(tmp_path):
    env = Env({
        "work_dir": str(tmp_path),
        "enabled_backtrack_exts": ["finchan.exts.bars", "finchan.exts.strategy"],
        "backtrack_exts": {
            "finchan.exts.bars": {"synthetic": {"n": 3000}, "resample": ["1h"]},
            "finchan.exts.strategy": {"class": Log, "save": False},
        },
    })
    env.load_exts()
    hourly: list[str] = []
    env.dispatcher.subscribe("bar.1h", lambda bar: hourly.append(bar.timeframe))
    env.run()
    feed = env.get_ext_obj("finchan.exts.bars")
    assert feed.timeframes == ["5min", "1h", "1D"]  # the option's and the strategy's
    assert hourly == ["1h"] * 50
    labels = [r[0] for r in Log.log_rows]
    assert (labels.count("-"), labels.count("5min"), labels.count("1D")) == (3000, 600, 3)
    assert "1h" not in labels  # the strategy gets the timeframes it asked for


def test_a_strategy_without_timeframes_leaves_the_feed_untouched():
    feed = BarFeed(None, {"X": make_bars(100)})
    backtest(Strategy, feed)
    assert feed._resampler is None and feed.timeframes == []


def test_same_data_same_resampled_bars_and_fills_byte_for_byte():
    data = {"A": make_bars(5_000), "B": make_bars(5_000, seed=3)}

    def digest() -> tuple[str, str]:
        result = backtest(DailyBuyer, data)
        bars = backtest(Log, data) and Log.log_rows
        return (hashlib.md5(repr(bars).encode()).hexdigest(),
                hashlib.md5(result.fills.to_csv().encode()).hexdigest())

    assert digest() == digest()


def test_the_vectorised_form_gives_the_bars_the_feed_delivers():
    # three symbols of 24-hour minutes with gaps, read in New York time
    data = {}
    for seed, symbol in enumerate(("A", "B", "C")):
        frame = make_bars(20_000, seed=seed)
        data[symbol] = frame.drop(frame.index[seed + 7 :: 13 + seed]).reset_index(drop=True)
    bars = load_bars(data, timezone="America/New_York")
    for timeframe in ("5min", "1h", "1D", "1W"):
        feed = BarFeed(None, data, timezone="America/New_York", session_end="17:00",
                       resample=[timeframe])
        delivered = sorted(
            (b.symbol, b.start, b.end, b.open, b.high, b.low, b.close, b.volume)
            for b in feed.events_until(float("inf")) if b.timeframe
        )
        frame = resample_frame(bars, timeframe, session_end="17:00")
        assert frame.attrs["timeframe"] == timeframe
        assert sorted(
            (r.symbol, r.start.timestamp(), r.end.timestamp(), r.open, r.high, r.low, r.close,
             r.volume)
            for r in frame.itertuples()
        ) == delivered
        assert len(delivered) == {"5min": 12_000, "1h": 1_002, "1D": 45, "1W": 9}[timeframe]


def test_the_hour_repeated_when_daylight_saving_time_ends_is_two_hourly_bars():
    frame = make_bars(3 * 1440, start="2024-11-02")  # UTC minutes over New York's fall back
    frame["datetime"] = pd.to_datetime(frame["datetime"]).dt.tz_localize("UTC")
    feed = BarFeed(None, {"X": frame}, timezone="America/New_York", resample=["1h", "1D"])
    delivered = [b for b in feed.events_until(float("inf")) if b.timeframe]
    hours = [b for b in delivered if b.timeframe == "1h"]
    ny = [dt.datetime.fromtimestamp(b.start, feed._opts.tz).strftime("%d %H:%M%z") for b in hours]
    # the first bar opens at 20:00 on Nov 1 in New York
    assert ny[28:32] == ["03 00:00-0400", "03 01:00-0400", "03 01:00-0500", "03 02:00-0500"]
    assert [b.volume for b in hours[29:31]] == [frame["volume"][1740:1800].sum(),
                                                frame["volume"][1800:1860].sum()]
    days = [b for b in delivered if b.timeframe == "1D"]
    assert days[2].volume == frame["volume"][1680:1680 + 25 * 60].sum()  # Nov 3: 25 hours
    bars = load_bars({"X": frame}, timezone="America/New_York")
    for timeframe in ("1h", "1D"):
        vectorised = resample_frame(bars, timeframe)
        assert vectorised["volume"].tolist() == [b.volume for b in delivered
                                                 if b.timeframe == timeframe]


def test_the_bars_extension_names_itself_in_a_bad_resampling_option():
    from finchan.trade.exts.bars import make_feed

    with pytest.raises(ConfigError) as info:
        make_feed(None, {"synthetic": {"n": 10}, "resample": ["1d"]})
    assert str(info.value).startswith("finchan.exts.bars: timeframe '1d': expected a number")
    with pytest.raises(ConfigError, match=r"^finchan.exts.bars: session_end: expected a local"):
        make_feed(None, {"synthetic": {"n": 10}, "session_end": "late"})
