"""One program, two executors: `python executor_swap.py process|subactor`."""

import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

import subactor

SETTING = None


def setup(value: str) -> None:
    global SETTING
    SETTING = value


def work(x: int) -> int:
    assert SETTING == "ready"
    return x * x


if __name__ == "__main__":
    Pool = ProcessPoolExecutor if sys.argv[1] == "process" else subactor.Executor
    with Pool(max_workers=2, initializer=setup, initargs=("ready",)) as ex:
        print("results", list(ex.map(work, range(8), chunksize=2)))
        futures = [ex.submit(work, i) for i in range(5)]
        print("as_completed", sorted(f.result() for f in as_completed(futures)))
        try:
            ex.submit(work, "x").result()  # type: ignore[arg-type]
        except TypeError as e:
            print("raised", type(e).__name__)
