"""The strategy extension's run directory: where a run's files are written.

``work_dir/runs/<stamp>-<name>/`` for a backtest, ``work_dir/live/<name>/``
for a live run; ``config.yml`` when the run starts, a file ``INCOMPLETE``
until it has ended well, ``run.json`` at the end (the result's files are
``BacktestResult.save``'s). Used by :class:`~finchan.trade.exts.strategy.StrategyRunner`.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# the records keep the extension's name (log configs and tests filter on it)
logger = logging.getLogger("finchan.trade.exts.strategy")

_INCOMPLETE = "INCOMPLETE"


def open_run_dir(work_dir: Path, name: str, options: Any) -> Path:
    """A new ``runs/<stamp>-<name>[-n]`` directory, marked incomplete, with ``config.yml``."""
    runs = work_dir / "runs"
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{stamp}-{name}"
    run_dir, n = runs / base, 1
    while run_dir.exists():
        n += 1
        run_dir = runs / f"{base}-{n}"
    run_dir.mkdir(parents=True)
    (run_dir / _INCOMPLETE).write_text("running\n", encoding="utf-8")
    write_config(run_dir / "config.yml", options)
    return run_dir


def open_live_dir(work_dir: Path, name: str, options: Any) -> Path:
    """The stable ``live/<name>`` directory, marked incomplete, with ``config.yml``."""
    run_dir = work_dir / "live" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / _INCOMPLETE).write_text("running\n", encoding="utf-8")
    write_config(run_dir / "config.yml", options)
    return run_dir


def write_config(path: Path, options: Any) -> None:
    """The merged config as YAML, secrets masked."""
    from ruamel.yaml import YAML

    from finchan._secrets import mask_values

    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    with path.open("w", encoding="utf-8") as stream:
        yaml.dump(mask_values(_plain(options)), stream)  # no password in a URL


def mark_incomplete(run_dir: Path, reason: str) -> None:
    """Say in ``INCOMPLETE`` why the run did not end well."""
    (run_dir / _INCOMPLETE).write_text(f"{reason}\n", encoding="utf-8")
    logger.info("run directory %s is incomplete: %s", run_dir, reason)


def finish(run_dir: Path, wall_start: float, events: int) -> None:
    """Write ``run.json`` and remove ``INCOMPLETE``: the directory is a finished run."""
    run_info = {
        "run_id": run_dir.name,
        "started": datetime.fromtimestamp(wall_start, UTC).isoformat(),
        "wall_seconds": round(time.time() - wall_start, 3),
        "events": events,
    }
    (run_dir / "run.json").write_text(json.dumps(run_info, indent=2) + "\n", encoding="utf-8")
    (run_dir / _INCOMPLETE).unlink()


def _plain(value: Any) -> Any:
    """The config as plain YAML-able data (datetimes as ISO text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
