"""The application's Python actors."""

import sys


class Counter:
    """Adds what it receives to a running total and answers the total."""

    def __init__(self, start: int = 0) -> None:
        self.total = start

    def receive(self, n: int) -> int:
        self.total += n
        return self.total


class PrimeCounter:
    """Answers ``(lo, hi)`` with the number of primes in ``[lo, hi)`` (pure Python)."""

    def receive(self, span: tuple[int, int]) -> int:
        lo, hi = span
        return sum(1 for n in range(max(lo, 2), hi) if all(n % d for d in range(2, int(n**0.5) + 1)))


def python_version() -> str:
    return sys.version.split()[0]


class Version:
    """Answers the version of the Python it runs in."""

    def receive(self, _: object) -> str:
        return python_version()
