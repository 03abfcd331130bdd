"""The sweep's results store: one SQLite file, one row per finished task.

Why SQLite and not Parquet parts: a result is committed in one transaction
(a killed driver leaves whole rows only, never a torn file), the task's key is
the primary key (a result cannot be stored twice, so a rerun after a crash
cannot duplicate a combination), and "what is done" is one indexed query.
Parquet parts would need a file per result plus rename tricks for the same
guarantees; the final table is written as Parquet (and CSV) from the store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from finchan.errors import ConfigError, StoreError

__all__ = ["ResultStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,      -- stage/window/params: a task is stored at most once
    seq INTEGER NOT NULL,      -- arrival order
    stage TEXT NOT NULL,       -- search, train, test
    window INTEGER NOT NULL,   -- walk-forward window, -1 outside walk-forward
    params TEXT NOT NULL,      -- the combination, canonical JSON
    stats TEXT,                -- the statistics, JSON; NULL when the task failed
    error TEXT,                -- one line, when the task failed
    times BLOB,                -- sampled equity: POSIX seconds, float64
    equity BLOB,               -- sampled equity values, float64
    seconds REAL NOT NULL      -- the backtest's wall time in the worker
);
"""


class ResultStore:
    """Append-only results of one sweep directory (``results.sqlite``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            # the arrival counter lives here: MAX(seq) per insert would scan the table each time
            self._seq = int(self._db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM results").fetchone()[0])
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the sweep's results store: {exc}") from None

    def check_spec(self, spec: dict[str, Any]) -> None:
        """Record the sweep's description, or refuse a directory holding another sweep."""
        text = json.dumps(spec, sort_keys=True, default=str)
        row = self._db.execute("SELECT value FROM meta WHERE key='spec'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('spec', ?)", (text,))
            return
        if row[0] != text:
            old = json.loads(row[0])
            new = json.loads(text)
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ConfigError(
                f"{self.path.parent}: holds a different sweep (differs in: {', '.join(diff)}); "
                "use another --out directory or delete this one"
            )

    def done_keys(self) -> set[str]:
        return {key for (key,) in self._db.execute("SELECT key FROM results")}

    def add(self, row: dict[str, Any]) -> bool:
        """Store one finished task; False when its key was already stored."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO results VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                row["key"],
                self._seq + 1,
                row["stage"],
                row["window"],
                row["params"],
                None if row["stats"] is None else json.dumps(row["stats"]),
                row["error"],
                row["times"],
                row["equity"],
                row["seconds"],
            ),
        )
        if cursor.rowcount != 1:
            return False
        self._seq += 1
        return True

    def rows(self, stage: str | None = None, window: int | None = None) -> Iterator[dict[str, Any]]:
        query = ("SELECT key, stage, window, params, stats, error, times, equity, seconds "
                 "FROM results")
        where: list[str] = []
        args: list[Any] = []
        if stage is not None:
            where.append("stage = ?")
            args.append(stage)
        if window is not None:
            where.append("window = ?")
            args.append(window)
        if where:
            query += " WHERE " + " AND ".join(where)
        for key, stg, win, params, stats, error, times, equity, seconds in self._db.execute(
            query + " ORDER BY seq", args
        ):
            yield {
                "key": key,
                "stage": stg,
                "window": win,
                "params": json.loads(params),
                "stats": None if stats is None else json.loads(stats),
                "error": error,
                "times": times,
                "equity": equity,
                "seconds": seconds,
            }

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        self._db.close()
