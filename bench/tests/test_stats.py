"""Tests of the suite's statistics and of how it writes figures."""

from __future__ import annotations

import math
import unittest

from harness import model
from harness.model import Measurement, merge
from harness.stats import (
    advantage,
    fmt_bytes,
    fmt_duration,
    fmt_rate,
    fmt_ratio,
    fmt_size_label,
    paired_ratios,
    percentile,
    summarize,
)


class Percentiles(unittest.TestCase):
    def test_interpolates_between_ranks_like_numpy(self) -> None:
        values = [1.0, 2.0, 3.0, 4.0]
        self.assertEqual(percentile(values, 0), 1.0)
        self.assertEqual(percentile(values, 100), 4.0)
        self.assertAlmostEqual(percentile(values, 50), 2.5)
        self.assertAlmostEqual(percentile(values, 10), 1.3)

    def test_one_value_is_every_percentile(self) -> None:
        self.assertEqual(percentile([7.0], 0), 7.0)
        self.assertEqual(percentile([7.0], 99), 7.0)

    def test_refuses_nothing_and_out_of_range(self) -> None:
        with self.assertRaises(ValueError):
            percentile([], 50)
        with self.assertRaises(ValueError):
            percentile([1.0], 101)


class Summaries(unittest.TestCase):
    def test_many_samples_spread_is_p10_to_p90(self) -> None:
        s = summarize([float(v) for v in range(101)])  # 0..100, unsorted order is fine too
        self.assertEqual((s.n, s.median, s.low, s.high, s.spread), (101, 50.0, 10.0, 90.0, "p10-p90"))
        self.assertAlmostEqual(s.p99, 99.0)

    def test_few_samples_spread_is_the_range(self) -> None:
        s = summarize([3.0, 1.0, 2.0])
        self.assertEqual((s.median, s.low, s.high, s.spread), (2.0, 1.0, 3.0, "min-max"))

    def test_order_does_not_matter(self) -> None:
        self.assertEqual(summarize([5.0, 1.0, 3.0, 2.0, 4.0]), summarize([1.0, 2.0, 3.0, 4.0, 5.0]))

    def test_relative_spread(self) -> None:
        self.assertAlmostEqual(summarize([1.0, 2.0, 3.0]).relative_spread, 1.0)
        self.assertTrue(math.isinf(summarize([0.0]).relative_spread))

    def test_no_samples_is_an_error(self) -> None:
        with self.assertRaises(ValueError):
            summarize([])


class Ratios(unittest.TestCase):
    def test_pairs_runs_of_the_same_round(self) -> None:
        self.assertEqual(paired_ratios([4.0, 6.0], [2.0, 2.0]), [2.0, 3.0])
        with self.assertRaises(ValueError):
            paired_ratios([1.0], [1.0, 2.0])

    def test_advantage_reads_the_same_way_for_times_and_rates(self) -> None:
        # subactor 1 µs, peer 20 µs: subactor 20x better.
        self.assertEqual(advantage(1.0, 20.0, higher_is_better=False), 20.0)
        # subactor 2 M msg/s, peer 500 k msg/s: subactor 4x better.
        self.assertEqual(advantage(2e6, 5e5, higher_is_better=True), 4.0)
        # A better peer gives less than 1.
        self.assertEqual(advantage(10.0, 5.0, higher_is_better=False), 0.5)


class Formatting(unittest.TestCase):
    def test_durations_pick_a_readable_unit(self) -> None:
        self.assertEqual(fmt_duration(942e-9), "942 ns")
        self.assertEqual(fmt_duration(1.58e-6), "1.58 µs")
        self.assertEqual(fmt_duration(11.1e-3), "11.1 ms")
        self.assertEqual(fmt_duration(2.1), "2.10 s")
        self.assertEqual(fmt_duration(float("nan")), "n/a")

    def test_rates_sizes_and_ratios(self) -> None:
        self.assertEqual(fmt_rate(1_610_000), "1.61 Mmsg/s")
        self.assertEqual(fmt_rate(599_000), "599 kmsg/s")
        self.assertEqual(fmt_bytes(2.66 * (1 << 20)), "2.66 MiB")
        self.assertEqual(fmt_bytes(512), "512 B")
        self.assertEqual(fmt_size_label(100 << 20), "100 MB")
        self.assertEqual(fmt_size_label(1 << 30), "1 GB")
        self.assertEqual(fmt_ratio(1.234), "1.23×")
        self.assertEqual(fmt_ratio(76139.2), "76,139×")
        self.assertEqual(fmt_ratio(math.inf), "n/a")


class Merging(unittest.TestCase):
    def test_pools_samples_of_the_same_figure_in_order(self) -> None:
        a = Measurement(model.CPU, model.SUBACTOR, "v", model.SECONDS, (1.0,), 2.0)
        b = Measurement(model.CPU, model.SUBACTOR, "v", model.SECONDS, (3.0,), 2.0)
        other = Measurement(model.CPU, model.SUBACTOR, "v", model.SECONDS, (9.0,), 1.0)
        merged = merge([a, other, b])
        self.assertEqual(len(merged), 2)
        self.assertEqual(merged[0].samples, (1.0, 3.0))
        self.assertEqual(merged[1].samples, (9.0,))

    def test_round_trips_through_json(self) -> None:
        m = Measurement(model.HANDOFF, model.THREADS, "queue", model.SECONDS, (1e-6, 2e-6), 1024.0, "note")
        self.assertEqual(Measurement.from_json(m.to_json()), m)


if __name__ == "__main__":
    unittest.main()
