"""Shared fixtures: a fresh runtime per test, closed afterwards."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import subactor

TESTS = Path(__file__).resolve().parent
SCRIPTS = TESTS / "scripts"


def pytest_report_header() -> list[str]:
    """Which package and interpreter the run tests (an installed wheel, never the sources),
    and whose concurrent.futures tests test_cpython_futures.py runs on it."""
    debug = " (Py_DEBUG)" if hasattr(sys, "gettotalrefcount") else ""
    this = f"CPython {sys.version.split()[0]}{debug}"
    try:
        own = importlib.util.find_spec("test.test_concurrent_futures")
    except ImportError:
        own = None
    borrowed = os.environ.get("SUBACTOR_CPYTHON_FUTURES_TESTS")
    if own is not None:
        futures_tests = f"{this}'s own ({Path(own.origin or '').parent})"
    elif borrowed:
        # <prefix>/lib/pythonX.Y/test/test_concurrent_futures: the files of CPython X.Y.
        folder = Path(borrowed).resolve().parent.parent.name
        whose = f"CPython {folder[len('python'):]}'s" if folder.startswith("python") else "another CPython's"
        futures_tests = f"{whose}, {borrowed} (SUBACTOR_CPYTHON_FUTURES_TESTS), run on {this}"
    else:
        futures_tests = f"none ({this}'s standard library lacks them: test_cpython_futures.py skips)"
    return [f"subactor: {Path(subactor.__file__).parent}; {this}", f"CPython's concurrent.futures tests: {futures_tests}"]


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
