"""Process-wide settings that runs tune, shared safely between concurrent runs.

Several Envs may run at once in one process (threads of a sweep). The
garbage collector and ``sys.path`` belong to the whole process, so a run must
not restore them while another still relies on the change: each setting is
reference-counted. The first holder applies it and remembers the value
before, the last one to let go restores that value.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = [
    "FULL_COLLECTION_SPACING",
    "GC_THRESHOLD",
    "gc_paused",
    "quiet_gc",
    "release_sys_path",
    "use_sys_path",
]

#: gen-0 threshold of the garbage collector during a run (CPython's default is 700)
GC_THRESHOLD = 100_000

#: a full collection after a run is due once the time since the last one is
#: this many times what the last one took: at most ~2 % of the time
FULL_COLLECTION_SPACING = 50

_lock = threading.Lock()
_quiet_holders = 0
_threshold_before: tuple[int, ...] = ()
# end and duration of the last full collection quiet_gc made (perf_counter seconds)
_full_end = 0.0
_full_cost = 0.0
_pause_holders = 0
_enabled_before = True
_path_holders: dict[str, int] = {}


@contextmanager
def quiet_gc() -> Iterator[None]:
    """Fewer garbage collections while a run goes (reference-counted).

    A backtest allocates millions of short-lived events (a live run as many
    per message it reads); with the default
    threshold CPython runs a young collection every 700 of them and a full one
    every ~70,000, each walking every object the run keeps. Objects from
    before the first run are frozen out of collections and the young
    threshold is raised; cycles are still collected. The last run to finish
    restores both.

    Freezing has a price: a finished run's Env is cyclic garbage, and the
    next run froze it again before any full collection could free it, so a
    loop of backtests (a sweep worker) grew by megabytes per run without
    end. So a full collection follows a run when it is due: when the time
    since the last one is :data:`FULL_COLLECTION_SPACING` times what the
    last one took (tens of ms), at most ~2 % of the time, and a loop keeps
    only the garbage of the runs since.
    """
    global _quiet_holders, _threshold_before, _full_end, _full_cost
    with _lock:
        if _quiet_holders == 0:
            _threshold_before = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(_threshold_before[0], GC_THRESHOLD), *_threshold_before[1:])
        _quiet_holders += 1
    try:
        yield
    finally:
        with _lock:
            _quiet_holders -= 1
            if _quiet_holders == 0:
                gc.set_threshold(*_threshold_before)
                gc.unfreeze()
                start = time.perf_counter()
                if start - _full_end >= FULL_COLLECTION_SPACING * _full_cost:
                    gc.collect()
                    _full_end = time.perf_counter()
                    _full_cost = _full_end - start


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off inside the block (reference-counted).

    For building millions of tracked objects at once (bars): collections
    triggered by the allocations would cost more than the building. The
    collector comes back on when the last holder leaves, and only if it was
    on before the first one came.
    """
    global _pause_holders, _enabled_before
    with _lock:
        if _pause_holders == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _pause_holders += 1
    try:
        yield
    finally:
        with _lock:
            _pause_holders -= 1
            if _pause_holders == 0 and _enabled_before:
                gc.enable()


def use_sys_path(paths: Iterable[str]) -> list[str]:
    """Put ``paths`` at the front of ``sys.path``; returns those to release later.

    Entries already on ``sys.path`` that no run added stay untouched (and are
    not returned); an entry added for several runs is removed when the last
    one releases it.
    """
    held: list[str] = []
    with _lock:
        for path in reversed(list(paths)):
            if path in _path_holders:
                _path_holders[path] += 1
            elif path in sys.path:
                continue
            else:
                sys.path.insert(0, path)
                _path_holders[path] = 1
            held.append(path)
    return held


def release_sys_path(paths: Iterable[str]) -> None:
    """Let go of entries :func:`use_sys_path` returned; the last holder removes them."""
    with _lock:
        for path in paths:
            count = _path_holders.get(path, 0)
            if count <= 1:
                _path_holders.pop(path, None)
                if path in sys.path:
                    sys.path.remove(path)
            else:
                _path_holders[path] = count - 1
