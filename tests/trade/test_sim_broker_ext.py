"""The extension finchan.exts.sim_broker (finchan.trade.exts.sim_broker): options to a broker."""

from __future__ import annotations

import pytest

from finchan.errors import ConfigError
from finchan.trade.account import SimAccount
from finchan.trade.broker import BpsSlippage, FixedPerOrder, PercentOfValue, PerShare, TickSlippage
from finchan.trade.exts import sim_broker
from finchan.trade.orders import Side

EXT = "finchan.exts.sim_broker"


def account_for(make_env, options):
    env = make_env({"backtrack_exts": {EXT: options}, "timezone": "Europe/Paris"})
    env.load_exts(EXT)
    return env, env.get_ext_obj(EXT)


def test_the_defaults_give_a_plain_broker(make_env):
    env, account = account_for(make_env, None)
    broker = account.broker
    assert isinstance(account, SimAccount) and sim_broker.ext_name == EXT
    assert (broker.portfolio.cash, broker.fill_at, broker.allow_short, broker.check_submit) == (
        100_000.0, "next_open", False, True)
    assert env.ext_manager.get_ext(EXT) is sim_broker


def test_every_option_reaches_the_broker(make_env):
    _, account = account_for(make_env, {
        "cash": 5000, "commission": {"per_share": 0.01, "minimum": 1.0}, "slippage": {"bps": 10},
        "fill_at": "close", "volume_limit": 0.5, "allow_short": True, "check_submit": False,
        "record_prices": False,
    })
    broker = account.broker
    assert (broker.portfolio.cash, broker.fill_at, broker.allow_short, broker.check_submit) == (
        5000.0, "close", True, False)
    assert account.prices == {} and account._record_prices is False


@pytest.mark.parametrize(
    ("options", "kind", "value"),
    [
        (0.001, PercentOfValue, 1.0),  # a bare number is a rate: 0.1 % of 1000
        ({"rate": 0.001, "minimum": 2.0}, PercentOfValue, 2.0),
        ({"per_share": 0.05}, PerShare, 0.5),
        ({"fixed": 4.95}, FixedPerOrder, 4.95),
    ],
)
def test_commission_models(options, kind, value):
    parsed = sim_broker.BrokerOptions.model_validate({"commission": options}).commission
    model = sim_broker.build_commission(parsed)
    assert type(model) is kind and model(10, 100.0) == pytest.approx(value)


def test_slippage_models():
    bps = sim_broker.build_slippage(sim_broker.SlippageOptions(bps=5))
    ticks = sim_broker.build_slippage(sim_broker.SlippageOptions(ticks=2, tick_size=0.01))
    assert type(bps) is BpsSlippage and bps(100.0, Side.BUY) == pytest.approx(100.05)
    assert type(ticks) is TickSlippage and ticks(100.0, Side.SELL) == pytest.approx(99.98)
    assert sim_broker.build_slippage(None) is None and sim_broker.build_commission(None) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"commission": {"rate": 0.1, "fixed": 1}},
         "config: backtrack_exts.finchan.exts.sim_broker.commission: takes exactly one of "
         "rate, per_share, fixed (given: rate, fixed) (got {'rate': 0.1, 'fixed': 1})"),
        ({"slippage": {"tick_size": 0.5}},
         "config: backtrack_exts.finchan.exts.sim_broker.slippage: takes exactly one of "
         "bps, ticks (given: none) (got {'tick_size': 0.5})"),
        ({"cash": -1}, "config: backtrack_exts.finchan.exts.sim_broker.cash: must be greater than 0 (got -1)"),
        ({"fill_at": "open"}, "backtrack_exts.finchan.exts.sim_broker.fill_at:"),
        ({"cahs": 1}, "backtrack_exts.finchan.exts.sim_broker.cahs: unknown key"),
    ],
)
def test_bad_options_name_the_extension_and_the_key(make_env, options, message):
    with pytest.raises(ConfigError) as info:
        account_for(make_env, options)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
