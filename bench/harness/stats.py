"""Statistics of samples: medians, spreads, ratios; and how figures are written.

Only the standard library: the unit tests run without the benchmark's venv.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Below this many samples, the spread is the full range (min-max): percentiles of a
# handful of runs would only interpolate between them.
FEW = 10


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of sorted values, interpolated linearly between
    the two nearest ranks (numpy's default method)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile {p} is not within 0..100")
    rank = (len(sorted_values) - 1) * p / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)


@dataclass(frozen=True)
class Summary:
    """A series of samples in a few numbers: the median and a spread around it."""

    n: int
    median: float
    low: float
    high: float
    p99: float
    spread: str  # "p10-p90", or "min-max" for fewer than FEW samples

    @property
    def relative_spread(self) -> float:
        """The spread's width relative to the median."""
        return (self.high - self.low) / self.median if self.median else math.inf


def summarize(samples: Sequence[float]) -> Summary:
    """The median of ``samples``, with p10-p90 as spread (min-max when there are
    fewer than :data:`FEW`)."""
    values = sorted(samples)
    if not values:
        raise ValueError("no samples to summarize")
    if len(values) < FEW:
        low, high, kind = values[0], values[-1], "min-max"
    else:
        low, high, kind = percentile(values, 10), percentile(values, 90), "p10-p90"
    return Summary(len(values), percentile(values, 50), low, high, percentile(values, 99), kind)


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """``numerators[i] / denominators[i]``: for runs that belong together (the one- and
    the N-worker run of the same repetition), so that slow drift of a shared machine
    cancels out of each ratio."""
    if len(numerators) != len(denominators):
        raise ValueError(f"cannot pair {len(numerators)} samples with {len(denominators)}")
    return [n / d for n, d in zip(numerators, denominators, strict=True) if d]


def advantage(reference: float, other: float, higher_is_better: bool) -> float:
    """How many times better ``reference`` is than ``other``: above 1 the reference is
    better, below 1 the other is. For times (lower is better) that is other / reference;
    for rates (higher is better), reference / other."""
    if higher_is_better:
        return reference / other if other else math.inf
    return other / reference if reference else math.inf


# ---- writing figures -------------------------------------------------------------


def fmt_duration(seconds: float) -> str:
    """A duration with a unit that keeps three significant digits readable."""
    if math.isnan(seconds):
        return "n/a"
    magnitude = abs(seconds)
    for limit, scale, unit in ((1e-6, 1e9, "ns"), (1e-3, 1e6, "µs"), (1.0, 1e3, "ms")):
        if magnitude < limit:
            return f"{_three(seconds * scale)} {unit}"
    return f"{_three(seconds)} s"


def fmt_rate(per_second: float, unit: str = "msg/s") -> str:
    """A rate, with k/M prefixes."""
    for limit, scale, prefix in ((1e3, 1.0, ""), (1e6, 1e-3, "k"), (math.inf, 1e-6, "M")):
        if abs(per_second) < limit:
            return f"{_three(per_second * scale)} {prefix}{unit}"
    raise AssertionError("unreachable")


def fmt_bytes(n: float) -> str:
    """A size in binary units (KiB, MiB, GiB)."""
    for limit, scale, unit in ((1 << 10, 1, "B"), (1 << 20, 1 << 10, "KiB"), (1 << 30, 1 << 20, "MiB")):
        if abs(n) < limit:
            return f"{_three(n / scale)} {unit}"
    return f"{_three(n / (1 << 30))} GiB"


def fmt_size_label(n: float) -> str:
    """A payload size as the benchmarks name it: 1 KB, 1 MB, 100 MB, 1 GB (powers of
    two, as in benches/arena.rs)."""
    for scale, unit in ((1 << 30, "GB"), (1 << 20, "MB"), (1 << 10, "KB")):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n:g} B"


def fmt_ratio(ratio: float) -> str:
    if math.isinf(ratio) or math.isnan(ratio):
        return "n/a"
    if ratio >= 100:
        return f"{ratio:,.0f}×"
    return f"{ratio:.2f}×"


def fmt_value(value: float, unit: str) -> str:
    """A value in its base unit (see harness.model), written for people."""
    if unit == "s":
        return fmt_duration(value)
    if unit == "B":
        return fmt_bytes(value)
    if unit.endswith("/s"):
        return fmt_rate(value, unit)
    if unit == "x":
        return fmt_ratio(value)
    return f"{_three(value)} {unit}"


def _three(v: float) -> str:
    """Three significant digits (more for large numbers), thousands separated."""
    magnitude = abs(v)
    if magnitude >= 100:
        return f"{v:,.0f}"
    if magnitude >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"
