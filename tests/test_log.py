"""finchan.log: the tracktime of records, setup_logging's handlers and files."""

from __future__ import annotations

import logging

import pytest

from finchan.env import Env
from finchan.event import SysEvents
from finchan.log import DEFAULT_FORMAT, TrackTimeFilter, get_finchan_filter, setup_logging


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    loggers = [lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    disabled = {lg: lg.disabled for lg in loggers}
    yield root
    for lg, was in disabled.items():  # dictConfig disables the loggers it does not name
        lg.disabled = was
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def record(message: str = "hello") -> logging.LogRecord:
    return logging.LogRecord("test", logging.INFO, __file__, 1, message, None, None)


def test_tracktime_is_a_dash_outside_a_run():
    rec = record()
    assert TrackTimeFilter().filter(rec) is True
    assert rec.tracktime == "-"
    assert isinstance(get_finchan_filter(), TrackTimeFilter)


def test_tracktime_is_the_simulated_time_inside_a_backtest(make_env):
    env = make_env({"dispatcher.backtest": {"start_dt": "2021-03-04T05:06:07", "end_dt": "2021-03-05"}})
    seen = []

    def at_start(event):
        rec = record()
        TrackTimeFilter().filter(rec)
        seen.append(rec.tracktime)

    env.dispatcher.subscribe(SysEvents.SYSTEM_STARTED, at_start)
    env.run()
    assert seen == ["2021-03-04 05:06:07"]


def test_default_setup_writes_a_file_with_tracktime_and_a_console_at_warning(
    tmp_path, restore_root_logging, capsys
):
    log_file = setup_logging(verbosity=0, work_dir=tmp_path)
    assert log_file == tmp_path / "logs" / "finchan.log"
    logger = logging.getLogger("finchan.test_log")
    logger.info("to the file only")
    logger.warning("to both")
    for handler in restore_root_logging.handlers:
        handler.flush()
    lines = log_file.read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [
        "INFO    finchan.test_log: to the file only",
        "WARNING finchan.test_log: to both",
    ]
    assert all(" [-] " in line for line in lines)  # no run: tracktime is "-"
    assert capsys.readouterr().err.strip().endswith("WARNING finchan.test_log: to both")
    assert "%(tracktime)s" in DEFAULT_FORMAT


def test_quiet_shows_errors_only_and_no_work_dir_means_no_file(restore_root_logging):
    assert setup_logging(verbosity=2, quiet=True) is None
    (console,) = restore_root_logging.handlers
    assert console.level == logging.ERROR


def test_log_config_is_used_as_is_with_relative_files_under_work_dir(tmp_path, restore_root_logging):
    config = {
        "handlers": {"f": {"class": "logging.FileHandler", "filename": "sub/run.log",
                           "filters": ["track"], "formatter": "plain"}},
        "filters": {"track": {"()": "finchan.log.get_finchan_filter"}},
        "formatters": {"plain": {"format": "%(tracktime)s|%(message)s"}},
        "root": {"level": "INFO", "handlers": ["f"]},
    }
    assert setup_logging(work_dir=tmp_path, log_config=config) is None
    assert config["handlers"]["f"]["filename"] == "sub/run.log"  # the caller's mapping is untouched
    logging.getLogger("x").info("configured")
    for handler in restore_root_logging.handlers:
        handler.flush()
    assert (tmp_path / "sub" / "run.log").read_text() == "-|configured\n"


def test_tracktime_falls_back_to_a_dash_when_the_clock_fails(make_env):
    env = Env({})

    class Broken:
        @property
        def now(self):
            raise RuntimeError("no clock yet")

    env.set_dispatcher(Broken())  # type: ignore[arg-type]
    with env.activated():
        rec = record()
        TrackTimeFilter().filter(rec)
    assert rec.tracktime == "-"
