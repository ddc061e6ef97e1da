"""The metrics of the report: what each measures, how, and which figure its ratios
compare with."""

from __future__ import annotations

from dataclasses import dataclass

from harness import figures, model
from harness.model import Measurement


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    higher_is_better: bool
    plot: str  # the PNG's file name
    # How it is measured, in Markdown; {limit}, {chunks} and {cores} are filled in.
    method: str


SPAWN = Metric(
    model.SPAWN,
    "Spawn latency",
    False,
    "spawn.png",
    """Time from asking for a new worker until it can take work; stopping it is not timed.
- **subactor**: `rt.spawn(PythonActor)` returns once the actor's thread has created its
  own-GIL interpreter, imported the actor's module and run its constructor
  (`benches/foundation.rs`). Beside it, CPython's bare `_interpreters.create()` (no
  import, timed inside an actor) is the floor. From Python, `rt.spawn(Echo)` until the
  actor's first answer.
- **subactor, warm pool**: the same spawn in a runtime with `warm_interpreters(2)`, each
  made when the pool is full (a spawn that finds a ready interpreter: the actor's thread
  and interpreter exist, its `subactor` module is built and, as the pool learnt from the
  spawns before, the actor's module imported; the hand-off to that thread, linking the
  module and the constructor remain; the pool then creates the next one in the
  background, which is not timed).
- **subactor, process actors**: `rt.spawn()` of an echo actor with `Placement::Process`
  (from Rust, `benches/process.rs`) or `placement="process"` (from Python) until its first
  answer: the template hands over a child it forked in advance, which imports the actor's
  module and runs its constructor in its main interpreter.
- **multiprocessing**: `Process.start()` until the worker's first message arrives over
  its Pipe (spawn starts a fresh interpreter that re-imports the parent's main module;
  fork copies the parent; forkserver forks a child of its server, already running, which
  imports the worker's module).
- **threads**: `Thread.start()` until the thread's first message arrives over a queue.
- **interpreters**: `interpreters.create()`, then a thread entering it to run the worker
  loop, until the loop's first message arrives.
- **InterpreterPoolExecutor**: a new 1-worker pool, until its first trivial task's result.""",
)

ROUND_TRIP = Metric(
    model.ROUND_TRIP,
    "Ask round trip (small message)",
    False,
    "round_trip.png",
    """One small message (an int) to a worker and its answer back, timed one by one after a
warm-up; the spread is that of all round trips.
- **subactor, Rust -> Python**: `blocking_ask` (and `ask().await` on a one-thread tokio
  runtime) from Rust to a Python `Echo` actor (`benches/foundation.rs`).
- **subactor, Python -> Python**: a Python actor asking another with `ref.ask()`, timed in
  Python (`benches/actors.rs`). This is the row the ratios compare with: every peer's
  caller is Python too.
- **subactor, process actors**: `blocking_ask` from Rust (`benches/process.rs`), and
  `ref.ask()` from the main interpreter of a Python program, to an echo actor running in a
  child process (the message crosses shared-memory rings both ways, with a Unix socket
  beside them for descriptors and wake-ups).
- **multiprocessing**: `send()` and `recv()` on a Pipe to a worker process.
- **threads**: two `queue.Queue`s to a thread.
- **interpreters**: two `interpreters` queues to a thread running inside another
  interpreter; once with the shipped `get()`, which sleeps 10 ms between polls, once
  polling `get_nowait()` without sleeping.
- **InterpreterPoolExecutor**: `submit(f, x).result()` on a warm 1-worker pool.""",
)

THROUGHPUT = Metric(
    model.THROUGHPUT,
    "Small-message throughput into one worker",
    True,
    "throughput.png",
    """Small messages (ints) sent one way into one worker as fast as one sender can, until the
worker has handled the last (it counts them, then answers the count); one figure per
round.
- **subactor**: `blocking_tell` from Rust into a Python actor whose `receive` counts
  (`benches/foundation.rs`; bounded mailbox of 1,024: the sender waits when it is full).
- **subactor, process actors**: `blocking_tell` from Rust (`benches/process.rs`), and
  `ref.tell()` from Python, into a counting actor in a child process; the tells wait in the
  parent's mailbox and go to the child in batches.
- **multiprocessing**: `Pipe.send()` (each int pickled).
- **threads**: an unbounded `queue.Queue`.
- **interpreters**: an unbounded `interpreters` queue passing ints natively, into a
  `get()` loop.
- **InterpreterPoolExecutor**: trivial tasks `submit()`ted to one worker (tasks/s: the
  nearest thing it has to a message).""",
)

CPU = Metric(
    model.CPU,
    "CPU-bound speedup",
    True,
    "cpu_speedup.png",
    """The same job for everyone: counting the primes below {limit:,} by trial division in pure
Python (`count_primes` of `examples/python/primes.py`), cut into {chunks} spans, done by
1..{cores} workers. Each time is the wall time of starting the workers, doing every span
and stopping them (start-up included, as a pool's user sees it); the speedup of N
workers is the 1-worker time over the N-worker time **of the same round**.
- **subactor**: one Python actor per worker, pinned to a core (as the demo does), each
  asked for the next span by a Rust thread whenever it has answered one, as a pool hands
  out tasks (`benches/foundation.rs`; the "work only" row leaves out spawning and
  stopping). The pools' processes are not pinned: when others slow one core for a while,
  they can move off it and a pinned actor cannot.
- **multiprocessing**: `ProcessPoolExecutor(N, mp_context=fork or spawn).map`.
- **threads**: `ThreadPoolExecutor(N).map` (one GIL: no speedup expected).
- **InterpreterPoolExecutor**: `InterpreterPoolExecutor(N).map`.

A speedup says how a system scales, not how fast it is: a slow 1-worker run makes a high
speedup. The last column compares the wall times at the most workers.

All systems run once per round, one after the other, so that a shared machine's load falls
on all of them alike. The machine's own parallelism is probed at the start of every round
(the same pure-Python loop in 1 process, then in {cores} at once): no speedup can exceed
it.""",
)

HANDOFF = Metric(
    model.HANDOFF,
    "Large-buffer handoff",
    False,
    "handoff.png",
    """A payload of 1 KB to 1 GB handed to a worker, which answers its length (touching none of
its bytes), timed handoff by handoff. Payloads are `bytes(size)`, made before timing.
- **subactor**: an arena `Buffer` (shared memory, sent as a handle) from one Python actor
  to another with `ask`; beside it, the same payload as `bytes` (copied)
  (`benches/arena.rs`).
- **multiprocessing**: `Pipe.send_bytes()` (copied through the kernel); and the zero-copy
  way: a `SharedMemory` block made once, whose name goes over the Pipe and which the worker
  attaches (and closes) every time.
- **threads**: the same `bytes` object through a `queue.Queue` (threads share one heap).
- **interpreters**: an `interpreters` queue carrying the `bytes` (copied into the
  receiving interpreter) or a `memoryview` of them (shared), both sides polling without
  sleeping.
- **InterpreterPoolExecutor**: `submit(len, payload).result()`, which pickles the payload
  into the source text of a script; measured up to 1 MB only.""",
)

MEMORY = Metric(
    model.MEMORY,
    "Memory per idle worker",
    False,
    "memory.png",
    """What one more idle worker costs in memory.
- **subactor**: the growth of the process's memory per idle Python actor (started, has
  handled one message, now parked), over batches of actors spawned in one process, after
  three warm-up actors (`benches/memory.rs`): RSS from `/proc/self/status`, PSS and USS
  (private pages) from `/proc/self/smaps_rollup`.
- **multiprocessing**: the RSS, PSS and USS of one idle worker process itself
  (`/proc/PID/...`); and again after the worker ran a full `gc.collect()`, as any
  long-running worker's collector does sooner or later (a forked worker's collector
  writes to every object it inherited, and each page of them becomes its own).
- **process actors** (from Python): the same two, of a process actor's process. Its
  template froze what it made (`gc.freeze()`) before it forked, so that collections in
  the child leave those objects alone; the rows after a collection are compared.
- **threads**, **interpreters**: the growth per idle thread or per idle interpreter (its
  worker module imported), measured like subactor's.

The goal compares subactor's RSS growth per actor with the RSS of an idle spawn-started
worker process. PSS and USS are shown because RSS counts shared pages in full: a forked
worker shares most of its pages with its parent.""",
)

CORE_ASK = Metric(
    model.CORE_ASK,
    "Rust core: ask round trip beside raw flume",
    False,
    "core.png",
    """The actor core alone, with Rust actors (no Python), beside the same message pattern on
raw flume channels, in the same run (`benches/core.rs`): a thread receives
`(message, reply sender)` pairs from a bounded channel and answers on a fresh `bounded(1)`
channel, as the core does; and a one-way stream into a bounded channel of the default
mailbox capacity (1,024), counted by the receiver. The flume threads wait either as the
core waits (spin for up to 50 µs, then park) or by parking in `recv()` at once. Blocks
of each are interleaved, each on a fresh thread. **Core overhead** = the core's cost per
message over flume's: above 1 the core adds cost.""",
)

CORE_TELL = Metric(model.CORE_TELL, "Rust core: one-way throughput beside raw flume", True, "core.png", "")

PROCESS = Metric(
    "process",
    "Process actors beside multiprocessing",
    False,
    "process.png",
    """Process actors (`Placement::Process`, `placement="process"`) run a Python actor in the
main interpreter of a child process, forked from the runtime's template process (which
keeps one spare child forked in advance): a process of its own, as a multiprocessing
worker has. The figures are those of sections 1-3, shown beside multiprocessing's only;
the ratios are the process actor's advantage, from Rust and from Python, over each row
(above 1: the process actor is better). The goals compare with fork's and forkserver's
worker start, and with the fastest Pipe of the run.
- **spawn**: until the first answer, beside `Process.start()` until the worker's first
  message arrives over its Pipe (forkserver's server already running).
- **ask round trip**: an int to an echo actor and back, beside `send()` + `recv()` of an
  int on a Pipe to an echo worker.
- **tell throughput**: many ints told to a counting actor, then one ask that answers the
  count, beside `send()` of ints on a Pipe to a worker that counts them and answers the
  count.

forkserver is measured for its worker start only: its workers' Pipes are those of the
fork and spawn rows.""",
)

PROC_HANDOFF = Metric(
    model.PROC_HANDOFF,
    "Buffers handed to process actors beside multiprocessing",
    False,
    "process_handoff.png",
    """A payload of 1 KB to 1 GB made visible to a worker in another process, which reads its
first and last byte and answers its length, timed handoff by handoff after a warm-up;
the same payload every time. Nothing is copied in either zero-copy way: what is timed is
handing the memory over and the round trip that says it arrived.
- **subactor**: an arena `Buffer` (shared memory: a memfd) in an ask to a process actor
  (`bench.Touch`). The buffer is lent: its segment's descriptor crosses the link's Unix
  socket (`SCM_RIGHTS`) the first time a segment goes to that child, which maps it read-only
  **once**; every later buffer of that segment crosses as (segment, offset, length), and
  the child hands it to `receive` as a `subactor.Buffer` over the same pages (the 1 GiB
  test of `tests/it/process.rs` checks they are the same pages). From Rust
  (`rt.arena().alloc()` then `blocking_ask`, `benches/placement.rs`), from a Python actor
  in an interpreter (`subactor.alloc()` then `ref.ask()`), and from the main interpreter
  of a Python program (`rt.alloc()` then `ref.ask()`).
- **multiprocessing, SharedMemory** (its zero-copy way): a block made once; its name goes
  over a Pipe, and the worker attaches it (`SharedMemory(name)`: `shm_open` and `mmap`
  every time), reads its first and last byte, closes it and answers its length.
- **multiprocessing, Pipe**: `send_bytes()` of the payload (copied into the kernel and
  out again); the worker answers its length.

The advantage is how many times faster the process actor's handoff is than each row
(above 1: the process actor is faster).""",
)

NUMPY = Metric(
    model.NUMPY,
    "A numpy job on process actors beside ProcessPoolExecutor",
    True,
    "numpy.png",
    """The same CPU-bound numpy work for everyone (`examples/python/bench_numpy.py`): {numpy_tasks}
tasks, each drawing a {numpy_size}x{numpy_size} matrix of normal values from its own seed
and multiplying it by itself (one BLAS thread per worker, set before numpy loads), done
by 1..{cores} workers that each take the next task when done with one. Each time is the
wall time of starting the workers, doing every task and stopping them; the speedup of N
workers is the 1-worker time over the N-worker time **of the same round**.
- **subactor**: process actors of `bench_numpy.Worker`, whose runtime's template process
  preloads the job's module (`preload=`), so every child starts with numpy loaded; asked
  for the next task by one Rust thread per actor (`benches/placement.rs`), or by one
  asyncio task per actor (`ask_async`) from Python. The runtime is running already, as a
  program's is; its actors are spawned and stopped inside the timing.
- **multiprocessing**: `ProcessPoolExecutor(N, mp_context=...).map(block, ...)`; the
  parent imported the job's module, so fork's workers start with numpy loaded, spawn's
  import it; forkserver's server preloads it (`set_forkserver_preload`).""",
)

AUTO = Metric(
    model.AUTO_SPAWN,
    "Automatic placement beside the interpreter placement",
    False,
    "placement.png",
    """A pure-Python actor (`Echo`) spawned with placement `auto` (the default: an own-GIL
interpreter unless the actor's module imports an extension that refuses them, then a
process; the outcome remembered per class) and with placement `interpreter`,
alternately: spawn until the first answer (then stop, not timed), and ask round trips of
an int, in interleaved blocks so that both meet the same load. From Rust
(`benches/placement.rs`, `blocking_ask`) and from the main interpreter of a Python
program (`ref.ask()`). The goal: `auto` costs nothing on the interpreter path, i.e. its
median lies within the interpreter placement's spread.""",
)

CLUSTER = Metric(
    model.REMOTE_ASK,
    "Nodes over NATS: remote ask, remote tell, node loss",
    False,
    "cluster.png",
    """Two nodes of one actor system on this machine, through a real `nats-server` ({nats_server})
on loopback that the benchmark starts (a free port, JetStream on): this process is node
`a`, and node `b` is a `subactor node` process (`benches/cluster.rs`).
- **remote ask round trip**: `blocking_ask` of an int from `a` to a Python `Echo` actor on
  `b` (the call goes in a batch acknowledged by `b`, the answer comes back in a bunch of
  replies that `a` acknowledges). Beside it, the floor: raw **async-nats** request/reply
  of 8 bytes, `client.request().await` in a loop on a multi-thread Tokio runtime (as the
  client's own examples run), to a responder process (the benchmark's executable again)
  that publishes each payload back, through the same server. The two alternate in blocks.
- **remote tell throughput**: `blocking_tell` of ints from one sender on `a` into a
  counting actor on `b`, then an ask for the count, answered once every tell has been
  handled on `b`. Tells go in batches; the bounded outbox (4,096 calls) and the window of
  tells not yet confirmed as handled (8,192) are the backpressure. One figure per run of
  the stream.
- **node loss**: a node process with an `Echo` actor that `a` monitors is SIGKILLed; the
  time from the kill until the monitor's `Down`, at the default settings (a heartbeat
  every 250 ms, a node down after 1.5 s of silence).

{ray}""",
)

PIPELINE = Metric(
    model.PIPELINE,
    "Other subactor figures: pipeline throughput",
    True,
    "",
    """A two-stage pipeline (a light stage, then one doing pure-Python work per item) with 1 and
2 workers per stage, least-loaded routing (`benches/actors.rs`). No peer is measured.""",
)

ASYNC = Metric(
    model.ASYNC,
    "Asyncio actors: concurrent asks",
    False,
    "",
    """An asyncio actor (`async def receive`) whose handler awaits `asyncio.sleep(0.01)`, spawned
from Python with `max_concurrency=100`, in an interpreter and in a process
(`placement="process"`). One ask is timed alone, many times; then 100 asks at once
(`asyncio.gather` of 100 `ref.ask_async(0.01)` in the main interpreter), from the first
sent until the last answer. With every message a task of the actor's event loop, the 100
sleeps overlap: the goal is that 100 at once take at most 3 times one ask. Beside them, the
same sleeps with asyncio alone in the main interpreter (no actor): the floor.""",
)

METRICS_COST = Metric(
    model.METRICS_COST,
    "What metrics cost: off and on in the same run",
    False,
    "",
    """`benches/observe.rs`: two runtimes side by side in one process, one with metrics off and
one with them on (`metrics(true)`: every actor's counters and handler-time histogram), and
rounds that alternate between them (off, on, on, off, ...), so that the machine's load falls
on both alike. Each round times asks (`blocking_ask` of an int, one sample each) and a
stream of tells (`blocking_tell` of ints, then an ask for the count: one throughput figure a
round), to a Python `Echo`/`Sink` actor in an interpreter and to a Rust actor (the core
alone, where a message costs least and the metrics' share is largest). Beside them, not
judged: the Rust actor's mailbox filled while it waits on a gate, then drained (the run
loop's own cost, with no sender beside it), and an A/A control: the core's rounds also run a
third system with metrics off, shown in the "on" column against the first (how far two
identical systems read apart in this run). The cost of a time is the ratio of the medians,
on / off - 1; the cost of a rate is paired, 1 minus the median of on / off over figures
taken moments apart (the core's tells go in chunks, the systems' chunks interleaved). On a
2-core VM a Rust actor's tell rate holds one of a few regimes (~3, ~8 or ~16 M/s) for its
whole life, whatever its system, so the core's figure needs many actors, and the A/A row
says how far it reads between two identical systems in this run: a cost within that
reading is not told apart from none. Issue 17's goal is at most 5% for each of the four
figures.""",
)

ALL = (
    SPAWN,
    ROUND_TRIP,
    THROUGHPUT,
    PROCESS,
    CPU,
    HANDOFF,
    MEMORY,
    CORE_ASK,
    CORE_TELL,
    PROC_HANDOFF,
    NUMPY,
    AUTO,
    CLUSTER,
    PIPELINE,
    ASYNC,
    METRICS_COST,
)
BY_KEY = {m.key: m for m in ALL}


def reference(measurements: list[Measurement], metric: str, variant: str) -> tuple[str, str] | None:
    """The (system, variant) of subactor's figure that a row of ``metric`` (with this
    ``variant``) is compared with, if there is one."""
    if metric == model.SPAWN:
        return model.SUBACTOR, figures.SPAWN_ACTOR
    if metric == model.ROUND_TRIP:
        return model.SUBACTOR, figures.ASK_PYTHON
    if metric == model.THROUGHPUT:
        return model.SUBACTOR, figures.TELL_RUST
    if metric == model.CPU:
        return model.SUBACTOR, figures.CPU_TOTAL
    if metric == model.HANDOFF:
        return model.SUBACTOR, figures.HANDOFF_BUFFER
    if metric == model.MEMORY:
        kind = variant.split()[0]  # RSS, PSS or USS
        if variant in (figures.MEMORY_COLLECTED_PROCESS.format(kind), figures.MEMORY_PROC_COLLECTED.format(kind)):
            return model.SUBACTOR, figures.MEMORY_PROC_COLLECTED.format(kind)
        return model.SUBACTOR, f"{kind} growth per idle actor"
    if metric == model.CORE_ASK:
        return model.SUBACTOR_CORE, figures.CORE_ASK
    if metric == model.CORE_TELL:
        return model.SUBACTOR_CORE, figures.CORE_TELL
    return None
