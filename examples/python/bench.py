"""Actors for the benchmarks (benches/)."""

import sys
import time


class Echo:
    """Answers every message with itself."""

    def receive(self, msg):
        return msg


class Sink:
    """Counts messages; answers "count" with the count so far."""

    def __init__(self):
        self.count = 0

    def receive(self, msg):
        if msg == "count":
            return self.count
        self.count += 1


class BareInterpreters:
    """Times CPython's own interpreter creation (Py_NewInterpreterFromConfig behind
    `_interpreters.create`, isolated config) in this process, as the baseline for
    spawning an actor."""

    def receive(self, rounds):
        if sys.version_info >= (3, 13):
            import _interpreters as interpreters
        else:
            import _xxsubinterpreters as interpreters
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            interp = interpreters.create()
            times.append(time.perf_counter() - start)
            interpreters.destroy(interp)
        return times
