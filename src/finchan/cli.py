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


def _fail(message: str, code: int, verbose: int, exc: BaseException | None = None) -> NoReturn:
    from finchan._secrets import mask_secrets

    if exc is not None and verbose >= _TRACEBACK_VERBOSITY:
        # the traceback passes the same mask as the message: no password in a URL leaks
        sys.stderr.write(mask_secrets("".join(traceback.format_exception(exc))))
    click.echo(f"finchan: error: {mask_secrets(message)}", err=True)
    sys.exit(code)


def _format_ts(ts: float | None, tz: Any) -> str:
    from finchan._time import from_timestamp

    return "-" if ts is None else from_timestamp(ts, tz).isoformat(sep=" ")


@click.group(
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
        _fail("no config given: use finchan -c PATH (a .yml file or a directory)", 2, verbose)
    from finchan.errors import FinchanError

    env = None
    try:
        from finchan.config import load_config
        from finchan.env import Env
        from finchan.log import setup_logging

        config = load_config(config_path, overrides, run_mode=mode)
        _check_live_has_exts(config)
        env = Env(config)
        env.quiet = quiet
        log_file = setup_logging(
            verbose, env.work_dir, config.log_config, quiet=quiet, source=config.source
        )
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
        mode_name = "backtest" if summary.run_mode == "backtrack" else "live run"
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
        if summary.interrupted and summary.run_mode == "backtrack":
            sys.exit(130)
        sys.exit(0)


def _check_live_has_exts(config: Any) -> None:
    # a live run with nothing enabled would wait for a signal, silently
    from finchan.config import normalize_mode
    from finchan.errors import ConfigError

    if normalize_mode(config.run_mode) != "live_track" or config.enabled_exts("live_track"):
        return
    hint = ""
    if config.enabled_exts("backtrack"):
        hint = (
            " (this config enables extensions for backtests only: list them under "
            "enabled_live_exts too, with a live source such as finchan.exts.redis_stream, "
            "or finchan.exts.bars to replay its files on the wall clock)"
        )
    raise ConfigError(f"{config.source}: live mode: enabled_live_exts is empty{hint}")


@main.command("publish")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option(
    "--redis", "url", required=True, metavar="URL", help="redis://[:password@]host:port/db"
)
@click.option("--stream", "stream", required=True, metavar="KEY", help="Stream key to XADD to.")
@click.option(
    "--rate", type=float, default=0.0, show_default=True, metavar="N",
    help="Messages per second (0: as fast as possible).",
)  # fmt: skip
@click.option("--symbol-column", metavar="NAME", help="Column holding the symbol (one file).")
@click.option("--symbols", metavar="A,B", help="Symbols, comma-separated (default: file stems).")
@click.option("--column", "columns", multiple=True, metavar="BAR=COLUMN",
              help="Bar column -> file column, e.g. --column datetime=Date.")  # fmt: skip
@click.option("--timezone", default="UTC", show_default=True, help="Zone of naive times.")
@click.option("--timeframe", default="1min", show_default=True, help="Bar length.")
@click.option("--start", help="Publish bars from this time (inclusive).")
@click.option("--end", help="... to this time (inclusive).")
@click.option("--format", "file_format", type=click.Choice(["csv", "parquet"]))
@click.option("--maxlen", type=int, help="Trim the stream to about this length (XADD MAXLEN ~).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("-v", "--verbose", count=True, help="-vvv: tracebacks of errors.")
def publish_command(
    files: tuple[str, ...],
    url: str,
    stream: str,
    rate: float,
    symbol_column: str | None,
    symbols: str | None,
    columns: tuple[str, ...],
    timezone: str,
    timeframe: str,
    start: str | None,
    end: str | None,
    file_format: str | None,
    maxlen: int | None,
    quiet: bool,
    verbose: int,
) -> None:
    """Write bar files (CSV/Parquet) into a Redis stream, one message per bar.

    Messages carry symbol, ts (POSIX seconds), open, high, low, close, volume:
    what finchan.exts.redis_stream reads by default.
    """
    from finchan.errors import FinchanError

    try:
        from finchan.trade._publish import publish_bars

        mapping = {}
        for item in columns:
            bar_column, sep, file_column = item.partition("=")
            if not sep or not bar_column or not file_column:
                raise click.UsageError(f"--column {item!r}: expected BAR=COLUMN")
            mapping[bar_column] = file_column
        count, seconds = publish_bars(
            list(files),
            url,
            stream,
            rate=rate,
            feed_options={
                "symbol_column": symbol_column,
                "symbols": symbols.split(",") if symbols else None,
                "columns": mapping or None,
                "timezone": timezone,
                "timeframe": timeframe,
                "start": start,
                "end": end,
                "file_format": file_format,
            },
            maxlen=maxlen,
            progress=not quiet and sys.stderr.isatty(),
        )
    except click.UsageError:
        raise
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
        if not quiet:
            from finchan.exts.redis_stream import redact_url

            click.echo(
                f"finchan: published {count:,} bars to {stream} at {redact_url(url)} "
                f"in {seconds:.2f}s",
                err=True,
            )


def _run_subcommand(verbose: int, work: Any) -> Any:
    """Run ``work()``; errors as one line (exit 2 or 1), Ctrl-C 130."""
    from finchan.errors import FinchanError

    try:
        return work()
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


@main.command("replay")
@click.argument("live_dir", metavar="LIVE_DIR")
@click.option("-q", "--quiet", is_flag=True, help="No statistics table.")
@click.option("-v", "--verbose", count=True, help="-v info, -vv debug, -vvv tracebacks.")
def replay_command(live_dir: str, quiet: bool, verbose: int) -> None:
    """Run a live run's journal as a deterministic backtest (LIVE_DIR/replay/runs/...).

    Its fills.csv is the live run's, byte for byte: why did my live strategy do that?
    """

    def work() -> Any:
        from pathlib import Path

        from finchan.log import setup_logging
        from finchan.trade.journal import replay_live_run

        setup_logging(verbose, Path(live_dir) / "replay", None, quiet=quiet)
        return replay_live_run(live_dir, quiet=quiet)

    run_dir = _run_subcommand(verbose, work)
    if not quiet:
        click.echo(f"finchan: replay done: {run_dir}", err=True)


@main.command("status")
@click.argument("live_dir", metavar="LIVE_DIR")
@click.option("-v", "--verbose", count=True, help="-vvv: tracebacks of errors.")
def status_command(live_dir: str, verbose: int) -> None:
    """Print a live run's status from its stored state (while it runs or after)."""

    def work() -> list[str]:
        from finchan.trade.journal import format_status, read_status

        return format_status(read_status(live_dir))

    for line in _run_subcommand(verbose, work):
        click.echo(line)


@main.command("sweep", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_path", metavar="PATH", required=True,
              help="The backtest config (strategy, data, broker) to sweep.")
@click.option("--grid", "grid", multiple=True, metavar="NAME=VALUES",
              help="A parameter and its values: fast=5,10,20 or slow=20:60:10 (stop included).")
@click.option("--metric", default="sharpe", show_default=True, help="The statistic to rank by.")
@click.option("--samples", type=int, default=None, help="Random search: this many combinations.")
@click.option("--optuna", "optuna_trials", type=int, default=None, metavar="N",
              help="Optuna TPE search: N trials.")
@click.option("--seed", type=int, default=None, help="Seed of the search (default: the config's).")
@click.option("--walk-forward", "walk_forward", default=None,
              metavar="train=LEN,test=LEN[,anchored]",
              help="Walk-forward optimisation, e.g. train=6M,test=1M.")
@click.option("--workers", type=int, default=None,
              help="Local Dask worker processes (default: one per CPU; 0: in this process).")
@click.option("--scheduler", default=None, metavar="tcp://HOST:PORT",
              help="Use this existing Dask scheduler instead of a local cluster.")
@click.option("--out", default=None, metavar="DIR",
              help="The sweep directory (default: WORK_DIR/sweeps/<Class>-<hash>); "
              "a rerun resumes.")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a config key.")
@click.option("-v", "--verbose", count=True, help="-vvv: tracebacks of errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def sweep_command(
    config_path: str,
    grid: tuple[str, ...],
    metric: str,
    samples: int | None,
    optuna_trials: int | None,
    seed: int | None,
    walk_forward: str | None,
    workers: int | None,
    scheduler: str | None,
    out: str | None,
    overrides: tuple[str, ...],
    verbose: int,
    quiet: bool,
) -> None:
    """Backtest every combination of --grid (or a sample, or Optuna trials) on Dask."""
    from finchan.errors import FinchanError

    try:
        from finchan.trade.sweeps._cli import sweep_from_config

        result = sweep_from_config(
            config_path, overrides, grid, metric=metric, samples=samples, optuna=optuna_trials,
            seed=seed, walk_forward=walk_forward, workers=workers, scheduler=scheduler,
            out=out, progress=not quiet and sys.stderr.isatty(),
        )
    except FinchanError as exc:
        _fail(str(exc), exc.exit_code, verbose, exc)
    except KeyboardInterrupt as exc:
        _fail("interrupted: run the same command again to resume", 130, verbose, exc)
    except Exception as exc:
        _fail(f"internal error: {type(exc).__name__}: {exc} (run with -vvv for the traceback)",
              1, verbose, exc)
    else:
        if not quiet:
            summary = result.summary()
            best = ", ".join(f"{k}={v}" for k, v in summary["best_params"].items())
            click.echo(
                f"finchan: sweep done: {summary['combinations']} results, "
                f"{summary['failures']} failed; best by {metric}: {best}; "
                f"DSR {_fmt(summary['dsr'].get('dsr'))}, PBO {_fmt(summary['pbo'].get('pbo'))}"
                + (f", WFE {_fmt(summary['wfe']['wfe'])}" if summary["wfe"] else "")
                + (f" ({summary['wfe']['caveat']})"
                   if summary["wfe"] and summary["wfe"]["caveat"] else "")
                + f"; report: {result.out / 'report.html'}",
                err=True,
            )
        sys.exit(1 if result.failures else 0)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
