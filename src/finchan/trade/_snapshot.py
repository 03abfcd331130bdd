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

import io
import itertools
import pickle
from typing import Any

__all__ = ["load_snapshot", "restore_snapshot", "take_snapshot"]

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
    "_now",
    "_orders",
    "fills",
    "portfolio",
)
_ACCOUNT_STATE = ("times", "equity", "prices")
# the strategy's attributes bound to the run, not to its bars
_STRATEGY_SKIP = frozenset({"env", "broker", "log", "params"})


class _Pickler(pickle.Pickler):
    def __init__(self, file: Any, env: Any) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._env = env
        self._dispatcher = getattr(env, "dispatcher", None)
        from finchan.trade.bar import Bar

        self._bar = Bar

    def persistent_id(self, obj: Any) -> Any:
        if obj is self._env:
            return "env"
        if obj is self._dispatcher and obj is not None:
            return "dispatcher"
        if isinstance(obj, self._bar):
            return ("bar", obj.symbol, obj.timestamp, obj.open, obj.high, obj.low, obj.close,
                    obj.volume, obj.id)  # fmt: skip
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, env: Any) -> None:
        super().__init__(file)
        self._env = env

    def persistent_load(self, pid: Any) -> Any:
        if pid == "env":
            return self._env
        if pid == "dispatcher":
            return self._env.dispatcher
        if isinstance(pid, tuple) and pid and pid[0] == "bar":
            from finchan.trade.bar import Bar

            _, symbol, ts, o, h, low, c, v, event_id = pid
            return Bar(self._env, symbol, ts, o, h, low, c, v, event_id=event_id)
        raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")


def _next_id(counter: Any) -> int:
    # itertools.count's repr is "count(N)": its next value, without consuming it
    return int(repr(counter)[6:-1])


def take_snapshot(env: Any, account: Any, strategy: Any) -> bytes:
    """The state the journal built so far, as bytes (raises when something is not picklable)."""
    broker = account.broker
    state = {
        "broker": {name: getattr(broker, name) for name in _BROKER_STATE},
        "next_order_id": _next_id(broker._ids),
        "account": {name: getattr(account, name) for name in _ACCOUNT_STATE},
        "strategy": {k: v for k, v in vars(strategy).items() if k not in _STRATEGY_SKIP},
    }
    buffer = io.BytesIO()
    _Pickler(buffer, env).dump(state)
    return buffer.getvalue()


def load_snapshot(env: Any, data: bytes) -> dict[str, Any]:
    """A snapshot's state, unpickled (nothing of the run changed yet)."""
    state: dict[str, Any] = _Unpickler(io.BytesIO(data), env).load()
    return state


def restore_snapshot(env: Any, account: Any, strategy: Any, state: dict[str, Any]) -> None:
    """Put a loaded snapshot's state into the (freshly built) account and strategy."""
    broker = account.broker
    for name, value in state["broker"].items():
        setattr(broker, name, value)
    broker._ids = itertools.count(state["next_order_id"])
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
