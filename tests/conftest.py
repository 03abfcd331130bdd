"""Shared fixtures: Envs in a temporary work_dir, the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture
def make_env(tmp_path: Path) -> Callable[..., Any]:
    """Build an Env from config keys; work_dir defaults to a temporary directory."""
    from finchan.env import Env

    def factory(config: dict[str, Any] | None = None, **kwargs: Any) -> Env:
        data = {"work_dir": str(tmp_path / "work"), **(config or {})}
        return Env(data, **kwargs)

    return factory


def run_finchan(*args: str, cwd: Path | None = None, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m finchan ARGS`` and capture its output."""
    environ = {**os.environ, "PYTHONPATH": str(TEST_EXTS), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "finchan", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=environ,
    )


@pytest.fixture
def finchan_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_finchan
