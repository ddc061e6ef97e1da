"""numpy tasks through subactor.Executor placed "auto" and "process", beside
ProcessPoolExecutor (fork, spawn), with 1 and 2 workers, in one run.

    target/python-venv/bin/python python-api/bench/placement_bench.py [--tasks 48] [--repeat 3]

Each measurement makes an executor, maps the tasks once (start-up included: the "first"
column; for "auto", the first task is refused by an interpreter and rerouted, and the
process workers start then), maps them again (the "warm" column), and shuts it down; the
median of the repeats is printed, then each system's speedup of 2 workers over 1 (warm).
BLAS is limited to one thread per worker. Timings only: nothing here is a test.
"""

from __future__ import annotations

import argparse
import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import concurrent.futures  # noqa: E402
import multiprocessing  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_tasks  # noqa: E402


def measure(make: Callable[[], Any], tasks: int, repeat: int) -> tuple[float, float, str]:
    first, warm, ran = [], [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        with make() as ex:
            one = list(ex.map(bench_tasks.numpy_job, range(tasks)))
            mid = time.perf_counter()
            two = list(ex.map(bench_tasks.numpy_job, range(tasks)))
            end = time.perf_counter()
            ran = str(getattr(ex, "ran", ""))
        if one != two:
            raise AssertionError("the same tasks gave different results")
        first.append(mid - start)
        warm.append(end - mid)
    return statistics.median(first), statistics.median(warm), ran


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    start = time.perf_counter()
    for seed in range(args.tasks):
        bench_tasks.numpy_job(seed)
    print(f"{'one after the other (main interpreter)':44s} {time.perf_counter() - start:6.3f} s, {args.tasks} tasks")
    systems: dict[str, Callable[[int], Any]] = {
        "ProcessPoolExecutor (fork)": lambda n: concurrent.futures.ProcessPoolExecutor(
            n, mp_context=multiprocessing.get_context("fork")
        ),
    }
    warm: dict[tuple[str, int], float] = {}
    # fork before any runtime starts (a process with own-GIL interpreters cannot fork).
    for workers in (1, 2):
        name = "ProcessPoolExecutor (fork)"
        first, warm[(name, workers)], _ = measure(lambda: systems[name](workers), args.tasks, args.repeat)
        print(f"{name + f', {workers}':44s} first {first:6.3f} s   warm {warm[(name, workers)]:6.3f} s")
    import subactor

    systems = {
        "ProcessPoolExecutor (spawn)": lambda n: concurrent.futures.ProcessPoolExecutor(
            n, mp_context=multiprocessing.get_context("spawn")
        ),
        "subactor.Executor (auto)": lambda n: subactor.Executor(n, placement="auto"),
        "subactor.Executor (process)": lambda n: subactor.Executor(n, placement="process"),
    }
    for workers in (1, 2):
        for name, make in systems.items():
            first, warm[(name, workers)], ran = measure(lambda: make(workers), args.tasks, args.repeat)
            print(f"{name + f', {workers}':44s} first {first:6.3f} s   warm {warm[(name, workers)]:6.3f} s   {ran}")
    for name in ("ProcessPoolExecutor (fork)", *systems):
        print(f"speedup of 2 workers over 1, {name}: {warm[(name, 1)] / warm[(name, 2)]:.2f}")


if __name__ == "__main__":
    main()
