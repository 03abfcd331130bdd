"""Silent mistakes that are now one clear error (issue 10): the config and the command.

CLI cases run ``python -m finchan`` in a subprocess and check the exit code
and the exact one-line message; the rest go through ``load_config``/``Env``.
"""

from __future__ import annotations

import logging
import textwrap

import pytest

from finchan.config import load_config, validate_config
from finchan.env import Env
from finchan.errors import ConfigError
from finchan_testing import run_finchan

TIMER = "enabled_backtest_exts: [finchan.exts.timer_callback]\n"
SPAN = "dispatcher.backtest: {start_dt: 2020-01-01, end_dt: 2020-01-01}\n"


def write(tmp_path, text, name="finchan.yml"):
    path = tmp_path / name
    body = textwrap.dedent(text).lstrip().replace("WORK", str(tmp_path / "work"))
    path.write_text(body, encoding="utf-8")
    return path


def one_line(result, code):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("finchan: error: ")
    return lines[0].removeprefix("finchan: error: ")


# -- options for extensions ------------------------------------------------------------------
def test_options_for_a_misspelt_extension_are_an_error_with_did_you_mean(tmp_path):
    path = write(tmp_path, f"work_dir: WORK\n{TIMER}{SPAN}"
                 "backtest_exts:\n  finchan.exts.sim_brokr: {cash: 5}\n")
    assert one_line(run_finchan("-c", str(path)), 2) == (
        f"{path}: backtest_exts.finchan.exts.sim_brokr: options for an unknown extension "
        "'finchan.exts.sim_brokr': not loaded and not importable "
        "(did you mean 'finchan.exts.sim_broker'?)"
    )


def test_options_for_an_importable_extension_not_enabled_warn(tmp_path, caplog):
    path = write(tmp_path, f"work_dir: WORK\n{TIMER}{SPAN}"
                 "backtest_exts:\n  finchan.exts.kvstore: {url: 'memory://'}\n")
    env = Env(load_config(path))
    with caplog.at_level(logging.WARNING, logger="finchan.config"):
        env.run()
    assert [r.getMessage() for r in caplog.records if r.name == "finchan.config"] == [
        f"{path}: backtest_exts.finchan.exts.kvstore: options for extension "
        "'finchan.exts.kvstore', which is not enabled: they are not used"
    ]


def test_unknown_timer_option_is_an_error_naming_the_file(tmp_path):
    path = write(tmp_path, f"work_dir: WORK\n{TIMER}{SPAN}"
                 "backtest_exts:\n  finchan.exts.timer_source: {frequncy: 2}\n")
    assert one_line(run_finchan("-c", str(path)), 2) == (
        f"{path}: backtest_exts.finchan.exts.timer_source.frequncy: unknown key "
        "(did you mean 'frequency'?)"
    )


@pytest.mark.parametrize(("options", "message"), [
    ({"stepp": 3}, "timer_callback.stepp: unknown key (did you mean 'step'?)"),
    ({"unit": "fortnights"}, "timer_callback.unit: must be 'seconds', 'minutes', "),
    ({"step": 0}, "timer_callback.step: must be greater than 0 (got 0)"),
])
def test_timer_callback_options_are_checked(options, message):
    env = Env({"enabled_backtest_exts": ["finchan.exts.timer_callback"],
               "backtest_exts": {"finchan.exts.timer_callback": options}})
    with pytest.raises(ConfigError) as info:
        env.load_exts()
    assert str(info.value).startswith(f"config: backtest_exts.finchan.exts.{message}")


def test_set_resolves_extension_names_and_gives_the_file_error(tmp_path):
    path = write(tmp_path, f"work_dir: WORK\n{TIMER}{SPAN}")
    result = run_finchan("-c", str(path), "--set",
                         "backtest_exts.finchan.exts.timer_source.frequncy=5")
    assert one_line(result, 2) == (
        "--set: backtest_exts.finchan.exts.timer_source.frequncy: unknown key "
        "(did you mean 'frequency'?)"
    )
    config = load_config(path, ["backtest_exts.finchan.exts.sim_broker.cash=5"])
    assert config.backtrack_exts == {"finchan.exts.sim_broker": {"cash": 5}}


# -- ranges ------------------------------------------------------------------------------------
def test_end_before_start_is_an_error(tmp_path):
    path = write(tmp_path, f"work_dir: WORK\n{TIMER}"
                 "dispatcher.backtest: {start_dt: 2020-02-01, end_dt: 2020-01-01}\n")
    assert one_line(run_finchan("-c", str(path)), 2) == (
        f"{path}: dispatcher.backtest.end_dt: 2020-01-01 is before start_dt 2020-02-01"
    )


def test_a_time_step_that_cannot_advance_is_an_error_not_a_hang(tmp_path):
    path = write(tmp_path, f"work_dir: WORK\n{TIMER}"
                 "dispatcher:\n  backtest: {start_dt: 2020-01-01, time_step: 1e-9}\n")
    assert one_line(run_finchan("-c", str(path), timeout=60), 2) == (
        f"{path}: dispatcher.backtest.time_step: must be at least 0.001 seconds "
        "(a smaller step cannot advance the clock) (got 1e-09)"
    )
    with pytest.raises(ConfigError, match=r"time_step: 0\.01 s cuts 2020-01-01 to 2090-01-01 "
                       r"into 2\.21e\+11 windows \(at most 1e\+09\): use a larger time_step"):
        validate_config({"dispatcher.backtest": {"start_dt": "2020-01-01",
                                                 "end_dt": "2090-01-01", "time_step": 0.01}})


# -- internal errors that are user mistakes ---------------------------------------------------------
def test_work_dir_that_is_a_file_or_cannot_be_created(tmp_path):
    (tmp_path / "afile").write_text("x")
    path = write(tmp_path, f"work_dir: afile\n{TIMER}{SPAN}")
    assert one_line(run_finchan("-c", str(path)), 2) == (
        f"{path}: work_dir: {tmp_path / 'afile'} is a file (File exists)"
    )
    path = write(tmp_path, f"work_dir: afile/sub\n{TIMER}{SPAN}", "b.yml")
    assert one_line(run_finchan("-c", str(path)), 2) == (
        f"{path}: work_dir: {tmp_path / 'afile' / 'sub'} cannot be created (Not a directory)"
    )


def test_bad_log_config_is_a_config_error(tmp_path):
    path = write(tmp_path, f"work_dir: WORK\n{TIMER}{SPAN}"
                 "log_config: {handlers: {h: {class: nope.Handler}}}\n")
    assert one_line(run_finchan("-c", str(path)), 2) == (
        f"{path}: log_config: Unable to configure handler 'h': "
        "ValueError: Cannot resolve 'nope.Handler': No module named 'nope'"
    )


def test_dev_zero_is_refused_at_once():
    assert one_line(run_finchan("-c", "/dev/zero", timeout=60), 2) == (
        "/dev/zero: not a regular file (a config is a YAML file or directory)"
    )


def test_config_size_depth_and_alias_bomb_limits(tmp_path):
    big = tmp_path / "big.yml"
    big.write_text("# x\n" * (1_200_000))
    with pytest.raises(ConfigError, match=r"big\.yml: larger than 4 MiB: not a config file$"):
        load_config(big)
    deep = write(tmp_path, "a: " + "[" * 3000 + "]" * 3000 + "\n", "deep.yml")
    with pytest.raises(ConfigError, match=r"deep\.yml: config nested too deeply$"):
        load_config(deep)
    nested = write(tmp_path, "a: " + "[" * 80 + "]" * 80 + "\n", "nested.yml")
    with pytest.raises(ConfigError, match=r"nested\.yml: config nested deeper than 64 levels$"):
        load_config(nested)
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 9) + "]"
              for i in range(1, 9)]
    bomb = write(tmp_path, "\n".join(lines) + "\n", "bomb.yml")
    assert one_line(run_finchan("-c", str(bomb), timeout=60), 2) == (
        f"{bomb}: config too large after expanding aliases (more than 200000 values): "
        "an alias bomb?"
    )


def test_toml_and_json_configs_say_so(tmp_path):
    toml = write(tmp_path, "[dispatcher]\nstart_dt = 2020\n", "c.toml")
    with pytest.raises(ConfigError) as info:
        load_config(toml)
    assert str(info.value) == f"{toml}: a TOML file: finchan configs are YAML (.yml)"
    disguised = write(tmp_path, "[dispatcher]\nstart_dt = 2020\n", "c.yml")
    with pytest.raises(ConfigError) as info:
        load_config(disguised)
    assert str(info.value) == (
        f"{disguised}: not YAML (this looks like TOML: finchan configs are YAML, key: value)"
    )
    json_file = write(tmp_path, '{"seed": [1,}\n', "c.json")
    with pytest.raises(ConfigError) as info:
        load_config(json_file)
    assert str(info.value) == f"{json_file}:1:13: invalid JSON: Expecting value"
    good = write(tmp_path, '{"seed": 7}\n', "ok.json")
    assert load_config(good).seed == 7


# -- the user's own spelling ------------------------------------------------------------------------
def test_messages_use_the_users_spelling(tmp_path):
    path = write(tmp_path, "backtest_exts:\n  x: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: backtest_exts.x: not a mapping (got 3)"
    path = write(tmp_path, "backtrack_exts:\n  x: 3\n", "orig.yml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: backtrack_exts.x: not a mapping (got 3)"
