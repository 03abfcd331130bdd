"""The ``finchan`` command.

Exit status: 0 the run finished, 1 the run failed, 2 bad usage or config,
130 interrupted (a backtest stopped by Ctrl-C, or a forced exit). A live run
stopped by SIGINT/SIGTERM has finished normally and exits 0.

Errors a user caused print one line, ``finchan: error: ...``; ``-vvv`` adds
the traceback.

Subcommands: ``finchan publish FILE... --redis URL --stream KEY`` writes bar
files into a Redis stream (the feed of ``finchan.exts.redis_stream``);
``finchan replay LIVE_DIR`` runs a live run's journal as a backtest;
``finchan status LIVE_DIR`` prints a live run's stored status.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, NoReturn

import click

from finchan import __version__

__all__ = ["main"]

_TRACEBACK_VERBOSITY = 3


def fail(message: str, code: int, verbose: int, exc: BaseException | None = None) -> NoReturn:
    """Print ``finchan: error: message`` (secrets masked) and exit with ``code``.

    ``verbose >= 3`` (``-vvv``) prints the traceback of ``exc`` first. Used by
    the subcommands that extensions add (``finchan.commands`` entry points).
    """
    from finchan._secrets import mask_secrets

    if exc is not None and verbose >= _TRACEBACK_VERBOSITY:
        # the traceback passes the same mask as the message: no password in a URL leaks
        sys.stderr.write(mask_secrets("".join(traceback.format_exception(exc))))
    click.echo(f"finchan: error: {mask_secrets(message)}", err=True)
    sys.exit(code)


def fail_for(exc: BaseException, verbose: int, interrupted: str = "interrupted") -> NoReturn:
    """Exit on ``exc`` the way every finchan command does.

    A finchan error is one line with its own exit code (2 for bad input, 1 for
    a failed run), Ctrl-C is ``interrupted`` with 130, anything else an
    internal error with 1; ``-vvv`` adds the traceback.
    """
    from finchan.errors import FinchanError

    if isinstance(exc, FinchanError):
        fail(str(exc), exc.exit_code, verbose, exc)
    if isinstance(exc, KeyboardInterrupt):
        fail(interrupted, 130, verbose, exc)
    fail(
        f"internal error: {type(exc).__name__}: {exc} (run with -vvv for the traceback)",
        1,
        verbose,
        exc,
    )


def format_ts(ts: float | None, tz: Any) -> str:
    """A POSIX time as ISO text in ``tz`` (``-`` for None)."""
    from finchan._time import from_timestamp

    return "-" if ts is None else from_timestamp(ts, tz).isoformat(sep=" ")


#: entry-point group of the subcommands extensions add (``finchan sweep`` ...)
COMMANDS_GROUP = "finchan.commands"


class _PluginGroup(click.Group):
    """A group whose subcommands come from ``finchan.commands`` entry points.

    They are loaded when named (or listed by ``--help``), so ``finchan -c``
    imports none of them and the core never imports the trading kit.
    """

    def _entry_points(self) -> dict[str, Any]:
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group=COMMANDS_GROUP)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._entry_points()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        ep = self._entry_points().get(cmd_name)
        if ep is None:
            return None
        try:
            loaded = ep.load()
        except Exception as exc:  # a broken plugin: one line naming it
            fail(f"subcommand {cmd_name!r} ({ep.value}) cannot be loaded: {exc}", 2, 0, exc)
        if not isinstance(loaded, click.Command):
            fail(f"subcommand {cmd_name!r} ({ep.value}) is not a click command", 2, 0)
        return loaded


@click.group(
    cls=_PluginGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    invoke_without_command=True,
    # ``finchan -c PATH`` runs a system; ``finchan publish|status|replay|sweep ...`` are subcommands
    subcommand_metavar="[publish|status|replay|sweep ...]",
)
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
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    verbose: int,
    quiet: bool,
    mode: str | None,
    overrides: tuple[str, ...],
) -> None:
    """Run a finchan system described by a YAML config (finchan -c PATH)."""
    if ctx.invoked_subcommand is not None:
        return
    if config_path is None:
        fail("no config given: use finchan -c PATH (a .yml file or a directory)", 2, verbose)

    env = None
    try:
        from finchan.config import load_config
        from finchan.env import Env, RunMode
        from finchan.log import setup_logging

        config = load_config(config_path, overrides, run_mode=mode)
        env = Env(config)
        env.quiet = quiet
        log_file = setup_logging(
            verbose, env.work_dir, config.log_config, quiet=quiet, source=config.source
        )
        summary = env.run()
    except (Exception, KeyboardInterrupt) as exc:
        fail_for(exc, verbose)
    else:
        mode_name = "backtest" if summary.run_mode == RunMode.BACKTEST else "live run"
        if not quiet:
            state = "interrupted" if summary.interrupted else "done"
            click.echo(
                f"finchan: {mode_name} {state}: {summary.events} events, "
                f"{format_ts(summary.start_ts, env.tz)} to {format_ts(summary.end_ts, env.tz)}, "
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

