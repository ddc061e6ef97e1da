"""subactor driven from Python: the ``subactor`` package (``python-api/``) in the main
interpreter, as a Python program uses it. Its figures are subactor rows, beside those
the Rust benchmarks take, with "from Python" variants: the main interpreter asking and
telling actors, handing them arena buffers, and its ``rt.executor()`` (a
``concurrent.futures.Executor`` of actors, not pinned: what a user gets) running the
same CPU-bound job as the peers' pools."""

from __future__ import annotations

import importlib.util
import time
from typing import Any

from harness import model, workers
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
        samples = []
        with self._runtime() as rt:
            for i in range(cfg.rounds(quick=20, full=60) + 3):
                started = time.perf_counter()
                actor = rt.spawn(workers.ActorEcho)
                actor.ask(0)
                if i >= 3:  # the first spawns warm the page cache and the bootstrap
                    samples.append(time.perf_counter() - started)
                actor.stop()
                actor.wait()
        return [Measurement(model.SPAWN, self.system, SPAWN, model.SECONDS, tuple(samples))]

    def round_trip(self, cfg: Config) -> list[Measurement]:
        with self._runtime() as rt:
            echo = rt.spawn(workers.ActorEcho)
            samples = time_calls(echo.ask, cfg.rounds(quick=20_000, full=200_000), warm_up=1_000)
        return [Measurement(model.ROUND_TRIP, self.system, ASK, model.SECONDS, tuple(samples))]

    def throughput(self, cfg: Config) -> list[Measurement]:
        messages = cfg.rounds(quick=200_000, full=1_000_000)
        rates = []
        with self._runtime() as rt:
            for _ in range(cfg.reps):
                counter = rt.spawn(workers.ActorCount)
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
        return [Measurement(model.THROUGHPUT, self.system, TELL, model.MSG_PER_S, tuple(rates))]

    def handoff(self, cfg: Config) -> list[Measurement]:
        found = []
        # Room for the largest payload beside the arena's own bookkeeping.
        with self._runtime(arena_max_bytes=2 * max(cfg.sizes)) as rt:
            reader = rt.spawn(workers.ActorLength)
            for size in cfg.sizes:
                payload = rt.alloc(size).freeze()
                samples = time_calls(lambda _, p=payload: reader.ask(p), cfg.rounds(quick=500, full=5_000), 50)
                del payload
                found.append(Measurement(model.HANDOFF, self.system, HANDOFF, model.SECONDS, tuple(samples), size))
        return found

    def cpu_job(self, workers: int, spans: Spans) -> int:
        import subactor
        from primes import count_primes

        with subactor.Runtime() as rt, rt.executor(workers) as pool:
            return sum(pool.map(count_primes, [lo for lo, _ in spans], [hi for _, hi in spans]))
