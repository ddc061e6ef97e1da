"""Threads of one interpreter (one GIL): ``threading`` with ``queue.Queue``, and a
``ThreadPoolExecutor`` for the CPU-bound job. Payloads are shared by reference."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness import model, workers
from harness.model import Measurement
from harness.runners.base import (
    Config,
    Runner,
    Spans,
    growth,
    memory_measurements,
    process_memory,
    register,
    time_calls,
)

Worker = tuple["queue.Queue[Any]", "queue.Queue[Any]", threading.Thread]


def _start(target: Callable[[Any, Any], None]) -> Worker:
    """Starts a thread running ``target(inbox, outbox)`` and waits until it is ready.
    The queues are unbounded, as users make them by default."""
    inbox: queue.Queue[Any] = queue.Queue()
    outbox: queue.Queue[Any] = queue.Queue()
    thread = threading.Thread(target=target, args=(inbox, outbox), daemon=True)
    thread.start()
    if outbox.get() != workers.READY:
        raise RuntimeError("the worker thread did not say it was ready")
    return inbox, outbox, thread


def _stop(worker: Worker) -> None:
    inbox, _, thread = worker
    inbox.put(None)
    thread.join()


@register
class Threads(Runner):
    key = "threads"
    system = model.THREADS
    cpu_variant = "ThreadPoolExecutor.map"

    def spawn(self, cfg: Config) -> list[Measurement]:
        _stop(_start(workers.queue_echo))
        samples = []
        for _ in range(cfg.rounds(quick=200, full=2_000)):
            started = time.perf_counter()
            worker = _start(workers.queue_echo)
            samples.append(time.perf_counter() - started)
            _stop(worker)
        return [
            Measurement(
                model.SPAWN, self.system, "Thread.start() until the thread answers", model.SECONDS, tuple(samples)
            )
        ]

    def round_trip(self, cfg: Config) -> list[Measurement]:
        worker = _start(workers.queue_echo)
        inbox, outbox, _ = worker

        def ask(i: int) -> None:
            inbox.put(i)
            outbox.get()

        samples = time_calls(ask, cfg.rounds(quick=5_000, full=50_000), warm_up=500)
        _stop(worker)
        return [Measurement(model.ROUND_TRIP, self.system, "queue.Queue put() + get()", model.SECONDS, tuple(samples))]

    def throughput(self, cfg: Config) -> list[Measurement]:
        messages = cfg.rounds(quick=100_000, full=500_000)
        rates = []
        for _ in range(cfg.reps):
            inbox, outbox, thread = _start(workers.queue_count)
            started = time.perf_counter()
            for i in range(messages):
                inbox.put(i)
            inbox.put(None)
            count = outbox.get()
            elapsed = time.perf_counter() - started
            thread.join()
            if count != messages:
                raise RuntimeError(f"the thread counted {count} messages, not {messages}")
            rates.append(messages / elapsed)
        return [Measurement(model.THROUGHPUT, self.system, "queue.Queue put() of ints", model.MSG_PER_S, tuple(rates))]

    def cpu_job(self, workers: int, spans: Spans) -> int:
        from primes import count_primes

        with ThreadPoolExecutor(workers) as pool:
            return sum(pool.map(count_primes, [lo for lo, _ in spans], [hi for _, hi in spans]))

    def handoff(self, cfg: Config) -> list[Measurement]:
        worker = _start(workers.queue_length)
        inbox, outbox, _ = worker
        found = []
        for size in cfg.sizes:
            payload = bytes(size)

            def send(_: int, payload: bytes = payload) -> None:
                inbox.put(payload)
                outbox.get()

            # Nothing is copied: every size gets as many handoffs as the smallest.
            samples = time_calls(send, cfg.rounds(quick=200, full=2_000), warm_up=10)
            del payload
            found.append(
                Measurement(
                    model.HANDOFF,
                    self.system,
                    "queue.Queue, the same bytes object (shared)",
                    model.SECONDS,
                    tuple(samples),
                    size,
                )
            )
        _stop(worker)
        return found

    def memory(self, cfg: Config) -> list[Measurement]:
        per_batch = 20
        started: list[Worker] = []
        usages = []
        for _ in range(cfg.rounds(quick=3, full=5)):
            before = process_memory()
            batch = [_start(workers.queue_echo) for _ in range(per_batch)]
            time.sleep(0.05)
            usages.append(growth(before, process_memory(), per_batch))
            started += batch
        for worker in started:
            _stop(worker)
        return memory_measurements(self.system, "{} growth per idle thread", usages)
