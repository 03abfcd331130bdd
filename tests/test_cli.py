"""The finchan command in a subprocess: exit codes and one-line errors."""

import textwrap

import pytest

from finchan_testing import ROOT, run_finchan


def config(tmp_path, text, name="finchan.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip().replace("WORK", str(tmp_path / "work")))
    return path


def assert_one_line_error(result, code, expected):
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"finchan: error: {expected}"], result.stderr
    assert "Traceback" not in result.stderr


def test_version_and_module_entry_point():
    from finchan import __version__

    result = run_finchan("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"finchan, version {__version__}"


def test_backtest_runs_and_prints_a_summary(tmp_path):
    path = config(
        tmp_path,
        """
        work_dir: WORK
        enabled_backtest_exts: [finchan.exts.timer_callback]
        dispatcher.backtest: {start_dt: 2020-01-01, end_dt: 2020-01-01}
    """,
    )
    result = run_finchan("-c", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith("finchan: backtest done: ")
    assert "2020-01-01 00:00:00+00:00 to 2020-01-01 23:" in result.stderr
    assert (tmp_path / "work" / "logs" / "finchan.log").exists()
    quiet = run_finchan("-c", str(path), "-q")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_no_config_is_a_usage_error():
    assert_one_line_error(
        run_finchan(), 2, "no config given: use finchan -c PATH (a .yml file or a directory)"
    )


def test_unreadable_config(tmp_path):
    assert_one_line_error(
        run_finchan("-c", str(tmp_path / "nope.yml")),
        2,
        f"{tmp_path / 'nope.yml'}: config file not found",
    )
    path = config(tmp_path, "a: [1\n")
    result = run_finchan("-c", str(path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"finchan: error: {path}:2:1: invalid YAML")


def test_bad_key_value_names_file_and_key(tmp_path):
    path = config(tmp_path, "work_dir: WORK\ndispatcher.backtrack: {end_dt: tomorrow}\n")
    assert_one_line_error(
        run_finchan("-c", str(path)),
        2,
        f"{path}: dispatcher.backtrack.end_dt: not a date (got 'tomorrow')",
    )


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = config(tmp_path, "work_dir: WORK\nrun_mod: live\n")
    assert_one_line_error(
        run_finchan("-c", str(path)), 2, f"{path}: run_mod: unknown key (did you mean 'run_mode'?)"
    )


def test_extension_that_fails_to_import(tmp_path):
    path = config(tmp_path, "work_dir: WORK\nenabled_backtest_exts: [broken_import]\n")
    result = run_finchan("-c", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(
        "finchan: error: extension 'broken_import' failed to import: ModuleNotFoundError: "
        "No module named 'this_module_does_not_exist' ("
    )
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_dependency_cycle(tmp_path):
    path = config(tmp_path, "work_dir: WORK\nenabled_backtest_exts: [cycle_a]\n")
    assert_one_line_error(
        run_finchan("-c", str(path)), 2, "extension dependency cycle: cycle_a -> cycle_b -> cycle_a"
    )


def test_failing_callback_exits_1_and_vvv_adds_the_traceback(tmp_path):
    path = config(
        tmp_path,
        """
        work_dir: WORK
        enabled_backtest_exts: [recorder]
        backtest_exts: {recorder: {raise_at_start: true}}
        dispatcher.backtest: {start_dt: 2020-01-01, end_dt: 2020-01-02}
    """,
    )
    result = run_finchan("-c", str(path))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "finchan: error: callback recorder.on_started failed on event "
        "'system_event.system_started' at 2020-01-01T00:00:00+00:00: RuntimeError: boom at start"
    )
    assert "Traceback" not in result.stderr
    verbose = run_finchan("-c", str(path), "-vvv")
    assert verbose.returncode == 1 and "Traceback (most recent call last)" in verbose.stderr


def test_set_and_mode_override_the_config(tmp_path):
    path = config(
        tmp_path,
        """
        work_dir: WORK
        enabled_backtest_exts: [recorder]
        backtest_exts: {recorder: {echo: true}}
        dispatcher.backtest: {start_dt: 2020-01-01, end_dt: 2020-01-02}
    """,
    )
    result = run_finchan(
        "-c",
        str(path),
        "--set",
        "dispatcher.backtest.start_dt=2021-06-01",
        "--set",
        "dispatcher.backtest.end_dt=2021-06-02",
        "--mode",
        "backtest",
    )
    assert result.returncode == 0, result.stderr
    assert "started 2021-06-01T00:00:00+00:00" in result.stdout
    bad = run_finchan("-c", str(path), "--mode", "paper")
    assert bad.returncode == 2 and "Invalid value for '--mode'" in bad.stderr


@pytest.mark.parametrize("verbosity", ["-v", "-vvvvv"])
def test_verbosity_flags_are_accepted(tmp_path, verbosity):
    path = config(
        tmp_path,
        """
        work_dir: WORK
        enabled_backtest_exts: [finchan.exts.timer_callback]
        dispatcher.backtest: {start_dt: 2020-01-01, end_dt: 2020-01-01 01:00}
    """,
    )
    result = run_finchan("-c", str(path), verbosity)
    assert result.returncode == 0
    assert "[2020-01-01 00:" in result.stderr  # records carry the simulated time
    assert ("DEBUG" in result.stderr) == (verbosity == "-vvvvv")


def test_log_config_with_the_original_filter_factory_and_relative_file(tmp_path):
    path = config(
        tmp_path,
        """
        work_dir: WORK
        enabled_backtest_exts: [finchan.exts.timer_callback]
        dispatcher.backtest: {start_dt: 2020-01-01, end_dt: 2020-01-01 01:00}
        log_config:
          version: 1
          filters:
            finchan: {(): finchan.log.get_finchan_filter}
          formatters:
            plain: {format: "%(tracktime)s|%(levelname)s|%(message)s"}
          handlers:
            file:
              class: logging.FileHandler
              filename: logs/log.log
              formatter: plain
              filters: [finchan]
          root: {level: INFO, handlers: [file]}
    """,
    )
    result = run_finchan("-c", str(path))
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "work" / "logs" / "log.log").read_text().splitlines()
    assert any(
        line.startswith("2020-01-01 00:") and "|INFO|timer callback 1 at" in line for line in lines
    )


def test_the_bundled_timer_example_runs(tmp_path):
    result = run_finchan("-c", str(ROOT / "examples" / "timer"), "--set", f"work_dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert "finchan: backtest done:" in result.stderr


def test_the_user_extension_example_runs(tmp_path):
    result = run_finchan(
        "-c", str(ROOT / "examples" / "my_ext" / "finchan.yml"), "--set", f"work_dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "heartbeats: 27 (Friday 4, Monday 3, Saturday 4, Sunday 4, Thursday 4, Tuesday 4, Wednesday 4)\n"
    )


def test_ctrl_c_during_a_backtest_stops_cleanly_with_130(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from finchan_testing import TEST_EXTS

    path = config(tmp_path, """
        work_dir: WORK
        enabled_backtest_exts: [recorder]
        backtest_exts: {recorder: {echo: true, every_seconds: 1}}
        dispatcher.backtest: {start_dt: 2020-01-01, end_dt: 2030-01-01}
    """)
    proc = subprocess.Popen([sys.executable, "-m", "finchan", "-c", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(TEST_EXTS)})
    try:
        assert proc.stdout.readline().startswith("load")
        while not proc.stdout.readline().startswith("timer"):
            pass  # the backtest is dispatching timer events now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # a failed test must not leave a ten-year backtest running
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 130
    assert out.splitlines()[-2:] == ["exiting", "cleanup recorder"]
    assert "backtest interrupted" in err
