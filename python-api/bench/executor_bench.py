"""Executors side by side, in one process run: subactor's, ProcessPoolExecutor,
ThreadPoolExecutor and InterpreterPoolExecutor (CPython 3.14's, else the PEP 734
backport's).

Run (it installs nothing; python-api/bench/setup-venv.sh makes a virtualenv with the
package and the backport, `interpreters-pep-734`):

    python-api/bench/setup-venv.sh
    target/bench-venv/bin/python python-api/bench/executor_bench.py

Two measurements, each repeated (`--repeat`, the median is printed):

1. CPU-bound: the same pure-Python tasks (counting primes) through each executor with
   `--workers` workers, start-up and shutdown included (the executor is created and shut
   down inside the timed region; subactor.Executor opens and closes its own runtime
   there too). The speedup is against
   the same tasks run one after the other in this thread.
2. Tiny tasks: `--tiny` calls of a function that returns its argument, submitted one by
   one and waited for, on an executor that is already running: the per-task overhead,
   with the goal (subactor's at most 1/5 of ProcessPoolExecutor's) met or missed.

Ratios are each executor's time over subactor's: above 1 means subactor is faster.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import statistics
import sys
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_tasks  # noqa: E402
import subactor  # noqa: E402

try:  # CPython 3.14's own, else the PEP 734 backport's
    from concurrent.futures import InterpreterPoolExecutor  # type: ignore[attr-defined,unused-ignore]
except ImportError:
    try:
        from interpreters_backport.concurrent.futures import InterpreterPoolExecutor
    except ImportError:  # the backport is not installed
        InterpreterPoolExecutor = None

#: The goal for tiny tasks: subactor's per-task overhead at most this share of
#: ProcessPoolExecutor's.
TINY_GOAL = 1 / 5


def executors(workers: int) -> dict[str, Callable[[], object]]:
    found: dict[str, Callable[[], object]] = {
        # The one-line swap: subactor.Executor where ProcessPoolExecutor was (it opens
        # and closes a runtime of its own).
        "subactor": lambda: subactor.Executor(workers),
        "ProcessPoolExecutor": lambda: concurrent.futures.ProcessPoolExecutor(workers),
        "ThreadPoolExecutor": lambda: concurrent.futures.ThreadPoolExecutor(workers),
    }
    if InterpreterPoolExecutor is not None:
        found["InterpreterPoolExecutor"] = lambda: InterpreterPoolExecutor(workers)
    return found


def cpu_bound(make: Callable[[], object], chunks: list[tuple[int, int]]) -> tuple[float, int]:
    started = time.perf_counter()
    with make() as ex:  # type: ignore[attr-defined]
        total = sum(ex.map(bench_tasks.count_primes, *zip(*chunks)))
    return time.perf_counter() - started, total


def tiny(make: Callable[[], object], count: int, workers: int) -> float:
    with make() as ex:  # type: ignore[attr-defined]
        # Start-up excluded: every worker has run a task before the clock starts.
        list(ex.map(bench_tasks.noop, range(workers * 4)))
        started = time.perf_counter()
        futures = [ex.submit(bench_tasks.noop, i) for i in range(count)]
        total = sum(f.result() for f in futures)
        elapsed = time.perf_counter() - started
    assert total == count * (count - 1) // 2
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--limit", type=int, default=1_500_000, help="count primes below this")
    parser.add_argument("--chunks", type=int, default=32, help="CPU-bound tasks")
    parser.add_argument("--tiny", type=int, default=10_000, help="tiny tasks")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    step = args.limit // args.chunks
    chunks = [(i * step, (i + 1) * step if i < args.chunks - 1 else args.limit) for i in range(args.chunks)]
    pools = executors(args.workers)
    print(
        f"Python {sys.version.split()[0]}, {len(os.sched_getaffinity(0))} cores, {args.workers} workers, "
        f"median of {args.repeat} runs"
    )
    if InterpreterPoolExecutor is None:
        print("(interpreters-pep-734 is not installed: InterpreterPoolExecutor is left out)")

    serial: list[float] = []
    cpu: dict[str, list[float]] = {name: [] for name in pools}
    overhead: dict[str, list[float]] = {name: [] for name in pools}
    expected = None
    for _ in range(args.repeat):
        started = time.perf_counter()
        expected = sum(bench_tasks.count_primes(lo, hi) for lo, hi in chunks)
        serial.append(time.perf_counter() - started)
        for name, make in pools.items():
            elapsed, total = cpu_bound(make, chunks)
            if total != expected:
                raise SystemExit(f"{name} counted {total} primes, expected {expected}")
            cpu[name].append(elapsed)
        for name, make in pools.items():
            overhead[name].append(tiny(make, args.tiny, args.workers))

    one = statistics.median(serial)
    base = statistics.median(cpu["subactor"])
    print(f"\nCPU-bound: primes below {args.limit:,} in {args.chunks} tasks, start-up included")
    print(f"  {'one thread, no executor':<26} {one:8.3f} s   speedup 1.00x")
    for name, times in cpu.items():
        t = statistics.median(times)
        print(f"  {name:<26} {t:8.3f} s   speedup {one / t:4.2f}x   vs subactor {t / base:5.2f}x")

    base = statistics.median(overhead["subactor"])
    print(f"\nTiny tasks: {args.tiny:,} submit() + result(), executor already running")
    for name, times in overhead.items():
        t = statistics.median(times)
        print(f"  {name:<26} {t:8.3f} s   {t / args.tiny * 1e6:7.1f} us/task   vs subactor {t / base:5.2f}x")
    share = base / statistics.median(overhead["ProcessPoolExecutor"])
    verdict = "met" if share <= TINY_GOAL else "MISSED"
    print(f"  goal: subactor's per-task overhead <= 1/{1 / TINY_GOAL:.0f} of ProcessPoolExecutor's: "
          f"1/{1 / share:.1f}, {verdict}")


if __name__ == "__main__":
    main()
