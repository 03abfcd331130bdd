"""The ``finchan`` command.

Exit status: 0 the run finished, 1 the run failed, 2 bad usage or config,
130 interrupted (a backtest stopped by Ctrl-C, or a forced exit). A live run
stopped by SIGINT/SIGTERM has finished normally and exits 0.

Errors a user caused print one line, ``finchan: error: ...``; ``-vvv`` adds
the traceback.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, NoReturn

import click

from finchan import __version__

__all__ = ["main"]

_TRACEBACK_VERBOSITY = 3


def _fail(message: str, code: int, verbose: int, exc: BaseException | None = None) -> NoReturn:
    if exc is not None and verbose >= _TRACEBACK_VERBOSITY:
        traceback.print_exception(exc, file=sys.stderr)
    click.echo(f"finchan: error: {message}", err=True)
    sys.exit(code)


def _format_ts(ts: float | None, tz: Any) -> str:
    from finchan._time import from_timestamp

    return "-" if ts is None else from_timestamp(ts, tz).isoformat(sep=" ")


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file, or a directory of *.yml files merged together.",
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More output: -v info, -vv debug, -vvv also tracebacks of errors.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no summary or progress.")
@click.option(
    "--mode",
    type=click.Choice(["backtest", "backtrack", "live", "live_track"]),
    help="Override the config's run_mode.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a config key, e.g. --set dispatcher.backtrack.end_dt=2020-02-01.",
)
@click.version_option(__version__, "-V", "--version", prog_name="finchan")
def main(
    config_path: str | None, verbose: int, quiet: bool, mode: str | None, overrides: tuple[str, ...]
) -> None:
    """Run a finchan system described by a YAML config (finchan -c PATH)."""
    if config_path is None:
        _fail("no config given: use finchan -c PATH (a .yml file or a directory)", 2, verbose)
    from finchan.errors import FinchanError

    env = None
    try:
        from finchan.config import load_config
        from finchan.env import Env, RunMode
        from finchan.log import setup_logging

        config = load_config(config_path, overrides, run_mode=mode)
        env = Env(config)
        env.quiet = quiet
        log_file = setup_logging(verbose, env.work_dir, config.log_config, quiet=quiet)
        summary = env.run()
    except FinchanError as exc:
        _fail(str(exc), exc.exit_code, verbose, exc)
    except KeyboardInterrupt as exc:
        _fail("interrupted", 130, verbose, exc)
    except Exception as exc:
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (run with -vvv for the traceback)",
            1,
            verbose,
            exc,
        )
    else:
        mode_name = "backtest" if summary.run_mode == RunMode.BACKTEST else "live run"
        if not quiet:
            state = "interrupted" if summary.interrupted else "done"
            click.echo(
                f"finchan: {mode_name} {state}: {summary.events} events, "
                f"{_format_ts(summary.start_ts, env.tz)} to {_format_ts(summary.end_ts, env.tz)}, "
                f"{summary.wall_seconds:.2f}s"
                + (
                    f", {summary.callback_errors} callback error(s)"
                    if summary.callback_errors
                    else ""
                )
                + (f"; log: {log_file}" if log_file else ""),
                err=True,
            )
        if summary.interrupted and summary.run_mode == RunMode.BACKTEST:
            sys.exit(130)
        sys.exit(0)
