"""The runner interface: how one system is measured from Python.

A runner measures one system (``multiprocessing (fork)``, ``threads``, ...) in a fresh
Python process of its own (``python -m harness.runners KEY``), so that no system's
threads, interpreters or forked children disturb another's figures.

Adding a system is adding a runner::

    @register
    class MySystem(Runner):
        key = "my-system"                  # for `bench/run --runners my-system`
        system = "my system"               # the name in the report's tables

        def unavailable(self) -> str | None:
            ...                            # why it cannot run here, or None

        def cpu_job(self, workers: int, spans: Spans) -> int:
            ...                            # start `workers` workers, count the primes
                                           # of every span, stop them; the sum

and listing its module in ``harness.runners.MODULES``. Implement the metrics the system
has (override :meth:`Runner.spawn`, :meth:`Runner.round_trip`, ...; the CPU-bound
speedup only needs :meth:`Runner.cpu_job`); the report shows the others as not measured.
This is where a "subactor via its Python package" column goes (its ``rt.executor()``
for :meth:`Runner.cpu_job`, its actors for the rest): see ARCHITECTURE.md.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from harness import model
from harness.model import Measurement

# Spans [lo, hi) of the CPU-bound job: what one task counts the primes of.
Spans = list[tuple[int, int]]


@dataclass(frozen=True)
class Config:
    """What the driver asks of every runner; the same for all of them in one run."""

    quick: bool
    cores: int
    # The CPU-bound job: the primes below cpu_limit, in cpu_chunks tasks (the values
    # the Rust foundation benchmark used in this run).
    cpu_limit: int
    cpu_chunks: int
    # Repetitions of figures that take one sample per run (throughput, CPU speedup).
    reps: int
    # Payload sizes of the handoff, in bytes.
    sizes: tuple[int, ...]
    # The metrics to measure (harness.model's metric names, and "placement").
    metrics: tuple[str, ...]
    # The numpy job: tasks of a numpy_size x numpy_size matrix product (the values the
    # Rust placement benchmark used in this run).
    numpy_tasks: int = 128
    numpy_size: int = 300

    def rounds(self, quick: int, full: int) -> int:
        return quick if self.quick else full

    def spans(self) -> Spans:
        """The CPU-bound job's tasks, exactly as benches/foundation.rs cuts them."""
        limit, chunks = self.cpu_limit, self.cpu_chunks
        return [(c * limit // chunks, (c + 1) * limit // chunks) for c in range(chunks)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Config:
        return Config(
            quick=bool(data["quick"]),
            cores=int(data["cores"]),
            cpu_limit=int(data["cpu_limit"]),
            cpu_chunks=int(data["cpu_chunks"]),
            reps=int(data["reps"]),
            sizes=tuple(int(s) for s in data["sizes"]),
            metrics=tuple(str(m) for m in data["metrics"]),
            numpy_tasks=int(data.get("numpy_tasks", 128)),
            numpy_size=int(data.get("numpy_size", 300)),
        )


class Skip(Exception):
    """A figure the runner does not take here, with the reason (shown in the report)."""


class Runner:
    """Measures one system. Each metric method returns the measurements it took; the
    default takes none (the system has no such figure)."""

    key: ClassVar[str]
    system: ClassVar[str]
    # How the CPU-bound job runs, for the report (e.g. "ProcessPoolExecutor.map").
    cpu_variant: ClassVar[str] = ""
    # How the numpy job runs, for the report (harness.figures' NUMPY_* labels).
    numpy_variant: ClassVar[str] = ""
    # The metrics this runner measures, when not every one it implements (a subclass
    # that shares its parent's methods but is compared on one figure only).
    measures: ClassVar[frozenset[str] | None] = None

    def __init__(self) -> None:
        # Figures left out on purpose, one line each for the report
        # ("handoff: 1 GB not measured in --quick").
        self.notes: list[str] = []

    def unavailable(self) -> str | None:
        """Why this system cannot be measured here (a missing module), or None."""
        return None

    def spawn(self, cfg: Config) -> list[Measurement]:
        """Start-up latency of one worker, until it can take work."""
        return []

    def round_trip(self, cfg: Config) -> list[Measurement]:
        """Round trips of a small message (an int) to a worker and back."""
        return []

    def throughput(self, cfg: Config) -> list[Measurement]:
        """Small messages per second into one worker, until it has handled the last."""
        return []

    def handoff(self, cfg: Config) -> list[Measurement]:
        """Handing a payload of each of cfg.sizes to a worker, its length coming back."""
        return []

    def memory(self, cfg: Config) -> list[Measurement]:
        """Memory of an idle worker."""
        return []

    def placement(self, cfg: Config) -> list[Measurement]:
        """Spawn and ask of a pure-Python actor with placement "auto" beside
        "interpreter" (subactor only)."""
        return []

    def numpy_job(self, workers: int, tasks: list[tuple[int, int]]) -> float:
        """Runs the numpy job's ``tasks`` (seed, size) with ``workers`` workers started
        and stopped inside this call (``bench_numpy.block`` each); returns the sum of the
        results in task order. Not overridden: no numpy figure."""
        raise NotImplementedError

    def numpy_warm_up(self) -> None:
        """First-time costs of the numpy job's workers (a server or template to start),
        paid before timing, as a long-running program has paid them."""

    def numpy(self, cfg: Config) -> list[Measurement]:
        """Wall time of the numpy job with 1..cores workers, start-up and stop included,
        repeated cfg.reps times (paired within a repetition, as the CPU-bound job)."""
        if type(self).numpy_job is Runner.numpy_job:
            return []
        tasks = [(seed, cfg.numpy_size) for seed in range(cfg.numpy_tasks)]
        self.numpy_warm_up()
        expected: float | None = None
        times: dict[int, list[float]] = {w: [] for w in range(1, cfg.cores + 1)}
        for _ in range(cfg.reps):
            for workers in times:
                started = time.perf_counter()
                total = self.numpy_job(workers, tasks)
                times[workers].append(time.perf_counter() - started)
                if expected is None:
                    expected = total
                elif abs(total - expected) > 1e-6 * max(1.0, abs(expected)):
                    raise RuntimeError(f"{workers} workers summed {total}, an earlier run {expected}")
        return [
            Measurement(model.NUMPY, self.system, self.numpy_variant, model.SECONDS, tuple(t), w)
            for w, t in times.items()
        ]

    def concurrent_asks(self, cfg: Config) -> list[Measurement]:
        """An asyncio worker's asks one at a time and many at once (subactor only)."""
        return []

    def cpu_job(self, workers: int, spans: Spans) -> int:
        """Counts the primes of every span with ``workers`` workers, started and
        stopped inside this call; returns the total. Not overridden: no CPU figure."""
        raise NotImplementedError

    def cpu(self, cfg: Config) -> list[Measurement]:
        """Wall time of the CPU-bound job with 1..cores workers, start-up and stop
        included, repeated cfg.reps times (each repetition runs every worker count, so
        that speedups can be paired within a repetition)."""
        if type(self).cpu_job is Runner.cpu_job:
            return []
        spans = cfg.spans()
        expected: int | None = None
        times: dict[int, list[float]] = {w: [] for w in range(1, cfg.cores + 1)}
        for _ in range(cfg.reps):
            for workers in times:
                started = time.perf_counter()
                total = self.cpu_job(workers, spans)
                times[workers].append(time.perf_counter() - started)
                if expected is None:
                    expected = total
                elif total != expected:
                    raise RuntimeError(f"{workers} workers counted {total} primes, an earlier run {expected}")
        return [
            Measurement(model.CPU, self.system, self.cpu_variant + ", start-up included", model.SECONDS, tuple(t), w)
            for w, t in times.items()
        ]

    def measure(self, cfg: Config) -> tuple[list[Measurement], list[str]]:
        """Every metric of cfg.metrics: the measurements, and what was skipped or failed
        (one line each, for the report)."""
        methods: dict[str, Callable[[Config], list[Measurement]]] = {
            model.SPAWN: self.spawn,
            model.ROUND_TRIP: self.round_trip,
            model.THROUGHPUT: self.throughput,
            model.CPU: self.cpu,
            model.HANDOFF: self.handoff,
            model.MEMORY: self.memory,
            model.NUMPY: self.numpy,
            "placement": self.placement,
            model.ASYNC: self.concurrent_asks,
        }
        found: list[Measurement] = []
        skipped: list[str] = []
        for metric in cfg.metrics:
            method = methods.get(metric)
            if method is None or (self.measures is not None and metric not in self.measures):
                continue
            try:
                found += method(cfg)
            except Skip as reason:
                skipped.append(f"{metric}: {reason}")
            except Exception as error:  # one broken figure must not lose the others
                skipped.append(f"{metric}: failed: {type(error).__name__}: {error}")
        return found, skipped + self.notes


RUNNERS: dict[str, type[Runner]] = {}


def register(cls: type[Runner]) -> type[Runner]:
    """Registers a runner class under its key."""
    if cls.key in RUNNERS:
        raise ValueError(f"two runners have the key {cls.key!r}")
    RUNNERS[cls.key] = cls
    return cls


# ---- helpers for runners -----------------------------------------------------------


def time_calls(call: Callable[[int], object], rounds: int, warm_up: int) -> list[float]:
    """Times ``rounds`` calls of ``call(i)``, after ``warm_up`` untimed ones."""
    for i in range(warm_up):
        call(i)
    samples = []
    clock = time.perf_counter
    for i in range(rounds):
        started = clock()
        call(i)
        samples.append(clock() - started)
    return samples


def handoff_rounds(size: int, quick: bool) -> int:
    """How many handoffs of ``size`` bytes to time: the same scale as benches/arena.rs
    uses for copies."""
    if size >= 1 << 30:
        return 2 if quick else 3
    if size >= 100 << 20:
        return 3 if quick else 5
    if size >= 1 << 20:
        return 50 if quick else 200
    return 200 if quick else 2000


@dataclass(frozen=True)
class ProcessMemory:
    """Memory of a process, in bytes: resident (RSS), proportional (PSS: shared pages
    divided among their sharers) and unique (USS: private pages only)."""

    rss: int
    pss: int
    uss: int


def process_memory(pid: int | str = "self") -> ProcessMemory:
    """Reads a process's memory from /proc (Linux)."""
    status = _kib_fields(f"/proc/{pid}/status")
    rollup = _kib_fields(f"/proc/{pid}/smaps_rollup")
    return ProcessMemory(
        rss=status["VmRSS"],
        pss=rollup["Pss"],
        uss=rollup["Private_Clean"] + rollup["Private_Dirty"],
    )


def _kib_fields(path: str) -> dict[str, int]:
    fields = {}
    with open(path) as f:
        for line in f:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[name] = int(parts[0]) * 1024
    return fields


def memory_measurements(system: str, label: str, usages: list[ProcessMemory]) -> list[Measurement]:
    """The RSS, PSS and USS measurements of ``usages``; ``label`` names them with a
    ``{}`` for the kind: "{} of an idle worker process"."""
    return [
        Measurement(
            model.MEMORY, system, label.format(kind), model.BYTES, tuple(float(getattr(u, attr)) for u in usages)
        )
        for kind, attr in (("RSS", "rss"), ("PSS", "pss"), ("USS", "uss"))
    ]


def growth(before: ProcessMemory, after: ProcessMemory, n: int) -> ProcessMemory:
    """This process's growth from ``before`` to ``after``, per one of ``n`` things."""
    return ProcessMemory(
        rss=max(0, after.rss - before.rss) // n,
        pss=max(0, after.pss - before.pss) // n,
        uss=max(0, after.uss - before.uss) // n,
    )


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
