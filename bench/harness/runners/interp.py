"""PEP 734 subinterpreters, from the ``interpreters-pep-734`` backport on Python 3.13
(``concurrent.interpreters`` from 3.14): raw interpreters with their queues, and
``InterpreterPoolExecutor``.

A raw interpreter's worker runs in a thread of the main interpreter that has entered it
(``interp.exec``), and talks through two ``interpreters`` queues. A queue's ``get()``
sleeps 10 ms between polls when it is empty: the round trip is measured both as
shipped and with a receiver that polls without sleeping, which shows what the transport
itself costs.
"""

from __future__ import annotations

import threading
import time
from types import ModuleType
from typing import Any, cast

from harness import model, workers
from harness.model import Measurement
from harness.runners.base import (
    Config,
    Runner,
    Skip,
    Spans,
    growth,
    handoff_rounds,
    memory_measurements,
    process_memory,
    register,
    time_calls,
)

# A handoff through InterpreterPoolExecutor pickles the payload into the source text
# of a script that the worker compiles; above this size that takes seconds and several
# times the payload in memory.
POOL_HANDOFF_LIMIT = 1 << 20


def _interpreters() -> ModuleType | None:
    """The PEP 734 ``interpreters`` module: the standard library's (3.14+), or the
    backport's."""
    try:
        from concurrent import interpreters  # type: ignore[attr-defined]

        return cast(ModuleType, interpreters)
    except ImportError:
        pass
    try:
        from interpreters_backport import interpreters

        return cast(ModuleType, interpreters)
    except ImportError:
        return None


def _pool_class() -> Any:
    try:
        from concurrent.futures import InterpreterPoolExecutor  # type: ignore[attr-defined]

        return InterpreterPoolExecutor
    except ImportError:
        pass
    try:
        from interpreters_backport.concurrent.futures import InterpreterPoolExecutor

        return InterpreterPoolExecutor
    except ImportError:
        return None


MISSING = "no PEP 734 interpreters module (Python 3.14, or the interpreters-pep-734 backport on 3.13)"


class _Worker:
    """An interpreter running one of harness.workers' loops in a thread."""

    def __init__(self, interpreters: ModuleType, loop: str, *args: str) -> None:
        self.interp = interpreters.create()
        self.inbox = _queue(interpreters)
        self.outbox = _queue(interpreters)
        # The backport binds a queue into an interpreter only once that interpreter
        # has imported the queues module.
        self.interp.exec(f"import {type(self.inbox).__module__}")
        self.interp.prepare_main(inbox=self.inbox, outbox=self.outbox)
        call = ", ".join(("inbox", "outbox", *args))
        script = f"import harness.workers as w\nw.{loop}({call})\n"
        self.thread = threading.Thread(target=self.interp.exec, args=(script,), daemon=True)
        self.thread.start()
        if workers.get_spinning(self.outbox) != workers.READY:
            raise RuntimeError("the interpreter did not say it was ready")

    def stop(self) -> None:
        self.inbox.put(None)
        self.thread.join()
        self.interp.close()


def _queue(interpreters: ModuleType) -> Any:
    """A queue that passes shareable objects (ints, bytes, memoryviews) natively
    instead of pickling them, where the API has the choice."""
    try:
        return interpreters.create_queue(syncobj=True)
    except TypeError:
        return interpreters.create_queue()


@register
class Interpreters(Runner):
    key = "interpreters"
    system = model.INTERPRETERS

    def __init__(self) -> None:
        super().__init__()
        self.interpreters = _interpreters()

    def unavailable(self) -> str | None:
        return None if self.interpreters else MISSING

    def _worker(self, loop: str, *args: str) -> _Worker:
        assert self.interpreters is not None
        return _Worker(self.interpreters, loop, *args)

    def spawn(self, cfg: Config) -> list[Measurement]:
        self._worker("interp_echo", "spin=False").stop()
        samples = []
        for _ in range(cfg.rounds(quick=10, full=30)):
            started = time.perf_counter()
            worker = self._worker("interp_echo", "spin=False")
            samples.append(time.perf_counter() - started)
            worker.stop()
        variant = "create() + a thread running the worker until it answers"
        return [Measurement(model.SPAWN, self.system, variant, model.SECONDS, tuple(samples))]

    def round_trip(self, cfg: Config) -> list[Measurement]:
        found = []
        for spin, rounds, label in (
            (
                False,
                cfg.rounds(quick=20, full=100),
                "queue put() + get() (as shipped: get() sleeps 10 ms between polls)",
            ),
            (True, cfg.rounds(quick=2_000, full=20_000), "queue put() + get_nowait() polled without sleeping"),
        ):
            worker = self._worker("interp_echo", f"spin={spin}")
            get = workers.get_spinning if spin else type(worker.outbox).get

            def ask(i: int, worker: _Worker = worker, get: Any = get) -> None:
                worker.inbox.put(i)
                get(worker.outbox)

            samples = time_calls(ask, rounds, warm_up=rounds // 10)
            worker.stop()
            found.append(Measurement(model.ROUND_TRIP, self.system, label, model.SECONDS, tuple(samples)))
        return found

    def throughput(self, cfg: Config) -> list[Measurement]:
        messages = cfg.rounds(quick=20_000, full=100_000)
        rates = []
        for _ in range(cfg.reps):
            worker = self._worker("interp_count")
            started = time.perf_counter()
            for i in range(messages):
                worker.inbox.put(i)
            worker.inbox.put(None)
            count = workers.get_spinning(worker.outbox)
            elapsed = time.perf_counter() - started
            worker.thread.join()
            worker.interp.close()
            if count != messages:
                raise RuntimeError(f"the interpreter counted {count} messages, not {messages}")
            rates.append(messages / elapsed)
        variant = "queue put() of ints into a get() loop"
        return [Measurement(model.THROUGHPUT, self.system, variant, model.MSG_PER_S, tuple(rates))]

    def handoff(self, cfg: Config) -> list[Measurement]:
        worker = self._worker("interp_length")
        found = []
        for size in cfg.sizes:
            payload = bytes(size)
            for kind, obj, copies in (
                ("bytes (copied into the receiver)", payload, True),
                ("memoryview of the bytes (shared)", memoryview(payload), False),
            ):
                if copies and cfg.quick and size >= 1 << 30:
                    self.notes.append(f"handoff: {kind} of {size >> 30} GB not measured in --quick")
                    continue

                def send(_: int, obj: Any = obj) -> None:
                    worker.inbox.put(obj)
                    workers.get_spinning(worker.outbox)

                # A copy's cost grows with the size; sharing costs the same at every size.
                rounds = handoff_rounds(size, cfg.quick) if copies else cfg.rounds(quick=200, full=2_000)
                samples = time_calls(send, rounds, warm_up=1 if copies else 10)
                label = f"queue, {kind}, polled without sleeping"
                found.append(Measurement(model.HANDOFF, self.system, label, model.SECONDS, tuple(samples), size))
            del payload
        worker.stop()
        return found

    def memory(self, cfg: Config) -> list[Measurement]:
        assert self.interpreters is not None
        per_batch = cfg.rounds(quick=4, full=5)
        alive = []
        usages = []
        for _ in range(cfg.rounds(quick=3, full=5)):
            before = process_memory()
            for _ in range(per_batch):
                interp = self.interpreters.create()
                interp.exec("import harness.workers")
                alive.append(interp)
            usages.append(growth(before, process_memory(), per_batch))
        for interp in alive:
            interp.close()
        return memory_measurements(self.system, "{} growth per idle interpreter (worker module imported)", usages)


@register
class InterpreterPool(Runner):
    key = "interp-pool"
    system = model.INTERPRETER_POOL
    cpu_variant = "InterpreterPoolExecutor.map"

    def __init__(self) -> None:
        super().__init__()
        self.pool_class = _pool_class()

    def unavailable(self) -> str | None:
        return None if self.pool_class else MISSING

    def spawn(self, cfg: Config) -> list[Measurement]:
        samples = []
        for _ in range(cfg.rounds(quick=5, full=20)):
            started = time.perf_counter()
            pool = self.pool_class(1)
            pool.submit(workers.identity, 0).result()
            samples.append(time.perf_counter() - started)
            pool.shutdown()
        variant = "first task of a new 1-worker pool (worker start included)"
        return [Measurement(model.SPAWN, self.system, variant, model.SECONDS, tuple(samples))]

    def round_trip(self, cfg: Config) -> list[Measurement]:
        with self.pool_class(1) as pool:
            samples = time_calls(
                lambda i: pool.submit(workers.identity, i).result(), cfg.rounds(quick=500, full=5_000), warm_up=50
            )
        return [Measurement(model.ROUND_TRIP, self.system, "submit(f, x).result()", model.SECONDS, tuple(samples))]

    def throughput(self, cfg: Config) -> list[Measurement]:
        tasks = cfg.rounds(quick=2_000, full=10_000)
        rates = []
        with self.pool_class(1) as pool:
            pool.submit(workers.identity, 0).result()
            for _ in range(cfg.reps):
                started = time.perf_counter()
                futures = [pool.submit(workers.identity, i) for i in range(tasks)]
                for future in futures:
                    future.result()
                rates.append(tasks / (time.perf_counter() - started))
        variant = "submit() of trivial tasks to 1 worker (tasks/s)"
        return [Measurement(model.THROUGHPUT, self.system, variant, model.MSG_PER_S, tuple(rates))]

    def cpu_job(self, workers: int, spans: Spans) -> int:
        from primes import count_primes

        with self.pool_class(workers) as pool:
            return sum(pool.map(count_primes, [lo for lo, _ in spans], [hi for _, hi in spans]))

    def handoff(self, cfg: Config) -> list[Measurement]:
        found = []
        with self.pool_class(1) as pool:
            pool.submit(workers.identity, 0).result()
            for size in cfg.sizes:
                if size > POOL_HANDOFF_LIMIT:
                    self.notes.append(
                        f"handoff: {size} bytes not measured: the pool pickles the payload into a script's source text"
                    )
                    continue
                payload = bytes(size)

                def send(_: int, payload: bytes = payload) -> None:
                    pool.submit(workers.length, payload).result()

                samples = time_calls(send, handoff_rounds(size, cfg.quick), warm_up=1)
                found.append(
                    Measurement(
                        model.HANDOFF,
                        self.system,
                        "submit(len, payload).result() (pickled)",
                        model.SECONDS,
                        tuple(samples),
                        size,
                    )
                )
        if not found:
            raise Skip("no size small enough")
        return found
