"""finchan.trade.account: the SimAccount between bar events, the broker and its listeners."""

from __future__ import annotations

from finchan.env import Env
from finchan.trade.account import SimAccount
from finchan.trade.bar import BAR_EVENT, Bar
from finchan.trade.broker import SimBroker
from finchan.trade.orders import Order, OrderStatus


def make_account(record_prices=True):
    env = Env({})
    first = env.dispatcher.subscribe(BAR_EVENT, lambda bar: None)  # subscribed before the account
    account = SimAccount(env, SimBroker(10_000.0), record_prices=record_prices)
    return env, account, first


def test_the_account_sees_every_bar_first():
    env, account, first = make_account()
    assert env.dispatcher.subscribers(BAR_EVENT) == (account.on_bar, first)


def test_each_bar_records_time_equity_and_close_and_listeners_hear_every_notice():
    env, account, _ = make_account()
    heard = []
    account.listeners.append(lambda notice: heard.append((notice.order.id, notice.status)))
    account.on_bar(Bar(env, "X", 0.0, 100, 101, 99, 100, 1000))
    account.broker.submit(Order("X", "BUY", 10))
    account.on_bar(Bar(env, "X", 60.0, 100.5, 102, 100, 101, 1000))
    account.on_bar(Bar(env, "Y", 60.0, 50, 50, 50, 50, 1000))
    assert heard == [(1, OrderStatus.FILLED)]
    assert list(account.times) == [0.0, 60.0, 60.0]
    # after the fill: 10 * 100.5 paid, marked at the bar's close 101
    assert list(account.equity) == [10_000.0, 10_005.0, 10_005.0]
    assert {s: (list(t), list(c)) for s, (t, c) in account.prices.items()} == {
        "X": ([0.0, 60.0], [100.0, 101.0]),
        "Y": ([60.0], [50.0]),
    }


def test_prices_are_not_kept_when_not_asked_for():
    env, account, _ = make_account(record_prices=False)
    account.on_bar(Bar(env, "X", 0.0, 1, 1, 1, 1, 1))
    assert account.prices == {} and list(account.times) == [0.0]


def test_progress_is_reported_every_16384_bars():
    env, account, _ = make_account(record_prices=False)
    calls = []
    account.progress = lambda count, ts: calls.append((count, ts))
    for i in range(2 * 16384 + 5):
        account.on_bar(Bar(env, "X", float(i), 1, 1, 1, 1, 1))
    assert calls == [(16384, 16383.0), (32768, 32767.0)]
