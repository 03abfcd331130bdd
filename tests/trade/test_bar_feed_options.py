"""BarFeedOptions: the one list of a bar feed's options, shared by BarFeed, load_bars,
backtest() and the finchan.exts.bars extension."""

from __future__ import annotations

import pytest

from finchan.errors import ConfigError
from finchan.trade import backtest
from finchan.trade.data import BarFeed, BarFeedOptions, load_bars
from finchan.trade.examples import SmaCross
from finchan.trade.exts.bars import BarsOptions
from finchan.trade.synthetic import make_bars


def test_keywords_win_over_the_object_and_given_lists_what_differs():
    base = BarFeedOptions(timeframe="1D", sep=";")
    merged = BarFeedOptions.of(base, sep=",", timezone="Europe/Berlin")
    assert (merged.timeframe, merged.sep, merged.timezone) == ("1D", ",", "Europe/Berlin")
    assert merged.given() == {"timezone": "Europe/Berlin", "timeframe": "1D", "sep": ","}
    # a layout option given as None (a config's null) is its default
    assert BarFeedOptions.of({"dayfirst": None}).dayfirst is False


def test_an_unknown_option_is_one_clear_error_for_the_feed_and_load_bars():
    frame = {"SYN": make_bars(3)}
    for call in (lambda: BarFeed(None, frame, timeframes="1D"),
                 lambda: load_bars(frame, {"timeframes": "1D"})):
        with pytest.raises(ConfigError, match=r"^unknown option 'timeframes' \(known: symbols, "):
            call()
    with pytest.raises(ConfigError, match=r"^resample: an option of BarFeed only"):
        load_bars(frame, resample=["1h"])


def test_the_feed_the_frame_and_backtest_read_the_same_options_alike():
    frame = {"SYN": make_bars(600)}
    opts = BarFeedOptions(timeframe="1min", end="2020-01-01 05:00")
    bars = BarFeed(None, frame, opts).events_until(float("inf"))
    whole = load_bars(frame, opts)
    assert len(bars) == len(whole) == 301
    assert [b.close for b in bars] == whole["close"].tolist()
    by_object = backtest(SmaCross, frame, data_options=opts)
    by_mapping = backtest(SmaCross, frame, data_options={"end": "2020-01-01 05:00"})
    assert by_object.fills.equals(by_mapping.fills)
    assert len(by_object.equity) == 301


def test_the_extensions_config_model_has_every_field_but_file_format():
    fields = set(BarsOptions.model_fields)
    assert fields == {"file", "files", "synthetic", "format", "speed"} | (
        set(BarFeedOptions.names()) - {"file_format"}
    )
    with pytest.raises(ValueError, match="chunk_size"):
        BarsOptions.model_validate({"chunk_size": 0})
    with pytest.raises(ValueError, match="adjust"):
        BarsOptions.model_validate({"adjust": "all"})
