"""Live bars from Redis Streams: the extension ``finchan.exts.redis_stream``.

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
batch is committed and acknowledged (``XACK``). The next batch is read while
the dispatcher handles the current one, never more than two ahead, so a
crash leaves at most those messages pending, to be read again at the next
start.

Durable state (:mod:`finchan.trade.journal`): when a batch's marker is
reached, the bars dispatched since the last one, the last applied id per
stream, the strategy's ``self.state`` (when changed) and a status snapshot
are committed in one SQLite transaction, and
only then is the batch acknowledged. On restart the journal is handed to the
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
import json
import logging
import math
import time
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from finchan._secrets import mask_secrets
from finchan.errors import ConfigError, DataError, RunError
from finchan.event import Event, SysEvents
from finchan.interface.event_source import AbsEventSource

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

ext_name = "finchan.exts.redis_stream"
required_exts: list[str] = []

logger = logging.getLogger(__name__)

#: name of the marker event that closes each batch (its handler acknowledges the batch)
BATCH_EVENT = "finchan.redis_stream.batch"

# the timer source's event (finchan.exts.timer_source.TIMER_EVENT; not imported: optional ext)
_TIMER_EVENT = "timer_source.timer"

#: the bar fields a message maps to, and their default message field names
BAR_FIELDS = ("symbol", "ts", "datetime", "open", "high", "low", "close", "volume")

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


class _Malformed(Exception):
    pass


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


def _stream_bar_class() -> type:
    from finchan.trade.bar import Bar

    class StreamBar(Bar):
        """A bar that knows the stream message it came from (for the journal)."""

        __slots__ = ("stream_id", "stream_key")

    return StreamBar


class RedisStreamSource(AbsEventSource):
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
        self._field = {name: value.encode() for name, value in names.items()}
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
        self._bar_class = _stream_bar_class()
        self._to_bar = self._make_parser()
        #: the durable state (None: none)
        self.store: Any = None
        # last applied id per stream key, as sortable tuples (from the store)
        self._applied_upto: dict[bytes, tuple[int, int]] = {}
        # bars dispatched since the last commit, in dispatch order
        self._applied: list[Any] = []
        self._recovering = False
        # the strategy's state as last committed (JSON), to write it only when changed
        self._state_text: str | None = None
        # other events dispatched since the last commit: (bars before it in _applied, ...)
        self._events: list[tuple[int, str, float, str]] = []
        # journal position of the bars taken for commits, and of the last snapshot
        self._taken = 0
        self._snapshot_at = 0
        self._snapshots = options.snapshot_bars > 0
        # batches whose marker was reached, waiting for the committer (FIFO)
        self._commits: list[tuple[Any, Any]] = []
        self._committer: asyncio.Task[None] | None = None
        self._commit_error: Exception | None = None
        self._executor: Any = None
        self._started = asyncio.Event()
        self._status_due = 0.0
        self._results_due = time.monotonic() + options.results_interval
        self._status_bars = 0
        self._status_time = time.monotonic()
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
        from finchan.trade.journal import STATE_FILE, LiveStore, stream_id_key

        path = self.options.state
        if path == "auto":
            runner = self.env.get_ext_obj("finchan.exts.strategy", None)
            run_dir = getattr(runner, "run_dir", None)
            path = None if run_dir is None else str(run_dir / STATE_FILE)
        if path is None:
            logger.info("%s: no durable state (state: null or no live run directory)", ext_name)
            return
        from concurrent.futures import ThreadPoolExecutor

        if path.startswith(("redis://", "rediss://", "unix://")):
            from finchan.trade.journal import RedisLiveStore

            runner = self.env.get_ext_obj("finchan.exts.strategy", None)
            name = getattr(getattr(runner, "run_dir", None), "name", None) or "default"
            self.store = RedisLiveStore(path, f"finchan:live:{name}:")
        else:
            self.store = LiveStore(path)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="finchan-commit")
        config_dir = getattr(self.env, "config_dir", None)
        info = {"config_dir": str(config_dir) if config_dir else None, **self._strategy_meta()}
        info = json.loads(json.dumps(info, default=str))  # compared as stored
        before = self.store.run_info()
        if self.store.bars and before.get("strategy") != info.get("strategy"):
            # the journal rebuilds the state only through the strategy that wrote it
            self.store.close()
            self.store = None
            raise ConfigError(
                f"{ext_name}: {path} holds the journal of {before.get('strategy')}, "
                f"not of {info.get('strategy')}: give this run another name "
                "(finchan.exts.strategy: name) or move that directory away"
            )
        self.store.set_run_info(info)
        self._taken = self.store.bars
        self._applied_upto = {
            key.encode(): stream_id_key(last) for key, last in self.store.last_ids.items()
        }
        if self.store.bars:
            logger.info(
                "%s: state %s: %d bars in the journal, last applied %s",
                ext_name,
                path,
                self.store.bars,
                self.store.last_ids,
            )

    def _strategy_meta(self) -> dict[str, Any]:
        runner = self.env.get_ext_obj("finchan.exts.strategy", None)
        if runner is None:
            return {}
        meta = runner.meta()
        return {"strategy": {"class": meta["class"], "params": meta["params"],
                             "cash": meta["cash"]}}  # fmt: skip

    def stop(self) -> None:
        self._stopped = True
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- the journal ----------------------------------------------------------------------
    def on_bar(self, bar: Any) -> None:
        """Journal handler: note each dispatched bar (committed with its batch)."""
        if not self._recovering:
            self._applied.append(bar)

    def observe(self, event: Any) -> None:
        """Dispatcher observer: journal every event that is not a bar or finchan's own."""
        name = event.name
        if (
            self._recovering
            or name == "bar"
            or name == BATCH_EVENT
            or name.startswith("system_event.")
            or self.store is None
        ):
            return
        kwargs = event.kwargs
        if name == _TIMER_EVENT and "job" in kwargs:
            data = json.dumps({"job": kwargs["job"].id})
        else:
            data = json.dumps(kwargs, sort_keys=True, default=repr)
        self._events.append((len(self._applied), name, event.timestamp, data))

    def on_started(self, event: Any) -> None:
        self._started.set()

    async def on_exiting(self, event: Any) -> None:
        """Finish the queued commits, then commit what was dispatched since (a stop mid-batch)."""
        committer = self._committer
        if committer is not None:
            await asyncio.wait([committer])
        work = self._take_applied(final=True)
        if work is not None and self.store is not None and self._commit_error is None:
            _commit(self.store, [work])

    def _take_applied(self, final: bool = False) -> Any:
        """The bars dispatched since the last call with their input positions, the status,
        the strategy's state when changed and a snapshot when due (or ``final``): a
        :class:`~finchan.trade.journal.CommitBatch` whose rows are made in the committer."""
        from finchan.trade.journal import status_snapshot

        applied, self._applied = self._applied, []
        observed, self._events = self._events, []
        if self.store is None or not (applied or observed or final):
            return None
        events = [(self._taken + i, name, ts, data) for i, name, ts, data in observed]
        # a stream's bars are dispatched in its order (they come in time order),
        # so its last bar dispatched has its highest id
        last: dict[str, str] = {}
        streams = len(self._keys)
        for bar in reversed(applied):
            key = getattr(bar, "stream_key", None)
            if key is not None and key not in last:
                last[key] = bar.stream_id
                if len(last) == streams:
                    break
        account = self.env.get_ext_obj("finchan.exts.sim_broker", None)
        state = None
        runner = self.env.get_ext_obj("finchan.exts.strategy", None)
        if runner is not None:
            # taken now, at the batch's end, so it matches the journal rows
            text = runner.strategy.state.to_json()
            if text != self._state_text:
                state = self._state_text = text
        self._taken += len(applied)
        snapshot = None
        every = self.options.snapshot_bars
        if (
            self._snapshots
            and runner is not None
            and self._taken > self._snapshot_at
            and (final or self._taken - self._snapshot_at >= every)
        ):
            from finchan.trade._snapshot import take_snapshot

            try:
                snapshot = (self._taken, take_snapshot(self.env, account, runner.strategy))
                self._snapshot_at = self._taken
            except Exception as exc:
                # the journal alone still rebuilds everything: only slower
                self._snapshots = False
                logger.warning(
                    "%s: no snapshots for this run (a restart replays the whole journal): "
                    "the strategy's state cannot be pickled: %s: %s",
                    ext_name, type(exc).__name__, exc,
                )  # fmt: skip
        if not applied and not events and state is None and snapshot is None:
            return None
        status = status_snapshot(account, applied[-1].timestamp) if applied else None
        # the bars themselves: the committer makes their rows (journal_rows)
        return applied, last, status, state, snapshot, events

    async def _commit_loop(self) -> None:
        """Commit the queued batches (all that are waiting, in one transaction), then XACK.

        Runs beside the dispatcher: the SQLite commit and its fsync happen in a
        worker thread while the next bars are dispatched. A batch is
        acknowledged, and its place in the read-ahead freed, only once committed.
        """
        from finchan.trade.journal import stream_id_key

        loop = asyncio.get_running_loop()
        while self._commits:
            items, self._commits = self._commits, []
            try:
                work = [w for w, _ in items if w is not None]
                if work and self.store is not None and self._commit_error is None:
                    await loop.run_in_executor(self._executor, _commit, self.store, work)
                    for _, last, *_ in work:
                        for key, mid in last.items():
                            self._applied_upto[key.encode()] = stream_id_key(mid)
                if self._commit_error is None:
                    acks: dict[bytes, list[bytes]] = {}
                    for _, event in items:
                        for key, ids in event.acks.items():
                            acks.setdefault(key, []).extend(ids)
                    await self._ack(acks)
                    await self._status()
                    self._refresh_results()
            except Exception as exc:
                # nothing is acknowledged from here on; the source task raises it
                logger.error("%s: committing the state failed: %s", ext_name, exc)
                if self._commit_error is None:
                    self._commit_error = exc
            finally:
                in_flight = self._in_flight
                for _, event in items:
                    if in_flight and in_flight[0] is event.done:
                        in_flight.popleft()
                    self._in_flight_messages -= event.messages
                    event.done.set()

    async def _recover(self) -> None:
        """Hand the journal to the bar handlers again: the broker and strategy as they were."""
        from finchan.trade.bar import BAR_EVENT

        store = self.store
        if store is None or not store.bars:
            return
        started = time.perf_counter()
        dispatcher = self.env.dispatcher
        after, after_events = self._restore_snapshot()
        handlers = dispatcher.subscribers(BAR_EVENT)
        # timer events come again at their place among the bars (the strategy's
        # own events it emits again itself from its handlers)
        timers = [e for e in store.journal_events(after_events) if e[1] == _TIMER_EVENT]
        scheduler = self.env.get_ext_obj("finchan.exts.timer_source", None)
        jobs = getattr(scheduler, "_jobs", {})
        pending = deque(timers)
        self._recovering = True

        async def call(callbacks: Any, event: Any) -> None:
            for handler in callbacks:
                try:
                    result = handler(event)
                    if result is not None and hasattr(result, "__await__"):
                        await result
                except Exception as exc:
                    # the live run logged and went on (on_callback_error: log)
                    logger.error("recovering %r: %s raised %r", event, handler, exc)

        async def timers_until(pos: int) -> None:
            while pending and pending[0][0] <= pos:
                _, name, ts, data = pending.popleft()
                job = jobs.get(data.get("job"))
                if job is not None:
                    event = Event(self.env, name, dt=ts, job=job)
                    await call(dispatcher.subscribers(name), event)

        seq = after
        try:
            for bar in store.journal(self.env, after=after):
                await timers_until(seq)
                seq += 1
                await call(handlers, bar)
            await timers_until(seq)
        finally:
            self._recovering = False
        state = store.strategy_state()
        runner = self.env.get_ext_obj("finchan.exts.strategy", None)
        if state is not None and runner is not None:
            # the committed value wins over the rebuilt one: a strategy may have
            # stored what its bars do not give (the wall clock, outside data)
            runner.strategy.state.load(state)
            self._state_text = state
        logger.warning(
            "%s: recovered %d bars (%d from a snapshot, %d from the journal) in %.2fs",
            ext_name,
            store.bars,
            after,
            store.bars - after,
            time.perf_counter() - started,
        )

    def _restore_snapshot(self) -> tuple[int, int]:
        """Load the latest snapshot when the account and strategy are all that read bars.

        Returns the bars and events of the journal it stands for ((0, 0): none,
        replay it all).
        """
        from finchan.trade._snapshot import load_snapshot, restore_snapshot
        from finchan.trade.bar import BAR_EVENT

        assert self.store is not None
        snap = self.store.snapshot() if self._snapshots else None
        if snap is None:
            return 0, 0
        account = self.env.get_ext_obj("finchan.exts.sim_broker", None)
        runner = self.env.get_ext_obj("finchan.exts.strategy", None)
        if account is None or runner is None:
            return 0, 0
        known = {account.on_bar, runner.strategy.on_bar, self.on_bar}
        others = [h for h in self.env.dispatcher.subscribers(BAR_EVENT) if h not in known]
        if others:
            # another bar handler builds state the snapshot does not hold
            logger.info("%s: snapshot not used: other bar handlers %s", ext_name, others)
            return 0, 0
        seq, data, events = snap
        try:
            state = load_snapshot(self.env, data)
        except Exception as exc:
            # e.g. the strategy's code changed: the journal still rebuilds it all
            logger.warning(
                "%s: the snapshot at bar %d cannot be loaded (%s: %s); "
                "replaying the whole journal", ext_name, seq, type(exc).__name__, exc,
            )  # fmt: skip
            return 0, 0
        restore_snapshot(self.env, account, runner.strategy, state)
        self._snapshot_at = seq
        return seq, events

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
            **_fast_connection(self.options.url),
        )  # fmt: skip
        self._client = client
        client.set_response_callback("XREADGROUP", _raw_reply)
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
            except _Malformed as exc:
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
            await self._in_flight[-1].wait()
        self._raise_commit_error()

    def bars_at(self, ts: float) -> list[Any]:
        """The bars of time ``ts`` put and not yet handled (the broker's cross-symbol rule)."""
        return self._put_bars.at(ts)

    def on_batch(self, event: Any) -> None:
        """Handler of the batch marker: every bar before it was handled; queue its commit."""
        self._put_bars.drop_before(event.timestamp)
        self._commits.append((self._take_applied(), event))
        committer = self._committer
        if committer is None or committer.done():
            loop = asyncio.get_running_loop()
            self._committer = loop.create_task(self._commit_loop(), name="finchan commit")

    def _raise_commit_error(self) -> None:
        error = self._commit_error
        if error is not None:
            raise RunError(f"{ext_name}: committing the state failed: {error}") from error

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
        record = _pairs(flat)
        record[b"dead.stream"] = key
        record[b"dead.id"] = msg_id
        record[b"dead.reason"] = reason.encode()
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(target, record)
            pipe.xack(key, self.options.group, msg_id)
            await pipe.execute()
        self.dead_lettered += 1

    def _refresh_results(self) -> None:
        """Rewrite the live directory's result files when due (each file replaced whole)."""
        interval = self.options.results_interval
        now = time.monotonic()
        if not interval or now < self._results_due:
            return
        self._results_due = now + interval
        runner = self.env.get_ext_obj("finchan.exts.strategy", None)
        run_dir = getattr(runner, "run_dir", None)
        if run_dir is None:
            return
        import os
        import shutil

        from finchan.trade.result import BacktestResult

        scratch = run_dir / ".refresh"
        try:
            BacktestResult(runner.account, meta=runner.meta()).save(scratch, report=False)
            for path in scratch.iterdir():
                os.replace(path, run_dir / path.name)
        except Exception as exc:  # results are a view; the run goes on
            logger.warning("%s: refreshing the results in %s failed: %s", ext_name, run_dir, exc)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    async def _status(self) -> None:
        """Log the status line when it is due: rate, lag, open orders, positions, equity."""
        interval = self.options.status_interval
        now = time.monotonic()
        if not interval or now < self._status_due:
            return
        self._status_due = now + interval
        lag = 0
        try:
            for key in self._keys:
                for group in await self._client.xinfo_groups(key):
                    if group["name"].decode() == self.options.group:
                        lag += group.get("lag") or 0
        except Exception:  # a status line is not worth failing for
            lag = -1
        bars = self.store.bars if self.store is not None else self.received
        rate = (bars - self._status_bars) / max(now - self._status_time, 1e-9)
        self._status_bars, self._status_time = bars, now
        account = self.env.get_ext_obj("finchan.exts.sim_broker", None)
        if account is None:
            logger.info("status: %d bars, %.0f bars/s, lag %s", bars, rate, lag)
            return
        broker = account.broker
        positions = {s: p.qty for s, p in broker.portfolio.positions.items() if p.qty}
        logger.info(
            "status: %d bars, %.0f bars/s, lag %s, open orders %d, positions %s, equity %.2f",
            bars,
            rate,
            lag if lag >= 0 else "?",
            len(broker.open_orders()),
            positions or "none",
            broker.portfolio.equity,
        )

    # -- message -> bar -----------------------------------------------------------------
    def _make_parser(self) -> Any:
        """The message -> bar function: a fast path for well-formed messages.

        A message comes as Redis sends it, ``[field, value, field, value, ...]``
        (no dict per message). The positions of the bar's fields are worked
        out once per field layout (a publisher sends one layout), then each
        message is checked against that layout and read by position.
        """
        f = self._field
        wanted = (f["symbol"], f["ts"], f["open"], f["high"], f["low"], f["close"], f["volume"])
        make = self._bar_class
        isfinite = math.isfinite
        slow = self._to_bar_checked
        mapped = self._symbols
        symbols: dict[bytes, str] = {}
        # the last layout seen (its field names) and where the bar's fields are in it
        layout: list[Any] = [None, None]

        def positions(names: list[bytes]) -> tuple[int, ...] | None:
            # the last occurrence of a repeated name wins, as in a dict
            where = {name: 2 * i + 1 for i, name in enumerate(names)}
            at = tuple(where.get(name, -1) for name in wanted)
            # ts, open, high, low, close are required here; the slow path says why
            return None if min(at[1:6]) < 0 else at

        def to_bar(env: Any, key: bytes, flat: list[bytes]) -> Any:
            names = flat[0::2]
            if names != layout[0]:
                layout[0], layout[1] = names, positions(names)
            at = layout[1]
            if at is None:
                return slow(env, key, flat)
            i_sym, i_ts, i_o, i_h, i_l, i_c, i_v = at
            try:
                symbol: str | None
                if i_sym < 0:
                    symbol = mapped[key]
                else:
                    raw_symbol = flat[i_sym]
                    symbol = symbols.get(raw_symbol)
                    if symbol is None:
                        symbol = symbols[raw_symbol] = raw_symbol.decode()
                ts = float(flat[i_ts])
                o = float(flat[i_o])
                h = float(flat[i_h])
                lo = float(flat[i_l])
                c = float(flat[i_c])
                v = 0.0 if i_v < 0 else float(flat[i_v])
            except (KeyError, ValueError, UnicodeDecodeError):
                return slow(env, key, flat)  # says what is wrong
            if not isfinite(ts + o + h + lo + c + v):
                return slow(env, key, flat)
            return make(env, symbol, ts, o, h, lo, c, v)

        return to_bar

    def _to_bar_checked(self, env: Any, key: bytes, flat: list[bytes]) -> Any:
        f = self._field
        fields = _pairs(flat)
        raw_symbol = fields.get(f["symbol"])
        if raw_symbol is not None:
            symbol = raw_symbol.decode()
        else:
            mapped = self._symbols.get(key)
            if mapped is None:
                raise _Malformed(f"no {f['symbol'].decode()!r} field")
            symbol = mapped
        raw_ts = fields.get(f["ts"])
        if raw_ts is not None:
            ts = _number(raw_ts, f["ts"])
        else:
            raw_dt = fields.get(f["datetime"])
            if raw_dt is None:
                raise _Malformed(f"no {f['ts'].decode()!r} or {f['datetime'].decode()!r} field")
            ts = self._parse_datetime(raw_dt)
        values = []
        for name in ("open", "high", "low", "close"):
            raw = fields.get(f[name])
            if raw is None:
                raise _Malformed(f"no {f[name].decode()!r} field")
            values.append(_number(raw, f[name]))
        raw_volume = fields.get(f["volume"])
        volume = 0.0 if raw_volume is None else _number(raw_volume, f["volume"])
        return self._bar_class(env, symbol, ts, values[0], values[1], values[2], values[3], volume)

    def _parse_datetime(self, raw: bytes) -> float:
        try:
            value = datetime.fromisoformat(raw.decode())
        except (ValueError, UnicodeDecodeError):
            raise _Malformed(f"datetime {raw!r} is not ISO 8601") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self._tz)
        return value.timestamp()


def _fast_connection(url: str) -> dict[str, Any]:
    """``connection_class`` packing commands with hiredis (C) for plain TCP URLs, else ``{}``.

    redis-py's asyncio connection packs every argument in Python: an
    ``XACK`` of 1,000 ids costs about 3 microseconds per id; hiredis packs it
    at C speed.
    """
    if not url.startswith("redis://"):
        return {}
    try:
        import hiredis
        import redis.asyncio as aioredis
    except ImportError:
        return {}
    pack: Any = getattr(hiredis, "pack_command", None)
    if pack is None:
        return {}

    class HiredisPackedConnection(aioredis.Connection):
        def pack_command(self, *args: Any) -> list[bytes]:
            first = args[0]
            # "XINFO GROUPS" style names are split by redis-py's packer; floats
            # are formatted by redis-py's encoder: leave both to it
            if (b" " in first if isinstance(first, bytes) else " " in first) or any(
                arg.__class__ is float for arg in args
            ):
                return super().pack_command(*args)
            return [pack(args)]

    return {"connection_class": HiredisPackedConnection}


def _commit(store: Any, work: list[tuple[Any, ...]]) -> None:
    """Commit batches taken by ``_take_applied`` in one transaction (in the committer thread).

    The journal rows are made here, off the event loop.
    """
    from finchan.trade.journal import CommitBatch, journal_rows

    store.commit_many(
        [CommitBatch(journal_rows(bars), *rest) for bars, *rest in work]
    )


def _pairs(flat: list[bytes]) -> dict[bytes, bytes]:
    """A message's ``[field, value, ...]`` as a dict (the last of a repeated field wins)."""
    it = iter(flat)
    return dict(zip(it, it))


def _raw_reply(response: Any, **options: Any) -> Any:
    """``XREADGROUP``'s reply nearly as Redis sends it: ``[(key, [[id, [field, value, ...]],
    ...]), ...]`` (RESP3 sends a map of keys, RESP2 a list of pairs).

    redis-py's own callback makes a dict of every message; the parser reads
    the flat list by position instead.
    """
    if isinstance(response, dict):
        return list(response.items())
    return response


def _number(raw: bytes, name: bytes) -> float:
    try:
        value = float(raw)
    except ValueError:
        text = raw.decode(errors="replace")
        raise _Malformed(f"{name.decode()} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise _Malformed(f"{name.decode()} is {value}")
    return value


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
