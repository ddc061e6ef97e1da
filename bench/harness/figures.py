"""Finding measurements, and the figures derived from them (speedups)."""

from __future__ import annotations

from collections.abc import Iterable

from harness import model
from harness.model import Measurement
from harness.stats import paired_ratios

# The labels of subactor's own figures that goals and ratios refer to (the Rust
# benchmarks' series, see harness.rust.SERIES).
SPAWN_ACTOR = "spawn a Python actor (thread + interpreter + import + constructor)"
SPAWN_BARE = "bare _interpreters.create(), no import (timed inside an actor)"
SPAWN_WARM = "spawn that finds a warm-pool interpreter (handoff + constructor; module imported in advance)"
ASK_RUST = "Rust -> Python: blocking_ask"
ASK_PYTHON = "Python -> Python: ref.ask()"
TELL_RUST = "Rust -> Python: blocking_tell"
CPU_TOTAL = "actors pinned to cores, start-up included"
CPU_WORK = "actors pinned to cores, work only"
HANDOFF_BUFFER = "arena Buffer (shared, no copy)"
MEMORY_RSS = "RSS growth per idle actor"
# Memory of a worker process (a process actor's, multiprocessing's), idle and after a full
# collection; "{}" is RSS, PSS or USS.
MEMORY_IDLE_PROCESS = "{} of an idle worker process"
MEMORY_COLLECTED_PROCESS = "{} of a worker process after a full gc.collect()"
MEMORY_PROC_IDLE = "{} of an idle process actor's process"
MEMORY_PROC_COLLECTED = "{} of a process actor's process after a full gc.collect()"
CORE_ASK = "Rust actor: blocking_ask"
CORE_TELL = "Rust actor: blocking_tell"
# subactor's figures taken from Python, through its package (harness.runners.subactor_py).
PY_SPAWN = "from Python: rt.spawn() until the actor answers"
PY_ASK = "from Python (main interpreter) -> actor: ref.ask()"
PY_TELL = "from Python (main interpreter): ref.tell() of ints"
PY_HANDOFF = "from Python: arena Buffer (rt.alloc().freeze()), no copy"
PY_CPU = "from Python: rt.executor().map, start-up included"  # the runner's cpu_variant + ", start-up included"

# Process actors (Placement::Process): from Rust (benches/process.rs) and from Python.
PROC_SPAWN = "process actor: rt.spawn() until its first answer"
PROC_ASK = "process actor, Rust -> Python: blocking_ask"
PROC_TELL = "process actor, Rust -> Python: blocking_tell"
PY_PROC_SPAWN = 'process actor from Python: rt.spawn(placement="process") until it answers'
PY_PROC_ASK = "process actor from Python (main interpreter): ref.ask()"
PY_PROC_TELL = "process actor from Python (main interpreter): ref.tell() of ints"
PROCESS_ROWS = {
    model.SPAWN: (PROC_SPAWN, PY_PROC_SPAWN),
    model.ROUND_TRIP: (PROC_ASK, PY_PROC_ASK),
    model.THROUGHPUT: (PROC_TELL, PY_PROC_TELL),
}
# Buffers handed to process actors (issue 13): from Rust (benches/placement.rs), from a
# Python actor in an interpreter (subactor.alloc), from the main interpreter (rt.alloc).
PROC_HANDOFF = "process actor, from Rust: arena Buffer in a blocking_ask"
PROC_HANDOFF_ACTOR = "process actor, from a Python actor: subactor.alloc() Buffer in ref.ask()"
PY_PROC_HANDOFF = "process actor, from Python (main interpreter): rt.alloc() Buffer in ref.ask()"
PROC_HANDOFF_ROWS = (PROC_HANDOFF, PY_PROC_HANDOFF, PROC_HANDOFF_ACTOR)
# multiprocessing's handoffs (rows of HANDOFF), beside which process actors are judged.
SHARED_MEMORY = "SharedMemory: name over the Pipe, worker attaches"
PIPE_BYTES = "Pipe send_bytes() (copied)"
# The numpy job (issue 13): process actors, and the pools beside them.
NUMPY_RUST = "process actors from Rust (a thread per actor asks), start-up included"
NUMPY_PY = "process actors from Python (ask_async), start-up included"
NUMPY_POOL = "ProcessPoolExecutor.map, start-up included"
NUMPY_ROWS = (NUMPY_RUST, NUMPY_PY)
# Automatic placement beside the interpreter placement, for a pure-Python actor.
AUTO_RUST = {"interpreter": "from Rust: placement interpreter", "auto": "from Rust: placement auto"}
AUTO_PY = {"interpreter": 'from Python: placement="interpreter"', "auto": 'from Python: placement="auto"'}
# Nodes over NATS (issue 14, benches/cluster.rs).
REMOTE_ASK_RUST = "remote ask, node a -> Echo on node b: blocking_ask"
RAW_NATS_ASK = "request/reply of 8 bytes to a responder process: client.request().await"
REMOTE_TELL_RUST = "remote tell from one sender, node a -> counter on node b: blocking_tell"
NODE_DOWN_RUST = "node process SIGKILLed until a monitor here gets Down (default heartbeat)"
# Ray's actor-call figure as published by Ray (never measured here): quoted, labelled so.
RAY_PUBLISHED = "Ray, as published by Ray (not measured here): about 2,000 synchronous actor calls/s, ~0.5 ms each"
# Asyncio actors with max_concurrency (issue 16), from Python (harness.runners.subactor_py):
# per placement, one ask of a 10 ms sleep, and 100 such asks at once; beside them, asyncio
# alone in the main interpreter (the floor).
ASYNC_SLEEP = 0.010
ASYNC_ASKS = 100
ASYNC_PLACEMENTS = ("interpreter", "process")


def async_one(placement: str) -> str:
    return f"asyncio actor ({placement}): one ask awaiting a 10 ms sleep"


def async_many(placement: str) -> str:
    return f"asyncio actor ({placement}), max_concurrency=100: 100 such asks at once, until the last answer"


# What metrics cost (issue 17, benches/observe.rs): figures taken with metrics off and on in
# the same run (two runtimes side by side, rounds alternating between them).
# (series key in the benchmark, what, system): issue 17's goal is judged on these four,
METRICS_COST_FIGURES = (
    ("ask.python", "ask round trip, Rust -> Python actor: blocking_ask", model.SUBACTOR),
    ("tell.python", "tell throughput, Rust -> Python actor: blocking_tell", model.SUBACTOR),
    ("ask.core", "ask round trip, Rust -> Rust actor: blocking_ask", model.SUBACTOR_CORE),
    ("tell.core", "tell throughput, Rust -> Rust actor: blocking_tell", model.SUBACTOR_CORE),
)
# and shown beside them, not judged: the run loop's own share, without a sender.
# The A/A control: the core's tell throughput in a third system with metrics off, in the
# "on" column (the cost two identical systems show in this run: the estimator's floor).
METRICS_COST_EXTRA = (
    ("drain.core", "a full mailbox drained, Rust actor: the run loop alone", model.SUBACTOR_CORE),
    (
        "tell.core_aa",
        "A/A control, tell throughput, Rust -> Rust actor: the 'on' column is a second system with metrics off",
        model.SUBACTOR_CORE,
    ),
)


def metrics_cost(what: str, on: bool) -> str:
    """The variant of a figure of ``METRICS_COST_FIGURES`` with metrics off or on."""
    return f"{what}, metrics {'on' if on else 'off'}"


ASYNC_BASE_ONE = "asyncio alone: one await asyncio.sleep(0.01)"
ASYNC_BASE_MANY = "asyncio alone: gather() of 100 asyncio.sleep(0.01)"

# multiprocessing's figures that process actors are compared with (harness.runners.multiproc).
MP_START = "Process.start() until the worker answers"
PIPE_ASK = "Pipe send() + recv()"
PIPE_TELL = "Pipe send() of ints"
MP_SYSTEMS = (model.MP_FORK, model.MP_FORKSERVER, model.MP_SPAWN)
MP_PEER = {model.SPAWN: MP_START, model.ROUND_TRIP: PIPE_ASK, model.THROUGHPUT: PIPE_TELL}

# The peers that run Python on several cores at once (threads share one GIL).
PARALLEL_PEERS = (model.MP_FORK, model.MP_FORKSERVER, model.MP_SPAWN, model.INTERPRETERS, model.INTERPRETER_POOL)


def find(
    measurements: Iterable[Measurement],
    metric: str,
    system: str | None = None,
    variant: str | None = None,
    x: float | None = None,
) -> list[Measurement]:
    """The measurements of ``metric`` matching the other arguments that are given."""
    return [
        m
        for m in measurements
        if m.metric == metric
        and (system is None or m.system == system)
        and (variant is None or m.variant == variant)
        and (x is None or m.x == x)
    ]


def one(
    measurements: Iterable[Measurement], metric: str, system: str, variant: str, x: float | None = None
) -> Measurement | None:
    """The measurement of one figure, if it was taken."""
    found = find(measurements, metric, system, variant, x)
    return found[0] if found else None


def rows(measurements: Iterable[Measurement], metric: str) -> list[tuple[str, str]]:
    """The distinct (system, variant) pairs of ``metric``, in report order."""
    seen: list[tuple[str, str]] = []
    for m in measurements:
        if m.metric == metric and (m.system, m.variant) not in seen:
            seen.append((m.system, m.variant))
    return sorted(seen, key=lambda row: (system_rank(row[0]), seen.index(row)))


def system_rank(system: str) -> int:
    """Where a system comes in tables: subactor first, then the peers of
    model.SYSTEMS, then systems that runners added, then baselines."""
    if system in model.SYSTEMS:
        return model.SYSTEMS.index(system)
    if system in (model.BASELINE, model.FLUME):
        return len(model.SYSTEMS) + 2
    if system == model.SUBACTOR_CORE:
        return -1
    return len(model.SYSTEMS) + 1


def is_subactor(system: str) -> bool:
    """subactor itself (its Rust benchmarks, or a later Python-package runner)."""
    return system.startswith(model.SUBACTOR)


def speedups(
    measurements: Iterable[Measurement], system: str, variant: str, metric: str = model.CPU
) -> dict[int, list[float]]:
    """The speedup of N workers over one (of the CPU-bound job, or of ``metric``'s), for
    every N measured: the time with one worker divided by the time with N, paired
    within each repetition."""
    times = {int(m.x): list(m.samples) for m in find(measurements, metric, system, variant) if m.x is not None}
    if 1 not in times:
        return {}
    n = min(len(t) for t in times.values())
    return {w: paired_ratios(times[1][:n], t[:n]) for w, t in sorted(times.items())}


def sizes(measurements: Iterable[Measurement], metric: str = model.HANDOFF) -> list[float]:
    """The payload sizes measured, smallest first."""
    return sorted({m.x for m in measurements if m.metric == metric and m.x is not None})


def process_rows(measurements: Iterable[Measurement], metric: str) -> list[tuple[str, str]]:
    """The (system, variant) pairs of ``metric`` that process actors are compared
    with: subactor's process-actor rows, then multiprocessing's (worker start, Pipe),
    in report order."""
    mine = PROCESS_ROWS.get(metric, ())
    theirs = MP_PEER.get(metric)
    return [
        (system, variant)
        for system, variant in rows(measurements, metric)
        if (is_subactor(system) and variant in mine) or (system in MP_SYSTEMS and variant == theirs)
    ]
