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


class Ping:
    """Asks a pong actor `n` times from Python; answers each round trip in seconds."""

    def receive(self, msg):
        pong, n = msg
        times = []
        for i in range(n):
            start = time.perf_counter()
            pong.ask(i)
            times.append(time.perf_counter() - start)
        return times


class Work:
    """A pipeline stage doing `rounds` steps of pure-Python work per item (400 rounds
    take about 20 µs here)."""

    def __init__(self, rounds):
        self.rounds = rounds

    def receive(self, n):
        total = 0
        for i in range(self.rounds):
            total += i * i
        return n + total % 2


class Length:
    """Answers the length of what it receives (touching none of its bytes)."""

    def receive(self, data):
        return len(data)


class Handoff:
    """Hands a payload of `size` bytes to `consumer` `rounds` times; answers the time of
    each handoff (an ask: the payload goes, its length comes back)."""

    def receive(self, msg):
        import subactor

        consumer, kind, size, rounds = msg
        if kind == "buffer":
            draft = subactor.alloc(size)
            payload = draft.freeze()
        else:
            payload = bytes(size)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            consumer.ask(payload, timeout=600)
            times.append(time.perf_counter() - start)
        return times


class Touch:
    """Reads the first and the last byte of what it receives (its pages are mapped and
    readable here), and answers its length: a buffer handed to a process actor is made
    visible in the child, as multiprocessing's SharedMemory worker attaches and reads."""

    def receive(self, data):
        if len(data):
            data[0]
            data[-1]
        return len(data)
