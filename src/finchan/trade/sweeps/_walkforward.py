"""Walk-forward windows, the stitched out-of-sample equity, walk-forward efficiency."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from finchan.errors import ConfigError

__all__ = ["WalkForward", "Window", "annualised_log_return", "parse_walk_forward", "stitch"]

_DURATION = re.compile(r"^\s*(\d+)\s*(min|s|h|H|D|d|W|w|M|Y|y)\s*$")
_YEAR_S = 365.25 * 86400.0


@dataclass(frozen=True)
class WalkForward:
    """``train=6M,test=1M[,anchored]``: window lengths and rolling or anchored training."""

    train: str
    test: str
    anchored: bool = False

    def __str__(self) -> str:
        return f"train={self.train},test={self.test}" + (",anchored" if self.anchored else "")


@dataclass(frozen=True)
class Window:
    """One window: train on [train_start, train_end), test on [test_start, test_end)."""

    index: int
    train_start: Any
    train_end: Any
    test_start: Any
    test_end: Any


def _offset(text: str, key: str) -> Any:
    import pandas as pd

    match = _DURATION.match(text)
    if match is None:
        raise ConfigError(
            f"--walk-forward {key}={text}: expected a count and a unit "
            "(s, min, h, D, W, M for months, Y), e.g. 6M"
        )
    n, unit = int(match.group(1)), match.group(2)
    if n <= 0:
        raise ConfigError(f"--walk-forward {key}={text}: the length must be positive")
    if unit == "M":
        return pd.DateOffset(months=n)
    if unit in ("Y", "y"):
        return pd.DateOffset(years=n)
    seconds = {"s": 1, "min": 60, "h": 3600, "H": 3600, "D": 86400, "d": 86400,
               "W": 7 * 86400, "w": 7 * 86400}[unit]
    return pd.Timedelta(seconds=n * seconds)


def parse_walk_forward(spec: str | WalkForward) -> WalkForward:
    """Parse ``train=6M,test=1M[,anchored]`` (rolling unless ``anchored``)."""
    if isinstance(spec, WalkForward):
        _offset(spec.train, "train")
        _offset(spec.test, "test")
        return spec
    parts = [p.strip() for p in str(spec).split(",") if p.strip()]
    values: dict[str, str] = {}
    anchored = False
    for part in parts:
        if part in ("anchored", "rolling"):
            anchored = part == "anchored"
            continue
        key, sep, value = part.partition("=")
        if not sep or key not in ("train", "test") or key in values:
            raise ConfigError(
                f"--walk-forward {spec}: expected train=LEN,test=LEN[,anchored], "
                f"e.g. train=6M,test=1M (bad part {part!r})"
            )
        values[key] = value
    if set(values) != {"train", "test"}:
        raise ConfigError(f"--walk-forward {spec}: give both train=LEN and test=LEN")
    wf = WalkForward(values["train"], values["test"], anchored)
    return parse_walk_forward(wf)


def make_windows(wf: WalkForward, first: Any, end: Any) -> list[Window]:
    """The windows over the data's span ``[first, end)``; only whole test windows.

    ``end`` is the last bar's time plus one bar spacing.

    Rolling: the training window keeps its length and moves by the test
    length. Anchored: it always starts at the first bar and grows.
    """
    train, test = _offset(wf.train, "train"), _offset(wf.test, "test")
    windows: list[Window] = []
    start = first
    while True:
        train_start = first if wf.anchored else start
        train_end = (first + train + test * len(windows)) if wf.anchored else start + train
        test_end = train_end + test
        if test_end > end:
            break
        windows.append(Window(len(windows), train_start, train_end, train_end, test_end))
        start = start + test
    if not windows:
        raise ConfigError(
            f"--walk-forward {wf}: the windows ({wf.train} + {wf.test}) are longer than the "
            f"data ({first} to {end})"
        )
    return windows


def annualised_log_return(total_return: float, seconds: float) -> float:
    """``log(1 + R) / years``: the continuously compounded annual rate.

    The log form does not overflow for short windows of minute bars, where
    ``(1 + R) ** (1 / years)`` would.
    """
    if seconds <= 0 or not math.isfinite(total_return) or total_return <= -1:
        return math.nan
    return math.log1p(total_return) / (seconds / _YEAR_S)


def stitch(pieces: list[tuple[Any, Any]], start_equity: float) -> Any:
    """Chain test-window equity curves: each window's returns compound on the last value.

    ``pieces`` are ``(times in POSIX seconds, equity values)`` per window, in
    order; the result is a Series (UTC index) starting at ``start_equity``.
    """
    import numpy as np
    import pandas as pd

    times_out: list[Any] = []
    values_out: list[Any] = []
    level = start_equity
    for times, values in pieces:
        if len(values) == 0:
            continue
        growth = values / values[0]
        times_out.append(times)
        values_out.append(level * growth)
        level = level * growth[-1]
    if not times_out:
        return pd.Series([], dtype="float64", name="equity")
    times = np.concatenate(times_out)
    values = np.concatenate(values_out)
    index = pd.DatetimeIndex(pd.to_datetime((times * 1e9).astype("int64"), utc=True),
                             name="datetime")
    return pd.Series(values, index=index, name="equity")
