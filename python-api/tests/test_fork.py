"""Fork safety (issue 15, item 3): with a runtime open, ``os.fork()`` and a fork-based
``ProcessPoolExecutor`` work; the child runs Python normally and refuses the inherited
runtime with a clear error; the parent carries on. Also subprocesses and the spawn and
forkserver start methods, whose children run runtimes of their own.

Each scenario runs in a fresh process (``scripts/fork_child.py``): forking pytest itself
would test pytest's after-fork state, not subactor's.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from conftest import run_script

FORKED = "was forked from process"


# A debug build of CPython (Py_DEBUG) checks, as a process's main interpreter finalizes,
# that no other interpreter still counts as a user of the static builtin types. In a
# child forked while subinterpreters existed, they do: CPython cannot finalize them there
# (a bare `_interpreters.create()` then `os.fork()` segfaults the child on 3.14, release
# build included, subactor or not), so subactor unlinks them at the fork (ffi/fork.rs),
# and their counts stay. A forked child that exits through Python's finalization
# (`sys.exit`) therefore ends, after its atexit callbacks ran, with this assertion and
# SIGABRT on a debug build only; release builds do not check it. A child that ends with
# `os._exit` (as multiprocessing's do) is not concerned.
PY_DEBUG = hasattr(sys, "gettotalrefcount")
DEBUG_TYPES_ASSERTION = "managed_static_type_state_clear: Assertion"


def scenario(*args: str) -> dict[str, Any]:
    # Python warns (DeprecationWarning) about fork() in a process with threads: that is
    # CPython's general caution, which subactor's threads trigger.
    result = run_script("-W", "ignore::DeprecationWarning", "fork_child.py", *args, timeout=240)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Fatal Python error" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "done", result.stdout
    report: dict[str, Any] = json.loads(lines[-2])
    report["stderr"] = result.stderr
    return report


def test_os_fork_with_actors_running() -> None:
    # 20 forks while two actors are busy in their own interpreters (each holding its own
    # GIL mid-handler): before the fix every child died in CPython's after-fork code
    # (3.13: "Fatal Python error: PyThreadState_Get"; 3.12: hung forever).
    report = scenario("os_fork", "20")
    # Every child exited normally, through sys.exit(7) (atexit handlers included).
    if PY_DEBUG:
        # Each child got to its finalization, then met CPython's debug-only check (see
        # DEBUG_TYPES_ASSERTION) and nothing else.
        aborted = report["statuses"].count(-6)
        assert set(report["statuses"]) <= {7, -6}, report["statuses"]
        assert report["stderr"].count(DEBUG_TYPES_ASSERTION) == aborted, report["stderr"][-4000:]
        assert "Assertion" not in report["stderr"].replace(DEBUG_TYPES_ASSERTION, ""), report["stderr"][-4000:]
    else:
        assert report["statuses"] == [7] * 20
    assert report["same"]
    child = report["first"]
    # Plain Python works in the child: threads, imports.
    assert child["python"] == [499500, "1/2"]
    # Everything of the inherited runtime refuses, saying why.
    for what in ("ask", "tell", "spawn", "submit", "new_runtime"):
        assert child[what].startswith("RuntimeError: this process (pid "), (what, child[what])
        assert FORKED in child[what] and "'spawn' or 'forkserver'" in child[what]
    assert child["buffer"].startswith("RuntimeError: cannot use an arena buffer:")
    # Closing it there does nothing (and waits for nothing): it is closed for the child.
    assert child["close"] == "ok"
    assert child["closed"] is True


def test_fork_based_process_pool() -> None:
    report = scenario("pool_fork")
    assert report["results"] == [1, 4, 9, 16, 25, 36]
    assert report["after"] == 5  # the parent's actor, after the pool


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawn_and_forkserver_children_run_their_own_runtime(method: str) -> None:
    report = scenario(f"pool_{method}")
    pids = {pid for pid, _ in report["results"]}
    assert [answer for _, answer in report["results"]] == [1, 2, 3, 4, 5, 6]
    assert report["parent"] not in pids
    assert report["after"] == 5


def test_a_subprocess_runs_its_own_runtime() -> None:
    report = scenario("subprocess")
    assert report["returncode"] == 0, report["stderr"]
    assert report["stdout"] == "41"
    assert report["after"] == 1


def test_a_fork_taken_with_no_runtime_open_starts_runtimes() -> None:
    report = scenario("fork_after_close")
    assert report["status"] == 0
    assert report["child"] == {"answer": 2}
    assert report["after"] == 3
