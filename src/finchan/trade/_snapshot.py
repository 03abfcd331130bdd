"""Snapshots of a live run's account and strategy, so a restart replays only the journal's tail.

A snapshot is a pickle of what the journal's bars built: the simulated
broker's mutable state (orders, books, fills, portfolio, the next order id),
the account's recorded series and the strategy's attributes. It is taken in
the dispatcher's thread at a batch's end (a consistent point), committed in
the same transaction as that batch's journal rows, and tagged with the
journal position it stands for. Restoring it and handing the bars after
that position to the handlers gives exactly the state a replay of the whole
journal gives: the same fills and the same order ids.

References to the run (the Env, its dispatcher) are not pickled but
re-attached; bars are pickled as their fields (a stream bar becomes a plain
bar with the same values and event id).
"""

from __future__ import annotations

import copyreg
import io
import itertools
import pickle
from typing import Any

__all__ = ["broker_state", "load_snapshot", "restore_broker", "restore_snapshot", "take_snapshot"]

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


def _subclasses(cls: type) -> list[type]:
    out = [cls]
    sub: type
    for sub in cls.__subclasses__():
        out += _subclasses(sub)
    return out


def _pickler(file: Any, env: Any) -> pickle.Pickler:
    """A pickler that writes the run's Env, its dispatcher and bars by reference or by value.

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


def take_snapshot(env: Any, account: Any, strategy: Any) -> bytes:
    """The state the journal built so far, as bytes (raises when something is not picklable)."""
    broker = account.broker
    state = {
        "broker": broker_state(broker),
        "account": {name: getattr(account, name) for name in _ACCOUNT_STATE},
        "strategy": {k: v for k, v in vars(strategy).items() if k not in _STRATEGY_SKIP},
    }
    buffer = io.BytesIO()
    _pickler(buffer, env).dump(state)
    return buffer.getvalue()


def load_snapshot(env: Any, data: bytes) -> dict[str, Any]:
    """A snapshot's state, unpickled (nothing of the run changed yet)."""
    _loading[0] = env
    try:
        state: dict[str, Any] = pickle.loads(data)
    finally:
        _loading[0] = None
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
