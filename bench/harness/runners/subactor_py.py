"""subactor driven from Python: the ``subactor`` package (``python-api/``) in the main
interpreter, as a Python program uses it. Its figures are subactor rows, beside those
the Rust benchmarks take, with "from Python" variants: the main interpreter asking and
telling actors, handing them arena buffers, and its ``rt.executor()`` (a
``concurrent.futures.Executor`` of actors, not pinned: what a user gets) running the
same CPU-bound job as the peers' pools. Process actors (``placement="process"``, run in
a child process forked from the runtime's template) are spawned, asked and told the
same way, beside multiprocessing's workers."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

from harness import figures, model, workers
from harness.figures import PY_ASK as ASK
from harness.figures import PY_HANDOFF as HANDOFF
from harness.figures import PY_SPAWN as SPAWN
from harness.figures import PY_TELL as TELL
from harness.model import Measurement
from harness.runners.base import Config, Runner, Spans, register, time_calls


@register
class SubactorPackage(Runner):
    key = "subactor-py"
    system = model.SUBACTOR
    cpu_variant = "from Python: rt.executor().map"

    def unavailable(self) -> str | None:
        if importlib.util.find_spec("subactor") is None:
            return "the subactor package is not installed in the benchmark venv (bench/run installs it)"
        return None

    def _runtime(self, arena_max_bytes: int | None = None) -> Any:
        import subactor

        return subactor.Runtime(arena_max_bytes=arena_max_bytes)

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

    @staticmethod
    def _spawns(rt: Any, rounds: int, placement: str | None) -> list[float]:
        """Times ``rounds`` spawns of an echo actor until its first answer, after three
        untimed ones (they warm the page cache and the bootstrap)."""
        samples = []
        for i in range(rounds + 3):
            started = time.perf_counter()
            actor = rt.spawn(workers.ActorEcho, placement=placement)
            if actor.ask(i) != i:
                raise RuntimeError(f"the echo did not answer {i}")
            if i >= 3:
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
        # Room for the largest payload beside the arena's own bookkeeping.
        with self._runtime(arena_max_bytes=2 * max(cfg.sizes)) as rt:
            reader = rt.spawn(workers.ActorLength)
            for size in cfg.sizes:
                payload = rt.alloc(size).freeze()

                def hand(_: int, p: Any = payload) -> object:
                    return reader.ask(p)

                samples = time_calls(hand, cfg.rounds(quick=500, full=5_000), 50)
                del payload
                found.append(Measurement(model.HANDOFF, self.system, HANDOFF, model.SECONDS, tuple(samples), size))
        return found

    def cpu_job(self, workers: int, spans: Spans) -> int:
        import subactor
        from primes import count_primes

        with subactor.Runtime() as rt, rt.executor(workers) as pool:
            return sum(pool.map(count_primes, [lo for lo, _ in spans], [hi for _, hi in spans]))
