"""Shared fixtures: Envs in a temporary work_dir, the CLI in a subprocess."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from finchan_testing import run_finchan


@pytest.fixture
def make_env(tmp_path: Path) -> Callable[..., Any]:
    """Build an Env from config keys; work_dir defaults to a temporary directory."""
    from finchan.env import Env

    def factory(config: dict[str, Any] | None = None, **kwargs: Any) -> Env:
        data = {"work_dir": str(tmp_path / "work"), **(config or {})}
        return Env(data, **kwargs)

    return factory


@pytest.fixture
def finchan_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_finchan
