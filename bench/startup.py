"""Start-up time: ``import finchan``, the core and ``finchan --version`` beside a bare interpreter.

Each command runs in a fresh process, best of ``--repeat`` wall times; the
ratio is to ``python -c pass`` measured in the same run. Report only, no
target: the core's promise is that ``import finchan`` imports none of the
heavy libraries (pandas, pyarrow, plotly).

    python -m bench.startup [--quick] [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "run"]


def _console_script() -> list[str]:
    """``finchan --version`` through this interpreter's console script, else ``-m finchan``."""
    # the script next to this interpreter is the one installed for it; PATH may hold another
    here = Path(sys.executable).parent / ("finchan.exe" if os.name == "nt" else "finchan")
    script = str(here) if here.exists() else shutil.which("finchan")
    if script:
        return [script, "--version"]
    return [sys.executable, "-m", "finchan", "--version"]


def _commands() -> list[tuple[str, list[str]]]:
    python = sys.executable
    script = _console_script()
    label = "finchan --version" if script[0] != python else "python -m finchan --version"
    return [
        ("python -c pass", [python, "-c", "pass"]),
        ('python -c "import finchan"', [python, "-c", "import finchan"]),
        ('python -c "import finchan.env" (core)', [python, "-c", "import finchan.env"]),
        (label, script),
    ]


def _wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def run(quick: bool = False, repeat: int | None = None) -> list[dict[str, Any]]:
    """Measure each command; rows of ``command``, ``seconds`` (best) and ``ratio`` to the bare one.

    The commands take turns (one run of each, then again) so that a burst of
    load on the machine does not fall on one command only.
    """
    repeat = repeat or (3 if quick else 10)
    commands = _commands()
    best = dict.fromkeys((label for label, _ in commands), float("inf"))
    for _ in range(repeat):
        for label, argv in commands:
            best[label] = min(best[label], _wall(argv))
    bare = best[commands[0][0]]
    return [{"command": label, "seconds": seconds, "ratio": seconds / bare}
            for label, seconds in best.items()]


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table."""
    head = f"{'command':<40} {'ms':>8} {'x python -c pass':>17}"
    lines = [head, "-" * len(head)]
    for row in rows:
        lines.append(f"{row['command']:<40} {row['seconds'] * 1000:>8.1f} {row['ratio']:>17.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="best of 3 instead of 10")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args(argv)
    print(format_rows(run(args.quick, args.repeat)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
