"""The live run's SQLite journal (finchan.trade.journal.LiveStore), no server."""

from __future__ import annotations

import sqlite3

import pytest

from finchan.trade.bar import Bar
from finchan.trade.journal import CommitBatch, LiveStore, journal_rows


class _StreamBar(Bar):
    __slots__ = ("stream_id", "stream_key")


def _bars(start, n, key="bars"):
    out = []
    for i in range(start, start + n):
        bar = _StreamBar(None, "X", 60.0 * i, 1.0, 2.0, 0.5, 1.5 + i, 10)
        bar.stream_key, bar.stream_id = key, f"{i}-0"
        out.append(bar)
    return out


def test_group_commits_of_any_size_keep_dispatch_order_and_consecutive_positions(tmp_path):
    store = LiveStore(tmp_path / "state.db")
    sizes = [1, store._rows_per_insert + 7, 3, 2 * store._rows_per_insert]  # several INSERTs
    start = 1
    batches = []
    for n in sizes:
        bars = _bars(start, n)
        batches.append(CommitBatch(journal_rows(bars), {"bars": bars[-1].stream_id}))
        start += n
    store.commit_many(batches[:2])
    store.commit_many(batches[2:])
    total = sum(sizes)
    assert store.bars == total and store.last_ids == {"bars": f"{total}-0"}
    store.close()
    db = sqlite3.connect(tmp_path / "state.db")
    rows = db.execute("SELECT seq, stream, id, close, volume FROM journal ORDER BY seq").fetchall()
    assert rows == [(i, "bars", f"{i}-0", 1.5 + i, 10.0) for i in range(1, total + 1)]
    db.close()


def test_bars_from_elsewhere_are_journaled_without_a_stream(tmp_path):
    store = LiveStore(tmp_path / "state.db")
    plain = Bar(None, "Y", 120.0, 1, 2, 0.5, 1.5, 7)
    rows = journal_rows([*_bars(1, 1), plain])
    assert rows[1] == (None, None, "Y", 120.0, 1, 2, 0.5, 1.5, 7.0)
    store.commit_many([CommitBatch(rows, {"bars": "1-0"})])
    assert [b.symbol for b in store.journal(None)] == ["X", "Y"]
    assert store.journal_ids() == [("bars", "1-0"), (None, None)]
    store.close()


def test_a_failed_commit_leaves_the_journal_and_positions_as_they_were(tmp_path):
    store = LiveStore(tmp_path / "state.db")
    store.commit_many([CommitBatch(journal_rows(_bars(1, 2)), {"bars": "2-0"})])
    again = _bars(2, 2)  # 2-0 again: the journal's UNIQUE (stream, id) refuses it
    with pytest.raises(sqlite3.IntegrityError):
        store.commit_many(
            [CommitBatch(journal_rows(again), {"bars": "3-0"}, events=[(2, "x", 1.0, "{}")])]
        )
    assert (store.bars, store.events, store.last_ids) == (2, 0, {"bars": "2-0"})
    store.commit_many([CommitBatch(journal_rows(_bars(3, 1)), {"bars": "3-0"})])
    assert [i for _, i in store.journal_ids()] == ["1-0", "2-0", "3-0"]
    store.close()


def test_a_replay_warns_when_a_lagging_stream_put_the_journal_out_of_time_order(tmp_path, caplog):
    from finchan.trade.journal import JournalFeed

    store = LiveStore(tmp_path / "state.db")
    late = _bars(1, 1, key="slow")[0]  # time 60, dispatched after the fast stream's 120 and 180
    fast = _bars(2, 2, key="fast")
    store.commit_many([CommitBatch(journal_rows([*fast, late]), {"fast": "3-0", "slow": "1-0"})])
    store.close()
    with caplog.at_level("WARNING", logger="finchan.trade.journal"):
        feed = JournalFeed(None, tmp_path / "state.db")
    assert [bar.timestamp for bar in feed.events_until(1e9)] == [120.0, 180.0, 60.0]
    assert [r.getMessage().split(": ", 1)[1] for r in caplog.records] == [
        "1 bar(s) were dispatched live after a newer bar of another stream (a stream lagged); "
        "the replay takes them in time order, so its fills may differ from the live run's"
    ]
