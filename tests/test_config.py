"""Config: files, directories, merging, aliases, validation messages, overrides."""

import textwrap
from datetime import UTC, date, datetime

import pytest

from finchan.config import apply_override, load_config, validate_config
from finchan.errors import ConfigError


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_small_config_gets_defaults(tmp_path):
    config = load_config(write(tmp_path / "f.yml", "version: 1\n"))
    assert config.run_mode == "backtrack"
    assert config.dispatcher_backtrack.time_step == 86400
    assert config.dispatcher_backtrack.on_callback_error == "stop"
    assert config.dispatcher_live_track.on_callback_error == "log"
    assert config.dispatcher_live_track.stop_check_interval == 1
    assert config.seed == 0 and config.timezone == "UTC" and config.work_dir == "~/.finchan"


def test_original_keys_and_yaml_1_2_header(tmp_path):
    path = write(
        tmp_path / "finchan.yml",
        """
        %YAML 1.2
        ---
        version: 1
        run_mode: live
        enabled_live_exts: [live_test]
        ext_groups:
          live_test: [finchan.exts.timer_source, finchan.exts.timer_callback]
        live_track_exts:
          finchan.exts.timer_source:
          finchan.exts.timer_callback: {process_time: 3}
        dispatcher.backtrack:
          start_dt: 2017-03-04 12:00:00
          end_dt: 2017-03-07
          time_step: 3600
          trace_process_time: true
        dispatcher.live_track:
          stop_check_interval: 0.5
    """,
    )
    config = load_config(path)
    assert config.run_mode == "live_track"
    assert config.live_track_exts["finchan.exts.timer_source"] is None
    assert config.live_track_exts["finchan.exts.timer_callback"] == {"process_time": 3}
    assert config.dispatcher_backtrack.start_dt == datetime(2017, 3, 4, 12)
    assert config.dispatcher_backtrack.end_dt == date(2017, 3, 7)
    assert config.dispatcher_backtrack.trace_process_time is True
    assert config.dispatcher_live_track.stop_check_interval == 0.5


def test_directory_is_merged_with_lists_joined_without_repeats(tmp_path):
    write(
        tmp_path / "finchan.yml",
        """
        enabled_backtrack_exts: [a, b]
        backtrack_exts:
          a: {x: 1}
    """,
    )
    write(
        tmp_path / "exts" / "more.yml",
        """
        enabled_backtest_exts: [b, c]
        backtest_exts:
          a: {y: 2}
          c:
        dispatcher:
          backtest: {time_step: 60}
    """,
    )
    write(tmp_path / "notes.txt", "not: [yaml")
    config = load_config(tmp_path)
    assert config.enabled_backtrack_exts == ["a", "b", "c"]
    assert config.backtrack_exts == {"a": {"x": 1, "y": 2}, "c": None}
    assert config.dispatcher_backtrack.time_step == 60
    assert config.config_dir == tmp_path.resolve()


def test_conflicting_scalars_name_both_files(tmp_path):
    write(tmp_path / "a.yml", "dispatcher.backtrack: {time_step: 60}\n")
    write(tmp_path / "sub" / "b.yml", "dispatcher.backtest: {time_step: 120}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == (
        f"dispatcher.backtrack.time_step: conflicting values 60 in {tmp_path / 'a.yml'} "
        f"and 120 in {tmp_path / 'sub' / 'b.yml'}"
    )


def test_yaml_aliases_work(tmp_path):
    path = write(
        tmp_path / "f.yml",
        """
        common: &common [finchan.exts.timer_source, finchan.exts.timer_callback]
    """,
    )
    with pytest.raises(ConfigError, match="common: unknown key"):
        load_config(path)
    path = write(
        tmp_path / "g.yml",
        """
        ext_groups:
          backtest_group: &group [finchan.exts.timer_source, finchan.exts.timer_callback]
          live_group: *group
    """,
    )
    config = load_config(path)
    assert config.ext_groups["live_group"] == config.ext_groups["backtest_group"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "dispatcher.backtrack: {end_dt: soon}\n",
            "dispatcher.backtrack.end_dt: not a date (got 'soon')",
        ),
        (
            "dispatcher.backtrack: {time_step: -5}\n",
            "dispatcher.backtrack.time_step: must be greater than 0 (got -5)",
        ),
        (
            "dispatcher.backtrack: {time_step: often}\n",
            "dispatcher.backtrack.time_step: not a number (got 'often')",
        ),
        (
            "dispatcher.backtrack: {trace_process_time: maybe}\n",
            "dispatcher.backtrack.trace_process_time: not true or false (got 'maybe')",
        ),
        (
            "dispatcher.backtrack: {on_callback_error: ignore}\n",
            "dispatcher.backtrack.on_callback_error: must be 'log' or 'stop' (got 'ignore')",
        ),
        (
            "dispatcher.live_track: {stop_check_intervall: 1}\n",
            "dispatcher.live_track.stop_check_intervall: unknown key (did you mean 'stop_check_interval'?)",
        ),
        (
            "run_mode: paper\n",
            "run_mode: must be backtest (backtrack) or live (live_track) (got 'paper')",
        ),
        ("version: 2\n", "version: must be 1 (got 2)"),
        ("seed: -1\n", "seed: must be greater than or equal to 0 (got -1)"),
        ("timezone: Mars/Olympus\n", "timezone: unknown time zone (got 'Mars/Olympus')"),
        (
            "enabled_backtrack_ext: [a]\n",
            "enabled_backtrack_ext: unknown key (did you mean 'enabled_backtrack_exts'?)",
        ),
        ("backtrack_exts: [a, b]\n", "backtrack_exts: not a mapping (got ['a', 'b'])"),
        ("backtrack_exts: {a: 5}\n", "backtrack_exts.a: not a mapping (got 5)"),
        ("ext_groups: {g: {a: 1}}\n", "ext_groups.g: not a list (got {'a': 1})"),
        ("ext_manager: {ext_paths: 5}\n", "ext_manager.ext_paths: not a list (got 5)"),
        ("log_config: yes please\n", "log_config: not a mapping (got 'yes please')"),
    ],
)
def test_every_validation_error_names_file_and_key(tmp_path, text, message):
    path = write(tmp_path / "finchan.yml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: {message}"


def test_error_in_a_split_directory_names_the_file_that_set_the_key(tmp_path):
    write(tmp_path / "finchan.yml", "version: 1\n")
    bad = write(tmp_path / "exts" / "dispatcher.yml", "dispatcher.backtrack: {end_dt: never}\n")
    with pytest.raises(ConfigError, match=f"^{bad}: dispatcher.backtrack.end_dt: not a date"):
        load_config(tmp_path)


def test_several_errors_are_counted(tmp_path):
    path = write(tmp_path / "f.yml", "seed: x\nversion: 3\n")
    with pytest.raises(ConfigError, match=r"\(and 1 more problem\(s\)\)$"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\n", "invalid YAML"),
        ("- just\n- a list\n", "the top level must be a mapping of keys, not a list"),
        ("a: 1\na: 2\n", "invalid YAML"),
    ],
)
def test_unreadable_yaml_is_one_line_with_position(tmp_path, text, message):
    path = write(tmp_path / "f.yml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(str(path)) and message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_and_empty_config_paths(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yml")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no \\*.yml config files in this directory"):
        load_config(tmp_path / "empty")


def test_set_overrides_keys_with_dots_and_mode_override(tmp_path):
    path = write(
        tmp_path / "f.yml",
        """
        backtrack_exts:
          finchan.exts.timer_callback: {process_time: 3}
        dispatcher.backtrack: {time_step: 60}
    """,
    )
    config = load_config(
        path,
        [
            "dispatcher.backtrack.time_step=120",
            "backtrack_exts.finchan.exts.timer_callback.process_time=5",
            "seed=7",
            "dispatcher.backtest.end_dt=2020-02-01",
        ],
        run_mode="live",
    )
    assert config.dispatcher_backtrack.time_step == 120
    assert config.backtrack_exts["finchan.exts.timer_callback"] == {"process_time": 5}
    assert config.seed == 7 and config.run_mode == "live_track"
    assert config.dispatcher_backtrack.end_dt == date(2020, 2, 1)
    with pytest.raises(ConfigError, match="^--set: seed: not an integer"):
        load_config(path, ["seed=abc"])


def test_apply_override_rejects_malformed_assignments():
    with pytest.raises(ConfigError, match="expected KEY.PATH=VALUE"):
        apply_override({}, "seed")
    with pytest.raises(ConfigError, match="seed is not a mapping"):
        apply_override({"seed": 1}, "seed.x=1")


def test_relative_paths_start_at_the_config_directory(tmp_path):
    config = load_config(write(tmp_path / "c" / "f.yml", "work_dir: out\n"))
    assert config.resolve_path(config.work_dir) == (tmp_path / "c" / "out").resolve()
    assert validate_config({}).resolve_path("~/x").is_absolute()


def test_numbers_are_accepted_as_posix_times_from_python():
    config = validate_config({"dispatcher.backtest": {"start_dt": 0}})
    assert config.dispatcher_backtrack.start_dt == datetime(1970, 1, 1, tzinfo=UTC)
