"""The durable state of a live run: its journal, input positions and status, in SQLite.

A live run keeps ``state.db`` in its directory (``work_dir/live/<name>/``).
Each batch of bars the run handled is committed in ONE transaction
(``synchronous=FULL``, write-ahead log):

* ``journal``: every bar dispatched, in dispatch order (``seq``), with its
  stream key and message id;
* ``events``: every other event the run dispatched (timer events, the
  strategy's own), with its time, its place among the bars (``pos``: the
  journal's bars dispatched before it) and its keyword arguments as JSON
  (a timer event's job as its id);
* ``input``: the last applied message id per stream;
* ``snapshot``: the latest pickle of the account and strategy
  (:mod:`finchan.trade._snapshot`) with the journal position it stands for,
  so a restart hands only the journal's tail to the handlers;
* ``status``: a snapshot of the account (cash, equity, positions, open
  orders, fills) for ``finchan status``, and the strategy's ``self.state``
  as JSON (row ``state``, written when it changed).

The broker's orders, fills and positions and the strategy's other variables
are not stored as such: they are a deterministic function of the journal
(the simulated broker fills by the backtest's rules), so a restart rebuilds
them exactly by handing the journal to the same handlers before reading on,
and order ids continue where they stopped. ``finchan replay`` runs the
journal as a backtest (:class:`JournalFeed`) and gives the live run's fills.

Size: the SQLite store, its Redis twin and the replay of a live run share
the journal's format (rows, positions, snapshots); one module keeps the
format in one place.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple

from finchan.errors import DataError
from finchan.interface.event_source import AbsEventSource
from finchan.trade.bar import Bar

__all__ = [
    "STATE_FILE",
    "CommitBatch",
    "JournalFeed",
    "LiveStore",
    "RedisLiveStore",
    "format_status",
    "journal_rows",
    "read_status",
    "replay_live_run",
    "stream_id_key",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    stream TEXT,
    id TEXT,
    symbol TEXT NOT NULL,
    ts REAL NOT NULL,
    open REAL NOT NULL,
    high REAL NOT NULL,
    low REAL NOT NULL,
    close REAL NOT NULL,
    volume REAL NOT NULL,
    UNIQUE (stream, id)
);
CREATE TABLE IF NOT EXISTS input (stream TEXT PRIMARY KEY, last_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS status (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
    seq INTEGER PRIMARY KEY, data BLOB NOT NULL, events INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS snapshot_part (n INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    n INTEGER PRIMARY KEY,
    pos INTEGER NOT NULL,
    name TEXT NOT NULL,
    ts REAL NOT NULL,
    data TEXT NOT NULL
);
"""

logger = logging.getLogger(__name__)

#: the timer events a replay dispatches again (their job is found by its id)
TIMER_EVENT = "timer_source.timer"

STATE_FILE = "state.db"


def stream_id_key(message_id: str | bytes) -> tuple[int, int]:
    """A Redis stream id (``"1700000000000-3"``) as a tuple that sorts like the ids."""
    text = message_id.decode() if isinstance(message_id, bytes) else message_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class CommitBatch(NamedTuple):
    """What one batch commits (:meth:`LiveStore.commit_many`)."""

    #: journal rows ``(stream, id, symbol, ts, open, high, low, close, volume)``
    #: (:func:`journal_rows`), in dispatch order
    rows: Sequence[tuple[Any, ...]]
    #: stream key -> last applied message id
    last_ids: Mapping[str, str]
    #: the status snapshot (:func:`status_snapshot`), None: none
    status: Mapping[str, Any] | None = None
    #: the strategy's ``self.state`` as JSON, None: unchanged
    state: str | None = None
    #: ``(journal position, pickle)``, None: none: a snapshot's core
    snapshot: tuple[int, bytes] | None = None
    #: the other events dispatched, ``(pos, name, ts, json)``
    events: Sequence[tuple[int, str, float, str]] = ()
    #: ``(number, pickle)`` of the snapshot's new history part
    #: (:class:`~finchan.trade._snapshot.Snapshots`; number 0 drops the older ones)
    snapshot_part: tuple[int, bytes] | None = None


_STREAM_ROW = attrgetter(
    "stream_key", "stream_id", "symbol", "timestamp", "open", "high", "low", "close", "volume"
)


def _row_values(bar: Any) -> tuple[Any, ...]:
    return (bar.symbol, bar.timestamp, bar.open, bar.high, bar.low, bar.close,
            float(bar.volume))  # fmt: skip


def journal_rows(bars: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The journal rows of dispatched bars; a bar from a stream carries its key and id.

    One C-level pass for stream bars (the live path: no Python per bar).
    """
    try:
        return list(map(_STREAM_ROW, bars))
    except AttributeError:  # some bars came from elsewhere (no stream key or id)
        return [
            (getattr(bar, "stream_key", None), getattr(bar, "stream_id", None), *_row_values(bar))
            for bar in bars
        ]


def _merge(batches: Iterable[CommitBatch], events_before: int) -> tuple[Any, ...]:
    """The batches of one group commit as one: rows, ids, status, state, snapshot, events,
    snapshot parts.

    Events are numbered from ``events_before``; a snapshot stands for the
    journal and the events up to its batch. Every snapshot's part is kept
    (the last core stands on them all).
    """
    rows: list[tuple[Any, ...]] = []
    last_ids: dict[str, str] = {}
    status = state = None
    snapshot: tuple[int, bytes, int] | None = None
    events: list[tuple[int, int, str, float, str]] = []
    parts: list[tuple[int, bytes]] = []
    n = events_before
    for batch in batches:
        rows.extend(batch.rows)
        last_ids.update(batch.last_ids)
        if batch.status is not None:
            status = batch.status
        if batch.state is not None:
            state = batch.state
        for pos, name, ts, data in batch.events:
            n += 1
            events.append((n, pos, name, ts, data))
        if batch.snapshot is not None:
            snapshot = (*batch.snapshot, n)
        if batch.snapshot_part is not None:
            parts.append(batch.snapshot_part)
    return rows, last_ids, status, state, snapshot, events, parts


class LiveStore:
    """The SQLite file holding a live run's journal, input positions and status.

    Example
    -------
    >>> import tempfile, pathlib
    >>> from finchan.trade.bar import Bar
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.db"
    >>> store = LiveStore(path)
    >>> store.commit([(Bar(None, "X", 60.0, 1, 2, 0.5, 1.5, 10), "bars", "1-0")], {"bars": "1-0"})
    >>> store.bars, store.last_ids, [b.close for b in store.journal(None)]
    (1, {'bars': '1-0'}, [1.5])
    >>> store.close()
    """

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.exists():
                raise DataError(f"{self.path}: no live state here (is it a live run directory?)")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # commits run in the live run's worker thread (one at a time)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        try:
            row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM journal").fetchone()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path}: not a finchan live state file: {exc}") from None
        #: bars in the journal
        self.bars: int = row[0]
        try:
            row = self._db.execute("SELECT COALESCE(MAX(n), 0) FROM events").fetchone()
        except sqlite3.OperationalError:  # a read-only file of an older layout
            row = (0,)
        #: other events in the journal
        self.events: int = row[0]
        #: last applied message id per stream key
        self.last_ids: dict[str, str] = dict(self._db.execute("SELECT stream, last_id FROM input"))
        # multi-row INSERT statements by row count (see _insert_rows)
        self._inserts: dict[int, str] = {}
        limit = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._rows_per_insert = max(1, min(500, limit // 9))

    def commit(
        self,
        applied: Iterable[tuple[Any, str | None, str | None]],
        last_ids: Mapping[str, str],
        status: Mapping[str, Any] | None = None,
    ) -> None:
        """Append ``(bar, stream, id)`` rows, move input positions, store ``status``: atomically."""
        rows = [(stream, mid, *_row_values(bar)) for bar, stream, mid in applied]
        self.commit_many([CommitBatch(rows, last_ids, status)])

    def commit_many(self, batches: Iterable[CommitBatch]) -> None:
        """Several batches in ONE transaction (group commit), in order.

        Each batch's journal rows (:func:`journal_rows`), input positions,
        status, strategy state (None: unchanged), snapshot and events go in
        together; the last status, state and snapshot given win.
        """
        rows, last_ids, status, state, snapshot, events, parts = _merge(batches, self.events)
        seq = self.bars + len(rows)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._insert_rows(rows)
            if events:
                db.executemany("INSERT INTO events VALUES (?,?,?,?,?)", events)
            db.executemany(
                "INSERT INTO input VALUES (?, ?) "
                "ON CONFLICT(stream) DO UPDATE SET last_id=excluded.last_id",
                list(last_ids.items()),
            )
            if status is not None:
                db.execute(
                    "INSERT OR REPLACE INTO status VALUES ('status', ?)",
                    (json.dumps({**status, "bars": seq}),),
                )
            if state is not None:
                db.execute("INSERT OR REPLACE INTO status VALUES ('state', ?)", (state,))
            if snapshot is not None:
                if snapshot[0] > seq:
                    raise ValueError(f"a snapshot at {snapshot[0]} beyond the journal's {seq}")
                db.execute("DELETE FROM snapshot")
                db.execute("INSERT INTO snapshot VALUES (?, ?, ?)", snapshot)
            for number, data in parts:
                if number == 0:  # a run's first snapshot: the parts start afresh
                    db.execute("DELETE FROM snapshot_part")
                db.execute("INSERT INTO snapshot_part VALUES (?, ?)", (number, data))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.bars = seq
        self.events += len(events)
        self.last_ids.update(last_ids)

    def _insert_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Append journal rows with multi-row INSERTs; ``seq`` continues by itself.

        One statement per ``_rows_per_insert`` rows, not one per row: the
        commit runs in a worker thread, and sqlite3 hands the GIL back and
        forth around every statement it steps; per row, that ping-pong with
        the busy event loop cost more than the insert. ``seq`` is the rowid,
        which SQLite gives as one more than the largest (rows are never
        deleted): the rows' positions, with no Python per row.
        """
        db = self._db
        per = self._rows_per_insert
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            n = len(chunk)
            sql = self._inserts.get(n)
            if sql is None:
                sql = self._inserts[n] = (
                    "INSERT INTO journal (stream, id, symbol, ts, open, high, low, close, volume) "
                    "VALUES " + ",".join(["(?,?,?,?,?,?,?,?,?)"] * n)
                )
            db.execute(sql, list(chain.from_iterable(chunk)))

    def journal(self, env: Any, batch: int = 10_000, after: int = 0) -> Iterator[Bar]:
        """The journal's bars after position ``after``, in dispatch order (created in ``env``)."""
        cursor = self._db.execute(
            "SELECT symbol, ts, open, high, low, close, volume FROM journal WHERE seq > ? "
            "ORDER BY seq",
            (after,),
        )
        while True:
            rows = cursor.fetchmany(batch)
            if not rows:
                return
            for row in rows:
                yield Bar(env, *row)

    def journal_events(self, after: int = 0) -> list[tuple[int, str, float, dict[str, Any]]]:
        """``(pos, name, ts, kwargs)`` of the journaled events after the ``after``-th, in order.

        ``pos``: the number of journal bars dispatched before the event.
        """
        try:
            rows = self._db.execute(
                "SELECT pos, name, ts, data FROM events WHERE n > ? ORDER BY n", (after,)
            ).fetchall()
        except sqlite3.OperationalError:
            return []
        return [(pos, name, ts, json.loads(data)) for pos, name, ts, data in rows]

    def journal_ids(self) -> list[tuple[str | None, str | None]]:
        """``(stream, id)`` of every journal row, in order."""
        return list(self._db.execute("SELECT stream, id FROM journal ORDER BY seq"))

    def status(self) -> dict[str, Any]:
        """The last committed status snapshot (``{}`` before the first commit)."""
        row = self._db.execute("SELECT value FROM status WHERE key='status'").fetchone()
        return json.loads(row[0]) if row else {}

    def snapshot(self) -> tuple[int, bytes, int] | None:
        """The latest snapshot: ``(bars, bytes, events)`` it stands for, or None."""
        try:
            row = self._db.execute("SELECT seq, data, events FROM snapshot").fetchone()
        except sqlite3.OperationalError:  # a read-only file of an older layout
            return None
        return (row[0], row[1], row[2]) if row else None

    def snapshot_parts(self) -> list[bytes]:
        """The history parts the latest snapshot's core stands on, in order."""
        try:
            return [row[0] for row in self._db.execute("SELECT data FROM snapshot_part ORDER BY n")]
        except sqlite3.OperationalError:  # a read-only file of an older layout
            return []

    def strategy_state(self) -> str | None:
        """The last committed ``self.state`` of the strategy, as JSON (None: never written)."""
        row = self._db.execute("SELECT value FROM status WHERE key='state'").fetchone()
        return row[0] if row else None

    def set_run_info(self, info: Mapping[str, Any]) -> None:
        """Store facts about the run (its config directory) for ``finchan replay``."""
        self._db.execute(
            "INSERT OR REPLACE INTO status VALUES ('run', ?)",
            (json.dumps(dict(info), default=str),),
        )

    def run_info(self) -> dict[str, Any]:
        row = self._db.execute("SELECT value FROM status WHERE key='run'").fetchone()
        return json.loads(row[0]) if row else {}

    def close(self) -> None:
        self._db.close()


def read_status(live_dir: str | Path) -> dict[str, Any]:
    """The stored status of the live run in ``live_dir`` (what ``finchan status`` prints)."""
    store = LiveStore(Path(live_dir) / STATE_FILE, readonly=True)
    try:
        status = store.status()
        status["bars"] = store.bars
        status["last_ids"] = store.last_ids
        return status
    finally:
        store.close()


class JournalFeed(AbsEventSource):
    """A live run's journal as a backtest source: the bars in the order the run handled them."""

    def __init__(self, env: Any, path: str | Path) -> None:
        store = LiveStore(path, readonly=True)
        try:
            bars: list[Any] = list(store.journal(env))
            timers = [e for e in store.journal_events() if e[1] == TIMER_EVENT]
        finally:
            store.close()
        late = _late_bars(bars)
        if late:
            logger.warning(
                "%s: %d bar(s) were dispatched live after a newer bar of another stream "
                "(a stream lagged); the replay takes them in time order, so its fills may "
                "differ from the live run's", path, late,
            )  # fmt: skip
        if timers:
            # each timer event at its place after the bars dispatched before it,
            # stamped with the last of them (the backtest keeps ties in order);
            # its job is found when it is handed out (jobs are made in on_start)
            merged: list[Any] = []
            start = 0
            for pos, _name, ts, data in timers:
                merged.extend(bars[start:pos])
                start = max(start, pos)
                stamp = bars[pos - 1].timestamp if pos else (bars[0].timestamp if bars else ts)
                merged.append(_JournalTimer(stamp, data.get("job")))
            merged.extend(bars[start:])
            bars = merged
        self._env = env
        self._bars = bars
        self._pos = 0
        self.exhausted = not self._bars
        self._path = Path(path)

    @property
    def name(self) -> str:
        return f"JournalFeed({self._path})"

    def first_timestamp(self) -> float | None:
        return self._bars[self._pos].timestamp if self._pos < len(self._bars) else None

    def events_until(self, limit_ts: float) -> list[Any]:
        bars, start = self._bars, self._pos
        end = start
        while end < len(bars) and bars[end].timestamp < limit_ts:
            end += 1
        self._pos = end
        self.exhausted = end >= len(bars)
        out = bars[start:end]
        for i, item in enumerate(out):
            if item.__class__ is _JournalTimer:
                out[i] = item.event(self._env)
        return out


def _late_bars(bars: list[Any]) -> int:
    """How many bars come after a bar of a later time (the journal is in dispatch order)."""
    late = 0
    newest = float("-inf")
    for bar in bars:
        ts = bar.timestamp
        if ts < newest:
            late += 1
        elif ts > newest:
            newest = ts
    return late


class _JournalTimer:
    """A journaled timer event, made into an event with its job when handed out."""

    __slots__ = ("job", "timestamp")

    def __init__(self, timestamp: float, job: Any) -> None:
        self.timestamp = timestamp
        self.job = job

    def event(self, env: Any) -> Any:
        from finchan.event import Event

        scheduler = env.get_ext_obj("finchan.exts.timer_source", None)
        job = getattr(scheduler, "_jobs", {}).get(self.job)
        if job is None:
            raise DataError(
                f"the journal has a timer event of job {self.job}, which the strategy "
                "did not schedule in this replay (is finchan.exts.timer_source enabled?)"
            )
        return Event(env, TIMER_EVENT, dt=self.timestamp, job=job)


def status_snapshot(account: Any, last_ts: float | None) -> dict[str, Any]:
    """What the status stores of the account after a batch."""
    if account is None:
        return {"updated": time.time(), "last_ts": last_ts}
    broker = account.broker
    portfolio = broker.portfolio
    return {
        "updated": time.time(),
        "last_ts": last_ts,
        "cash": portfolio.cash,
        "equity": portfolio.equity,
        "positions": {s: p.qty for s, p in sorted(portfolio.positions.items()) if p.qty},
        "open_orders": len(broker.open_orders()),
        "orders": len(broker.orders),
        "fills": len(broker.fills),
    }


def format_status(status: Mapping[str, Any], tz: Any = None) -> list[str]:
    """The lines ``finchan status`` prints for a stored status."""
    from datetime import UTC, datetime

    def when(ts: float | None) -> str:
        if ts is None:
            return "-"
        return datetime.fromtimestamp(ts, tz or UTC).isoformat(sep=" ")

    lines = [
        f"bars applied: {status.get('bars', 0):,}",
        f"last bar: {when(status.get('last_ts'))}",
        f"last applied ids: {status.get('last_ids') or '-'}",
        f"committed: {when(status.get('updated'))}",
    ]
    if "equity" in status:
        positions = status.get("positions") or {}
        lines += [
            f"open orders: {status['open_orders']}",
            f"orders: {status['orders']}, fills: {status['fills']}",
            "positions: " + (", ".join(f"{s} {q:g}" for s, q in positions.items()) or "none"),
            f"cash: {status['cash']:,.2f}",
            f"equity: {status['equity']:,.2f}",
        ]
    return lines


def replay_live_run(live_dir: str | Path, quiet: bool = False) -> Path:
    """Run the live run's strategy as a backtest over its journal; return the run directory.

    The backtest writes ``LIVE_DIR/replay/runs/<run-id>/`` with the files of
    any run directory; its ``fills.csv`` is the live run's, byte for byte.
    """
    from ruamel.yaml import YAML

    from finchan.config import validate_config
    from finchan.env import Env
    from finchan.errors import ConfigError

    live_dir = Path(live_dir)
    config_path = live_dir / "config.yml"
    state_path = live_dir / STATE_FILE
    for path in (config_path, state_path):
        if not path.exists():
            raise DataError(f"{path}: missing (is {live_dir} a live run directory?)")
    raw = YAML(typ="safe", pure=True).load(config_path.read_text(encoding="utf-8")) or {}
    store = LiveStore(state_path, readonly=True)
    try:
        info = store.run_info()
    finally:
        store.close()
    live_options = raw.get("live_track_exts") or {}
    if "finchan.exts.strategy" not in live_options:
        raise ConfigError(f"{config_path}: live_track_exts has no finchan.exts.strategy")
    strategy = dict(live_options["finchan.exts.strategy"] or {})
    strategy.pop("name", None)
    strategy["save"] = True
    data = {
        key: value
        for key, value in raw.items()
        if key in ("version", "timezone", "seed", "ext_manager")
    }
    enabled = ["finchan.exts.strategy"]
    backtrack_exts = {
        "finchan.exts.sim_broker": live_options.get("finchan.exts.sim_broker"),
        "finchan.exts.strategy": strategy,
    }
    live_enabled = raw.get("enabled_live_exts") or raw.get("enabled_live_track_exts") or []
    timers = "finchan.exts.timer_source" in live_enabled
    if timers:
        # the strategy schedules its jobs again; their events come from the journal
        enabled.insert(0, "finchan.exts.timer_source")
        backtrack_exts["finchan.exts.timer_source"] = live_options.get("finchan.exts.timer_source")
    data.update(
        {
            "run_mode": "backtest",
            "work_dir": str((live_dir / "replay").resolve()),
            "enabled_backtrack_exts": enabled,
            "backtrack_exts": backtrack_exts,
        }
    )
    config_dir = info.get("config_dir")
    config = validate_config(
        data,
        source=str(config_path),
        config_dir=Path(config_dir) if config_dir else live_dir,
    )
    env = Env(config)
    env.quiet = quiet
    env.load_exts()
    if timers:
        from finchan.exts.timer_source import TimerSource

        for source in list(env.dispatcher.event_sources):
            if isinstance(source, TimerSource):
                env.dispatcher.deregister_event_source(source)
    env.dispatcher.register_event_source(JournalFeed(env, state_path))
    env.run()
    run_dir = env.get_ext_obj("finchan.exts.strategy").run_dir
    assert run_dir is not None
    return Path(run_dir)


class RedisLiveStore:
    """A live run's durable state in Redis: the :class:`LiveStore` API, one ``MULTI`` per commit.

    Keys under ``prefix`` (``finchan:live:<name>:``): ``journal`` (a list of
    JSON rows ``[stream, id, symbol, ts, open, high, low, close, volume]``),
    ``events`` (a list of JSON ``[pos, name, ts, data]``), ``input`` (a
    hash: stream -> last applied id), ``status`` (a hash: ``status``,
    ``state``, ``run``), ``snapshot`` (a hash: ``seq``, ``events``,
    ``data``) and ``snapshot_parts`` (a list: the snapshot's history
    parts). A commit is one ``MULTI``/``EXEC`` transaction: Redis applies
    it whole or not at all; how durable it is depends on the server's
    persistence (``appendonly yes`` with ``appendfsync always`` for the
    guarantee SQLite's ``synchronous=FULL`` gives).
    """

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        from finchan.trade.exts.redis_stream import redact_url

        self.path = f"{redact_url(url)} {prefix}*"
        self._prefix = prefix
        self._client: Any = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            self._client.ping()
        except redis.RedisError as exc:
            raise DataError(f"state {redact_url(url)}: cannot connect: {exc}") from None
        k = self._key
        self.bars: int = self._client.llen(k("journal"))
        self.events: int = self._client.llen(k("events"))
        stored: Any = self._client.hgetall(k("input"))
        self.last_ids: dict[str, str] = {key.decode(): val.decode() for key, val in stored.items()}

    def _key(self, name: str) -> str:
        return self._prefix + name

    def commit(self, applied: Any, last_ids: Mapping[str, str], status: Any = None) -> None:
        rows = [(stream, mid, *_row_values(bar)) for bar, stream, mid in applied]
        self.commit_many([CommitBatch(rows, last_ids, status)])

    def commit_many(self, batches: Iterable[CommitBatch]) -> None:
        """Like :meth:`LiveStore.commit_many`, in one ``MULTI``/``EXEC``."""
        k = self._key
        dumps = json.dumps
        rows, last_ids, status, state, snapshot, events, parts = _merge(batches, self.events)
        seq = self.bars + len(rows)
        pipe = self._client.pipeline(transaction=True)
        if rows:
            pipe.rpush(k("journal"), *[dumps([*row[:8], float(row[8])]) for row in rows])
        if events:
            pipe.rpush(k("events"), *[dumps(list(event[1:])) for event in events])
        if last_ids:
            pipe.hset(k("input"), mapping=last_ids)
        if status is not None:
            pipe.hset(k("status"), "status", dumps({**status, "bars": seq}))
        if state is not None:
            pipe.hset(k("status"), "state", state)
        if snapshot is not None:
            pipe.hset(k("snapshot"), mapping={"seq": snapshot[0], "data": snapshot[1],
                                               "events": snapshot[2]})  # fmt: skip
        for number, data in parts:
            if number == 0:  # a run's first snapshot: the parts start afresh
                pipe.delete(k("snapshot_parts"))
            pipe.rpush(k("snapshot_parts"), data)
        pipe.execute()
        self.bars = seq
        self.events += len(events)
        self.last_ids.update(last_ids)

    def journal(self, env: Any, batch: int = 10_000, after: int = 0) -> Iterator[Bar]:
        loads = json.loads
        start = after
        while True:
            rows = self._client.lrange(self._key("journal"), start, start + batch - 1)
            if not rows:
                return
            start += len(rows)
            for row in rows:
                yield Bar(env, *loads(row)[2:])

    def journal_events(self, after: int = 0) -> list[tuple[int, str, float, dict[str, Any]]]:
        out = []
        for row in self._client.lrange(self._key("events"), after, -1):
            pos, name, ts, data = json.loads(row)
            out.append((pos, name, ts, json.loads(data)))
        return out

    def journal_ids(self) -> list[tuple[str | None, str | None]]:
        return [tuple(json.loads(row)[:2]) for row in
                self._client.lrange(self._key("journal"), 0, -1)]  # fmt: skip

    def snapshot(self) -> tuple[int, bytes, int] | None:
        found = self._client.hgetall(self._key("snapshot"))
        if not found:
            return None
        return int(found[b"seq"]), found[b"data"], int(found[b"events"])

    def snapshot_parts(self) -> list[bytes]:
        return list(self._client.lrange(self._key("snapshot_parts"), 0, -1))

    def _status_field(self, field: str) -> str | None:
        value = self._client.hget(self._key("status"), field)
        return None if value is None else value.decode()

    def status(self) -> dict[str, Any]:
        text = self._status_field("status")
        return json.loads(text) if text else {}

    def strategy_state(self) -> str | None:
        return self._status_field("state")

    def set_run_info(self, info: Mapping[str, Any]) -> None:
        self._client.hset(self._key("status"), "run", json.dumps(dict(info), default=str))

    def run_info(self) -> dict[str, Any]:
        text = self._status_field("run")
        return json.loads(text) if text else {}

    def close(self) -> None:
        self._client.close()
