"""Helpers shared by the tests (a uniquely named module: every test directory may have a conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
#: test extensions (recorder, failing ones) live here
TEST_EXTS = TESTS / "exts"
SHARED = ROOT.parent / "shared"

if str(TEST_EXTS) not in sys.path:
    sys.path.insert(0, str(TEST_EXTS))


def services_required() -> bool:
    """CI sets FINCHAN_REQUIRE_SERVICES=1: a missing server is then a failure, not a skip."""
    return os.environ.get("FINCHAN_REQUIRE_SERVICES") == "1"


def run_finchan(
    *args: str, cwd: Path | None = None, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m finchan ARGS`` and capture its output."""
    environ = {**os.environ, "PYTHONPATH": str(TEST_EXTS), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "finchan", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=environ,
    )
