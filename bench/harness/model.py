"""What every measurement of the suite looks like, wherever it was taken."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# The metrics of the suite (see harness.metrics for their definitions).
SPAWN = "spawn"
ROUND_TRIP = "round_trip"
THROUGHPUT = "throughput"
CPU = "cpu"
HANDOFF = "handoff"
MEMORY = "memory"
CORE_ASK = "core_ask"
CORE_TELL = "core_tell"
PIPELINE = "pipeline"
# Issue 13: buffers handed to process actors (subactor's rows; multiprocessing's
# SharedMemory and Pipe rows are those of HANDOFF), a numpy job on process actors
# beside ProcessPoolExecutor, automatic placement beside the interpreter placement.
PROC_HANDOFF = "process_handoff"
NUMPY = "numpy"
AUTO_SPAWN = "auto_spawn"
AUTO_ASK = "auto_ask"
# Issue 14: nodes over NATS.
REMOTE_ASK = "remote_ask"
REMOTE_TELL = "remote_tell"
NODE_DOWN = "node_down"
ASYNC = "asyncio"
# Issue 17: what metrics cost, the same figures with metrics off and on in one run.
METRICS_COST = "metrics_cost"

# Base units of samples: durations in seconds, sizes in bytes, rates per second.
SECONDS = "s"
BYTES = "B"
MSG_PER_S = "msg/s"
ITEMS_PER_S = "items/s"

# The systems, in the order the report shows them. Runners may add more (see
# harness.runners.base.Runner.system); those come after these.
SUBACTOR = "subactor"
MP_FORK = "multiprocessing (fork)"
MP_FORKSERVER = "multiprocessing (forkserver)"
MP_SPAWN = "multiprocessing (spawn)"
THREADS = "threads"
INTERPRETERS = "interpreters (PEP 734)"
INTERPRETER_POOL = "InterpreterPoolExecutor"
SUBACTOR_CORE = "subactor core"
FLUME = "flume"
BASELINE = "CPython alone"
RAW_NATS = "async-nats (raw)"
SYSTEMS = (SUBACTOR, MP_FORK, MP_FORKSERVER, MP_SPAWN, THREADS, INTERPRETERS, INTERPRETER_POOL)


@dataclass(frozen=True)
class Measurement:
    """The samples of one figure: one metric, one system, one way of doing it.

    ``x`` is the figure's parameter where it has one: the number of workers for
    :data:`CPU`, the payload size in bytes for :data:`HANDOFF`.
    """

    metric: str
    system: str
    variant: str
    unit: str
    samples: tuple[float, ...]
    x: float | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> Measurement:
        return Measurement(
            metric=str(data["metric"]),
            system=str(data["system"]),
            variant=str(data["variant"]),
            unit=str(data["unit"]),
            samples=tuple(float(s) for s in data["samples"]),
            x=None if data.get("x") is None else float(data["x"]),
            note=str(data.get("note", "")),
        )


@dataclass
class RunnerOutcome:
    """What one runner produced: its measurements, and what it could not measure."""

    runner: str
    system: str
    measurements: list[Measurement] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "runner": self.runner,
            "system": self.system,
            "measurements": [m.to_json() for m in self.measurements],
            "skipped": self.skipped,
            "error": self.error,
            "seconds": self.seconds,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> RunnerOutcome:
        return RunnerOutcome(
            runner=str(data["runner"]),
            system=str(data["system"]),
            measurements=[Measurement.from_json(m) for m in data.get("measurements", [])],
            skipped=[str(s) for s in data.get("skipped", [])],
            error=data.get("error"),
            seconds=float(data.get("seconds", 0.0)),
        )

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json()))

    @staticmethod
    def read(path: Path) -> RunnerOutcome:
        return RunnerOutcome.from_json(json.loads(path.read_text()))


def merge(measurements: list[Measurement]) -> list[Measurement]:
    """Pools the samples of measurements of the same figure (same metric, system,
    variant, unit and x), keeping their order: repeated runs of a benchmark become one
    measurement with the samples of all runs, in run order."""
    pooled: dict[tuple[str, str, str, str, float | None], Measurement] = {}
    for m in measurements:
        key = (m.metric, m.system, m.variant, m.unit, m.x)
        if key in pooled:
            old = pooled[key]
            pooled[key] = Measurement(m.metric, m.system, m.variant, m.unit, old.samples + m.samples, m.x, old.note)
        else:
            pooled[key] = m
    return list(pooled.values())
