"""Actors for the examples: a counter, and a CPU-bound prime counter in pure Python."""


class Counter:
    """Adds what it receives to a running total and answers the total."""

    def __init__(self, start: int = 0) -> None:
        self.total = start

    def receive(self, n: int) -> int:
        self.total += n
        return self.total


def count_primes(lo: int, hi: int) -> int:
    """Counts primes in [lo, hi) by trial division: deliberately pure-Python work."""
    count = 0
    for n in range(max(lo, 2), hi):
        if n % 2 == 0:
            count += n == 2
            continue
        d = 3
        while d * d <= n:
            if n % d == 0:
                break
            d += 2
        else:
            count += 1
    return count


class PrimeCounter:
    """Answers (lo, hi) with the number of primes in [lo, hi)."""

    def receive(self, span: tuple[int, int]) -> int:
        lo, hi = span
        return count_primes(lo, hi)
