"""Past bars for strategies: one ring buffer per symbol, windows as numpy views.

:class:`BarHistory` records every bar of every symbol into fixed-size rings
and hands out the last ``n`` values of a field as a read-only numpy view, with
no copy. A strategy reaches it through ``Strategy.history`` and
``Strategy.bars`` (see ``docs/strategies.md``).

Layout: per symbol and field, an ``array('d')`` of ``2 * capacity`` slots;
each value is written twice, at ``i`` and ``i + capacity``, so the latest
``m <= capacity`` values are always contiguous (``[end - m, end)``) whatever
the ring's position. Recording a bar is twelve float stores, O(1); a window
is one slice of a numpy view made once per field, O(1) and no allocation
beyond the small view object. Memory is fixed: ``2 * capacity * 6 * 8``
bytes per symbol (96 KB for a capacity of 1,000), however long the run.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, NamedTuple, NoReturn

import numpy as np

from finchan.errors import ConfigError

if TYPE_CHECKING:
    from finchan.trade.bar import Bar

__all__ = ["FIELDS", "BarHistory", "BarWindow"]

#: the fields a window can hold, in :class:`BarWindow` order
FIELDS = ("timestamp", "open", "high", "low", "close", "volume")


class BarWindow(NamedTuple):
    """The last bars of one symbol: one read-only numpy array per field, oldest first."""

    timestamp: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:  # the number of bars, not of fields
        return int(self.timestamp.shape[0])


class _Ring:
    """One symbol's bars (see the module docstring for the layout)."""

    __slots__ = ("capacity", "count", "end", "stores", "views")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.count = 0  # bars recorded, capped at capacity
        self.end = capacity  # the window is [end - count, end)
        self.stores = [array("d", bytes(16 * capacity)) for _ in FIELDS]
        views = {}
        for name, store in zip(FIELDS, self.stores):
            view = np.frombuffer(store, dtype=np.float64)
            view.flags.writeable = False  # windows alias the ring: no writes through them
            views[name] = view
        self.views = views

    def add(self, bar: Bar) -> None:
        cap = self.capacity
        i = self.end - cap  # next slot, in [0, cap]
        if i == cap:
            i = 0
        j = i + cap
        t, o, h, lo, c, v = self.stores
        t[i] = t[j] = bar.timestamp
        o[i] = o[j] = bar.open
        h[i] = h[j] = bar.high
        lo[i] = lo[j] = bar.low
        c[i] = c[j] = bar.close
        v[i] = v[j] = bar.volume
        self.end = j + 1
        if self.count < cap:
            self.count += 1

    def grown(self, capacity: int) -> _Ring:
        """A larger ring holding the same latest values."""
        ring = _Ring(capacity)
        m = self.count
        for old, new in zip(self.stores, ring.stores):
            # the latest values go to the start of the new ring, and their copies
            tail = old[self.end - m : self.end]
            new[0:m] = tail
            new[capacity : capacity + m] = tail
        ring.count = m
        ring.end = capacity + m
        return ring


class BarHistory:
    """Rings of the last ``capacity`` bars of every symbol.

    Parameters
    ----------
    capacity : int
        Bars kept per symbol, >= 1: the largest ``n`` a window may ask for.

    Example
    -------
    >>> from finchan.trade.bar import Bar
    >>> history = BarHistory(3)
    >>> for t, close in enumerate([10.0, 11.0, 12.0, 13.0]):
    ...     history.record(Bar(None, "X", 60.0 * t, close, close, close, close, 1.0))
    >>> history.window("X", 2).tolist()
    [12.0, 13.0]
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = _check_capacity(capacity)
        self._rings: dict[str, _Ring] = {}

    def grow(self, capacity: int) -> None:
        """Keep at least ``capacity`` bars from now on (existing bars are kept)."""
        capacity = _check_capacity(capacity)
        if capacity <= self.capacity:
            return
        self.capacity = capacity
        for symbol, ring in self._rings.items():
            self._rings[symbol] = ring.grown(capacity)

    def record(self, bar: Bar) -> None:
        """Add one bar (subscribed to bar events when a strategy keeps history)."""
        ring = self._rings.get(bar.symbol)
        if ring is None:
            ring = self._rings[bar.symbol] = _Ring(self.capacity)
        ring.add(bar)

    def _check(self, owner: str, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ConfigError(f"{owner}: n must be an integer >= 1, got {n!r}")
        if n > self.capacity:
            raise ConfigError(
                f"{owner}: n={n} is more than the {self.capacity} bars kept per symbol; "
                f"set history_bars = {n} on the strategy class (or call "
                f"self.keep_history({n}) in on_start)"
            )

    def window(self, symbol: str, n: int, field: str = "close") -> np.ndarray:
        """The last ``n`` values of ``field`` (fewer if fewer bars were seen), oldest first.

        A read-only view into the ring, valid until the next bar of
        ``symbol`` (later bars overwrite it); ``np.array(...)`` keeps a copy.
        """
        self._check(f"history({symbol!r}, {n!r})", n)
        ring = self._rings.get(symbol)
        if ring is None:
            if field not in FIELDS:
                _bad_field(symbol, field)
            return np.empty(0)
        view = ring.views.get(field)
        if view is None:
            _bad_field(symbol, field)
        end = ring.end
        m = n if n < ring.count else ring.count
        return view[end - m : end]

    def bars(self, symbol: str, n: int) -> BarWindow:
        """The last ``n`` bars of ``symbol`` as a :class:`BarWindow` of views."""
        self._check(f"bars({symbol!r}, {n!r})", n)
        ring = self._rings.get(symbol)
        if ring is None:
            return BarWindow(*(np.empty(0) for _ in FIELDS))
        end = ring.end
        m = n if n < ring.count else ring.count
        views = ring.views
        return BarWindow(*(views[name][end - m : end] for name in FIELDS))

    def __len__(self) -> int:
        """Number of symbols seen."""
        return len(self._rings)

    @property
    def nbytes(self) -> int:
        """Bytes held by the rings: ``2 * capacity * 6 * 8`` per symbol."""
        return sum(len(s) * s.itemsize for r in self._rings.values() for s in r.stores)


def _check_capacity(capacity: int) -> int:
    if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 1:
        raise ConfigError(f"history_bars must be an integer >= 1, got {capacity!r}")
    return int(capacity)


def _bad_field(symbol: str, field: str) -> NoReturn:
    raise ConfigError(f"history({symbol!r}): unknown field {field!r}; one of {', '.join(FIELDS)}")
