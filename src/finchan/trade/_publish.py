"""``finchan publish``: bar files into a Redis stream, at a chosen rate."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from finchan.errors import ConfigError, DataError

# messages per pipeline round trip when publishing as fast as possible
_PIPELINE = 1000
# bars taken from the feed at once, in bar lengths
_WINDOW_BARS = 50_000


def iter_bars(files: Sequence[str | Path], feed_options: dict[str, Any]) -> Iterator[Any]:
    """The bars of ``files`` in the order a backtest dispatches them, window by window.

    Bad files and options raise here, before the first bar is asked for.
    """
    from finchan.trade.data import BarFeed

    options = {k: v for k, v in feed_options.items() if v is not None}
    for name in files:
        if not Path(name).exists():
            raise DataError(f"{name}: no such file")
    feed = BarFeed(None, [Path(f) for f in files], **options)
    first = feed.first_timestamp()
    return _windows(feed, first)


def _windows(feed: Any, limit: float | None) -> Iterator[Any]:
    try:
        window = feed.timeframe_seconds * _WINDOW_BARS
        while limit is not None and not feed.exhausted:
            limit += window
            yield from feed.events_until(limit)
    finally:
        feed.stop()


def bar_message(bar: Any) -> dict[str, str]:
    """The stream message of ``bar``: numbers in ``repr`` form, read back bit for bit."""
    return {
        "symbol": bar.symbol,
        "ts": repr(bar.timestamp),
        "open": repr(bar.open),
        "high": repr(bar.high),
        "low": repr(bar.low),
        "close": repr(bar.close),
        "volume": repr(float(bar.volume)),
    }


def publish_bars(
    files: Sequence[str | Path],
    url: str,
    stream: str,
    *,
    rate: float = 0.0,
    feed_options: dict[str, Any] | None = None,
    maxlen: int | None = None,
    progress: bool = False,
) -> tuple[int, float]:
    """XADD every bar of ``files`` to ``stream``; return (messages, seconds).

    ``rate`` messages per second, paced on the wall clock (0: as fast as
    possible, in pipelines of 1,000).
    """
    import redis

    from finchan.trade.exts.redis_stream import redact_url

    if not (rate >= 0 and math.isfinite(rate)):
        raise ConfigError(f"--rate: expected a number >= 0, got {rate!r}")
    bars = iter_bars(files, feed_options or {})
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise ConfigError(f"--redis {redact_url(url)}: cannot connect: {exc}") from None
    bar_progress = _Progress(stream) if progress else None
    started = time.monotonic()
    count = 0
    trim = {"maxlen": maxlen, "approximate": True} if maxlen else {}
    try:
        pipe = client.pipeline(transaction=False)
        queued = 0
        for bar in bars:
            pipe.xadd(stream, bar_message(bar), **trim)  # type: ignore[arg-type]
            queued += 1
            count += 1
            if rate:
                due = started + count / rate
                wait = due - time.monotonic()
                # send when it is time for this message; group the ones already late
                if wait > 0 or queued >= _PIPELINE:
                    if wait > 0:
                        time.sleep(wait)
                    pipe.execute()
                    queued = 0
            elif queued >= _PIPELINE:
                pipe.execute()
                queued = 0
            if bar_progress is not None and not count % 100:
                bar_progress.update(count)
        if queued:
            pipe.execute()
    except redis.RedisError as exc:
        raise DataError(
            f"--redis {redact_url(url)}: publishing to {stream} failed after {count} bars: {exc}"
        ) from None
    finally:
        if bar_progress is not None:
            bar_progress.stop(count)
        client.close()
    return count, time.monotonic() - started


class _Progress:
    def __init__(self, stream: str) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._started = time.monotonic()
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        self._stream = stream
        self._task = self._bar.add_task(f"publishing to {stream}")
        self._bar.start()

    def update(self, count: int) -> None:
        rate = count / max(time.monotonic() - self._started, 1e-9)
        self._bar.update(
            self._task, description=f"{count:,} bars to {self._stream}  {rate:,.0f} msg/s"
        )

    def stop(self, count: int) -> None:
        self.update(count)
        self._bar.stop()
