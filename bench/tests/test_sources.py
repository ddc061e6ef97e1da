"""Tests of where measurements come from: the Rust benchmarks' records, and the
runners' shared logic."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import unittest

from harness import figures, model, rust
from harness.model import Measurement
from harness.runners.base import Config, Runner, Skip


class RustRecords(unittest.TestCase):
    def test_series_become_measurements_pooled_over_runs(self) -> None:
        runs = [
            rust.BenchRun(
                "foundation",
                {"cores": 2},
                [
                    {"key": "ask.blocking", "x": None, "unit": "s", "samples": [1e-6, 2e-6]},
                    {"key": "cpu.total", "x": 2.0, "unit": "s", "samples": [1.0]},
                    {"key": "no.such.series", "x": None, "unit": "s", "samples": [1.0]},
                ],
                1.0,
            ),
            rust.BenchRun("foundation", {}, [{"key": "cpu.total", "x": 2.0, "unit": "s", "samples": [1.1]}], 1.0),
            rust.BenchRun(
                "actors", {}, [{"key": "pipeline.rounds400", "x": 1.0, "unit": "items/s", "samples": [5.0]}], 1.0
            ),
        ]
        with contextlib.redirect_stderr(io.StringIO()) as warnings:
            found = rust.measurements(runs)
        self.assertIn("no.such.series", warnings.getvalue())
        ask = figures.one(found, model.ROUND_TRIP, model.SUBACTOR, figures.ASK_RUST)
        self.assertIsNotNone(ask)
        assert ask is not None
        self.assertEqual(ask.samples, (1e-6, 2e-6))
        cpu = figures.one(found, model.CPU, model.SUBACTOR, figures.CPU_TOTAL, 2.0)
        assert cpu is not None
        self.assertEqual(cpu.samples, (1.0, 1.1))
        pipeline = figures.find(found, model.PIPELINE)
        self.assertEqual([p.variant for p in pipeline], ["two stages, 400 rounds of work per item"])
        self.assertEqual(len(found), 3)  # the unknown series is left out

    def test_the_process_benchmark_gives_process_actor_rows(self) -> None:
        series = [
            {"key": "spawn.process", "x": None, "unit": "s", "samples": [4e-3]},
            {"key": "ask.process", "x": None, "unit": "s", "samples": [17e-6]},
            {"key": "tell.process", "x": None, "unit": "msg/s", "samples": [2e6]},
        ]
        found = rust.measurements([rust.BenchRun("process", {}, series, 1.0)])
        self.assertEqual(
            [(f.metric, f.system, f.variant) for f in found],
            [
                (model.SPAWN, model.SUBACTOR, figures.PROC_SPAWN),
                (model.ROUND_TRIP, model.SUBACTOR, figures.PROC_ASK),
                (model.THROUGHPUT, model.SUBACTOR, figures.PROC_TELL),
            ],
        )
        self.assertIn("process", rust.BENCHES)

    def test_the_placement_and_cluster_benchmarks_give_their_rows(self) -> None:
        placement = [
            {"key": "handoff.process", "x": 1024.0, "unit": "s", "samples": [20e-6]},
            {"key": "handoff.process_from_actor", "x": 1024.0, "unit": "s", "samples": [30e-6]},
            {"key": "numpy.total", "x": 2.0, "unit": "s", "samples": [1.0]},
            {"key": "auto.spawn.auto", "x": None, "unit": "s", "samples": [0.01]},
            {"key": "auto.ask.interpreter", "x": None, "unit": "s", "samples": [1e-6]},
        ]
        cluster = [
            {"key": "ask.remote", "x": None, "unit": "s", "samples": [1e-4]},
            {"key": "ask.raw_nats", "x": None, "unit": "s", "samples": [8e-5]},
            {"key": "tell.remote", "x": None, "unit": "msg/s", "samples": [3e5]},
            {"key": "node.down", "x": None, "unit": "s", "samples": [1.5]},
        ]
        found = rust.measurements(
            [rust.BenchRun("placement", {}, placement, 1.0), rust.BenchRun("cluster", {}, cluster, 1.0)]
        )
        self.assertEqual(
            [(f.metric, f.system, f.variant, f.x) for f in found],
            [
                (model.PROC_HANDOFF, model.SUBACTOR, figures.PROC_HANDOFF, 1024.0),
                (model.PROC_HANDOFF, model.SUBACTOR, figures.PROC_HANDOFF_ACTOR, 1024.0),
                (model.NUMPY, model.SUBACTOR, figures.NUMPY_RUST, 2.0),
                (model.AUTO_SPAWN, model.SUBACTOR, figures.AUTO_RUST["auto"], None),
                (model.AUTO_ASK, model.SUBACTOR, figures.AUTO_RUST["interpreter"], None),
                (model.REMOTE_ASK, model.SUBACTOR, figures.REMOTE_ASK_RUST, None),
                (model.REMOTE_ASK, model.RAW_NATS, figures.RAW_NATS_ASK, None),
                (model.REMOTE_TELL, model.SUBACTOR, figures.REMOTE_TELL_RUST, None),
                (model.NODE_DOWN, model.SUBACTOR, figures.NODE_DOWN_RUST, None),
            ],
        )
        self.assertIn("placement", rust.BENCHES)
        self.assertIn("cluster", rust.BENCHES)

    def test_the_observe_benchmark_gives_each_figure_off_and_on(self) -> None:
        series = [
            {"key": f"{key}.{state}", "x": None, "unit": "s", "samples": [1e-6]}
            for key in ("ask.python", "tell.python", "ask.core", "tell.core", "drain.core")
            for state in ("off", "on")
        ]
        found = rust.measurements([rust.BenchRun("observe", {}, series, 1.0)])
        self.assertEqual(len(found), 10)
        self.assertTrue(all(f.metric == model.METRICS_COST for f in found))
        variants = [(f.system, f.variant) for f in found]
        ask = figures.METRICS_COST_FIGURES[0][1]
        self.assertEqual(
            variants[:2], [(model.SUBACTOR, f"{ask}, metrics off"), (model.SUBACTOR, f"{ask}, metrics on")]
        )
        self.assertEqual({s for s, _ in variants[4:]}, {model.SUBACTOR_CORE})
        self.assertIn("observe", rust.BENCHES)

    def test_executables_come_from_cargo_messages(self) -> None:
        lines = [
            json.dumps(
                {
                    "reason": "compiler-artifact",
                    "target": {"name": "core", "kind": ["bench"]},
                    "executable": "/t/core-1",
                }
            ),
            json.dumps(
                {"reason": "compiler-artifact", "target": {"name": "subactor", "kind": ["lib"]}, "executable": None}
            ),
            "warning: not json",
            json.dumps({"reason": "build-finished", "success": True}),
        ]
        self.assertEqual({k: str(v) for k, v in rust.executables_from_cargo(lines).items()}, {"core": "/t/core-1"})

    def test_the_cluster_benchmark_is_skipped_without_nats_server(self) -> None:
        # The harness's entry module, imported as bench/run runs it.
        import importlib
        import os
        import tempfile
        from unittest import mock

        main = importlib.import_module("harness.__main__")
        with tempfile.TemporaryDirectory() as empty, mock.patch.dict(os.environ, {"PATH": empty}):
            self.assertEqual(main._unavailable("cluster"), main.NO_NATS)
            self.assertIsNone(main._unavailable("placement"))
        with tempfile.TemporaryDirectory() as bin_dir, mock.patch.dict(os.environ, {"PATH": bin_dir}):
            server = os.path.join(bin_dir, "nats-server")
            with open(server, "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(server, 0o755)
            self.assertIsNone(main._unavailable("cluster"))


def config(**changes: object) -> Config:
    values: dict[str, object] = {
        "quick": True,
        "cores": 2,
        "cpu_limit": 1000,
        "cpu_chunks": 7,
        "reps": 3,
        "sizes": (1024,),
        "metrics": (model.CPU, model.SPAWN, model.ROUND_TRIP, model.MEMORY),
    }
    values.update(changes)
    return Config(**values)  # type: ignore[arg-type]


class Counting(Runner):
    key = "test-counting"
    system = "test system"
    cpu_variant = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.jobs: list[int] = []

    def cpu_job(self, workers: int, spans: list[tuple[int, int]]) -> int:
        self.jobs.append(workers)
        return sum(hi - lo for lo, hi in spans)

    def spawn(self, cfg: Config) -> list[Measurement]:
        raise Skip("no spawning here")

    def round_trip(self, cfg: Config) -> list[Measurement]:
        raise RuntimeError("broken")


class Runners(unittest.TestCase):
    def test_spans_cut_the_job_as_the_foundation_benchmark_does(self) -> None:
        spans = config().spans()
        self.assertEqual(len(spans), 7)
        self.assertEqual(spans[0][0], 0)
        self.assertEqual(spans[-1][1], 1000)
        self.assertTrue(all(a[1] == b[0] for a, b in itertools.pairwise(spans)))
        self.assertEqual(spans[1], (1 * 1000 // 7, 2 * 1000 // 7))

    def test_cpu_runs_every_worker_count_in_every_round(self) -> None:
        runner = Counting()
        found, notes = runner.measure(config())
        self.assertEqual(runner.jobs, [1, 2, 1, 2, 1, 2])
        cpu = [f for f in found if f.metric == model.CPU]
        self.assertEqual([(f.x, len(f.samples)) for f in cpu], [(1, 3), (2, 3)])
        self.assertEqual(cpu[0].variant, "counting, start-up included")
        # A skipped figure and a failed one are reported; the rest is kept.
        self.assertEqual(notes, ["spawn: no spawning here", "round_trip: failed: RuntimeError: broken"])

    def test_a_runner_without_a_cpu_job_has_no_cpu_figure(self) -> None:
        class Nothing(Runner):
            key = "test-nothing"
            system = "nothing"

        self.assertEqual(Nothing().measure(config()), ([], []))

    def test_a_runner_measures_only_the_metrics_it_is_limited_to(self) -> None:
        class SpawnOnly(Counting):
            key = "test-spawn-only"
            measures = frozenset({model.SPAWN})

        runner = SpawnOnly()
        found, notes = runner.measure(config())
        # Neither the CPU job nor the broken round trip ran; the spawn did.
        self.assertEqual((found, runner.jobs), ([], []))
        self.assertEqual(notes, ["spawn: no spawning here"])

    def test_config_round_trips_through_json(self) -> None:
        c = config(numpy_tasks=9, numpy_size=17)
        self.assertEqual(Config.from_json(json.loads(json.dumps(c.to_json()))), c)
        # A config written before the numpy job existed reads with its defaults.
        old = {k: v for k, v in config().to_json().items() if not k.startswith("numpy")}
        self.assertEqual((Config.from_json(old).numpy_tasks, Config.from_json(old).numpy_size), (128, 300))

    def test_the_numpy_job_runs_every_worker_count_in_every_round_and_checks_the_sums(self) -> None:
        class Numpy(Runner):
            key = "test-numpy"
            system = "test system"
            numpy_variant = "numpy"

            def __init__(self, wrong_at: int | None = None) -> None:
                super().__init__()
                self.jobs: list[tuple[int, int]] = []
                self.warmed = 0
                self.wrong_at = wrong_at

            def numpy_warm_up(self) -> None:
                self.warmed += 1

            def numpy_job(self, workers: int, tasks: list[tuple[int, int]]) -> float:
                self.jobs.append((workers, len(tasks)))
                total = float(sum(seed * size for seed, size in tasks))
                return total * 1.01 if len(self.jobs) == self.wrong_at else total

        runner = Numpy()
        found, notes = runner.measure(config(metrics=(model.NUMPY,), numpy_tasks=5, numpy_size=3))
        self.assertEqual((runner.jobs, runner.warmed, notes), ([(1, 5), (2, 5)] * 3, 1, []))
        self.assertEqual(
            [(f.metric, f.variant, f.x, len(f.samples)) for f in found],
            [
                (model.NUMPY, "numpy", 1, 3),
                (model.NUMPY, "numpy", 2, 3),
            ],
        )
        # Workers that sum the tasks to something else fail the figure.
        found, notes = Numpy(wrong_at=4).measure(config(metrics=(model.NUMPY,)))
        self.assertEqual(found, [])
        self.assertTrue(notes[0].startswith("numpy: failed: RuntimeError: 2 workers summed"), notes)


if __name__ == "__main__":
    unittest.main()
