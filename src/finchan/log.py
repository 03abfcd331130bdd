"""Logging: the simulated time on every record, a default setup, ``log_config``.

Every record gets a ``tracktime`` attribute: the current time of the Env that
is running in this context (simulated in backtest, wall clock in live), so a
backtest's log lines say when in history they happened. Use it in formats as
``%(tracktime)s``. The original's dictConfig filter factory
``finchan.log.get_finchan_filter`` keeps working.
"""

from __future__ import annotations

import logging
import logging.config
import sys
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_FORMAT", "TrackTimeFilter", "get_finchan_filter", "setup_logging"]

DEFAULT_FORMAT = "%(asctime)s [%(tracktime)s] %(levelname)-7s %(name)s: %(message)s"

_VERBOSITY_LEVELS = {0: logging.WARNING, 1: logging.INFO}


class TrackTimeFilter(logging.Filter):
    """Adds ``record.tracktime``: the running Env's time, or ``-`` outside a run."""

    def filter(self, record: logging.LogRecord) -> bool:
        from finchan.env import running_env

        env = running_env()
        if env is None:
            record.tracktime = "-"
        else:
            try:
                record.tracktime = env.now.strftime("%Y-%m-%d %H:%M:%S")
            except Exception:  # a clock that is not set up yet must not break logging
                record.tracktime = "-"
        return True


def get_finchan_filter() -> TrackTimeFilter:
    """Filter factory for ``log_config`` (``'()': finchan.log.get_finchan_filter``)."""
    return TrackTimeFilter()


def _relocate_files(config: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Relative ``filename``s of handlers live under ``work_dir`` (as in the original)."""
    for handler in (config.get("handlers") or {}).values():
        filename = handler.get("filename") if isinstance(handler, dict) else None
        if filename and not Path(filename).expanduser().is_absolute():
            path = work_dir / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            handler["filename"] = str(path)
        elif filename:
            Path(filename).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return config


def setup_logging(
    verbosity: int = 0,
    work_dir: Path | None = None,
    log_config: dict[str, Any] | None = None,
    quiet: bool = False,
    source: str = "config",
) -> Path | None:
    """Configure logging for a CLI run; returns the log file's path, if any.

    Without ``log_config``: console records at WARNING (``-v`` INFO, ``-vv``
    and more DEBUG) on stderr, and a file ``work_dir/logs/finchan.log`` at
    INFO (DEBUG with ``-vv``). With ``log_config``: that dictConfig mapping,
    relative file names under ``work_dir``.
    """
    if log_config:
        import copy

        from finchan.errors import ConfigError

        config = copy.deepcopy(log_config)
        config.setdefault("version", 1)
        try:
            if work_dir is not None:
                _relocate_files(config, work_dir)
            logging.config.dictConfig(config)
        except (ValueError, TypeError, AttributeError, ImportError, KeyError, OSError) as exc:
            # dictConfig wraps the cause: "Unable to configure handler 'x'" + the reason
            cause = exc.__cause__ or exc.__context__
            detail = f"{exc}" + (f": {type(cause).__name__}: {cause}" if cause else "")
            raise ConfigError(f"{source}: log_config: {detail.splitlines()[0]}") from None
        _mask_handlers()
        return None
    level = _VERBOSITY_LEVELS.get(verbosity, logging.DEBUG)
    if quiet:
        level = logging.ERROR
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(min(level, logging.INFO) if work_dir is not None else level)
    formatter = logging.Formatter(DEFAULT_FORMAT)
    track = TrackTimeFilter()
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(formatter)
    console.addFilter(track)
    root.addHandler(console)
    log_file = None
    if work_dir is not None:
        log_file = work_dir / "logs" / "finchan.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
        file_handler.setFormatter(formatter)
        file_handler.addFilter(track)
        root.addHandler(file_handler)
        root.setLevel(min(level, file_handler.level))
    _mask_handlers()
    return log_file


class SecretFilter(logging.Filter):
    """Masks passwords in URLs (finchan._secrets) in a record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        from finchan._secrets import mask_secrets

        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True


def _mask_handlers() -> None:
    """Every handler of the root logger masks secrets, whoever configured it."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())
