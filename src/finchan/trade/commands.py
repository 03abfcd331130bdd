"""The trading kit's subcommands of ``finchan``: ``publish``, ``replay``, ``status``, ``sweep``.

The core's command line (:mod:`finchan.cli`) knows none of them: it finds
them through the ``finchan.commands`` entry points, so the core never
imports the kit (tests/test_layout.py). A third-party package can add a
subcommand the same way.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from finchan.cli import fail_for as _fail_for

__all__ = ["publish_command", "replay_command", "status_command", "sweep_command"]


@click.command("publish")
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
    except (Exception, KeyboardInterrupt) as exc:
        _fail_for(exc, verbose)
    else:
        if not quiet:
            from finchan.trade.exts.redis_stream import redact_url

            click.echo(
                f"finchan: published {count:,} bars to {stream} at {redact_url(url)} "
                f"in {seconds:.2f}s",
                err=True,
            )


def _run_subcommand(verbose: int, work: Any) -> Any:
    """Run ``work()``; errors as one line (exit 2 or 1), Ctrl-C 130."""

    try:
        return work()
    except (Exception, KeyboardInterrupt) as exc:
        _fail_for(exc, verbose)


@click.command("replay")
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


@click.command("status")
@click.argument("live_dir", metavar="LIVE_DIR")
@click.option("-v", "--verbose", count=True, help="-vvv: tracebacks of errors.")
def status_command(live_dir: str, verbose: int) -> None:
    """Print a live run's status from its stored state (while it runs or after)."""

    def work() -> list[str]:
        from finchan.trade.journal import format_status, read_status

        return format_status(read_status(live_dir))

    for line in _run_subcommand(verbose, work):
        click.echo(line)


@click.command("sweep", context_settings={"help_option_names": ["-h", "--help"]})
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

    try:
        from finchan.trade.sweeps._cli import sweep_from_config

        result = sweep_from_config(
            config_path, overrides, grid, metric=metric, samples=samples, optuna=optuna_trials,
            seed=seed, walk_forward=walk_forward, workers=workers, scheduler=scheduler,
            out=out, progress=not quiet and sys.stderr.isatty(),
        )
    except (Exception, KeyboardInterrupt) as exc:
        _fail_for(exc, verbose, interrupted="interrupted: run the same command again to resume")
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
