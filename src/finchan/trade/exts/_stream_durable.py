"""The durable state of :mod:`finchan.trade.exts.redis_stream`: journal, commits, recovery.

:class:`DurableState` is the source's half that keeps what was dispatched:

* the journal handlers note every bar and every other event dispatched;
* at each batch marker the batch is taken (bars, last applied id per stream,
  status, the strategy's ``self.state`` when changed, a snapshot when due)
  and queued for the committer task, which writes everything waiting in ONE
  transaction in a worker thread (group commit), and only then acknowledges
  the batches (``XACK``) and frees their place in the read-ahead;
* on restart the journal is handed to the bar handlers again (from the
  latest snapshot when it can be), so the broker and the strategy are as
  they were, before anything new is read.

The reader (:class:`~finchan.trade.exts.redis_stream.RedisStreamSource`)
provides the connection (``_ack``, ``_client``) and the read-ahead
bookkeeping (``_in_flight``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from finchan.errors import ConfigError, RunError
from finchan.event import Event
from finchan.trade._snapshot import Snapshots

__all__ = ["BATCH_EVENT", "EXT_NAME", "DurableState"]

EXT_NAME = "finchan.exts.redis_stream"

# the extension's logger: its records keep the extension's name
logger = logging.getLogger("finchan.trade.exts.redis_stream")

#: name of the marker event that closes each batch (its handler acknowledges the batch)
BATCH_EVENT = "finchan.redis_stream.batch"

# the timer source's event (finchan.exts.timer_source.TIMER_EVENT; not imported: optional ext)
_TIMER_EVENT = "timer_source.timer"

ext_name = EXT_NAME

# seconds a commit of less than a batch of messages waits for more batches to
# join it: at 10,000 msg/s every read is a small batch, and a commit (worker
# thread, fsync, XACK) per read cost the loop more than the bars did. Bars
# are dispatched meanwhile; only their acknowledgement waits (a crash loses
# nothing: unacknowledged messages are read again)
_COMMIT_LINGER = 0.005


class DurableState:
    """The journal, commit and recovery half of the Redis stream source (a mixin)."""

    if TYPE_CHECKING:
        # provided by the reader
        env: Any
        options: Any
        _keys: list[bytes]
        _client: Any
        _in_flight: deque[asyncio.Event]
        _in_flight_messages: int
        received: int

        async def _ack(self, acks: dict[bytes, list[bytes]]) -> None: ...

    def _init_state(self, snapshot_bars: int, results_interval: float) -> None:
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
        self._snapshots = snapshot_bars > 0
        self._snapshotter = Snapshots()
        # batches whose marker was reached, waiting for the committer (FIFO)
        self._commits: list[tuple[Any, Any]] = []
        self._committer: asyncio.Task[None] | None = None
        self._commit_error: Exception | None = None
        self._executor: Any = None
        self._status_due = 0.0
        self._results_due = time.monotonic() + results_interval
        self._status_bars = 0
        self._status_time = time.monotonic()

    def _open_state(self) -> None:
        """Open the durable state (the ``state`` option), check it is this strategy's."""
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

    def _close_state(self) -> None:
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
        snapshot = part = None
        every = self.options.snapshot_bars
        if (
            self._snapshots
            and runner is not None
            and self._taken > self._snapshot_at
            and (final or self._taken - self._snapshot_at >= every)
        ):
            try:
                core, number, data = self._snapshotter.take(self.env, account, runner.strategy)
                snapshot, part = (self._taken, core), (number, data)
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
        return applied, last, status, state, snapshot, events, part

    async def _commit_loop(self) -> None:
        """Commit the queued batches (all that are waiting, in one transaction), then XACK.

        Runs beside the dispatcher: the SQLite commit and its fsync happen in a
        worker thread while the next bars are dispatched. A batch is
        acknowledged, and its place in the read-ahead freed, only once committed.
        """
        from finchan.trade.journal import stream_id_key

        loop = asyncio.get_running_loop()
        while self._commits:
            if sum(event.messages for _, event in self._commits) < self.options.batch:
                # a few small batches: let more join this commit (see _COMMIT_LINGER)
                await asyncio.sleep(_COMMIT_LINGER)
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
                for _, event in items:
                    self._in_flight_messages -= event.messages
                    event.done.set()
                # markers are handled in time order, batches were put in read
                # order: with several streams a later batch may be done first.
                # Keep the oldest batch still open at the front (the reader waits on it)
                in_flight = self._in_flight
                while in_flight and in_flight[0].is_set():
                    in_flight.popleft()

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
            state = load_snapshot(self.env, data, self.store.snapshot_parts())
        except Exception as exc:
            # e.g. the strategy's code changed: the journal still rebuilds it all
            logger.warning(
                "%s: the snapshot at bar %d cannot be loaded (%s: %s); "
                "replaying the whole journal", ext_name, seq, type(exc).__name__, exc,
            )  # fmt: skip
            return 0, 0
        restore_snapshot(self.env, account, runner.strategy, state)
        self._snapshotter.resume(state)
        self._snapshot_at = seq
        return seq, events

    def _queue_commit(self, event: Any) -> None:
        """A batch's marker was reached (every bar before it was handled): queue its commit."""
        self._commits.append((self._take_applied(), event))
        committer = self._committer
        if committer is None or committer.done():
            loop = asyncio.get_running_loop()
            self._committer = loop.create_task(self._commit_loop(), name="finchan commit")

    def _raise_commit_error(self) -> None:
        error = self._commit_error
        if error is not None:
            raise RunError(f"{ext_name}: committing the state failed: {error}") from error

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


def _commit(store: Any, work: list[tuple[Any, ...]]) -> None:
    """Commit batches taken by ``_take_applied`` in one transaction (in the committer thread).

    The journal rows are made here, off the event loop.
    """
    from finchan.trade.journal import CommitBatch, journal_rows

    store.commit_many(
        [CommitBatch(journal_rows(bars), *rest) for bars, *rest in work]
    )
