"""The trading kit end to end: the reference SMA cross, determinism, the Strategy API, bad input."""

import hashlib
import json
import textwrap

import pandas as pd
import pytest

from finchan.errors import ConfigError
from finchan.trade import Strategy, backtest
from finchan.trade._synthetic import make_bars
from finchan.trade.examples import SmaCross
from finchan_testing import ROOT, run_finchan

REFERENCE_MD5 = "521403d73729284c35b6b7d91e642d0c"


def reference_csv(fills: pd.DataFrame) -> str:
    """The fills in the format of shared/data/sma_cross_fills_100k.csv."""
    lines = ["datetime,side,price"]
    lines += [f"{d:%Y-%m-%dT%H:%M:%S},{s},{p:.4f}" for d, s, p in zip(fills.datetime, fills.side, fills.price)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def bars_100k():
    return make_bars(100_000)


def test_sma_reference_through_the_python_api(bars_100k):
    result = backtest(SmaCross, {"SYN": bars_100k}, cash=1_000_000)
    assert hashlib.md5(reference_csv(result.fills).encode()).hexdigest() == REFERENCE_MD5
    assert len(result.fills) == 3872
    assert len(result.trades) == 1936
    assert round(result.final_equity, 2) == 998_438.97
    assert result.stats["trades"] == 1936
    assert result.stats["final_equity"] == pytest.approx(998_438.97, abs=0.005)
    assert list(result.fills.columns) == ["datetime", "symbol", "side", "qty", "price", "commission", "order_id"]
    assert len(result.equity) == 100_000


def test_sma_reference_through_the_cli_twice_gives_identical_files(tmp_path):
    for _ in range(2):  # same config (work_dir included), two runs
        result = run_finchan("-c", str(ROOT / "examples" / "sma_cross"), "--set", f"work_dir={tmp_path}")
        assert result.returncode == 0, result.stderr
        assert "final_equity" in result.stdout and "998,438.97" in result.stdout
    outputs = sorted((tmp_path / "runs").iterdir())
    assert len(outputs) == 2
    assert f"report: {outputs[1] / 'report.html'}" in result.stdout
    first, second = outputs
    fills = pd.read_csv(first / "fills.csv", parse_dates=["datetime"])
    assert hashlib.md5(reference_csv(fills).encode()).hexdigest() == REFERENCE_MD5
    summary = json.loads((first / "summary.json").read_text())
    assert summary["round_trips"] == 1936 and round(summary["final_equity"], 2) == 998_438.97
    names = sorted(p.name for p in first.iterdir())
    assert names == ["config.yml", "equity.csv", "fills.csv", "open_trades.csv", "orders.csv",
                     "report.html", "run.json", "summary.json", "trades.csv"]
    for name in names:
        if name != "run.json":  # run id and wall times
            assert (first / name).read_bytes() == (second / name).read_bytes(), name


def write_config(tmp_path, strategy_options, bars_options=None, extra=""):
    path = tmp_path / "finchan.yml"
    bars = bars_options or "synthetic: {n: 2000, symbol: SYN}"
    path.write_text(textwrap.dedent(f"""
        work_dir: {tmp_path / 'work'}
        run_mode: backtest
        enabled_backtest_exts: [finchan.exts.bars, finchan.exts.strategy]
        backtest_exts:
          finchan.exts.bars: {{{bars}}}
          finchan.exts.strategy: {{{strategy_options}}}
    """) + extra)
    return path


def one_line_error(result, code):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_unknown_strategy_class_is_a_config_error(tmp_path):
    path = write_config(tmp_path, "class: finchan.trade.examples:NoSuchStrategy")
    assert one_line_error(run_finchan("-c", str(path)), 2) == (
        f"finchan: error: {path}: backtest_exts.finchan.exts.strategy.class: "
        "strategy class 'finchan.trade.examples:NoSuchStrategy': "
        "module 'finchan.trade.examples' has no 'NoSuchStrategy'"
    )


def test_strategies_items_may_be_plain_class_names(tmp_path):
    from finchan.config import load_config
    from finchan.env import Env

    path = write_config(
        tmp_path,
        "strategies: [finchan.trade.examples:SmaCross, sweep_strategies:Hold], save: false",
        extra=f"ext_manager: {{ext_paths: [{ROOT / 'tests' / 'exts'}]}}\n",
    )
    env = Env(load_config(path))
    env.run()
    runner = env.get_ext_obj("finchan.exts.strategy")
    assert list(runner.results) == ["SmaCross", "Hold"]
    assert runner.results["SmaCross"].meta["params"] == {"fast": 10, "slow": 30, "qty": 100}
    assert runner.results["Hold"].meta["params"] == {"side": 0, "qty": 10}


@pytest.mark.parametrize(
    ("strategy_options", "message"),
    [
        # one class option given a list (the several-strategies form is strategies:)
        (
            "class: [finchan.trade.examples:SmaCross]",
            "backtest_exts.finchan.exts.strategy.class: strategy class "
            "['finchan.trade.examples:SmaCross']: expected 'package.module:ClassName' "
            "(one class; several strategies go in strategies:)",
        ),
        # an item that is neither a class name nor a mapping
        (
            "strategies: [[finchan.trade.examples:SmaCross]]",
            "backtest_exts.finchan.exts.strategy.strategies.0: expected a class "
            "'package.module:ClassName' or a mapping of class, params, name "
            "(got ['finchan.trade.examples:SmaCross'])",
        ),
        # the same class twice without names
        (
            "strategies: [finchan.trade.examples:SmaCross, finchan.trade.examples:SmaCross]",
            "backtest_exts.finchan.exts.strategy.strategies.1: a second strategy named "
            "'SmaCross'; give each its own name (name: in a mapping item)",
        ),
        (
            "strategies: [finchan.trade.examples:SmaCross, finchan.trade.examples:Nope]",
            "backtest_exts.finchan.exts.strategy.strategies.1.class: strategy class "
            "'finchan.trade.examples:Nope': module 'finchan.trade.examples' has no 'Nope'",
        ),
        (
            "strategies: [{class: finchan.trade.examples:SmaCross, name: a/b}]",
            "backtest_exts.finchan.exts.strategy.strategies.0.name: 'a/b' is not a file name",
        ),
    ],
)
def test_strategy_option_misuses_name_file_and_key(tmp_path, strategy_options, message):
    path = write_config(tmp_path, strategy_options)
    assert one_line_error(run_finchan("-c", str(path)), 2) == f"finchan: error: {path}: {message}"


def test_bad_parameter_is_named(tmp_path):
    path = write_config(tmp_path, "class: finchan.trade.examples:SmaCross, params: {fast: ten}")
    assert one_line_error(run_finchan("-c", str(path)), 2) == (
        f"finchan: error: {path}: backtest_exts.finchan.exts.strategy.params: "
        "SmaCross: parameter 'fast' must be int like its default 10, got 'ten'"
    )
    path = write_config(tmp_path, "class: finchan.trade.examples:SmaCross, params: {fats: 3}")
    assert one_line_error(run_finchan("-c", str(path)), 2) == (
        f"finchan: error: {path}: backtest_exts.finchan.exts.strategy.params: "
        "SmaCross: unknown parameter 'fats' (known: fast, slow, qty)"
    )
    path = write_config(
        tmp_path, "strategies: [{class: finchan.trade.examples:SmaCross, params: {slow: 1.5}}]"
    )
    assert one_line_error(run_finchan("-c", str(path)), 2) == (
        f"finchan: error: {path}: backtest_exts.finchan.exts.strategy.strategies.0.params: "
        "SmaCross: parameter 'slow' must be int like its default 30, got 1.5"
    )


def test_bad_commission_and_slippage_forms_name_file_and_key(tmp_path):
    path = write_config(tmp_path, "class: finchan.trade.examples:SmaCross",
                        extra="  finchan.exts.sim_broker: {commission: {rate: 0.1, fixed: 1}}\n")
    assert one_line_error(run_finchan("-c", str(path)), 2) == (
        f"finchan: error: {path}: backtest_exts.finchan.exts.sim_broker.commission: "
        "takes exactly one of rate, per_share, fixed (given: rate, fixed) "
        "(got {'rate': 0.1, 'fixed': 1})"
    )
    path = write_config(tmp_path, "class: finchan.trade.examples:SmaCross",
                        extra="  finchan.exts.sim_broker: {slippage: {tick_size: 0.5}}\n")
    assert one_line_error(run_finchan("-c", str(path)), 2) == (
        f"finchan: error: {path}: backtest_exts.finchan.exts.sim_broker.slippage: "
        "takes exactly one of bps, ticks (given: none) (got {'tick_size': 0.5})"
    )


def test_bad_broker_option_names_file_and_key(tmp_path):
    path = write_config(tmp_path, "class: finchan.trade.examples:SmaCross",
                        extra="  finchan.exts.sim_broker: {cash: lots}\n")
    assert one_line_error(run_finchan("-c", str(path)), 2) == (
        f"finchan: error: {path}: backtest_exts.finchan.exts.sim_broker.cash: not a number (got 'lots')"
    )


def test_malformed_data_file_names_file_line_and_column(tmp_path):
    csv = tmp_path / "ABC.csv"
    make_bars(50).to_csv(csv, index=False, float_format="%.4f")
    lines = csv.read_text().splitlines()
    fields = lines[21].split(",")
    fields[4] = "12.3x"  # the close of the 21st bar, on line 22 counting the header
    lines[21] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    path = write_config(tmp_path, "class: finchan.trade.examples:SmaCross", bars_options=f"files: [{csv}]")
    line = one_line_error(run_finchan("-c", str(path)), 2)
    assert line == f"finchan: error: {csv}: line 22, column 'close': bad number '12.3x'"
    (run_dir,) = (tmp_path / "work" / "runs").iterdir()
    assert (run_dir / "INCOMPLETE").read_text().startswith(str(csv))
    assert not (run_dir / "summary.json").exists()


class Exploding(Strategy):
    params = {"at": 5}

    def on_start(self):
        self.seen = 0

    def on_bar(self, bar):
        self.seen += 1
        if self.seen == self.params.at:
            raise ValueError("strategy bug")


def test_a_failing_strategy_leaves_an_incomplete_run(tmp_path, monkeypatch):
    (tmp_path / "mystrats.py").write_text(textwrap.dedent("""
        from finchan.trade import Strategy

        class Exploding(Strategy):
            def on_bar(self, bar):
                raise ValueError("strategy bug")
    """))
    path = write_config(tmp_path, "class: mystrats:Exploding",
                        extra=f"ext_manager: {{ext_paths: [{tmp_path}]}}\n")
    line = one_line_error(run_finchan("-c", str(path)), 1)
    assert line.startswith("finchan: error: callback mystrats.Exploding.on_bar failed on event 'bar' at 2020-01-01T00:00:00+00:00: ValueError: strategy bug")
    (run_dir,) = (tmp_path / "work" / "runs").iterdir()
    assert "strategy bug" in (run_dir / "INCOMPLETE").read_text()
    assert not (run_dir / "summary.json").exists()


def bars(closes, opens=None, start="2024-01-01"):
    """Hand-made daily bars: high/low 1 around max/min of open and close."""
    opens = opens or closes
    index = pd.date_range(start, periods=len(closes), freq="D", tz="UTC")
    return pd.DataFrame({
        "datetime": index,
        "open": opens, "close": closes,
        "high": [max(o, c) + 1 for o, c in zip(opens, closes)],
        "low": [min(o, c) - 1 for o, c in zip(opens, closes)],
        "volume": [1000] * len(closes),
    })


class Journal(Strategy):
    """Records hooks; buys on bar 1, targets on bar 3, cancels a limit on bar 4."""

    params = {"target_pct": 0.5}

    def on_start(self):
        self.events = ["start"]
        self.count = 0

    def on_bar(self, bar):
        self.count += 1
        self.events.append(f"bar {self.count} pos={self.position(bar.symbol):g}")
        if self.count == 1:
            self.buy(bar.symbol, 10)
        elif self.count == 3:
            self.order_target_percent(bar.symbol, self.params.target_pct)
        elif self.count == 4:
            self.pending = self.buy(bar.symbol, 1, limit=1.0)
        elif self.count == 5:
            self.cancel(self.pending)
            self.order_target(bar.symbol, 0)

    def on_order(self, order):
        self.events.append(f"order {order.id} {order.side} {order.qty:g} {order.status}")

    def on_fill(self, fill):
        self.events.append(f"fill {fill.order_id} {fill.qty:g}@{fill.price:g}")

    def on_stop(self):
        self.events.append(f"stop cash={self.cash:g} equity={self.equity:g}")


def test_strategy_hooks_orders_and_targets_in_order():
    result = backtest(Journal, {"X": bars([100, 102, 104, 106, 108, 110], opens=[100, 101, 103, 105, 107, 109])},
                      cash=10_000)
    runner_events = result.meta  # meta is plain data
    assert runner_events["strategy"] == "Journal" and runner_events["params"] == {"target_pct": 0.5}
    fills = result.fills
    assert list(zip(fills.side, fills.qty, fills.price)) == [
        ("BUY", 10, 101.0),       # bar 1 decision, bar 2 open
        ("BUY", 38, 105.0),       # 50 % of 10,040 equity at close 104 -> 48 units; had 10
        ("SELL", 48, 109.0),      # order_target(0) on bar 5, filled at bar 6 open
    ]
    assert result.orders.status.tolist() == ["FILLED", "FILLED", "CANCELLED", "FILLED"]
    assert result.open_positions == {}


def test_strategy_journal_sequence():
    from finchan.env import Env  # noqa: F401  (the run below builds its own)

    captured = {}

    class Capture(Journal):
        def on_stop(self):
            super().on_stop()
            captured["events"] = self.events

    backtest(Capture, {"X": bars([100, 102, 104, 106, 108, 110], opens=[100, 101, 103, 105, 107, 109])},
             cash=10_000)
    assert captured["events"] == [
        "start",
        "bar 1 pos=0", "order 1 BUY 10 ACCEPTED",
        "order 1 BUY 10 FILLED", "fill 1 10@101", "bar 2 pos=10",
        "bar 3 pos=10", "order 2 BUY 38 ACCEPTED",
        "order 2 BUY 38 FILLED", "fill 2 38@105", "bar 4 pos=48", "order 3 BUY 1 ACCEPTED",
        "bar 5 pos=48", "order 3 BUY 1 CANCELLED", "order 4 SELL 48 ACCEPTED",
        "order 4 SELL 48 FILLED", "fill 4 48@109", "bar 6 pos=0",
        "stop cash=10232 equity=10232",  # 10000 - 1010 - 3990 + 5232
    ]


def test_params_override_from_python_and_unknown_ones_refused():
    result = backtest(SmaCross, {"SYN": make_bars(3000)}, params={"fast": 5, "slow": 20}, cash=1e6)
    assert result.meta["params"] == {"fast": 5, "slow": 20, "qty": 100}
    with pytest.raises(ConfigError, match=(
        r"^config: backtrack_exts\.finchan\.exts\.strategy\.params: "
        r"SmaCross: unknown parameter 'fastest'"
    )):
        backtest(SmaCross, {"SYN": make_bars(100)}, params={"fastest": 5})
    with pytest.raises(ConfigError, match="unknown option"):
        backtest(SmaCross, {"SYN": make_bars(100)}, leverage=3)


def test_result_save_and_html(tmp_path):
    result = backtest(SmaCross, {"SYN": make_bars(3000)}, cash=1e6)
    out = result.save(tmp_path / "out", report=False)
    assert sorted(p.name for p in out.iterdir()) == ["equity.csv", "fills.csv", "open_trades.csv", "orders.csv", "summary.json", "trades.csv"]
    equity = pd.read_csv(out / "equity.csv")
    assert list(equity.columns) == ["datetime", "equity"] and len(equity) == 3000
    assert equity.datetime.iloc[0] == "2020-01-01T00:00:00"


def test_vectorised_style_gives_the_same_fills_as_the_incremental_one():
    from finchan.trade.examples import VectorSmaCross

    bars = make_bars(20_000)
    incremental = backtest(SmaCross, {"SYN": bars}, cash=1e6)
    vectorised = backtest(VectorSmaCross, {"SYN": bars}, cash=1e6, params={"closes": bars["close"].to_numpy()})
    assert reference_csv(vectorised.fills) == reference_csv(incremental.fills)
    assert len(incremental.fills) == 747 and round(vectorised.final_equity, 2) == 1_001_763.30
    with pytest.raises(Exception, match="needs the run's closes"):
        backtest(VectorSmaCross, {"SYN": make_bars(100)})


def test_strategy_state_is_a_json_dict_and_not_an_attribute_to_replace():
    from finchan.errors import RunError
    from finchan.trade.strategy import StrategyState

    class Counting(Strategy):
        def on_bar(self, bar):
            self.state["bars"] = self.state.get("bars", 0) + 1
            self.state.setdefault("first", bar.close)

    class Replacing(Strategy):
        def on_start(self):
            self.state = {}

    bars = make_bars(50)
    result = backtest(Counting, {"SYN": bars})
    assert result.meta["strategy"] == "Counting"
    state = StrategyState("X")
    state["a"] = (1, 2)
    assert state.to_json() == '{"a":[1,2]}'
    with pytest.raises(TypeError, match=r"X.state: keys are strings, not 1"):
        state[1] = 2  # type: ignore[index]
    state["b"] = object()
    with pytest.raises(RunError, match=r"^X.state: .*object.* its values must be JSON"):
        state.to_json()
    from finchan.errors import CallbackError

    with pytest.raises(CallbackError, match=r"Replacing.state is the strategy's persisted state"):
        backtest(Replacing, {"SYN": bars})
