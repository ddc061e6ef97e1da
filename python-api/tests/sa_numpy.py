"""Tasks for the executor's placement tests: this module imports numpy, which refuses
own-GIL interpreters, so none of its functions can run in one."""

from __future__ import annotations

import os

import numpy

from sa_actors import TaskError


def norm(n: int) -> float:
    """The Euclidean norm of 0..n-1, with numpy."""
    return float(numpy.linalg.norm(numpy.arange(n, dtype=numpy.float64)))


def pid_and_sum(n: int) -> tuple[int, int]:
    """The worker's process id, and the sum of 0..n-1."""
    return os.getpid(), int(numpy.arange(n).sum())


def fail_in_numpy(code: int) -> None:
    """Raises ``TaskError(code, ...)`` from a process worker."""
    if numpy.int64(code) >= 0:
        raise TaskError(code, "failed in a process")


def slow_norm(seconds: float, started: str | None = None) -> int:
    """Creates the file ``started`` (if given), sleeps, then answers the worker's process
    id."""
    import time

    if started is not None:
        with open(started, "w"):
            pass
    time.sleep(seconds + float(numpy.float64(0)))
    return os.getpid()


def init_numpy(value: int) -> None:
    """An initializer that needs numpy."""
    global _INIT
    _INIT = int(numpy.int64(value))


_INIT: int | None = None


def init_value(_: object = None) -> int | None:
    """What ``init_numpy`` set in this worker."""
    return _INIT
