"""Ctrl-C in the main program stops the runtime cleanly (issue item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SCRIPTS, TESTS


@pytest.mark.parametrize(
    "script", ["interrupt_ask.py", "interrupt_ask_process.py", "interrupt_executor.py", "interrupt_no_with.py"]
)
def test_ctrl_c_interrupts_waits_and_closes_the_runtime(script: str) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(TESTS))
    child = subprocess.Popen(
        [sys.executable, str(SCRIPTS / script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=SCRIPTS,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # the main thread is waiting now
        sent = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "interrupted" in out
    assert "not reached" not in out
    assert "KeyboardInterrupt" in err
    assert "Fatal Python error" not in err
    assert "Exception ignored" not in err, err
    assert child.returncode in (-signal.SIGINT, 130, 1), (child.returncode, err)
    # The busy actors were interrupted, not waited for (their work takes minutes).
    assert elapsed < 15


@pytest.mark.parametrize("placement", ["interpreter", "process"])
def test_ctrl_c_gives_a_spawn_up_and_its_actor_is_killed_once_started(placement: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(TESTS))
    with (
        open(tmp_path / "stderr", "w+") as stderr,
        subprocess.Popen(
            [sys.executable, str(SCRIPTS / "interrupt_spawn.py"), placement],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=SCRIPTS,
        ) as child,
    ):
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            time.sleep(0.5)  # the main thread waits for the constructor (8 s) now
            sent = time.monotonic()
            child.send_signal(signal.SIGINT)
            interrupted = child.stdout.readline().strip()
            elapsed = time.monotonic() - sent
            out = child.stdout.read()
            child.wait(timeout=90)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        stderr.seek(0)
        err = stderr.read()
    assert interrupted == "interrupted", (interrupted, out, err)
    # At once, not when the constructor returns.
    assert elapsed < 4, elapsed
    # The actor was still starting when the spawn was given up; once started, it went.
    assert out.split() == ["starting", "gone"], (out, err)
    assert child.returncode == 0, err
