"""The tasks of executor_bench.py, in a module of their own so that every executor can
run them (InterpreterPoolExecutor cannot run functions of a main script)."""


def count_primes(lo, hi):
    """Counts the primes in [lo, hi) by trial division: pure-Python CPU work."""
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


def noop(x):
    """A task that does nothing: what is measured is the executor's overhead."""
    return x


def numpy_job(seed, size=256, rounds=10):
    """numpy work (matrix products and tanh; one BLAS thread expected): numpy refuses
    own-GIL interpreters, so an `auto` executor runs this on its process workers."""
    import numpy

    rng = numpy.random.default_rng(seed)
    a = rng.standard_normal((size, size))
    total = 0.0
    for _ in range(rounds):
        a = numpy.tanh(a @ a.T / size)
        total += float(a.sum())
    return total
