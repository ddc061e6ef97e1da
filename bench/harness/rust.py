"""The Rust benchmarks (``benches/*.rs``): building them, running them with ``--json``,
and turning the series they record into :class:`~harness.model.Measurement` s.

The benchmarks measure subactor itself: Python actors driven from Rust (in interpreters
and in child processes), Python actors asking Python actors, arena handoffs, memory per
actor, and the Rust core beside raw flume. Their human-readable output goes to a log
file beside their JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import figures, model
from harness.model import Measurement

# Every benchmark the suite runs, in the order it runs them.
BENCHES = ("core", "foundation", "process", "placement", "actors", "arena", "memory", "cluster", "observe")

# (bench, series key) -> (metric, system, variant). A series whose key has a number in
# place of `{}` (pipeline.rounds400) is found by its prefix.
SERIES: dict[tuple[str, str], tuple[str, str, str]] = {
    ("foundation", "spawn.subactor"): (
        model.SPAWN,
        model.SUBACTOR,
        figures.SPAWN_ACTOR,
    ),
    ("foundation", "spawn.bare_interpreter"): (
        model.SPAWN,
        model.BASELINE,
        figures.SPAWN_BARE,
    ),
    ("foundation", "spawn.warm"): (model.SPAWN, model.SUBACTOR, figures.SPAWN_WARM),
    ("foundation", "ask.blocking"): (model.ROUND_TRIP, model.SUBACTOR, figures.ASK_RUST),
    ("foundation", "ask.tokio"): (model.ROUND_TRIP, model.SUBACTOR, "Rust -> Python: ask().await (tokio, 1 thread)"),
    ("process", "spawn.process"): (model.SPAWN, model.SUBACTOR, figures.PROC_SPAWN),
    ("process", "ask.process"): (model.ROUND_TRIP, model.SUBACTOR, figures.PROC_ASK),
    ("process", "tell.process"): (model.THROUGHPUT, model.SUBACTOR, figures.PROC_TELL),
    ("placement", "handoff.process"): (model.PROC_HANDOFF, model.SUBACTOR, figures.PROC_HANDOFF),
    ("placement", "handoff.process_from_actor"): (model.PROC_HANDOFF, model.SUBACTOR, figures.PROC_HANDOFF_ACTOR),
    ("placement", "numpy.total"): (model.NUMPY, model.SUBACTOR, figures.NUMPY_RUST),
    ("placement", "auto.spawn.interpreter"): (model.AUTO_SPAWN, model.SUBACTOR, figures.AUTO_RUST["interpreter"]),
    ("placement", "auto.spawn.auto"): (model.AUTO_SPAWN, model.SUBACTOR, figures.AUTO_RUST["auto"]),
    ("placement", "auto.ask.interpreter"): (model.AUTO_ASK, model.SUBACTOR, figures.AUTO_RUST["interpreter"]),
    ("placement", "auto.ask.auto"): (model.AUTO_ASK, model.SUBACTOR, figures.AUTO_RUST["auto"]),
    ("cluster", "ask.remote"): (model.REMOTE_ASK, model.SUBACTOR, figures.REMOTE_ASK_RUST),
    ("cluster", "ask.raw_nats"): (model.REMOTE_ASK, model.RAW_NATS, figures.RAW_NATS_ASK),
    ("cluster", "tell.remote"): (model.REMOTE_TELL, model.SUBACTOR, figures.REMOTE_TELL_RUST),
    ("cluster", "node.down"): (model.NODE_DOWN, model.SUBACTOR, figures.NODE_DOWN_RUST),
    ("actors", "ask.python"): (model.ROUND_TRIP, model.SUBACTOR, figures.ASK_PYTHON),
    ("foundation", "tell.blocking"): (model.THROUGHPUT, model.SUBACTOR, figures.TELL_RUST),
    ("foundation", "tell.tokio"): (model.THROUGHPUT, model.SUBACTOR, "Rust -> Python: tell().await (tokio, 1 thread)"),
    ("foundation", "cpu.total"): (model.CPU, model.SUBACTOR, figures.CPU_TOTAL),
    ("foundation", "cpu.work"): (model.CPU, model.SUBACTOR, figures.CPU_WORK),
    ("arena", "handoff.buffer"): (model.HANDOFF, model.SUBACTOR, figures.HANDOFF_BUFFER),
    ("arena", "handoff.bytes"): (model.HANDOFF, model.SUBACTOR, "bytes (copied)"),
    ("memory", "memory.rss"): (model.MEMORY, model.SUBACTOR, figures.MEMORY_RSS),
    ("memory", "memory.pss"): (model.MEMORY, model.SUBACTOR, "PSS growth per idle actor"),
    ("memory", "memory.uss"): (model.MEMORY, model.SUBACTOR, "USS growth per idle actor"),
    ("core", "ask.core"): (model.CORE_ASK, model.SUBACTOR_CORE, figures.CORE_ASK),
    ("core", "ask.flume_spin"): (model.CORE_ASK, model.FLUME, "thread, spin then park (the core's policy)"),
    ("core", "ask.flume_park"): (model.CORE_ASK, model.FLUME, "thread, park in recv() at once"),
    ("core", "tell.core"): (model.CORE_TELL, model.SUBACTOR_CORE, figures.CORE_TELL),
    ("core", "tell.flume_spin"): (model.CORE_TELL, model.FLUME, "thread, spin then park (the core's policy)"),
    ("core", "tell.flume_park"): (model.CORE_TELL, model.FLUME, "thread, park in recv() at once"),
    ("actors", "pipeline.rounds{}"): (model.PIPELINE, model.SUBACTOR, "two stages, {} rounds of work per item"),
    **{
        ("observe", f"{key}.{'on' if on else 'off'}"): (model.METRICS_COST, system, figures.metrics_cost(what, on))
        for key, what, system in figures.METRICS_COST_FIGURES + figures.METRICS_COST_EXTRA
        for on in (False, True)
    },
}


@dataclass(frozen=True)
class BenchRun:
    """What one run of one benchmark wrote with ``--json``."""

    bench: str
    meta: dict[str, Any]
    series: list[dict[str, Any]]
    seconds: float


def build(repo: Path, log: Path) -> dict[str, Path]:
    """Builds the benchmarks in release mode (``cargo bench --no-run``); returns the
    executable of each benchmark of :data:`BENCHES`."""
    command = ["cargo", "bench", "--no-run", "--message-format=json-render-diagnostics"]
    for bench in BENCHES:
        command += ["--bench", bench]
    with log.open("w") as stderr:
        done = subprocess.run(command, cwd=repo, stdout=subprocess.PIPE, stderr=stderr, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building the Rust benchmarks failed (`{' '.join(command)}`); see {log}")
    executables = executables_from_cargo(done.stdout.splitlines())
    missing = [b for b in BENCHES if b not in executables]
    if missing:
        raise RuntimeError(f"cargo built no executable for the benchmark(s) {', '.join(missing)}")
    return executables


def executables_from_cargo(lines: Iterable[str]) -> dict[str, Path]:
    """The bench executables named in cargo's JSON messages."""
    found: dict[str, Path] = {}
    for line in lines:
        if not line.startswith("{"):
            continue
        message = json.loads(line)
        target = message.get("target", {})
        is_bench = message.get("reason") == "compiler-artifact" and "bench" in target.get("kind", [])
        if is_bench and message.get("executable"):
            found[target["name"]] = Path(message["executable"])
    return found


def run(
    repo: Path, executable: Path, bench: str, quick: bool, out: Path, log: Path, env: dict[str, str] | None = None
) -> BenchRun:
    """Runs one benchmark once from the repository root, as `cargo bench` would (in
    ``env``, when given)."""
    command = [str(executable)] + (["--quick"] if quick else []) + ["--json", str(out)]
    started = time.monotonic()
    with log.open("a") as output:
        output.write(f"$ {' '.join(command)}\n")
        output.flush()
        done = subprocess.run(command, cwd=repo, env=env, stdout=output, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise RuntimeError(f"the {bench} benchmark failed (exit status {done.returncode}); see {log}")
    data = json.loads(out.read_text())
    if data.get("bench") != bench:
        raise RuntimeError(f"{out} holds the record of {data.get('bench')!r}, not of {bench!r}")
    return BenchRun(bench, dict(data.get("meta", {})), list(data.get("series", [])), seconds)


def measurements(runs: Iterable[BenchRun]) -> list[Measurement]:
    """The measurements of benchmark runs, pooled over repeated runs (in run order)."""
    found: list[Measurement] = []
    for run_ in runs:
        for series in run_.series:
            mapped = _map(run_.bench, str(series["key"]))
            if mapped is None:
                print(f"bench: ignoring the unknown series {series['key']!r} of {run_.bench}", file=sys.stderr)
                continue
            metric, system, variant = mapped
            samples = tuple(float(s) for s in series["samples"] if s is not None)
            x = series.get("x")
            found.append(Measurement(metric, system, variant, str(series["unit"]), samples, None if x is None else x))
    return model.merge(found)


def _map(bench: str, key: str) -> tuple[str, str, str] | None:
    if (bench, key) in SERIES:
        return SERIES[(bench, key)]
    for (b, pattern), (metric, system, variant) in SERIES.items():
        prefix = pattern.split("{}")[0]
        if "{}" in pattern and b == bench and key.startswith(prefix):
            return metric, system, variant.format(key[len(prefix) :])
    return None
