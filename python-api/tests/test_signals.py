"""Ctrl-C in the main program stops the runtime cleanly (issue item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import SCRIPTS, TESTS


@pytest.mark.parametrize("script", ["interrupt_ask.py", "interrupt_executor.py", "interrupt_no_with.py"])
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
