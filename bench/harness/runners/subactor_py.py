"""subactor driven from Python: the ``subactor`` package (``python-api/``) in the main
interpreter, as a Python program uses it. Its figures are subactor rows, beside those
the Rust benchmarks take, with "from Python" variants: the main interpreter asking and
telling actors, handing them arena buffers, and its ``rt.executor()`` (a
``concurrent.futures.Executor`` of actors, not pinned: what a user gets) running the
same CPU-bound job as the peers' pools. Process actors (``placement="process"``, run in
a child process forked from the runtime's template) are spawned, asked and told the
same way, beside multiprocessing's workers; they are handed arena buffers (without a
copy: the child maps the arena's memory) beside multiprocessing's SharedMemory, and run
the numpy job beside its ProcessPoolExecutor. Automatic placement is timed beside the
interpreter placement."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from typing import Any

from harness import figures, model, workers
from harness.figures import PY_ASK as ASK
from harness.figures import PY_HANDOFF as HANDOFF
from harness.figures import PY_SPAWN as SPAWN
from harness.figures import PY_TELL as TELL
from harness.model import Measurement
from harness.runners.base import (
    Config,
    Runner,
    Spans,
    memory_measurements,
    process_memory,
    register,
    time_calls,
)


@register
class SubactorPackage(Runner):
    key = "subactor-py"
    system = model.SUBACTOR
    cpu_variant = "from Python: rt.executor().map"
    numpy_variant = figures.NUMPY_PY

    def __init__(self) -> None:
        super().__init__()
        self._numpy_rt: Any = None

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("subactor") is None:
            return "the subactor package is not installed in the benchmark venv (bench/run installs it)"
        return None

    def _runtime(self, arena_max_bytes: int | None = None, preload: tuple[str, ...] = ()) -> Any:
        import subactor

        return subactor.Runtime(arena_max_bytes=arena_max_bytes, preload=preload)

    def spawn(self, cfg: Config) -> list[Measurement]:
        with self._runtime() as rt:
            mine = self._spawns(rt, cfg.rounds(quick=20, full=60), None)
            # The first process spawn starts the template (Python initialised in it),
            # as forkserver's first start starts its server: among the warm-up spawns.
            process = self._spawns(rt, cfg.rounds(quick=10, full=40), "process")
        return [
            Measurement(model.SPAWN, self.system, SPAWN, model.SECONDS, tuple(mine)),
            Measurement(model.SPAWN, self.system, figures.PY_PROC_SPAWN, model.SECONDS, tuple(process)),
        ]

    def memory(self, cfg: Config) -> list[Measurement]:
        """A process actor's process, idle and after a full collection (beside
        multiprocessing's workers; subactor's memory per interpreter actor is
        benches/memory.rs's)."""
        found = []
        with self._runtime() as rt:
            actors = [rt.spawn(workers.ActorCollect, placement="process") for _ in range(cfg.rounds(quick=3, full=5))]
            for label, msg in ((figures.MEMORY_PROC_IDLE, 1), (figures.MEMORY_PROC_COLLECTED, workers.COLLECT)):
                pids = [actor.ask(msg) for actor in actors]
                time.sleep(0.05)
                found += memory_measurements(self.system, label, [process_memory(pid) for pid in pids])
        return found

    @staticmethod
    def _spawns(rt: Any, rounds: int, placement: str | None, warm_up: int = 3) -> list[float]:
        """Times ``rounds`` spawns of an echo actor until its first answer, after
        ``warm_up`` untimed ones (they warm the page cache and the bootstrap)."""
        samples = []
        for i in range(rounds + warm_up):
            started = time.perf_counter()
            actor = rt.spawn(workers.ActorEcho, placement=placement)
            if actor.ask(i) != i:
                raise RuntimeError(f"the echo did not answer {i}")
            if i >= warm_up:
                samples.append(time.perf_counter() - started)
            actor.stop()
            actor.wait()
        return samples

    def round_trip(self, cfg: Config) -> list[Measurement]:
        with self._runtime() as rt:
            echo = rt.spawn(workers.ActorEcho)
            samples = time_calls(echo.ask, cfg.rounds(quick=20_000, full=200_000), warm_up=1_000)
            echo.stop()
            echo = rt.spawn(workers.ActorEcho, placement="process")
            process = time_calls(echo.ask, cfg.rounds(quick=5_000, full=50_000), warm_up=1_000)
            echo.stop()
        return [
            Measurement(model.ROUND_TRIP, self.system, ASK, model.SECONDS, tuple(samples)),
            Measurement(model.ROUND_TRIP, self.system, figures.PY_PROC_ASK, model.SECONDS, tuple(process)),
        ]

    def throughput(self, cfg: Config) -> list[Measurement]:
        with self._runtime() as rt:
            mine = self._tells(rt, cfg, cfg.rounds(quick=200_000, full=1_000_000), None)
            process = self._tells(rt, cfg, cfg.rounds(quick=100_000, full=500_000), "process")
        return [
            Measurement(model.THROUGHPUT, self.system, TELL, model.MSG_PER_S, tuple(mine)),
            Measurement(model.THROUGHPUT, self.system, figures.PY_PROC_TELL, model.MSG_PER_S, tuple(process)),
        ]

    @staticmethod
    def _tells(rt: Any, cfg: Config, messages: int, placement: str | None) -> list[float]:
        """Tells ``messages`` ints to a counting actor, then asks for the count: the
        rate until the last is handled, once per repetition."""
        rates = []
        for _ in range(cfg.reps):
            counter = rt.spawn(workers.ActorCount, placement=placement)
            counter.ask(None)  # started (a process actor's child is up)
            tell = counter.tell
            started = time.perf_counter()
            for i in range(messages):
                tell(i)
            count = counter.ask(None)
            elapsed = time.perf_counter() - started
            if count != messages:
                raise RuntimeError(f"the actor counted {count} messages, not {messages}")
            rates.append(messages / elapsed)
            counter.stop()
        return rates

    def handoff(self, cfg: Config) -> list[Measurement]:
        found = []
        # Room for the largest payload twice (the process actor's own, while the last
        # interpreter handoff's is given back) beside the arena's own bookkeeping; the
        # arena's memory is committed only as buffers are written.
        with self._runtime(arena_max_bytes=3 * max(cfg.sizes)) as rt:
            reader = rt.spawn(workers.ActorLength)
            for size in cfg.sizes:
                payload = rt.alloc(size).freeze()

                def hand(_: int, p: Any = payload) -> object:
                    return reader.ask(p)

                samples = time_calls(hand, cfg.rounds(quick=500, full=5_000), 50)
                del payload, hand
                found.append(Measurement(model.HANDOFF, self.system, HANDOFF, model.SECONDS, tuple(samples), size))
            reader.stop()
            found += self._process_handoff(rt, cfg)
        return found

    @staticmethod
    def _process_handoff(rt: Any, cfg: Config) -> list[Measurement]:
        """An arena buffer of each size handed to a process actor, which reads its first
        and last byte and answers its length (the child maps the arena's memory: the
        buffer is not copied). The same buffer every time, after a warm-up."""
        found = []
        touch = rt.spawn(workers.ActorTouch, placement="process")
        for size in cfg.sizes:
            draft = rt.alloc(size)
            view = memoryview(draft)
            view[0], view[size - 1] = 1, 2
            view.release()
            payload = draft.freeze()

            def hand(_: int, p: Any = payload, size: int = size) -> None:
                if touch.ask(p) != size:
                    raise RuntimeError(f"the process actor did not answer {size}")

            samples = time_calls(hand, cfg.rounds(quick=300, full=2_000), 20)
            del payload, draft, hand
            found.append(
                Measurement(
                    model.PROC_HANDOFF,
                    SubactorPackage.system,
                    figures.PY_PROC_HANDOFF,
                    model.SECONDS,
                    tuple(samples),
                    size,
                )
            )
        touch.stop()
        return found

    def placement(self, cfg: Config) -> list[Measurement]:
        """A pure-Python actor spawned with placement "interpreter" and "auto",
        alternately, until its first answer; then asks in interleaved blocks."""
        placements = ("interpreter", "auto")
        spawns: dict[str, list[float]] = {p: [] for p in placements}
        asks: dict[str, list[float]] = {p: [] for p in placements}
        with self._runtime() as rt:
            for placement in placements:  # warm-up; auto learns the class runs in an interpreter
                self._spawns(rt, 0, placement)
            for _ in range(cfg.rounds(quick=10, full=30)):
                for placement in placements:
                    spawns[placement] += self._spawns(rt, 1, placement, warm_up=0)
            actors = {p: rt.spawn(workers.ActorEcho, placement=p) for p in placements}
            for actor in actors.values():
                time_calls(actor.ask, 0, warm_up=1_000)
            blocks, per_block = (5, 1_000) if cfg.quick else (20, 2_000)
            for _ in range(blocks):
                for placement, actor in actors.items():
                    asks[placement] += time_calls(actor.ask, per_block, warm_up=0)
            for actor in actors.values():
                actor.stop()
        found = []
        for placement in placements:
            variant = figures.AUTO_PY[placement]
            found.append(Measurement(model.AUTO_SPAWN, self.system, variant, model.SECONDS, tuple(spawns[placement])))
            found.append(Measurement(model.AUTO_ASK, self.system, variant, model.SECONDS, tuple(asks[placement])))
        return found

    def numpy(self, cfg: Config) -> list[Measurement]:
        try:
            return super().numpy(cfg)
        finally:
            if self._numpy_rt is not None:
                self._numpy_rt.close()
                self._numpy_rt = None

    def numpy_warm_up(self) -> None:
        # One runtime for every run of the job, as multiprocessing's module is there for
        # every pool: its template (numpy preloaded) starts with the first process actor.
        if self._numpy_rt is None:
            self._numpy_rt = self._runtime(preload=("bench_numpy",))
        import bench_numpy

        actor = self._numpy_rt.spawn(bench_numpy.Worker, placement="process")
        actor.ask((0, 8))
        actor.stop()
        actor.wait()

    def numpy_job(self, workers: int, tasks: list[tuple[int, int]]) -> float:
        import bench_numpy

        rt = self._numpy_rt
        actors = [rt.spawn(bench_numpy.Worker, placement="process") for _ in range(workers)]
        results = [0.0] * len(tasks)
        pending = iter(enumerate(tasks))

        async def work(actor: Any) -> None:
            for i, task in pending:
                results[i] = await actor.ask_async(task)

        async def all_of_them() -> None:
            await asyncio.gather(*(work(actor) for actor in actors))

        asyncio.run(all_of_them())
        for actor in actors:
            actor.stop()
        for actor in actors:
            actor.wait()
        return sum(results)

    def concurrent_asks(self, cfg: Config) -> list[Measurement]:
        """An asyncio actor with ``max_concurrency=100`` whose handler sleeps 10 ms: one
        ask at a time, then 100 at once (``asyncio.gather`` of ``ask_async``), in each
        placement; and the same sleeps with asyncio alone."""
        import asyncio

        ones, manys = cfg.rounds(quick=20, full=60), cfg.rounds(quick=10, full=30)
        sleep, n = figures.ASYNC_SLEEP, figures.ASYNC_ASKS
        found = []
        with self._runtime() as rt:
            for placement in figures.ASYNC_PLACEMENTS:
                actor = rt.spawn(workers.ActorAsyncSleep, placement=placement, max_concurrency=n)

                async def timed(actor: Any = actor) -> tuple[list[float], list[float]]:
                    clock = time.perf_counter
                    for _ in range(3):  # warm: the loop, the dispatcher, the ask threads
                        await asyncio.gather(*(actor.ask_async(sleep) for _ in range(n)))
                    one = []
                    for _ in range(ones):
                        started = clock()
                        await actor.ask_async(sleep)
                        one.append(clock() - started)
                    many = []
                    for _ in range(manys):
                        started = clock()
                        replies = await asyncio.gather(*(actor.ask_async(sleep) for _ in range(n)))
                        many.append(clock() - started)
                        if len(replies) != n:
                            raise RuntimeError(f"{len(replies)} answers to {n} asks")
                    return one, many

                one, many = asyncio.run(timed())
                actor.stop()
                actor.wait()
                found.append(
                    Measurement(model.ASYNC, self.system, figures.async_one(placement), model.SECONDS, tuple(one))
                )
                found.append(
                    Measurement(model.ASYNC, self.system, figures.async_many(placement), model.SECONDS, tuple(many))
                )

        async def alone() -> tuple[list[float], list[float]]:
            clock = time.perf_counter
            one, many = [], []
            for _ in range(ones):
                started = clock()
                await asyncio.sleep(sleep)
                one.append(clock() - started)
            for _ in range(manys):
                started = clock()
                await asyncio.gather(*(asyncio.sleep(sleep) for _ in range(n)))
                many.append(clock() - started)
            return one, many

        one, many = asyncio.run(alone())
        found.append(Measurement(model.ASYNC, model.BASELINE, figures.ASYNC_BASE_ONE, model.SECONDS, tuple(one)))
        found.append(Measurement(model.ASYNC, model.BASELINE, figures.ASYNC_BASE_MANY, model.SECONDS, tuple(many)))
        return found

    def cpu_job(self, workers: int, spans: Spans) -> int:
        import subactor
        from primes import count_primes

        with subactor.Runtime() as rt, rt.executor(workers) as pool:
            return sum(pool.map(count_primes, [lo for lo, _ in spans], [hi for _, hi in spans]))
