"""Live bars from Redis Streams: the extension ``finchan.exts.redis_stream``.

Size: about 640 lines with this text, the options and the reader with its
read-ahead, one concept; messages -> bars live in ``_stream_messages``, the
journal, commits and recovery in ``_stream_durable``.

A consumer-group reader (redis-py asyncio, hiredis when installed) that turns
stream messages into ``"bar"`` events. Options::

    finchan.exts.redis_stream:
      url: redis://127.0.0.1:6379/0      # a password in it is never logged
      streams: [bars]                    # or {bars.ACME: ACME, ...}: key -> symbol
      group: finchan                     # consumer group (XGROUP CREATE ... MKSTREAM)
      consumer: finchan                  # this reader's name in the group
      batch: 1000                        # messages per XREADGROUP
      block: 1.0                         # seconds one XREADGROUP waits for news
      fields: {close: c}                 # bar field -> message field (defaults below)
      timezone: UTC                      # zone of naive `datetime` values
      dead_letter: "{stream}:dead"       # where malformed and poison messages go
      on_malformed: dead_letter          # or stop: a malformed message fails the run
      max_deliveries: 5                  # delivered more often: poison, dead-lettered
      idle_timeout: null                 # seconds without a message: the source ends
      reconnect_min: 0.1                 # backoff after a lost connection, doubling ...
      reconnect_max: 5.0                 # ... up to this
      state: auto                        # auto: state.db in the live run directory;
                                         # a path; a redis:// URL (keys finchan:live:<name>:*,
                                         # one MULTI per commit); or null: no durable state
      snapshot_bars: 20000               # bars between snapshots of the account and
                                         # strategy (0: none; a restart replays the
                                         # whole journal)
      status_interval: 10                # seconds between status log lines (0: none)
      results_interval: 60               # seconds between refreshes of the live directory's
                                         # result files (0: only when the run ends)

Messages carry the fields ``symbol``, ``ts`` (POSIX seconds) or ``datetime``
(ISO 8601), ``open``, ``high``, ``low``, ``close`` and ``volume`` (optional,
0 when absent); ``symbol`` may be left out when ``streams`` maps the key to
its symbol. ``finchan publish`` writes such messages from bar files.

Order of work: on start the reader first takes its own pending entries
(``XREADGROUP ... 0``: delivered before, never acknowledged), then new ones
(``>``). Each batch is put as bar events followed by a batch marker; when the
dispatcher reaches the marker every bar of the batch has been handled and the
batch is committed and acknowledged (``XACK``). Reading goes on while the
dispatcher handles what was read and the committer writes it, up to 16 x
``batch`` messages read and not yet acknowledged (back-pressure); a crash
leaves at most those pending, to be read again at the next start.

Durable state (:mod:`finchan.trade.journal`): when a batch's marker is
reached, the bars dispatched since the last one, the last applied id per
stream, the strategy's ``self.state`` (when changed) and a status snapshot
are queued for the committer, which writes every batch waiting in ONE
SQLite transaction in a worker thread (group commit) while the next bars
are dispatched; only then are those batches acknowledged. On restart the journal is handed to the
bar handlers again (rebuilding the broker and the strategy exactly), the
committed ``self.state`` is loaded, pending
entries at or below the last applied id are acknowledged and skipped, and
the rest are processed. At ``SYSTEM_EXITING`` (SIGINT, SIGTERM, end) what
was dispatched is committed too.

A lost connection is logged, retried with a doubling backoff and logged again
with the length of the gap when it is back; a server restarted empty gets its
groups created again. ``idle_timeout`` counts only while connected: an outage
is not idleness.
"""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from finchan._secrets import mask_secrets
from finchan.errors import ConfigError, DataError
from finchan.event import Event, SysEvents
from finchan.interface.event_source import AbsEventSource
from finchan.trade.exts._stream_durable import BATCH_EVENT, EXT_NAME, DurableState
from finchan.trade.exts._stream_messages import (
    BAR_FIELDS,
    Malformed,
    MessageParser,
    fast_connection,
    pairs,
    raw_reply,
)

if TYPE_CHECKING:
    from finchan.env import Env
    from finchan.interface.event_source import EventQueue

__all__ = [
    "BAR_FIELDS",
    "BATCH_EVENT",
    "RedisStreamSource",
    "StreamOptions",
    "ext_name",
    "load_finchan_ext",
    "redact_url",
    "unload_finchan_ext",
]

ext_name = EXT_NAME
required_exts: list[str] = []

logger = logging.getLogger(__name__)

# messages read but not yet committed and acknowledged, in batches: the reader
# stops reading at _IN_FLIGHT x batch (back-pressure; a crash leaves at most
# that many pending, to be read again). Counted in messages, not batches: at a
# low rate every read is a small batch, and a commit (with its fsync) must not
# cap the rate at a few small batches per commit. 16, not 4: a commit waits
# for the GIL while the loop dispatches, and with less read-ahead the
# dispatcher ran dry waiting for acknowledgements (bench/live.py drain)
_IN_FLIGHT = 16


class StreamOptions(BaseModel):
    """Options of :mod:`finchan.exts.redis_stream` (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "redis://127.0.0.1:6379/0"
    streams: list[str] | dict[str, str]
    group: str = "finchan"
    consumer: str = "finchan"
    batch: int = Field(1000, ge=1)
    block: float = Field(1.0, gt=0)
    fields: dict[str, str] = Field(default_factory=dict)
    timezone: str = "UTC"
    dead_letter: str = "{stream}:dead"
    on_malformed: Literal["dead_letter", "stop"] = "dead_letter"
    max_deliveries: int = Field(5, ge=1)
    idle_timeout: float | None = Field(None, gt=0)
    reconnect_min: float = Field(0.1, gt=0)
    reconnect_max: float = Field(5.0, gt=0)
    state: str | None = "auto"
    snapshot_bars: int = Field(20_000, ge=0)
    status_interval: float = Field(10.0, ge=0)
    results_interval: float = Field(60.0, ge=0)

    @field_validator("streams")
    @classmethod
    def _some_streams(cls, value: Any) -> Any:
        if not value:
            raise ValueError("name at least one stream key")
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if key not in BAR_FIELDS:
                raise ValueError(f"unknown bar field {key!r} (known: {', '.join(BAR_FIELDS)})")
        return value


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and messages).

    The project's one mask (:func:`finchan._secrets.mask_secrets`): the
    password in the user part and a ``?password=`` option alike.
    """
    return mask_secrets(url)


class _BatchDone(Event):
    """The marker after a batch's bars: its handler acknowledges the batch."""

    __slots__ = ("acks", "done", "messages")

    def __init__(
        self, env: Any, timestamp: float, acks: dict[bytes, list[bytes]], done: asyncio.Event
    ) -> None:
        self.env = env
        self.name = BATCH_EVENT
        self.timestamp = timestamp
        self.expire = 0
        self.id = next(env.event_ids) if env is not None else 0
        self.acks = acks
        self.done = done
        self.messages = sum(len(ids) for ids in acks.values())


class _PutBars:
    """The bars put into the dispatcher, by time, for ``bars_at`` (the broker's cross-symbol rule).

    Kept as the batches were put (each with its times, in order when the
    stream was), searched by bisection when asked: ``bars_at`` is rare, while
    indexing every bar by its time cost half a microsecond a bar. A batch
    marker drops the bars of times before its own, as they are handled.
    """

    __slots__ = ("_runs",)

    def __init__(self) -> None:
        self._runs: list[tuple[list[float], list[Any], bool]] = []

    def add(self, bars: list[Any]) -> float:
        """Keep a batch's bars; return its last time."""
        stamps = [bar.timestamp for bar in bars]
        ordered = stamps == sorted(stamps)
        self._runs.append((stamps, bars, ordered))
        return stamps[-1] if ordered else max(stamps)

    def at(self, ts: float) -> list[Any]:
        """The bars of time ``ts``, in put order."""
        out: list[Any] = []
        for stamps, bars, ordered in self._runs:
            if ordered:
                lo = bisect_left(stamps, ts)
                out.extend(bars[lo : bisect_right(stamps, ts, lo)])
            else:
                out.extend(bar for bar in bars if bar.timestamp == ts)
        return out

    def drop_before(self, ts: float) -> None:
        """Forget the bars of times before ``ts``."""
        runs = []
        for stamps, bars, ordered in self._runs:
            if ordered:
                lo = bisect_left(stamps, ts)
                if lo:
                    stamps, bars = stamps[lo:], bars[lo:]
            else:
                bars = [bar for bar in bars if bar.timestamp >= ts]
                stamps = [bar.timestamp for bar in bars]
            if bars:
                runs.append((stamps, bars, ordered))
        self._runs = runs


class RedisStreamSource(DurableState, AbsEventSource):
    """Bars from one or several Redis streams through a consumer group.

    Parameters
    ----------
    env:
        the Env (bars are created in it).
    options:
        validated :class:`StreamOptions`.
    """

    def __init__(self, env: Any, options: StreamOptions) -> None:
        from finchan._time import get_tz

        self.env = env
        self.options = options
        self.exhausted = False
        streams = options.streams
        if isinstance(streams, Mapping):
            self._keys = [key.encode() for key in streams]
            self._symbols = {key.encode(): sym for key, sym in streams.items()}
        else:
            self._keys = [key.encode() for key in streams]
            self._symbols = {}
        try:
            self._tz = get_tz(options.timezone)
        except (KeyError, ValueError):
            raise ConfigError(
                f"{ext_name}: timezone: unknown time zone {options.timezone!r}"
            ) from None
        names = {name: name for name in BAR_FIELDS}
        names.update(options.fields)
        field = {name: value.encode() for name, value in names.items()}
        self._client: Any = None
        self._stopped = False
        # batches put but not yet acknowledged (oldest first) and their
        # messages: reading overlaps the dispatch and the commits (_IN_FLIGHT)
        self._in_flight: deque[asyncio.Event] = deque()
        self._in_flight_messages = 0
        # ids whose XACK failed with the connection: acknowledged after reconnecting
        self._unacked: dict[bytes, list[bytes]] = {}
        #: counters for status lines and tests
        self.received = 0
        self.dead_lettered = 0
        self.reconnects = 0
        #: the newest id read per stream key (bytes)
        self.last_ids: dict[bytes, bytes] = {}
        self._parser = MessageParser(field, self._symbols, self._tz)
        self._to_bar = self._parser.to_bar
        self._started = asyncio.Event()
        self._init_state(options.snapshot_bars, options.results_interval)
        # the bars put and not yet handled, by time: the broker matches the
        # orders of every symbol with a bar at a time together (bars_at), as
        # in a backtest, so a time's bars must all be known at its first bar
        self._put_bars = _PutBars()
        # per stream: the bars (and ids) of the last time of a full batch, held
        # back until the next read, which may bring more bars of that time
        self._held: dict[bytes, tuple[list[Any], list[bytes]]] = {}

    @property
    def name(self) -> str:
        keys = ", ".join(k.decode() for k in self._keys)
        return f"RedisStream({redact_url(self.options.url)} {keys})"

    def start(self) -> None:
        """Open the durable state (see ``state``)."""
        self._open_state()

    def stop(self) -> None:
        self._stopped = True
        self._close_state()

    def on_started(self, event: Any) -> None:
        self._started.set()

    # -- the source task ----------------------------------------------------------------
    async def gen_events(self, event_queue: EventQueue, limit_dt: datetime | None = None) -> None:
        if limit_dt is not None:
            raise ConfigError(f"{ext_name} is a live source: run it with --mode live")
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        options = self.options
        await self._started.wait()
        await self._recover()
        backoff = options.reconnect_min
        lost_at: float | None = None
        attempts = 0
        url = redact_url(options.url)
        while not self._stopped:
            try:
                await self._connect()
                if lost_at is not None:
                    self.reconnects += 1
                    logger.warning(
                        "%s: reconnected to %s after %.1fs (%d attempt(s)); nothing was lost: "
                        "unacknowledged messages are read again",
                        ext_name,
                        url,
                        time.monotonic() - lost_at,
                        attempts,
                    )
                    lost_at, attempts, backoff = None, 0, options.reconnect_min
                # bars go in with one dispatcher.eq_put per batch (one wake-up)
                await self._consume()
                self.exhausted = True
                return
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                if lost_at is None:
                    lost_at = time.monotonic()
                    logger.warning(
                        "%s: lost the connection to %s (%s); reconnecting", ext_name, url, exc
                    )
                attempts += 1
                await self._close()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, options.reconnect_max)
            finally:
                if self._stopped or self.exhausted:
                    await self._close()

    async def _connect(self) -> None:
        import redis.asyncio as aioredis

        # batches put before the loss must be handled (and their acks queued)
        # before pending entries are read again, or they would come twice
        await self._drain()
        await self._close()
        client = aioredis.Redis.from_url(
            self.options.url, socket_connect_timeout=2, health_check_interval=0,
            **fast_connection(self.options.url),
        )  # fmt: skip
        self._client = client
        client.set_response_callback("XREADGROUP", raw_reply)
        await client.ping()
        await self._ensure_groups()
        if self._unacked:
            unacked, self._unacked = self._unacked, {}
            await self._ack(unacked)

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except Exception:  # closing a broken connection may fail again
                pass

    async def _ensure_groups(self) -> None:
        from redis.exceptions import ResponseError

        for key in self._keys:
            try:
                await self._client.xgroup_create(key, self.options.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _read(self, ids: dict[bytes, bytes | str], block: int | None) -> list[Any]:
        from redis.exceptions import ResponseError

        try:
            return await self._client.xreadgroup(
                self.options.group, self.options.consumer, ids, count=self.options.batch,
                block=block,
            )  # fmt: skip
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # the server lost the stream or the group (restarted empty, or deleted)
            logger.warning("%s: %s; creating the consumer group again", ext_name, exc)
            await self._ensure_groups()
            return []

    async def _consume(self) -> None:
        options = self.options
        # 1. our own pending entries: delivered before, never acknowledged
        pending: dict[bytes, bytes | str] = {key: b"0" for key in self._keys}
        while pending and not self._stopped:
            reply = await self._read(pending, None)
            if not reply:
                break
            for key, entries in reply:
                if not entries:
                    pending.pop(key, None)
                    continue
                pending[key] = entries[-1][0]
                await self._handle(key, entries, replayed=True)
        await self._flush_held()
        # 2. new entries
        new: dict[bytes, bytes | str] = {key: ">" for key in self._keys}
        block_ms = max(1, round(options.block * 1000))
        idle_since = time.monotonic()
        while not self._stopped:
            reply = await self._read(new, block_ms)
            got = False
            for key, entries in reply or ():
                if entries:
                    got = True
                    await self._handle(key, entries, replayed=False)
            if got:
                idle_since = time.monotonic()
                continue
            await self._flush_held()
            await self._status()
            if (
                options.idle_timeout is not None
                and time.monotonic() - idle_since >= options.idle_timeout
            ):
                await self._drain()
                logger.info(
                    "%s: no message for %ss (idle_timeout): the source ends",
                    ext_name,
                    options.idle_timeout,
                )
                return

    async def _handle(self, key: bytes, entries: list[Any], replayed: bool) -> None:
        """Put one stream's batch as bars and a marker; wait until the marker is handled."""
        options = self.options
        poison: dict[bytes, int] = {}
        if replayed:
            # delivered again: how often? (XREADGROUP 0 counts as a delivery)
            counts = await self._client.xpending_range(
                key, options.group, entries[0][0], entries[-1][0], len(entries),
                consumername=options.consumer,
            )  # fmt: skip
            limit = options.max_deliveries
            poison = {c["message_id"]: c["times_delivered"] for c in counts
                      if c["times_delivered"] > limit}  # fmt: skip
        bars = []
        acks: list[bytes] = []
        env = self.env
        from finchan.trade.journal import stream_id_key

        upto = self._applied_upto.get(key)
        if upto is not None and stream_id_key(entries[0][0]) > upto:
            upto = None  # ids grow: nothing in this batch was applied before
        to_bar = self._to_bar
        key_text = key.decode()
        self.received += len(entries)
        for msg_id, fields in entries:
            if upto is not None and stream_id_key(msg_id) <= upto:
                # applied and committed before a crash, never acknowledged
                acks.append(msg_id)
                continue
            if not fields:
                # the entry was deleted (XDEL, MAXLEN) while it was pending
                acks.append(msg_id)
                continue
            if msg_id in poison:
                await self._dead_letter(
                    key, msg_id, fields,
                    f"delivered {poison[msg_id]} times (max_deliveries {options.max_deliveries})",
                )  # fmt: skip
                continue
            try:
                bar = to_bar(env, key, fields)
            except Malformed as exc:
                where = f"{key.decode()} {msg_id.decode()}"
                if options.on_malformed == "stop":
                    raise DataError(f"{ext_name}: malformed message {where}: {exc}") from None
                await self._dead_letter(key, msg_id, fields, str(exc))
                continue
            bar.stream_key = key_text
            bar.stream_id = msg_id.decode()
            bars.append(bar)
            acks.append(msg_id)
        self.last_ids[key] = entries[-1][0]
        held = self._held.pop(key, None)
        if held is not None:
            bars[:0] = held[0]
            acks[:0] = held[1]
        if bars and len(entries) >= options.batch:
            # a full batch: the stream may hold more bars of its last time,
            # which the next read brings at once; hold that time's bars back
            last = bars[-1].timestamp
            cut = len(bars)
            while cut > 0 and bars[cut - 1].timestamp == last:
                cut -= 1
            if cut > 0:
                tail = bars[cut:]
                tail_ids = {bar.stream_id.encode() for bar in tail}
                self._held[key] = (tail, [a for a in acks if a in tail_ids])
                del bars[cut:]
                acks = [a for a in acks if a not in tail_ids]
        await self._put_batch(key, bars, acks)

    async def _flush_held(self) -> None:
        """Put the held-back bars: the read that could have brought more of their time did not."""
        for key in list(self._held):
            bars, acks = self._held.pop(key)
            await self._put_batch(key, bars, acks)

    async def _put_batch(self, key: bytes, bars: list[Any], acks: list[bytes]) -> None:
        if not bars:
            if acks:
                await self._ack({key: acks})
            return
        last_ts = self._put_bars.add(bars)
        done = asyncio.Event()
        self._in_flight.append(done)
        marker = _BatchDone(self.env, last_ts, {key: acks}, done)
        self._in_flight_messages += marker.messages
        # one put for the batch: one wake-up of the dispatcher, not one per bar
        self.env.dispatcher.eq_put(*bars, marker)
        limit = _IN_FLIGHT * self.options.batch
        if self._in_flight_messages < limit:
            # the dispatcher's turn before the next read is sent: the bars
            # reach on_bar sooner, and the next messages are not here yet
            await asyncio.sleep(0)
        while self._in_flight_messages >= limit and self._in_flight:
            await self._in_flight[0].wait()
        self._raise_commit_error()

    async def _drain(self) -> None:
        """Wait until every batch put has been handled and acknowledged."""
        while self._in_flight:
            await self._in_flight[0].wait()  # the oldest open batch (see _commit_loop)
        self._raise_commit_error()

    def bars_at(self, ts: float) -> list[Any]:
        """The bars of time ``ts`` put and not yet handled (the broker's cross-symbol rule)."""
        return self._put_bars.at(ts)

    def on_batch(self, event: Any) -> None:
        """Handler of the batch marker: every bar before it was handled; queue its commit."""
        self._put_bars.drop_before(event.timestamp)
        self._queue_commit(event)

    async def _ack(self, acks: dict[bytes, list[bytes]]) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        client = self._client
        try:
            if client is None:
                raise RedisConnectionError("not connected")
            for key, ids in acks.items():
                if ids:
                    await client.xack(key, self.options.group, *ids)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            # the reader notices the loss too; these are acknowledged on reconnecting
            for key, ids in acks.items():
                self._unacked.setdefault(key, []).extend(ids)

    async def _dead_letter(
        self, key: bytes, msg_id: bytes, flat: list[bytes], reason: str
    ) -> None:
        target = self.options.dead_letter.format(stream=key.decode())
        logger.warning(
            "%s: message %s %s moved to dead-letter stream %s: %s",
            ext_name,
            key.decode(),
            msg_id.decode(),
            target,
            reason,
        )
        record = pairs(flat)
        record[b"dead.stream"] = key
        record[b"dead.id"] = msg_id
        record[b"dead.reason"] = reason.encode()
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(target, record)
            pipe.xack(key, self.options.group, msg_id)
            await pipe.execute()
        self.dead_lettered += 1

def load_finchan_ext(env: Env) -> None:
    """Validate the options, register the source and its batch handler, publish the source."""
    from finchan.config import validate_ext_options

    if env.run_mode == "backtrack":
        raise ConfigError(
            f"{ext_name} is a live source: run with --mode live "
            "(for a backtest, use finchan.exts.bars on the files the stream was fed from)"
        )
    options: StreamOptions = validate_ext_options(env, ext_name, StreamOptions)
    try:
        import redis  # noqa: F401
    except ImportError:
        raise ConfigError(f"{ext_name} needs redis-py: pip install 'finchan[redis]'") from None
    source = RedisStreamSource(env, options)
    env.dispatcher.register_event_source(source)
    dispatcher = env.dispatcher
    dispatcher.subscribe(BATCH_EVENT, source.on_batch)
    dispatcher.subscribe("bar", source.on_bar)
    dispatcher.subscribe(SysEvents.SYSTEM_STARTED, source.on_started)
    dispatcher.subscribe(SysEvents.SYSTEM_EXITING, source.on_exiting)
    observers = getattr(dispatcher, "observers", None)
    if observers is not None:
        observers.append(source.observe)
    env.set_ext_obj(ext_name, source)


def unload_finchan_ext(env: Env) -> None:
    """Deregister the source."""
    source = env.get_ext_obj(ext_name, None)
    if source is not None:
        dispatcher = env.dispatcher
        dispatcher.unsubscribe(BATCH_EVENT, source.on_batch)
        dispatcher.unsubscribe("bar", source.on_bar)
        dispatcher.unsubscribe(SysEvents.SYSTEM_STARTED, source.on_started)
        dispatcher.unsubscribe(SysEvents.SYSTEM_EXITING, source.on_exiting)
        observers = getattr(dispatcher, "observers", None)
        if observers is not None and source.observe in observers:
            observers.remove(source.observe)
        env.dispatcher.deregister_event_source(source)
