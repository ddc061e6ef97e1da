"""The benchmark suite's driver: runs every benchmark, then writes the report.

    python -m harness [--quick] [--rounds N] [--only METRICS] [--runners KEYS] [--out DIR]
    python -m harness --from target/bench/run.json      # write the report again

Run it through ``bench/run``, which prepares the venv it needs. A run is a number of
rounds; the first measures everything, every later one measures again the figures that
give one sample per run (throughput and CPU-bound speedup) and probes the machine's
parallelism, so that every system's samples are spread over the same stretch of time.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import machine, metrics, model, report, rust
from harness.model import Measurement, RunnerOutcome
from harness.runners import load
from harness.runners.base import Config

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / "target" / "bench"
RESULTS = REPO / "bench" / "results"

CORE = "core"  # the Rust core benchmark's two metrics, selected together
PLACEMENT = "placement"  # automatic placement beside the interpreter's: spawn and ask
CLUSTER = "cluster"  # nodes over NATS: remote ask, remote tell, node loss (Rust only)
OBSERVE = "observe"  # what metrics cost: off and on in the same run (Rust only)
METRICS = (
    model.SPAWN,
    model.ROUND_TRIP,
    model.THROUGHPUT,
    model.CPU,
    model.HANDOFF,
    model.MEMORY,
    model.NUMPY,
    PLACEMENT,
    CLUSTER,
    CORE,
    model.ASYNC,
    OBSERVE,
)
# Figures with one sample per run: measured again in every round.
REPEATED = (model.THROUGHPUT, model.CPU, model.NUMPY)
# What each Rust benchmark measures (the pipeline comes with `actors`; buffers handed to
# process actors come with the handoffs).
BENCH_METRICS = {
    "core": {CORE},
    "foundation": {model.SPAWN, model.ROUND_TRIP, model.THROUGHPUT, model.CPU},
    "process": {model.SPAWN, model.ROUND_TRIP, model.THROUGHPUT},
    "placement": {model.HANDOFF, model.NUMPY, PLACEMENT},
    "actors": {model.ROUND_TRIP},
    "arena": {model.HANDOFF},
    "memory": {model.MEMORY},
    "cluster": {CLUSTER},
    # Off and on alternate within the benchmark's own rounds: one run of it is enough.
    "observe": {OBSERVE},
}
# Rust benchmarks whose process actors import numpy: run with the benchmark venv as
# VIRTUAL_ENV, so that the embedded Python finds its packages.
NEEDS_VENV = {"placement"}
# The cluster benchmark starts a nats-server of its own: without one on PATH, its
# section is left out (the report says why).
NO_NATS = (
    "cluster: not measured: nats-server is not on PATH (install Debian's package: apt-get install nats-server); "
    "the remote ask, remote tell and node loss figures need one"
)
HANDOFF_SIZES = (1 << 10, 1 << 20, 100 << 20, 1 << 30)
RUNNER_TIMEOUT = 30 * 60.0


class Progress:
    """Prints what the run is doing, with the time since it started."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {text}", flush=True)


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except RuntimeError as error:  # a benchmark that failed to build or run: said in its log
        print(f"bench/run: {error}", file=sys.stderr)
        return 1


def run(argv: list[str] | None) -> int:
    """Parses the command line, runs what it asks, writes the report; the exit status."""
    parser = argparse.ArgumentParser(prog="bench/run", description="subactor beside its peers, in one run.")
    parser.add_argument(
        "--quick", action="store_true", help="a short run for development (under 2 minutes on 2 cores, once built)"
    )
    parser.add_argument("--rounds", type=int, help="rounds of the repeated figures (default: 3 quick, 5 full)")
    parser.add_argument("--only", help=f"comma-separated metrics to measure, of: {', '.join(METRICS)}")
    parser.add_argument("--runners", help="comma-separated runners to run (default: all registered)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where REPORT.md and the plots go")
    parser.add_argument("--from", dest="saved", type=Path, help="write the report of a saved run (run.json) again")
    parser.add_argument("--command", help="the command line to show in the report")
    args = parser.parse_args(argv)
    progress = Progress()

    if args.saved is not None:
        return _write(report.RunData.load_from(args.saved), args.out, progress, failed=False)

    chosen = _choose(parser, args.only, METRICS, "metric")
    runners = load()
    keys = _choose(parser, args.runners, tuple(runners), "runner")
    rounds = args.rounds or (3 if args.quick else 5)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    if not set(chosen) & set(REPEATED):
        rounds = 1  # nothing to repeat
    command = args.command or shlex.join(["bench/run", *(argv if argv is not None else sys.argv[1:])])

    WORK.mkdir(parents=True, exist_ok=True)
    for old in [*WORK.glob("*.json"), *WORK.glob("*.log")]:
        old.unlink()
    before = machine.cpu_times()
    info = machine.describe(REPO)
    cores = info.cores
    env = _child_env()

    progress("building the Rust benchmarks (cargo bench --no-run)")
    executables = rust.build(REPO, WORK / "build.log")
    runs: list[rust.BenchRun] = []
    outcomes: list[RunnerOutcome] = []
    probes: list[machine.Probe] = []
    config: Config | None = None
    skipped: list[str] = []
    for round_ in range(rounds):
        todo = set(chosen) if round_ == 0 else set(chosen) & set(REPEATED)
        progress(f"round {round_ + 1} of {rounds}: {', '.join(sorted(todo))}")
        probe = machine.probe_parallelism(cores, 2_000_000 if args.quick else 6_000_000)
        probes.append(probe)
        progress(f"  machine parallelism probe: {probe.parallelism:.2f}x of {cores}")
        for bench in rust.BENCHES:
            if BENCH_METRICS[bench] & todo:
                why = _unavailable(bench)
                if why is not None:
                    if why not in skipped:
                        skipped.append(why)
                    progress(f"  {bench} benchmark skipped: {why}")
                    continue
                out = WORK / f"{bench}-{round_}.json"
                bench_env = {**os.environ, "VIRTUAL_ENV": sys.prefix} if bench in NEEDS_VENV else None
                run = rust.run(REPO, executables[bench], bench, args.quick, out, WORK / f"{bench}.log", bench_env)
                runs.append(run)
                progress(f"  {bench} benchmark: {run.seconds:.1f} s")
        config = _config(args.quick, cores, runs, todo)
        config_path = WORK / f"config-{round_}.json"
        config_path.write_text(_json(config.to_json()))
        for key in keys:
            outcome = _run_runner(key, runners[key].system, config_path, round_, env)
            outcomes.append(outcome)
            status = f"{outcome.seconds:.1f} s" + (f", {outcome.error}" if outcome.error else "")
            progress(f"  {key}: {status}")

    measurements: list[Measurement] = rust.measurements(runs)
    measurements += model.merge([m for o in outcomes for m in o.measurements])
    notes = skipped + _notes(outcomes)
    rust_meta = next((r.meta for r in runs if r.bench == "foundation"), runs[0].meta if runs else {})
    if config is not None:
        rust_meta = {
            **rust_meta,
            "cpu_limit": config.cpu_limit,
            "cpu_chunks": config.cpu_chunks,
            "numpy_tasks": config.numpy_tasks,
            "numpy_size": config.numpy_size,
        }
    nats = next((r.meta.get("nats_server") for r in runs if r.bench == "cluster"), None)
    if nats:
        rust_meta["nats_server"] = nats
    data = report.RunData(
        machine=info,
        command=command,
        quick=args.quick,
        rounds=len(probes),
        seconds=time.monotonic() - progress.started,
        load=machine.load_between(before, machine.cpu_times(), cores),
        probes=probes,
        measurements=measurements,
        notes=notes,
        rust_meta=rust_meta,
    )
    data.save(WORK / "run.json")
    failed = any(o.error and not o.error.startswith("not available") for o in outcomes)
    return _write(data, args.out, progress, failed)


def _unavailable(bench: str) -> str | None:
    """Why a Rust benchmark cannot run on this machine, or None when it can."""
    if bench == "cluster" and shutil.which("nats-server") is None:
        return NO_NATS
    return None


def _choose(parser: argparse.ArgumentParser, given: str | None, known: tuple[str, ...], what: str) -> tuple[str, ...]:
    if given is None:
        return known
    chosen = tuple(part.strip() for part in given.split(",") if part.strip())
    unknown = [c for c in chosen if c not in known]
    if unknown:
        parser.error(f"unknown {what}(s) {', '.join(unknown)}; there are: {', '.join(known)}")
    return chosen


def _child_env() -> dict[str, str]:
    """The environment of every benchmark process: the harness and the example actors
    importable, and bytecode cached as in a normal installation (for subactor's actors
    and the peers' workers alike)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    paths = [str(REPO / "bench"), str(REPO / "examples" / "python")]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _config(quick: bool, cores: int, runs: list[rust.BenchRun], todo: set[str]) -> Config:
    """The peers' configuration: the CPU-bound job exactly as the foundation benchmark
    cut it in this run, and the numpy job as the placement benchmark did (or as they
    would have, when they did not run)."""
    meta = next((r.meta for r in runs if r.bench == "foundation"), {})
    numpy = next((r.meta for r in runs if r.bench == "placement"), {})
    return Config(
        quick=quick,
        cores=cores,
        cpu_limit=int(meta.get("cpu_limit", 300_000 if quick else 1_000_000)),
        cpu_chunks=int(meta.get("cpu_chunks", 32 * cores)),
        reps=1,
        sizes=HANDOFF_SIZES,
        metrics=tuple(sorted(todo - {CORE, CLUSTER})),
        numpy_tasks=int(numpy.get("numpy_tasks", 64 if quick else 128)),
        numpy_size=int(numpy.get("numpy_size", 250 if quick else 300)),
    )


def _run_runner(key: str, system: str, config: Path, round_: int, env: dict[str, str]) -> RunnerOutcome:
    """Runs one runner in a fresh process of this Python; its output goes to a log."""
    out = WORK / f"{key}-{round_}.json"
    log = WORK / f"{key}.log"
    command = [sys.executable, "-m", "harness.runners", key, "--config", str(config), "--out", str(out)]
    started = time.monotonic()
    with log.open("a") as output:
        output.write(f"$ {shlex.join(command)}\n")
        output.flush()
        try:
            done = subprocess.run(
                command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, timeout=RUNNER_TIMEOUT, check=False
            )
            status = done.returncode
        except subprocess.TimeoutExpired:
            status = None
    seconds = time.monotonic() - started
    if status != 0 or not out.exists():
        why = "timed out" if status is None else f"exited with status {status}"
        return RunnerOutcome(runner=key, system=system, error=f"{why}; see {log.relative_to(REPO)}", seconds=seconds)
    return RunnerOutcome.read(out)


def _notes(outcomes: list[RunnerOutcome]) -> list[str]:
    """What runners left out or could not do, once each."""
    notes: list[str] = []
    for o in outcomes:
        for text in ([o.error] if o.error else []) + o.skipped:
            line = f"{o.system}: {text}"
            if line not in notes:
                notes.append(line)
    return notes


def _write(data: report.RunData, out: Path, progress: Progress, failed: bool) -> int:
    """Writes the plots, REPORT.md and results.json into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for metric in metrics.ALL:
        if metric.plot and (out / metric.plot).exists():
            (out / metric.plot).unlink()
    try:
        from harness import plots

        data.plots = plots.write_all(data.measurements, data.probes, out)
    except ImportError as error:
        data.plots = {}
        data.notes.append(f"plots: not drawn ({error}); run through bench/run, which installs matplotlib")
    (out / "REPORT.md").write_text(report.render(data))
    (out / "results.json").write_text(_json(report.summaries(data)))
    progress(f"wrote {(out / 'REPORT.md').relative_to(REPO) if out.is_relative_to(REPO) else out / 'REPORT.md'}")
    if failed:
        print("bench: some runners failed; see the report's notes and target/bench/*.log", file=sys.stderr)
    return 1 if failed else 0


def _json(data: object) -> str:
    import json

    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.exit(main())
