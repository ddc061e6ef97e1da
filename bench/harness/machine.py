"""The machine a run measured: what it is, how loaded it was, and how much parallelism
it actually gave during the run.

Shared machines (virtual ones especially) can take a core away without it showing as
load or steal time, so the suite probes it: the same pure-Python loop in one process,
then in one process per core at once. The ratio is the parallelism the machine gave
at that moment; a CPU-bound speedup cannot exceed it.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MachineInfo:
    cores: int
    cpu_model: str
    kernel: str
    memory_gib: float
    python: str
    rustc: str
    commit: str
    dirty: bool
    date: str
    # The PYTHON* variables of the run that change what is measured (see PYTHON_ENV).
    python_env: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def describe(repo: Path) -> MachineInfo:
    """What the machine and the checkout are."""
    return MachineInfo(
        cores=cores(),
        cpu_model=_cpu_model(),
        kernel=f"{platform.system()} {platform.release()}",
        memory_gib=_mem_total() / (1 << 30),
        python=f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        rustc=_output(["rustc", "--version"], repo),
        commit=_output(["git", "rev-parse", "HEAD"], repo),
        dirty=bool(_output(["git", "status", "--porcelain", "--untracked-files=no"], repo)),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        python_env=", ".join(f"{name}={os.environ[name]}" for name in PYTHON_ENV if name in os.environ),
    )


# Environment variables that change what the benchmarks measure (bench/run compiles the
# workers' modules beforehand, so PYTHONDONTWRITEBYTECODE costs only what a user's
# program would pay; PYTHONPATH is set by bench/run itself).
PYTHON_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONHOME", "PYTHONMALLOC", "PYTHONDEVMODE")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _output(command: list[str], cwd: Path) -> str:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---- load ------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuTimes:
    """The machine's CPU time (all cores, /proc/stat) and this process tree's own, in
    seconds, at one moment."""

    at: float
    busy: float
    steal: float
    own: float
    loadavg: tuple[float, float, float]


def cpu_times() -> CpuTimes:
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        own += usage.ru_utime + usage.ru_stime
    return CpuTimes(
        at=time.monotonic(),
        busy=(user + nice + system + irq + softirq) / ticks,
        steal=steal / ticks,
        own=own,
        loadavg=os.getloadavg(),
    )


@dataclass(frozen=True)
class Load:
    """How busy the machine was between two moments, and with what."""

    seconds: float
    capacity: float  # core-seconds available
    busy: float  # core-seconds used, by anyone
    own: float  # core-seconds used by the suite (this process and its children)
    steal: float  # core-seconds the hypervisor gave to others
    loadavg_before: tuple[float, float, float]
    loadavg_after: tuple[float, float, float]

    @property
    def others(self) -> float:
        """Core-seconds used by processes other than the suite's."""
        return max(0.0, self.busy - self.own)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"others": self.others}


def load_between(before: CpuTimes, after: CpuTimes, n_cores: int) -> Load:
    seconds = after.at - before.at
    return Load(
        seconds=seconds,
        capacity=seconds * n_cores,
        busy=after.busy - before.busy,
        own=after.own - before.own,
        steal=after.steal - before.steal,
        loadavg_before=before.loadavg,
        loadavg_after=after.loadavg,
    )


# ---- parallelism probe -----------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One probe: the loop's best time alone, and the best time of the slowest of ``n``
    copies run at once."""

    n: int
    alone: float
    together: float

    @property
    def parallelism(self) -> float:
        """How many of the loops ran in parallel, in effect (ideal: n)."""
        return self.n * self.alone / self.together if self.together else 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"parallelism": self.parallelism}


def _loop(iterations: int, go: Any, out: Connection) -> None:
    go.wait()
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i
    out.send(time.perf_counter() - started)


def _time_loops(n: int, iterations: int) -> float:
    context = multiprocessing.get_context("fork")
    go = context.Event()
    pipes = []
    processes = []
    for _ in range(n):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_loop, args=(iterations, go, sender), daemon=True)
        process.start()
        pipes.append(receiver)
        processes.append(process)
    time.sleep(0.05)  # every process started and waiting
    go.set()
    slowest = max(receiver.recv() for receiver in pipes)
    for process in processes:
        process.join()
    return float(slowest)


def probe_parallelism(n: int, iterations: int, tries: int = 3) -> Probe:
    """Times a pure-Python loop of ``iterations`` in one process, then in ``n``
    processes at once, ``tries`` times in turn; keeps the best time of each, which is
    what the machine can give at its best in that moment (a single try is as often
    slowed on the one-process side as on the other)."""
    alone, together = [], []
    for _ in range(tries):
        alone.append(_time_loops(1, iterations))
        together.append(_time_loops(n, iterations))
    return Probe(n, min(alone), min(together))
