"""The extension finchan.exts.strategy (finchan.trade.exts.strategy): class, wiring, run directory."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from finchan.errors import ConfigError
from finchan.trade.examples import SmaCross
from finchan.trade.exts import strategy as strategy_ext
from finchan.trade.exts.strategy import load_strategy_class

EXT = "finchan.exts.strategy"


def test_strategy_classes_are_named_module_colon_class():
    assert load_strategy_class("finchan.trade.examples:SmaCross") is SmaCross
    assert load_strategy_class(SmaCross) is SmaCross


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("finchan.trade.examples.SmaCross",
         "strategy class 'finchan.trade.examples.SmaCross': expected 'package.module:ClassName'"),
        ("no_such_module_xyz:S", "strategy class 'no_such_module_xyz:S': cannot import "
                                 "'no_such_module_xyz': ModuleNotFoundError"),
        ("finchan.trade.examples:Nope",
         "strategy class 'finchan.trade.examples:Nope': module 'finchan.trade.examples' has no 'Nope'"),
    ],
)
def test_bad_class_names_are_config_errors(spec, message):
    with pytest.raises(ConfigError) as info:
        load_strategy_class(spec)
    assert str(info.value).startswith(message)


def frame(n):
    index = pd.date_range("2020-01-01", periods=n, freq="h", tz="UTC")
    closes = [100 + (i % 20) - (i % 7) for i in range(n)]
    return pd.DataFrame({"open": closes, "high": closes, "low": closes, "close": closes,
                         "volume": [100] * n}, index=index)


def strategy_env(make_env, tmp_path, **options):
    frame(200).to_csv(tmp_path / "SYN.csv", index_label="datetime")
    env = make_env({
        "enabled_backtest_exts": ["finchan.exts.bars", EXT],
        "backtest_exts": {
            "finchan.exts.bars": {"files": [str(tmp_path / "SYN.csv")]},
            "finchan.exts.sim_broker": {"cash": 100_000},
            EXT: {"class": "finchan.trade.examples:SmaCross", "params": {"fast": 3, "slow": 8},
                  "progress": False, **options},
        },
    })
    env.quiet = True
    return env


def test_the_runner_requires_the_broker_and_wires_the_strategy(make_env, tmp_path):
    env = strategy_env(make_env, tmp_path, save=False)
    env.load_exts()
    assert env.ext_manager.loaded == ("finchan.exts.bars", "finchan.exts.sim_broker", EXT)
    assert env.ext_manager.get_ext(EXT) is strategy_ext
    runner = env.get_ext_obj(EXT)
    assert runner.strategy.params.as_dict() == {"fast": 3, "slow": 8, "qty": 100}
    assert runner.strategy.broker is env.get_ext_obj("finchan.exts.sim_broker").broker
    env.run()
    assert runner.result is not None and runner.run_dir is None  # save: false
    assert runner.result.meta == {"strategy": "SmaCross", "class": "finchan.trade.examples:SmaCross",
                                  "params": {"fast": 3, "slow": 8, "qty": 100}, "cash": 100_000.0}
    assert len(runner.result.fills) > 0


def test_a_saved_run_directory_is_complete_and_matches_the_result(make_env, tmp_path):
    env = strategy_env(make_env, tmp_path, report=False)
    env.run()
    runner = env.get_ext_obj(EXT)
    files = sorted(p.name for p in runner.run_dir.iterdir())
    assert files == ["config.yml", "equity.csv", "fills.csv", "open_trades.csv", "orders.csv", "run.json",
                     "summary.json", "trades.csv"]
    summary = json.loads((runner.run_dir / "summary.json").read_text())
    assert summary["fills"] == len(runner.result.fills)
    assert summary["final_equity"] == runner.result.final_equity
    run = json.loads((runner.run_dir / "run.json").read_text())
    assert run["run_id"] == runner.run_dir.name and run["events"] == env.dispatcher.summary.events
