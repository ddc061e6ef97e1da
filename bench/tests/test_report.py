"""Tests of the goals, the report and the plots, on a made-up run."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import tempfile
import unittest
from pathlib import Path

from harness import figures, goals, metrics, model, report
from harness.machine import Load, MachineInfo, Probe
from harness.model import Measurement

US = 1e-6
MIB = float(1 << 20)
KB = float(1 << 10)
GB = float(1 << 30)
# Ten spawns from 9 ms to 11.25 ms: p10-p90 about 9.2 ms - 11.0 ms.
SPREAD_10MS = [0.009 + 0.00025 * i for i in range(10)]


def m(metric: str, system: str, variant: str, unit: str, samples: list[float], x: float | None = None) -> Measurement:
    return Measurement(metric, system, variant, unit, tuple(samples), x)


def metrics_cost_figures(ask_on: float, core_tell_on: float) -> list[Measurement]:
    """benches/observe.rs's four figures, off and on; the others cost nothing."""
    python_ask, python_tell, core_ask, core_tell = (what for _, what, _ in figures.METRICS_COST_FIGURES)
    found = []
    for what, system, unit, off, on in (
        (python_ask, model.SUBACTOR, "s", 10 * US, ask_on),
        (python_tell, model.SUBACTOR, "msg/s", 1e6, 1e6),
        (core_ask, model.SUBACTOR_CORE, "s", 2 * US, 2 * US),
        (core_tell, model.SUBACTOR_CORE, "msg/s", 1e6, core_tell_on),
    ):
        found.append(m(model.METRICS_COST, system, figures.metrics_cost(what, False), unit, [off] * 4))
        found.append(m(model.METRICS_COST, system, figures.metrics_cost(what, True), unit, [on] * 4))
    return found


def made_up_run(**changes: object) -> report.RunData:
    """A run with every metric, where the figures are chosen to meet some goals and
    miss others."""
    pool = "ProcessPoolExecutor.map, start-up included"
    measurements = [
        m(model.SPAWN, model.SUBACTOR, figures.SPAWN_ACTOR, "s", [0.011] * 20),
        m(model.SPAWN, model.BASELINE, figures.SPAWN_BARE, "s", [0.008] * 20),
        m(model.SPAWN, model.MP_SPAWN, "Process.start()", "s", [0.13] * 5),
        m(model.ROUND_TRIP, model.SUBACTOR, figures.ASK_RUST, "s", [1 * US] * 50),
        m(model.ROUND_TRIP, model.SUBACTOR, figures.ASK_PYTHON, "s", [20 * US] * 50),  # misses 15 µs
        m(model.ROUND_TRIP, model.MP_FORK, "Pipe", "s", [40 * US] * 50),
        m(model.THROUGHPUT, model.SUBACTOR, figures.TELL_RUST, "msg/s", [2e6, 1.8e6, 2.2e6]),
        m(model.THROUGHPUT, model.THREADS, "queue.Queue", "msg/s", [5e5, 6e5, 5.5e5]),
        # subactor: 2.0 s -> 1.05 s (1.90x); the fork pool: 2.0 s -> 1.0 s (2.00x).
        m(model.CPU, model.SUBACTOR, figures.CPU_TOTAL, "s", [2.0, 2.0, 2.0], 1),
        m(model.CPU, model.SUBACTOR, figures.CPU_TOTAL, "s", [1.05, 1.05, 1.05], 2),
        m(model.CPU, model.MP_FORK, pool, "s", [2.0, 2.0, 2.0], 1),
        m(model.CPU, model.MP_FORK, pool, "s", [1.0, 1.0, 1.0], 2),
        m(model.HANDOFF, model.SUBACTOR, figures.HANDOFF_BUFFER, "s", [1.5 * US] * 20, 1 << 10),
        m(model.HANDOFF, model.SUBACTOR, figures.HANDOFF_BUFFER, "s", [1.4 * US] * 20, 1 << 30),
        m(model.HANDOFF, model.THREADS, "queue.Queue", "s", [30 * US] * 20, 1 << 30),
        m(model.MEMORY, model.SUBACTOR, figures.MEMORY_RSS, "B", [2.5 * MIB] * 3),
        m(model.MEMORY, model.MP_SPAWN, "RSS of an idle worker process", "B", [15 * MIB] * 3),
        m(model.MEMORY, model.SUBACTOR, figures.MEMORY_PROC_COLLECTED.format("USS"), "B", [2 * MIB] * 3),
        m(model.MEMORY, model.MP_FORK, figures.MEMORY_COLLECTED_PROCESS.format("USS"), "B", [7 * MIB] * 3),
        m(model.CORE_ASK, model.SUBACTOR_CORE, figures.CORE_ASK, "s", [0.8 * US] * 30),
        m(model.CORE_ASK, model.FLUME, "spin then park", "s", [0.5 * US] * 30),
        m(model.CORE_TELL, model.SUBACTOR_CORE, figures.CORE_TELL, "msg/s", [4e6] * 3),
        m(model.PIPELINE, model.SUBACTOR, "two stages", "items/s", [1000.0], 1),
        m(model.PIPELINE, model.SUBACTOR, "two stages", "items/s", [1800.0], 2),
        # Process actors: from Rust they meet every goal but forkserver's; from Python
        # they miss every one.
        m(model.SPAWN, model.SUBACTOR, figures.PROC_SPAWN, "s", [0.003] * 20),
        m(model.SPAWN, model.SUBACTOR, figures.PY_PROC_SPAWN, "s", [0.006] * 20),
        m(model.SPAWN, model.MP_FORK, figures.MP_START, "s", [0.005] * 20),
        m(model.SPAWN, model.MP_FORKSERVER, figures.MP_START, "s", [0.012] * 20),
        # A warm-pool spawn of 0.6 ms misses 1/10 of fork's 5 ms.
        m(model.SPAWN, model.SUBACTOR, figures.SPAWN_WARM, "s", [0.0006] * 20),
        m(model.ROUND_TRIP, model.SUBACTOR, figures.PROC_ASK, "s", [10 * US] * 50),
        m(model.ROUND_TRIP, model.SUBACTOR, figures.PY_PROC_ASK, "s", [15 * US] * 50),
        m(model.ROUND_TRIP, model.MP_FORK, figures.PIPE_ASK, "s", [40 * US] * 50),
        m(model.ROUND_TRIP, model.MP_SPAWN, figures.PIPE_ASK, "s", [35 * US] * 50),  # the best Pipe
        m(model.THROUGHPUT, model.SUBACTOR, figures.PROC_TELL, "msg/s", [1e6, 0.9e6, 1.1e6]),
        m(model.THROUGHPUT, model.SUBACTOR, figures.PY_PROC_TELL, "msg/s", [7e5, 6e5, 8e5]),
        m(model.THROUGHPUT, model.MP_FORK, figures.PIPE_TELL, "msg/s", [3e5, 3e5, 3e5]),
        m(model.THROUGHPUT, model.MP_SPAWN, figures.PIPE_TELL, "msg/s", [4e5, 4e5, 4e5]),
        # Buffers to process actors: from Rust 15x faster than SharedMemory at both sizes
        # and flat; from Python 10x at 1 KB but 5x at 1 GB, and not flat (2x).
        *[m(model.PROC_HANDOFF, model.SUBACTOR, figures.PROC_HANDOFF, "s", [20 * US] * 20, x) for x in (KB, GB)],
        m(model.PROC_HANDOFF, model.SUBACTOR, figures.PY_PROC_HANDOFF, "s", [30 * US] * 20, KB),
        m(model.PROC_HANDOFF, model.SUBACTOR, figures.PY_PROC_HANDOFF, "s", [60 * US] * 20, GB),
        *[m(model.HANDOFF, model.MP_FORK, figures.SHARED_MEMORY, "s", [300 * US] * 20, x) for x in (KB, GB)],
        m(model.HANDOFF, model.MP_SPAWN, figures.SHARED_MEMORY, "s", [400 * US] * 20, KB),
        m(model.HANDOFF, model.MP_FORK, figures.PIPE_BYTES, "s", [40 * US] * 20, KB),
        # The numpy job: from Rust 2.00x, from Python 1.60x; the fork pool 1.82x.
        m(model.NUMPY, model.SUBACTOR, figures.NUMPY_RUST, "s", [2.0, 2.0, 2.0], 1),
        m(model.NUMPY, model.SUBACTOR, figures.NUMPY_RUST, "s", [1.0, 1.0, 1.0], 2),
        m(model.NUMPY, model.SUBACTOR, figures.NUMPY_PY, "s", [2.0, 2.0, 2.0], 1),
        m(model.NUMPY, model.SUBACTOR, figures.NUMPY_PY, "s", [1.25, 1.25, 1.25], 2),
        m(model.NUMPY, model.MP_FORK, figures.NUMPY_POOL, "s", [2.0, 2.0, 2.0], 1),
        m(model.NUMPY, model.MP_FORK, figures.NUMPY_POOL, "s", [1.1, 1.1, 1.1], 2),
        # Automatic placement: within the interpreter's spread, but from Python's spawn.
        m(model.AUTO_SPAWN, model.SUBACTOR, figures.AUTO_RUST["interpreter"], "s", SPREAD_10MS),
        m(model.AUTO_SPAWN, model.SUBACTOR, figures.AUTO_RUST["auto"], "s", [0.0102] * 10),
        m(model.AUTO_SPAWN, model.SUBACTOR, figures.AUTO_PY["interpreter"], "s", SPREAD_10MS),
        m(model.AUTO_SPAWN, model.SUBACTOR, figures.AUTO_PY["auto"], "s", [0.013] * 10),
        m(model.AUTO_ASK, model.SUBACTOR, figures.AUTO_RUST["interpreter"], "s", [1 * US] * 10),
        m(model.AUTO_ASK, model.SUBACTOR, figures.AUTO_RUST["auto"], "s", [1 * US] * 10),
        m(model.AUTO_ASK, model.SUBACTOR, figures.AUTO_PY["interpreter"], "s", [5 * US] * 10),
        m(model.AUTO_ASK, model.SUBACTOR, figures.AUTO_PY["auto"], "s", [5 * US] * 10),
        # Nodes over NATS: ask 1.20x raw's, tells 370k/s, one node loss noticed after 2.1 s.
        m(model.REMOTE_ASK, model.SUBACTOR, figures.REMOTE_ASK_RUST, "s", [96 * US] * 50),
        m(model.REMOTE_ASK, model.RAW_NATS, figures.RAW_NATS_ASK, "s", [80 * US] * 50),
        m(model.REMOTE_TELL, model.SUBACTOR, figures.REMOTE_TELL_RUST, "msg/s", [3.7e5, 3.5e5, 3.9e5]),
        m(model.NODE_DOWN, model.SUBACTOR, figures.NODE_DOWN_RUST, "s", [1.4, 1.5, 2.1]),
        # Asyncio actors: 100 asks at once take 2x one ask in an interpreter (met), 4x
        # in a process (missed).
        m(model.ASYNC, model.SUBACTOR, figures.async_one("interpreter"), "s", [0.011] * 20),
        m(model.ASYNC, model.SUBACTOR, figures.async_many("interpreter"), "s", [0.022] * 10),
        m(model.ASYNC, model.SUBACTOR, figures.async_one("process"), "s", [0.011] * 20),
        m(model.ASYNC, model.SUBACTOR, figures.async_many("process"), "s", [0.040, 0.044, 0.048] * 4),
        m(model.ASYNC, model.BASELINE, figures.ASYNC_BASE_ONE, "s", [0.010] * 20),
        m(model.ASYNC, model.BASELINE, figures.ASYNC_BASE_MANY, "s", [0.0105] * 10),
        # What metrics cost: the Python ask 4% (met), the core's tells 10% (missed).
        *metrics_cost_figures(ask_on=10.4 * US, core_tell_on=0.9e6),
    ]
    data = report.RunData(
        machine=MachineInfo(2, "Test CPU", "Linux 6", 8.0, "CPython 3.13.0", "rustc 1.95", "a" * 40, False, "today"),
        command="bench/run",
        quick=False,
        rounds=3,
        seconds=600.0,
        load=Load(600.0, 1200.0, 700.0, 600.0, 0.0, (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)),
        probes=[Probe(2, 1.0, 0.52), Probe(2, 1.0, 0.55), Probe(2, 1.0, 0.51)],
        measurements=measurements,
        notes=["threads: handoff: something left out"],
        rust_meta={
            "python": "3.13.0",
            "cpu_limit": 1_000_000,
            "cpu_chunks": 64,
            "numpy_tasks": 128,
            "numpy_size": 300,
            "nats_server": "nats-server: v2.9.10",
        },
    )
    for name, value in changes.items():
        setattr(data, name, value)
    return data


class Goals(unittest.TestCase):
    def test_each_goal_is_judged_on_its_figure(self) -> None:
        data = made_up_run()
        results = {g.name: g for g in goals.evaluate(data.measurements, data.probes, cores=2)}
        self.assertTrue(results["ask round trip Rust -> Python"].met)
        self.assertFalse(results["ask round trip Python -> Python"].met)
        self.assertTrue(results["small messages into one Python actor"].met)
        # 1.90x meets 1.85x but not the pool's 2.00x of the same run.
        cpu = results["CPU-bound speedup at 2 workers"]
        self.assertFalse(cpu.met)
        self.assertIn("1.90×", cpu.figure)
        self.assertIn("2.00×", cpu.figure)
        self.assertTrue(results["buffer handoff, 1 KB to 1 GB"].met)
        self.assertTrue(results["memory per idle actor"].met)
        self.assertFalse(results["cold spawn latency (the foundation's and issue 16's goal)"].met)
        warm = results["warm-pool spawn <= 1/10 of a multiprocessing fork worker's start"]
        self.assertFalse(warm.met)
        self.assertIn("0.12× the peer's", warm.figure)
        self.assertEqual(warm.note, "missed across both spreads")

    def test_a_warm_pool_spawn_within_a_tenth_of_a_fork_start_meets_its_goal(self) -> None:
        ms = [
            m(model.SPAWN, model.SUBACTOR, figures.SPAWN_WARM, "s", [0.0004] * 20),
            m(model.SPAWN, model.MP_FORK, figures.MP_START, "s", [0.005] * 20),
        ]
        found = {g.name: g for g in goals.evaluate(ms, [], 2)}
        warm = found["warm-pool spawn <= 1/10 of a multiprocessing fork worker's start"]
        self.assertTrue(warm.met)
        self.assertEqual(warm.target, "p50 <= 1/10 of fork's p50")
        # Without fork's figure the goal is not judged.
        alone = {g.name: g for g in goals.evaluate(ms[:1], [], 2)}
        self.assertIsNone(alone["warm-pool spawn <= 1/10 of a multiprocessing fork worker's start"].met)

    def test_process_goals_are_judged_from_rust_and_from_python(self) -> None:
        data = made_up_run()
        results = {g.name: g for g in goals.evaluate(data.measurements, data.probes, cores=2)}
        verdicts = {name: g.met for name, g in results.items() if name.startswith("process actor")}
        self.assertEqual(
            verdicts,
            {
                "process actor: spawn <= multiprocessing fork's worker start, from Rust": True,
                "process actor: spawn <= multiprocessing fork's worker start, from Python": False,
                # 3 ms against 12 ms / 5 = 2.4 ms.
                "process actor: spawn <= 1/5 of forkserver's worker start, from Rust": False,
                "process actor: spawn <= 1/5 of forkserver's worker start, from Python": False,
                # Against the best Pipe of the run (spawn's, 35 µs): 10 µs <= 11.7 µs; 15 µs is not.
                "process actor: ask round trip <= 1/3 of a Pipe round trip, from Rust": True,
                "process actor: ask round trip <= 1/3 of a Pipe round trip, from Python": False,
                # Against the best Pipe (400k/s): 1.0M >= 800k; 700k is not.
                "process actor: tell throughput >= 2x a Pipe's, from Rust": True,
                "process actor: tell throughput >= 2x a Pipe's, from Python": False,
            },
        )
        ask = results["process actor: ask round trip <= 1/3 of a Pipe round trip, from Rust"]
        self.assertIn("multiprocessing (spawn) p50 35.0 µs", ask.figure)
        self.assertIn("0.29× the peer's", ask.figure)
        self.assertEqual(ask.target, "p50 <= 1/3 of the fastest Pipe's p50")
        tell = results["process actor: tell throughput >= 2x a Pipe's, from Rust"]
        self.assertIn("p50 1.00 Mmsg/s (min-max 900 kmsg/s - 1.10 Mmsg/s)", tell.figure)
        self.assertEqual(tell.target, "median >= 2x the fastest Pipe's")
        # 0.9M at worst is above 2 x 400k: the verdict holds across both spreads.
        self.assertEqual(tell.note, "met across both spreads")

    def test_the_asyncio_goal_compares_100_asks_at_once_with_one(self) -> None:
        data = made_up_run()
        results = {g.name: g for g in goals.evaluate(data.measurements, data.probes, cores=2)}
        prefix = "asyncio actor ({}), max_concurrency=100: 100 concurrent asks awaiting 10 ms each"
        interpreter, process = results[prefix.format("interpreter")], results[prefix.format("process")]
        self.assertTrue(interpreter.met)
        self.assertIn("2.00× one ask", interpreter.figure)
        self.assertEqual(interpreter.note, "met across both spreads")
        self.assertFalse(process.met)
        self.assertIn("4.00× one ask", process.figure)
        self.assertEqual(process.note, "missed across both spreads")
        empty = {g.name: g for g in goals.evaluate([], [], cores=2)}
        self.assertIsNone(empty[prefix.format("process")].met)

    def test_a_process_goal_says_when_the_spreads_overlap_the_target(self) -> None:
        def spawn_goal(mine: list[float], fork: list[float]) -> goals.Goal:
            ms = [
                m(model.SPAWN, model.SUBACTOR, figures.PROC_SPAWN, "s", mine),
                m(model.SPAWN, model.MP_FORK, figures.MP_START, "s", fork),
            ]
            return next(g for g in goals.evaluate(ms, [], 2) if g.name.endswith("fork's worker start, from Rust"))

        overlapping = spawn_goal([0.003, 0.004, 0.009], [0.005, 0.006, 0.007])
        self.assertTrue(overlapping.met)
        self.assertEqual(overlapping.note, "met by the medians; the spreads overlap the target")
        missed = spawn_goal([0.008, 0.009, 0.010], [0.005, 0.006, 0.007])
        self.assertFalse(missed.met)
        self.assertEqual(missed.note, "missed across both spreads")
        no_peer = next(
            g
            for g in goals.evaluate([m(model.SPAWN, model.SUBACTOR, figures.PROC_SPAWN, "s", [0.003])], [], 2)
            if g.name.endswith("fork's worker start, from Rust")
        )
        self.assertIsNone(no_peer.met)

    def test_issue_13_goals_are_judged_on_the_same_run(self) -> None:
        data = made_up_run()
        results = {g.name: g for g in goals.evaluate(data.measurements, data.probes, cores=2)}
        verdicts = {
            name: g.met
            for name, g in results.items()
            if name.startswith(("buffer handoff to a process actor", "numpy job", "placement auto"))
        }
        self.assertEqual(
            verdicts,
            {
                "buffer handoff to a process actor, from Rust: flat": True,
                "buffer handoff to a process actor, from Rust: >= 10x faster than SharedMemory": True,
                "buffer handoff to a process actor, from Python: flat": False,
                "buffer handoff to a process actor, from Python: >= 10x faster than SharedMemory": False,
                "buffer handoff to a process actor, from a Python actor: flat": None,
                "buffer handoff to a process actor, from a Python actor: >= 10x faster than SharedMemory": None,
                "numpy job, 2 process actors, from Rust: speedup >= ProcessPoolExecutor's": True,
                "numpy job, 2 process actors, from Python: speedup >= ProcessPoolExecutor's": False,
                "placement auto beside interpreter: spawn, from Rust": True,
                "placement auto beside interpreter: spawn, from Python": False,
                "placement auto beside interpreter: ask round trip, from Rust": True,
                "placement auto beside interpreter: ask round trip, from Python": True,
            },
        )
        fast = results["buffer handoff to a process actor, from Rust: >= 10x faster than SharedMemory"]
        # Against the fastest SharedMemory at each size: fork's 300 µs (not spawn's 400 µs).
        self.assertIn("1 KB 15.00×, 1 GB 15.00×", fast.figure)
        self.assertEqual(fast.note, "met across both spreads")
        slow = results["buffer handoff to a process actor, from Python: >= 10x faster than SharedMemory"]
        self.assertIn("1 KB 10.00×, 1 GB 5.00×", slow.figure)
        flat = results["buffer handoff to a process actor, from Python: flat"]
        self.assertIn("largest p50 2.00× the smallest size's", flat.figure)
        numpy = results["numpy job, 2 process actors, from Python: speedup >= ProcessPoolExecutor's"]
        self.assertIn("1.60×", numpy.figure)
        self.assertIn("ProcessPoolExecutor (fork) 1.82×", numpy.figure)

    def test_issue_14_goals_are_judged_on_the_same_run(self) -> None:
        data = made_up_run()
        results = {g.name: g for g in goals.evaluate(data.measurements, data.probes, cores=2)}
        ask = results["remote ask round trip over NATS"]
        self.assertTrue(ask.met)
        self.assertIn("1.20×", ask.figure)
        tell = results["remote tell throughput over NATS, one sender"]
        self.assertTrue(tell.met)
        self.assertIn("median 370 kmsg/s of 3 runs", tell.figure)
        down = results["node loss noticed (SIGKILL to Down), default settings"]
        self.assertFalse(down.met, "one loss of three took 2.1 s")
        self.assertEqual(down.figure, "median 1.50 s, worst 2.10 s of 3 kills")
        # A raw floor far below: the ask misses.
        slow = [
            m(model.REMOTE_ASK, model.SUBACTOR, figures.REMOTE_ASK_RUST, "s", [160 * US] * 10),
            m(model.REMOTE_ASK, model.RAW_NATS, figures.RAW_NATS_ASK, "s", [100 * US] * 10),
        ]
        missed = next(g for g in goals.evaluate(slow, [], 2) if g.name == "remote ask round trip over NATS")
        self.assertFalse(missed.met)

    def test_the_cost_of_metrics_is_judged_per_figure_on_the_medians_of_one_run(self) -> None:
        results = {g.name: g for g in goals.evaluate(metrics_cost_figures(10.4 * US, 0.9e6), [], 2)}
        ask = results["metrics on: ask round trip, Rust -> Python actor: blocking_ask"]
        self.assertTrue(ask.met)
        self.assertIn("on/off 1.040, cost +4.0%", ask.figure)
        tell = results["metrics on: tell throughput, Rust -> Rust actor: blocking_tell"]
        self.assertFalse(tell.met)
        self.assertIn("on/off 0.900, cost +10.0%", tell.figure)
        self.assertTrue(results["metrics on: tell throughput, Rust -> Python actor: blocking_tell"].met)
        self.assertNotIn("A/A", tell.figure)  # no control taken
        # With the A/A control: its reading stands beside the core's tell figure.
        _, control, system = figures.METRICS_COST_EXTRA[1]
        with_control = metrics_cost_figures(10 * US, 0.9e6) + [
            m(model.METRICS_COST, system, figures.metrics_cost(control, False), "msg/s", [1e6, 2e6]),
            m(model.METRICS_COST, system, figures.metrics_cost(control, True), "msg/s", [0.88e6, 1.76e6]),
        ]
        tell = next(g for g in goals.evaluate(with_control, [], 2) if g.name == tell.name)
        self.assertIn("cost +10.0% (paired); A/A control (two systems with metrics off) +12.0%", tell.figure)
        # Only the off figure: not judged.
        half = [f for f in metrics_cost_figures(10 * US, 1e6) if not f.variant.endswith("metrics on")]
        self.assertTrue(all(g.met is None for g in goals.evaluate(half, [], 2) if g.name.startswith("metrics on")))

    def test_the_cost_of_a_rate_is_paired_by_round_and_of_a_time_is_the_ratio_of_medians(self) -> None:
        # Rates taken in pairs: the pairs' ratios 0.95, 0.95, 1.0, 1.5, 0.95: median 0.95
        # (the medians of the series, 8 and 12, would say -50%).
        self.assertAlmostEqual(goals.metrics_cost([16, 8, 16, 8, 8], [15.2, 7.6, 16, 12, 7.6], rate=True), 0.05)
        # Identical figures in two regimes: no cost at all, whatever their order.
        self.assertAlmostEqual(goals.metrics_cost([16, 8, 16, 8, 8], [16, 8, 16, 8, 8], rate=True), 0.0)
        # Series that are not paired (not of one run): the ratio of the medians.
        self.assertAlmostEqual(goals.metrics_cost([10, 20, 40], [18, 18], rate=True), 0.1)
        # Times: the ratio of the medians, on / off - 1.
        self.assertAlmostEqual(goals.metrics_cost([1.0, 2.0, 3.0], [2.2, 2.2, 9.0], rate=False), 0.1)

    def test_the_cost_of_metrics_has_a_section_with_off_and_on_side_by_side(self) -> None:
        text = report.render(made_up_run())
        section = text.split("## 14. What metrics cost")[1]
        self.assertIn("benches/observe.rs", section)
        self.assertIn("| subactor | ask round trip, Rust -> Python actor: blocking_ask | 10.0 µs", section)
        self.assertIn("| 1.040 | +4.0% |", section)
        self.assertIn("| subactor core | tell throughput, Rust -> Rust actor: blocking_tell |", section)
        self.assertIn("| 0.900 | +10.0% |", section)

    def test_a_figure_not_taken_is_not_judged(self) -> None:
        results = goals.evaluate([], [], cores=2)
        self.assertTrue(all(g.met is None for g in results))

    def test_handoff_must_cover_1_kb_to_1_gb(self) -> None:
        only_small = [m(model.HANDOFF, model.SUBACTOR, figures.HANDOFF_BUFFER, "s", [1 * US], 1 << 10)]
        handoff = next(g for g in goals.evaluate(only_small, [], 2) if g.name.startswith("buffer"))
        self.assertFalse(handoff.met)

    def test_a_missed_cpu_goal_says_why(self) -> None:
        data = made_up_run()
        cpu = next(g for g in goals.evaluate(data.measurements, [Probe(2, 1.0, 1.2)], 2) if g.name.startswith("CPU"))
        self.assertFalse(cpu.met)
        self.assertIn("0.10× below the pool's", cpu.note)
        self.assertNotIn("within the spread", cpu.note)  # both ran 3 identical rounds
        self.assertIn("the machine itself gave 1.67× parallelism", cpu.note)


class Speedups(unittest.TestCase):
    def test_pairs_rounds(self) -> None:
        ms = [
            m(model.CPU, model.SUBACTOR, "v", "s", [2.0, 4.0], 1),
            m(model.CPU, model.SUBACTOR, "v", "s", [1.0, 4.0], 2),
        ]
        self.assertEqual(figures.speedups(ms, model.SUBACTOR, "v"), {1: [1.0, 1.0], 2: [2.0, 1.0]})
        self.assertEqual(figures.speedups(ms, model.THREADS, "v"), {})


class Rendering(unittest.TestCase):
    def test_report_has_every_section_and_figure(self) -> None:
        text = report.render(made_up_run())
        for heading in (
            "## Machine",
            "## Goals",
            "## Summary",
            "## 1. Spawn latency",
            "## 4. Process actors beside multiprocessing",
            "## 5. CPU-bound speedup",
            "## 6. Large-buffer handoff",
            "## 7. Memory per idle worker",
            "## 8. Rust core",
            "## 9. Buffers handed to process actors beside multiprocessing",
            "## 10. A numpy job on process actors beside ProcessPoolExecutor",
            "## 11. Automatic placement beside the interpreter placement",
            "## 12. Nodes over NATS",
            "## 13. Asyncio actors: concurrent asks",
            "## Other subactor figures",
            "## Not measured, and why",
        ):
            self.assertIn(heading, text)
        self.assertIn("**missed**", text)
        self.assertIn("**met**", text)
        self.assertIn("primes below 1,000,000", text)
        self.assertIn("| multiprocessing (fork) | Pipe | 40.0 µs", text)
        self.assertIn("2.00× (2.00× – 2.00×)", text)  # the pool's speedup, with its spread
        self.assertIn("1.80 kitems/s (1.80×)", text)
        self.assertIn("| CPU-bound job, wall time at 2 workers | 1.05 s (start-up included) |", text)
        self.assertIn("threads: handoff: something left out", text)
        self.assertIn("```sh\nbench/run\n```", text)

    def test_a_workers_memory_after_a_collection_is_compared_with_a_process_actors(self) -> None:
        text = report.render(made_up_run())
        section = text.split("## 7. Memory per idle worker")[1].split("## 8.")[0]
        mine = figures.MEMORY_PROC_COLLECTED.format("USS")
        self.assertIn(f"| subactor | {mine} | 2.00 MiB |", section)
        self.assertIn("| reference |", section.split(mine)[1].split("\n")[0])
        theirs = figures.MEMORY_COLLECTED_PROCESS.format("USS")
        row = section.split(theirs)[1].split("\n")[0]
        self.assertTrue(row.rstrip().endswith("| 3.50× |"), row)
        # The idle worker's RSS is still compared with an interpreter actor's growth.
        row = section.split("RSS of an idle worker process")[1].split("\n")[0]
        self.assertTrue(row.rstrip().endswith("| 6.00× |"), row)

    def test_process_actors_are_compared_with_multiprocessing(self) -> None:
        text = report.render(made_up_run())
        section = text.split("## 4. Process actors beside multiprocessing")[1].split("## 5.")[0]
        # Each row's advantage of the process actor from Rust, then from Python.
        spread = "3.00 ms – 3.00 ms"
        self.assertIn(f"| subactor | {figures.PROC_SPAWN} | 3.00 ms | {spread} | 20 | reference |  |", section)
        spread = "6.00 ms – 6.00 ms"
        self.assertIn(f"| subactor | {figures.PY_PROC_SPAWN} | 6.00 ms | {spread} | 20 |  | reference |", section)
        # forkserver: 12 ms against 3 ms (from Rust) and 6 ms (from Python).
        forkserver = "| multiprocessing (forkserver) | Process.start() until the worker answers | 12.0 ms"
        self.assertIn(f"{forkserver} | 12.0 ms – 12.0 ms | 20 | 4.00× | 2.00× |", section)
        pipe = "| multiprocessing (spawn) | Pipe send() + recv() | 35.0 µs"
        self.assertIn(f"{pipe} | 35.0 µs – 35.0 µs | 50 | 3.50× | 2.33× |", section)
        self.assertIn("| multiprocessing (fork) | Pipe send() of ints | 300 kmsg/s", section)
        self.assertNotIn('Process.start()" |', section)
        # Other rows of the same metrics are not in this section.
        self.assertNotIn(figures.ASK_PYTHON, section)
        self.assertNotIn("queue.Queue", section)
        # The summary compares the process actor with multiprocessing's best.
        self.assertIn(
            "| Process actor: ask round trip (from Rust) | 10.0 µs "
            f"({figures.PROC_ASK}) | multiprocessing (spawn): 35.0 µs (Pipe send() + recv()) | 3.50× |",
            text,
        )

    def test_issue_13_and_14_sections(self) -> None:
        text = report.render(made_up_run())
        handoff = text.split("## 9.")[1].split("## 10.")[0]
        # Every process-actor row and multiprocessing's two ways, per size.
        self.assertIn(f"| subactor | {figures.PROC_HANDOFF} | 20.0 µs", handoff)
        self.assertIn(f"| multiprocessing (spawn) | {figures.SHARED_MEMORY} | 400 µs", handoff)
        self.assertIn(f"| {figures.PY_PROC_HANDOFF} | the fastest SharedMemory | 10.00× | 5.00× |", handoff)
        self.assertIn(f"| {figures.PROC_HANDOFF} | the fastest Pipe send_bytes() | 2.00× | — |", handoff)
        self.assertIn("a process actor (section 4): from Rust p50 10.0 µs, from Python p50 15.0 µs.", handoff)
        numpy = text.split("## 10.")[1].split("## 11.")[0]
        self.assertIn("128\ntasks", numpy)
        self.assertIn("300x300", numpy)
        self.assertIn(f"| subactor | {figures.NUMPY_RUST} | 2.00 s | 1.00 s | 2.00× (2.00× – 2.00×) | 3 |", numpy)
        self.assertIn(f"| multiprocessing (fork) | {figures.NUMPY_POOL} | 2.00 s | 1.10 s | 1.82×", numpy)
        auto = text.split("## 11.")[1].split("## 12.")[0]
        self.assertIn('| from Python: placement="auto" | 13.0 ms (13.0 ms – 13.0 ms, n=10) | 1.28× |', auto)
        cluster = text.split("## 12.")[1]
        self.assertIn("nats-server: v2.9.10", cluster)
        self.assertIn(f"| async-nats (raw) | {figures.RAW_NATS_ASK} | 80.0 µs", cluster)
        self.assertIn("| 1.20× |", cluster)
        self.assertIn("Quoted, not measured: Ray, as published by Ray (not measured here)", cluster)
        # The summary compares the 1 GB handoff with multiprocessing's best at that size.
        self.assertIn("| Process actor: handoff of 1 GB (from Rust) | 20.0 µs", text)
        self.assertIn("| numpy job on process actors, speedup at 2 | 2.00×", text)

    def test_asyncio_rows_show_100_at_once_over_one(self) -> None:
        text = report.render(made_up_run())
        section = text.split("## 13. Asyncio actors: concurrent asks")[1].split("## Other")[0]
        self.assertIn(
            f"| subactor | {figures.async_many('interpreter')} | 22.0 ms | 22.0 ms – 22.0 ms | 10 | 2.00× |", section
        )
        self.assertIn(f"| subactor | {figures.async_one('process')} | 11.0 ms | 11.0 ms – 11.0 ms | 20 |  |", section)
        self.assertIn(f"| CPython alone | {figures.ASYNC_BASE_MANY} | 10.5 ms", section)
        self.assertIn("| 1.05× |", section)

    def test_a_shared_machine_is_said_so(self) -> None:
        self.assertNotIn("was shared", report.render(made_up_run()))
        busy = Load(600.0, 1200.0, 1100.0, 600.0, 0.0, (2.0, 2.0, 2.0), (2.0, 2.0, 2.0))
        self.assertIn("was shared during this run", report.render(made_up_run(load=busy)))

    def test_the_python_environment_is_reported(self) -> None:
        self.assertIn("no PYTHON* variable that changes the figures", report.render(made_up_run()))
        machine = dataclasses.replace(made_up_run().machine, python_env="PYTHONDONTWRITEBYTECODE=1")
        self.assertIn("| Python environment | PYTHONDONTWRITEBYTECODE=1 |", report.render(made_up_run(machine=machine)))

    def test_an_empty_run_renders(self) -> None:
        text = report.render(made_up_run(measurements=[], probes=[], notes=[]))
        self.assertIn("Not measured in this run.", text)
        self.assertIn("not measured", text)

    def test_saved_runs_read_back_and_summaries_drop_samples(self) -> None:
        data = made_up_run()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "run.json"
            data.save(path)
            again = report.RunData.load_from(path)
        self.assertEqual(report.render(again), report.render(data))
        summary = json.loads(json.dumps(report.summaries(data)))
        first = summary["measurements"][0]
        self.assertNotIn("samples", first)
        self.assertEqual(first["summary"]["median"], 0.011)


@unittest.skipUnless(importlib.util.find_spec("matplotlib"), "matplotlib is in the benchmark venv only")
class Plots(unittest.TestCase):
    def test_every_metric_gets_its_png(self) -> None:
        from harness import plots

        data = made_up_run()
        with tempfile.TemporaryDirectory() as folder:
            written = plots.write_all(data.measurements, data.probes, Path(folder))
            for name in written.values():
                self.assertGreater((Path(folder) / name).stat().st_size, 1000)
        self.assertEqual(
            set(written),
            {
                model.SPAWN,
                model.ROUND_TRIP,
                model.THROUGHPUT,
                model.CPU,
                model.HANDOFF,
                model.MEMORY,
                model.CORE_ASK,
                metrics.PROCESS.key,
                metrics.PROC_HANDOFF.key,
                metrics.NUMPY.key,
                metrics.AUTO.key,
                metrics.CLUSTER.key,
            },
        )


if __name__ == "__main__":
    unittest.main()
