"""Forks, subprocesses and multiprocessing start methods while a runtime is open.

Run as ``python fork_child.py MODE``; prints one JSON line per result, then ``done``.
The checks live in ``tests/test_fork.py``.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from typing import Any

import subactor


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def receive(self, msg: Any) -> Any:
        if msg == "spin":
            # Busy in its own interpreter, its own GIL held, while the main one forks.
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                pass
            return "spun"
        self.n += msg
        return self.n


def square(x: int) -> int:
    return x * x


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def with_own_runtime(x: int) -> tuple[int, int]:
    """In a child process: a runtime of its own, an actor, an answer."""
    with subactor.Runtime() as rt:
        counter = rt.spawn(Counter)
        return os.getpid(), counter.ask(x, timeout=30)


def report(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def attempt(what: Any) -> str:
    """What a call does in a forked child: 'ok' or 'ExceptionType: message'."""
    try:
        what()
    except Exception as exc:  # noqa: BLE001 - reported, not swallowed
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def wait_child(pid: int, timeout: float = 60.0) -> int:
    """The child's exit code (negative: killed by that signal); kills it at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return -999  # hung


def child_uses_nothing_of_the_parent(rt: subactor.Runtime, counter: subactor.ActorRef,
                                     ex: concurrent.futures.Executor, buf: subactor.Buffer, w: int) -> None:
    """The body of a forked child: plain Python works, the inherited runtime refuses."""
    box: list[int] = []
    thread = threading.Thread(target=lambda: box.append(sum(range(1000))))
    thread.start()
    thread.join()
    import fractions  # a module this process had not imported yet

    results = {
        "python": [box[0], str(fractions.Fraction(3, 6))],
        "ask": attempt(lambda: counter.ask(1, timeout=5)),
        "tell": attempt(lambda: counter.tell(1)),
        "spawn": attempt(lambda: rt.spawn(Counter)),
        "submit": attempt(lambda: ex.submit(square, 3)),
        "buffer": attempt(lambda: bytes(buf)),
        "new_runtime": attempt(subactor.Runtime),
        "close": attempt(rt.close),
        "closed": rt.closed,
    }
    os.write(w, json.dumps(results).encode())
    os.close(w)
    # A normal exit: atexit handlers (subactor's closes every runtime) and finalisation.
    sys.exit(7)


def os_fork(rounds: int) -> None:
    rt = subactor.Runtime()
    counters = [rt.spawn(Counter) for _ in range(3)]
    ex = rt.executor(workers=2)
    buf = rt.buffer(b"shared")
    assert list(ex.map(square, range(4))) == [0, 1, 4, 9]
    # Keep the actors busy (each mid-handler in its own interpreter) while forking.
    stop = threading.Event()

    def keep_busy(counter: subactor.ActorRef) -> None:
        while not stop.is_set():
            counter.ask("spin", timeout=30)

    busy = [threading.Thread(target=keep_busy, args=(c,)) for c in counters[1:]]
    for thread in busy:
        thread.start()
    statuses = []
    child_results = []
    for i in range(rounds):
        # A task in flight at the fork: the child's exit must not wait for it.
        in_flight = ex.submit(nap, 0.05)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                child_uses_nothing_of_the_parent(rt, counters[0], ex, buf, w)
            except Exception:
                os._exit(99)
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            data = pipe.read()
        statuses.append(wait_child(pid))
        child_results.append(json.loads(data) if data else None)
        # The parent's runtime carries on.
        assert counters[0].ask(1, timeout=30) == i + 1
        assert in_flight.result(timeout=30) == 0.05
    assert list(ex.map(square, range(4))) == [0, 1, 4, 9]
    stop.set()
    for thread in busy:
        thread.join()
    # The same answers in every child (their pids aside).
    same = {re.sub(r"\d+", "N", json.dumps(r)) for r in child_results}
    report(statuses=statuses, first=child_results[0], same=len(same) == 1)
    ex.shutdown()
    rt.close()


def pool(method: str) -> None:
    with subactor.Runtime() as rt:
        counter = rt.spawn(Counter)
        ctx = multiprocessing.get_context(method)
        fn = square if method == "fork" else with_own_runtime
        with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
            results = list(pool.map(fn, range(1, 7)))
        report(method=method, results=results, parent=os.getpid(), after=counter.ask(5, timeout=30))


def run_subprocess() -> None:
    code = (
        "import subactor, sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "with subactor.Runtime() as rt:\n"
        "    print(rt.spawn('fork_child:Counter').ask(41, timeout=30))\n"
    )
    with subactor.Runtime() as rt:
        counter = rt.spawn(Counter)
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run([sys.executable, "-c", code, here], capture_output=True, text=True, timeout=60)
        report(returncode=out.returncode, stdout=out.stdout.strip(), stderr=out.stderr[-2000:],
               after=counter.ask(1, timeout=30))


def fork_after_close() -> None:
    with subactor.Runtime() as rt:
        assert rt.spawn(Counter).ask(1, timeout=30) == 1
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            with subactor.Runtime() as child_rt:
                answer = child_rt.spawn(Counter).ask(2, timeout=30)
            os.write(w, json.dumps({"answer": answer}).encode())
        except BaseException as exc:
            os.write(w, json.dumps({"error": repr(exc)}).encode())
        finally:
            os.close(w)
        sys.exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        data = pipe.read()
    status = wait_child(pid)
    with subactor.Runtime() as rt:
        after = rt.spawn(Counter).ask(3, timeout=30)
    report(status=status, child=json.loads(data) if data else None, after=after)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "os_fork":
        os_fork(int(sys.argv[2]) if len(sys.argv) > 2 else 10)
    elif mode.startswith("pool_"):
        pool(mode.removeprefix("pool_"))
    elif mode == "subprocess":
        run_subprocess()
    elif mode == "fork_after_close":
        fork_after_close()
    else:
        raise SystemExit(f"unknown mode {mode}")
    print("done", flush=True)
