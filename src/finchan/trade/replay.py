"""Bar files played on the wall clock: live runs without a feed (demos, rehearsals).

:class:`BarReplay` wraps a :class:`~finchan.trade.data.BarFeed` and puts its
bars into a live run spaced as in the data, ``speed`` times faster (``speed:
60`` plays one minute of bars per second; ``0`` as fast as the run takes
them). The bars keep their own times; only their pacing follows the wall
clock. ``finchan.exts.bars`` uses it in live mode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from finchan.interface.event_source import AbsEventSource

if TYPE_CHECKING:
    from finchan.interface.event_source import EventQueue
    from finchan.trade.data import BarFeed

__all__ = ["BarReplay"]

logger = logging.getLogger(__name__)

# bars taken from the feed at once, in bar lengths (keeps memory at one window)
_WINDOW_BARS = 10_000
# at speed 0, yield to the loop after this many bars so the run handles them
_YIELD_EVERY = 256


class BarReplay(AbsEventSource):
    """Play ``feed`` on the wall clock at ``speed`` times the data's pace.

    Example
    -------
    >>> from finchan.trade.data import BarFeed
    >>> from finchan.trade._synthetic import make_bars
    >>> replay = BarReplay(BarFeed(None, {"SYN": make_bars(3)}), speed=0)
    >>> replay.name
    'BarReplay(BarFeed(DataFrame #1 (SYN)), speed 0)'
    """

    def __init__(self, feed: BarFeed, speed: float = 1.0) -> None:
        if not speed >= 0:
            raise ValueError(f"speed must be >= 0, got {speed!r}")
        self.feed = feed
        self.speed = float(speed)
        self.exhausted = False
        #: bars put so far
        self.played = 0

    @property
    def name(self) -> str:
        speed = f"{self.speed:g}"
        return f"BarReplay({self.feed.name}, speed {speed})"

    def start(self) -> None:
        self.feed.start()

    def stop(self) -> None:
        self.feed.stop()

    async def gen_events(self, event_queue: EventQueue, limit_dt: datetime | None = None) -> None:
        if limit_dt is not None:
            # in a backtest the feed itself is the faster source
            for bar in self.feed.events_until(limit_dt.timestamp()):
                event_queue.put(bar)
            self.exhausted = self.feed.exhausted
            return
        feed = self.feed
        first = feed.first_timestamp()
        if first is None:
            self.exhausted = True
            return
        window = feed.timeframe_seconds * _WINDOW_BARS
        speed = self.speed
        wall0 = time.monotonic()
        limit = first
        put = event_queue.put
        sleep = asyncio.sleep
        logger.info("replaying %s", self.name)
        while not feed.exhausted:
            limit += window
            bars: list[Any] = feed.events_until(limit)
            for bar in bars:
                if speed:
                    delay = wall0 + (bar.timestamp - first) / speed - time.monotonic()
                    if delay > 0:
                        await sleep(delay)
                elif not self.played % _YIELD_EVERY:
                    await sleep(0)
                put(bar)
                self.played += 1
        self.exhausted = True
