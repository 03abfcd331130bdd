"""Snapshots of a live run's account and strategy, so a restart replays only the journal's tail.

A snapshot is a pickle of what the journal's bars built: the simulated
broker's mutable state (orders, books, fills, portfolio, the next order id),
the account's recorded series and the strategy's attributes. It is taken in
the dispatcher's thread at a batch's end (a consistent point), committed in
the same transaction as that batch's journal rows, and tagged with the
journal position it stands for. Restoring it and handing the bars after
that position to the handlers gives exactly the state a replay of the whole
journal gives: the same fills and the same order ids.

Snapshots are incremental (:class:`Snapshots`). What a run accumulates
(closed orders with their working state, fills, closed trades) never changes
again, yet pickling all of it at every snapshot took the event loop 100 ms
at 300,000 bars and grew with the run: a stall that every message arriving
meanwhile waited out. So each snapshot is a small *core* (open orders,
books, positions, cash, the account's series, the strategy) plus one history
*part* holding only what closed since the previous snapshot; the store keeps
the parts, and the core names how many it stands on. A closed order that the
core still reaches (an OCO link, a strategy attribute) is pickled there as a
reference to its part, so every order stays one object after a restore.

References to the run (the Env, its dispatcher) are not pickled but
re-attached; bars are pickled as their fields (a stream bar becomes a plain
bar with the same values and event id).
"""

from __future__ import annotations

import copyreg
import io
import itertools
import pickle
from collections.abc import Sequence
from typing import Any

from finchan.trade.orders import FINAL_STATUSES

__all__ = [
    "Snapshots",
    "broker_state",
    "load_snapshot",
    "restore_broker",
    "restore_snapshot",
]

# the broker's slots that change as bars come; the rest is configuration,
# rebuilt from the same config on restart
_BROKER_STATE = (
    "_batch_bought",
    "_batch_cash",
    "_batch_pos",
    "_batch_ts",
    "_books",
    "_group_symbols",
    "_group_ts",
    "_last_bars",
    "_links",
    "_now",
    "_orders",
    "_work",
    "fills",
    "portfolio",
)
_ACCOUNT_STATE = ("times", "equity", "prices")
# the strategy's attributes bound to the run, not to its bars
# what bind() sets again: the run's objects, not state (``_last_bar`` is the broker's method)
_STRATEGY_SKIP = frozenset({"env", "broker", "log", "params", "_last_bar"})


# the Env a snapshot is being loaded into (loads run in the dispatcher's thread, one at a time)
_loading: list[Any] = [None]
# the closed orders (id -> Order) and trades of the history parts being loaded
_archive: dict[str, Any] = {"orders": {}, "trades": []}
#: the format of the core a :class:`Snapshots` writes (older snapshots hold everything)
FORMAT = 2


def _env_ref() -> Any:
    return _loading[0]


def _dispatcher_ref() -> Any:
    return _loading[0].dispatcher


def _bar(symbol: str, ts: float, o: float, h: float, low: float, c: float, v: float,
         event_id: Any) -> Any:  # fmt: skip
    from finchan.trade.bar import Bar

    return Bar(_loading[0], symbol, ts, o, h, low, c, v, event_id=event_id)


def _reduce_bar(bar: Any) -> Any:
    return _bar, (bar.symbol, bar.timestamp, bar.open, bar.high, bar.low, bar.close,
                  bar.volume, bar.id)  # fmt: skip


def _archived_order(order_id: int) -> Any:
    return _archive["orders"][order_id]


def _portfolio(cls: Any, state: dict[str, Any]) -> Any:
    # a core's portfolio: its closed trades are the parts'
    portfolio = cls.__new__(cls)
    for name, value in state.items():
        setattr(portfolio, name, value)
    portfolio.trades = _archive["trades"]
    return portfolio


def _reduce_portfolio(portfolio: Any) -> Any:
    # slots of every class (MarginPortfolio adds its own), and a subclass's __dict__
    state = {k: v for k, v in getattr(portfolio, "__dict__", {}).items() if k != "trades"}
    for cls in type(portfolio).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if name not in ("trades", "__dict__", "__weakref__") and hasattr(portfolio, name):
                state[name] = getattr(portfolio, name)
    return _portfolio, (type(portfolio), state)


def _subclasses(cls: type) -> list[type]:
    out = [cls]
    sub: type
    for sub in cls.__subclasses__():
        out += _subclasses(sub)
    return out


def _pickler(file: Any, env: Any, archived: set[int] | None = None,
             core: bool = False) -> pickle.Pickler:
    """A pickler that writes the run's Env, its dispatcher and bars by reference or by value.

    ``archived``: ids of closed orders already in a history part, written as
    references to it. ``core``: portfolios without their closed trades (the
    parts hold them).

    A per-type ``dispatch_table`` (looked up in C) rather than ``persistent_id``
    (a Python call for every object): a snapshot of thousands of orders is
    taken in a few milliseconds.
    """
    from finchan.trade.bar import Bar

    def same_env(obj: Any) -> Any:
        if obj is not env:
            raise pickle.PicklingError("a snapshot holds another Env than its run's")
        return _env_ref, ()

    table: dict[type, Any] = dict(copyreg.dispatch_table)
    table[type(env)] = same_env
    dispatcher = getattr(env, "dispatcher", None)
    if dispatcher is not None:
        table[type(dispatcher)] = lambda obj: (_dispatcher_ref, ())
    for cls in _subclasses(Bar):
        table[cls] = _reduce_bar
    if archived:
        from finchan.trade.orders import Order

        def order(obj: Any) -> Any:
            if obj.id in archived:
                return _archived_order, (obj.id,)
            return obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)

        for cls in _subclasses(Order):
            table[cls] = order
    if core:
        from finchan.trade.portfolio import Portfolio

        for cls in _subclasses(Portfolio):
            table[cls] = _reduce_portfolio
    pickler = pickle.Pickler(file, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = table
    return pickler


def _next_id(counter: Any) -> int:
    # itertools.count's repr is "count(N)": its next value, without consuming it
    return int(repr(counter)[6:-1])


def broker_state(broker: Any) -> dict[str, Any]:
    """The simulated broker's state that bars change (picklable with the run's pickler)."""
    state = {name: getattr(broker, name) for name in _BROKER_STATE}
    state["next_order_id"] = _next_id(broker._ids)
    return state


def restore_broker(broker: Any, state: dict[str, Any]) -> None:
    """Put a :func:`broker_state` into a broker built from the same configuration."""
    for name in _BROKER_STATE:
        setattr(broker, name, state[name])
    broker._ids = itertools.count(state["next_order_id"])
    links = broker._links
    # the links (OCO groups, brackets) are pickled without their broker, and
    # the broker's matching step is theirs once there are any (SimBroker._match)
    if links is not None:
        links.attach(broker)
        broker._match = links.match
    else:
        broker._match = broker._match_order


class Snapshots:
    """The incremental snapshots of one run (see the module's docstring).

    :meth:`take` gives ``(core, part number, part)``; the store keeps every
    part (a part numbered 0 starts them afresh: the first snapshot of a run
    that restored none) and the latest core. :meth:`resume` continues the
    numbering after a restore.

    Example
    -------
    >>> from finchan.trade._snapshot import Snapshots
    >>> Snapshots().parts
    0
    """

    def __init__(self) -> None:
        #: history parts written so far
        self.parts = 0
        self._archived: set[int] = set()
        self._fills = 0
        self._trades = 0

    def resume(self, state: dict[str, Any]) -> None:
        """Go on after the snapshot ``state`` (:func:`load_snapshot`'s) was restored."""
        broker = state["broker"]
        self.parts = state.get("parts", 0)
        if not self.parts:  # an older, whole snapshot: the next one starts the parts
            return
        # a final order never changes again: each is in a part
        self._archived = {oid for oid, order in broker["_orders"].items()
                          if order.status in FINAL_STATUSES}  # fmt: skip
        self._fills = len(broker["fills"])
        self._trades = len(broker["portfolio"].trades)

    def take(self, env: Any, account: Any, strategy: Any) -> tuple[bytes, int, bytes]:
        """The core and the new history part (raises when something is not picklable)."""
        broker = account.broker
        orders, work = broker._orders, broker._work
        archived = self._archived
        closing = [order for oid, order in orders.items()
                   if oid not in archived and order.status in FINAL_STATUSES]  # fmt: skip
        part_state = {
            "orders": closing,
            "work": {o.id: work[o.id] for o in closing if o.id in work},
            "fills": broker.fills[self._fills:],
            "trades": broker.portfolio.trades[self._trades:],
        }
        buffer = io.BytesIO()
        _pickler(buffer, env, archived).dump(part_state)
        part = buffer.getvalue()
        now_archived = archived | {o.id for o in closing}
        state = broker_state(broker)
        state["_orders"] = {oid: o for oid, o in orders.items() if oid not in now_archived}
        state["_work"] = {oid: w for oid, w in work.items() if oid not in now_archived}
        state["fills"] = len(broker.fills)
        core_state = {
            "format": FORMAT,
            "parts": self.parts + 1,
            "broker": state,
            "account": {name: getattr(account, name) for name in _ACCOUNT_STATE},
            "strategy": {k: v for k, v in vars(strategy).items() if k not in _STRATEGY_SKIP},
        }
        buffer = io.BytesIO()
        _pickler(buffer, env, now_archived, core=True).dump(core_state)
        # only now, both pickled: a snapshot that failed leaves the numbering as it was
        self._archived = now_archived
        self._fills = len(broker.fills)
        self._trades = len(broker.portfolio.trades)
        number = self.parts
        self.parts += 1
        return buffer.getvalue(), number, part


def load_snapshot(env: Any, data: bytes, parts: Sequence[bytes] = ()) -> dict[str, Any]:
    """A snapshot's state, unpickled (nothing of the run changed yet).

    ``data`` is the core and ``parts`` the history parts it names (in order);
    the result: ``{"broker": broker_state(...), "account": ..., "strategy": ...}``
    with every order, fill and trade in place (what :func:`restore_snapshot` takes).
    """
    _loading[0] = env
    orders: dict[int, Any] = {}
    work: dict[int, Any] = {}
    fills: list[Any] = []
    trades: list[Any] = []
    _archive["orders"], _archive["trades"] = orders, trades
    try:
        for blob in parts:
            part = pickle.loads(blob)
            orders.update((order.id, order) for order in part["orders"])
            work.update(part["work"])
            fills.extend(part["fills"])
            trades.extend(part["trades"])
        state: dict[str, Any] = pickle.loads(data)
    finally:
        _loading[0] = None
        _archive["orders"], _archive["trades"] = {}, []
    if state.get("format") != FORMAT:
        return state  # a whole snapshot (finchan before 0.5)
    if len(parts) != state["parts"]:
        raise ValueError(f"the snapshot stands on {state['parts']} parts, {len(parts)} found")
    broker = state["broker"]
    if broker["fills"] != len(fills):
        raise ValueError(f"the snapshot holds {broker['fills']} fills, its parts {len(fills)}")
    # ids are given in submission order, so sorting them gives the broker's dict order
    orders.update(broker["_orders"])
    work.update(broker["_work"])
    broker["_orders"] = {oid: orders[oid] for oid in sorted(orders)}
    broker["_work"] = {oid: work[oid] for oid in sorted(work)}
    broker["fills"] = fills
    return state


def restore_snapshot(env: Any, account: Any, strategy: Any, state: dict[str, Any]) -> None:
    """Put a loaded snapshot's state into the (freshly built) account and strategy."""
    restore_broker(account.broker, state["broker"])
    # the account's bar handler holds its series and portfolio in a closure
    account.times[:] = state["account"]["times"]
    account.equity[:] = state["account"]["equity"]
    account.prices.clear()
    account.prices.update(state["account"]["prices"])
    # the portfolio object is replaced: rebuild the handler bound to it
    dispatcher = env.dispatcher
    old = account.on_bar
    account.on_bar = account._make_bar_handler()
    dispatcher.unsubscribe("bar", old)
    dispatcher.subscribe("bar", account.on_bar, prepend=True)
    vars(strategy).update(state["strategy"])
