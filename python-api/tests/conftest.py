"""Shared fixtures: a fresh runtime per test, closed afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import subactor

TESTS = Path(__file__).resolve().parent
SCRIPTS = TESTS / "scripts"


def pytest_report_header() -> str:
    """Which package and interpreter the run tests: an installed wheel, never the sources."""
    debug = " (Py_DEBUG)" if hasattr(sys, "gettotalrefcount") else ""
    return f"subactor: {Path(subactor.__file__).parent}; CPython {sys.version.split()[0]}{debug}"


@pytest.fixture
def rt() -> Iterator[subactor.Runtime]:
    runtime = subactor.Runtime()
    try:
        yield runtime
    finally:
        runtime.close()


def run_script(*args: str, timeout: float = 60, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Runs `python *args` in a child process (this interpreter, this environment)."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or SCRIPTS,
        env=env,
        check=False,
    )
