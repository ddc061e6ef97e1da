"""An executor left running at exit: its pending tasks run, then submit refuses."""

import atexit
import os
import time

import subactor

ex = None


def submit_late() -> None:  # runs after the executors' exit hook
    assert ex is not None
    try:
        ex.submit(print, "too late")
    except RuntimeError:
        print("refused", flush=True)
        raise


def report(i: int) -> None:
    time.sleep(0.2)
    os.write(1, f"done-{i}\n".encode())  # one write: workers print concurrently


if __name__ == "__main__":
    atexit.register(submit_late)
    ex = subactor.Executor(2)
    for i in range(4):
        ex.submit(report, i)
