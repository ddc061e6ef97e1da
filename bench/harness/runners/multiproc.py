"""multiprocessing, with the fork, forkserver and spawn start methods.

Workers are ``multiprocessing.Process`` es talking over a ``Pipe`` (the fastest of its
transports); the CPU-bound job runs on a ``ProcessPoolExecutor``; large payloads go
through the pipe (copied twice, through the kernel) or, the zero-copy way, as a
``SharedMemory`` block whose name goes through the pipe and which the worker attaches.

forkserver is measured for its worker start (beside process actors' spawn) and its
pool running the numpy job (its server preloads the job's module, as process actors'
template does): once a worker runs, it talks over the same Pipe as a forked one, whose
figures the fork and spawn rows already show.

The numpy job (``bench_numpy.block``, one BLAS thread per worker) runs on a
``ProcessPoolExecutor`` too; the parent imports the job's module first, so fork's
workers start with numpy loaded and spawn's import it.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, ClassVar

from harness import figures, model, workers
from harness.model import Measurement
from harness.runners.base import (
    Config,
    Runner,
    Spans,
    handoff_rounds,
    memory_measurements,
    process_memory,
    register,
    time_calls,
)

JOIN_TIMEOUT = 30.0


class _Multiprocessing(Runner):
    start_method: ClassVar[str]
    cpu_variant = "ProcessPoolExecutor.map"
    numpy_variant = figures.NUMPY_POOL

    def __init__(self) -> None:
        super().__init__()
        # A ForkContext or SpawnContext (typeshed knows only their base class).
        self.context: Any = multiprocessing.get_context(self.start_method)

    def _start(self, target: Callable[[Connection], None]) -> tuple[Connection, BaseProcess]:
        """Starts a worker running ``target`` and waits until it is ready."""
        parent, child = self.context.Pipe()
        process = self.context.Process(target=target, args=(child,), daemon=True)
        process.start()
        child.close()
        if parent.recv() != workers.READY:
            raise RuntimeError("the worker did not say it was ready")
        return parent, process

    @staticmethod
    def _stop(conn: Connection, process: BaseProcess, last: Callable[[], None]) -> None:
        last()
        process.join(JOIN_TIMEOUT)
        if process.exitcode is None:
            process.kill()
            process.join()
        conn.close()

    def _stop_echo(self, conn: Connection, process: BaseProcess) -> None:
        self._stop(conn, process, lambda: conn.send(None))

    def spawn(self, cfg: Config) -> list[Measurement]:
        forked = self.start_method != "spawn"
        rounds = cfg.rounds(quick=10 if forked else 5, full=40 if forked else 20)
        # First-time costs; with forkserver, this first start also starts its server,
        # which its users have running by the time they start workers.
        self._stop_echo(*self._start(workers.pipe_echo))
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            conn, process = self._start(workers.pipe_echo)
            samples.append(time.perf_counter() - started)
            self._stop_echo(conn, process)
        return [Measurement(model.SPAWN, self.system, figures.MP_START, model.SECONDS, tuple(samples))]

    def round_trip(self, cfg: Config) -> list[Measurement]:
        conn, process = self._start(workers.pipe_echo)

        def ask(i: int) -> None:
            conn.send(i)
            conn.recv()

        samples = time_calls(ask, cfg.rounds(quick=2_000, full=20_000), warm_up=500)
        self._stop_echo(conn, process)
        return [Measurement(model.ROUND_TRIP, self.system, figures.PIPE_ASK, model.SECONDS, tuple(samples))]

    def throughput(self, cfg: Config) -> list[Measurement]:
        messages = cfg.rounds(quick=50_000, full=200_000)
        conn, process = self._start(workers.pipe_count)
        rates = []
        for _ in range(cfg.reps):
            started = time.perf_counter()
            for i in range(messages):
                conn.send(i)
            conn.send(None)
            count = conn.recv()
            elapsed = time.perf_counter() - started
            if count != messages:
                raise RuntimeError(f"the worker counted {count} messages, not {messages}")
            rates.append(messages / elapsed)
        self._stop(conn, process, lambda: conn.send("stop"))
        return [Measurement(model.THROUGHPUT, self.system, figures.PIPE_TELL, model.MSG_PER_S, tuple(rates))]

    def cpu_job(self, workers: int, spans: Spans) -> int:
        from primes import count_primes

        with ProcessPoolExecutor(workers, mp_context=self.context) as pool:
            return sum(pool.map(count_primes, [lo for lo, _ in spans], [hi for _, hi in spans]))

    def numpy_warm_up(self) -> None:
        import bench_numpy

        if self.start_method == "forkserver":
            self.context.set_forkserver_preload(["bench_numpy"])
        # Starts forkserver's server; warms the page cache for every method.
        with ProcessPoolExecutor(1, mp_context=self.context) as pool:
            list(pool.map(bench_numpy.block, [0], [8]))

    def numpy_job(self, workers: int, tasks: list[tuple[int, int]]) -> float:
        import bench_numpy

        with ProcessPoolExecutor(workers, mp_context=self.context) as pool:
            return float(sum(pool.map(bench_numpy.block, [seed for seed, _ in tasks], [size for _, size in tasks])))

    def handoff(self, cfg: Config) -> list[Measurement]:
        found = []
        conn, process = self._start(workers.pipe_length)
        for size in cfg.sizes:
            if cfg.quick and size >= 1 << 30:
                self.notes.append(f"handoff: Pipe of {size >> 30} GB not measured in --quick (seconds per copy)")
                continue
            payload = bytes(size)

            def send(_: int, payload: bytes = payload) -> None:
                conn.send_bytes(payload)
                conn.recv()

            samples = time_calls(send, handoff_rounds(size, cfg.quick), warm_up=1)
            del payload
            found.append(
                Measurement(model.HANDOFF, self.system, figures.PIPE_BYTES, model.SECONDS, tuple(samples), size)
            )
        self._stop(conn, process, lambda: conn.send_bytes(b""))
        found += self._shared_memory(cfg)
        return found

    def _shared_memory(self, cfg: Config) -> list[Measurement]:
        from multiprocessing import shared_memory

        found = []
        conn, process = self._start(workers.pipe_shared_memory)
        for size in cfg.sizes:
            try:
                block = shared_memory.SharedMemory(create=True, size=size)
            except OSError as error:  # /dev/shm too small
                self.notes.append(f"handoff: SharedMemory of {size} bytes: {error}")
                continue
            try:

                def send(_: int, name: str = block.name) -> None:
                    conn.send(name)
                    conn.recv()

                samples = time_calls(send, cfg.rounds(quick=200, full=2_000), warm_up=10)
            finally:
                block.close()
                block.unlink()
            found.append(
                Measurement(
                    model.HANDOFF,
                    self.system,
                    figures.SHARED_MEMORY,
                    model.SECONDS,
                    tuple(samples),
                    size,
                )
            )
        self._stop_echo(conn, process)
        return found

    def memory(self, cfg: Config) -> list[Measurement]:
        started = [self._start(workers.pipe_collect) for _ in range(cfg.rounds(quick=3, full=5))]
        usages = {}
        for label, msg in ((figures.MEMORY_IDLE_PROCESS, 1), (figures.MEMORY_COLLECTED_PROCESS, workers.COLLECT)):
            for conn, _ in started:
                conn.send(msg)
                conn.recv()
            time.sleep(0.05)
            usages[label] = [process_memory(process.pid or 0) for _, process in started]
        for conn, process in started:
            self._stop_echo(conn, process)
        return [m for label, found in usages.items() for m in memory_measurements(self.system, label, found)]


@register
class Fork(_Multiprocessing):
    key = "mp-fork"
    system = model.MP_FORK
    start_method = "fork"


@register
class Forkserver(_Multiprocessing):
    key = "mp-forkserver"
    system = model.MP_FORKSERVER
    start_method = "forkserver"
    measures = frozenset({model.SPAWN, model.NUMPY})


@register
class Spawn(_Multiprocessing):
    key = "mp-spawn"
    system = model.MP_SPAWN
    start_method = "spawn"
