"""The report's PNG plots (matplotlib, from the benchmark venv).

One plot per metric: bars with their spread for single figures (log scale where the
systems differ by orders of magnitude), speedup against workers as lines, handoff time
against payload size on log-log axes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from harness import figures, metrics, model
from harness.machine import Probe
from harness.model import Measurement
from harness.stats import fmt_size_label, summarize

# subactor in one colour, everyone else in others that stay the same across plots.
COLOURS = {
    model.SUBACTOR: "#d62728",
    model.SUBACTOR_CORE: "#d62728",
    model.MP_FORK: "#1f77b4",
    model.MP_FORKSERVER: "#aec7e8",
    model.MP_SPAWN: "#17becf",
    model.THREADS: "#7f7f7f",
    model.INTERPRETERS: "#2ca02c",
    model.INTERPRETER_POOL: "#9467bd",
    model.BASELINE: "#bcbd22",
    model.FLUME: "#ff7f0e",
    model.RAW_NATS: "#ff7f0e",
}
OTHER = "#8c564b"
SPREAD = "median; whiskers: p10-p90, or min-max under 10 samples"

# What the y axis of each bar plot shows, in which unit.
SCALES: dict[str, tuple[float, str]] = {
    model.SPAWN: (1e3, "ms"),
    model.ROUND_TRIP: (1e6, "µs"),
    model.THROUGHPUT: (1e-6, "million messages per second"),
    model.MEMORY: (1 / (1 << 20), "MiB"),
    model.CORE_ASK: (1e6, "µs"),
    model.CORE_TELL: (1e-6, "million messages per second"),
    model.AUTO_SPAWN: (1e3, "ms"),
    model.AUTO_ASK: (1e6, "µs"),
    model.REMOTE_ASK: (1e6, "µs"),
    model.REMOTE_TELL: (1e-3, "thousand messages per second"),
    model.NODE_DOWN: (1.0, "s"),
}


def write_all(measurements: list[Measurement], probes: list[Probe], out: Path) -> dict[str, str]:
    """Writes every plot there is data for into ``out``; returns metric -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    written: dict[str, str] = {}
    for metric in (metrics.SPAWN, metrics.ROUND_TRIP, metrics.THROUGHPUT, metrics.MEMORY):
        if _bars(measurements, metric, out / metric.plot):
            written[metric.key] = metric.plot
    if _cpu(measurements, probes, out / metrics.CPU.plot):
        written[model.CPU] = metrics.CPU.plot
    if _handoff(measurements, out / metrics.HANDOFF.plot):
        written[model.HANDOFF] = metrics.HANDOFF.plot
    if _core(measurements, out / metrics.CORE_ASK.plot):
        written[model.CORE_ASK] = metrics.CORE_ASK.plot
    if _process(measurements, out / metrics.PROCESS.plot):
        written[metrics.PROCESS.key] = metrics.PROCESS.plot
    if _process_handoff(measurements, out / metrics.PROC_HANDOFF.plot):
        written[metrics.PROC_HANDOFF.key] = metrics.PROC_HANDOFF.plot
    if _speedup(measurements, probes, out / metrics.NUMPY.plot, model.NUMPY, "numpy job on N workers"):
        written[metrics.NUMPY.key] = metrics.NUMPY.plot
    if _auto(measurements, out / metrics.AUTO.plot):
        written[metrics.AUTO.key] = metrics.AUTO.plot
    if _cluster(measurements, out / metrics.CLUSTER.plot):
        written[metrics.CLUSTER.key] = metrics.CLUSTER.plot
    return written


def _colour(system: str) -> str:
    return COLOURS.get(system, OTHER)


def _label(system: str, variant: str, width: int = 55) -> str:
    """ "system: variant", wrapped onto lines of ``width``."""
    return "\n".join(textwrap.wrap(f"{system}: {variant}", width))


def _bar_axes(
    ax: Any, ms: list[Measurement], metric: str, title: str, log: bool, only: list[tuple[str, str]] | None = None
) -> bool:
    """Bars of the rows of ``metric`` (those of ``only``, when given)."""
    chosen = figures.rows(ms, metric) if only is None else only
    rows = [r for r in chosen if (m := figures.one(ms, metric, *r)) and m.samples]
    if not rows:
        return False
    scale, unit = SCALES[metric]
    labels, medians, lows, highs, colours = [], [], [], [], []
    for system, variant in rows:
        m = figures.one(ms, metric, system, variant)
        assert m is not None
        s = summarize(m.samples)
        labels.append(_label(system, variant))
        medians.append(s.median * scale)
        lows.append((s.median - s.low) * scale)
        highs.append((s.high - s.median) * scale)
        colours.append(_colour(system))
    positions = list(range(len(rows)))[::-1]
    ax.barh(positions, medians, xerr=[lows, highs], color=colours, capsize=3, error_kw={"elinewidth": 1})
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_xlabel(unit + (" (log scale)" if log else ""))
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_xscale("log")
    ax.grid(axis="x", which="both", alpha=0.3)
    # Each median written just past the end of its whisker.
    for position, median, high in zip(positions, medians, highs, strict=True):
        ax.annotate(
            f"{median:,.3g}",
            (median + high, position),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    ax.margins(x=0.12)
    return True


def _bars(ms: list[Measurement], metric: metrics.Metric, path: Path) -> bool:
    import matplotlib.pyplot as plt

    rows = figures.rows(ms, metric.key)
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(10, 0.55 * len(rows) + 1.6))
    note = "higher is better" if metric.higher_is_better else "lower is better"
    ok = _bar_axes(ax, ms, metric.key, f"{metric.title} ({note})\n{SPREAD}", log=True)
    if ok:
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    plt.close(fig)
    return ok


def _cpu(ms: list[Measurement], probes: list[Probe], path: Path) -> bool:
    return _speedup(ms, probes, path, model.CPU, "CPU-bound speedup")


def _speedup(ms: list[Measurement], probes: list[Probe], path: Path, metric: str, title: str) -> bool:
    """Speedup over 1 worker against workers, one line per row of ``metric``."""
    import matplotlib.pyplot as plt

    lines = figures.rows(ms, metric)
    if not lines:
        return False
    fig, ax = plt.subplots(figsize=(9, 7))
    top = 1
    for i, (system, variant) in enumerate(lines):
        speedups = figures.speedups(ms, system, variant, metric)
        if not speedups:
            continue
        workers = sorted(speedups)
        top = max(top, workers[-1])
        stats = [summarize(speedups[w]) for w in workers]
        style = "--" if "work only" in variant else "-"
        dodge = (i - (len(lines) - 1) / 2) * 0.02  # so that whiskers do not hide each other
        ax.errorbar(
            [w + dodge for w in workers],
            [s.median for s in stats],
            yerr=[[s.median - s.low for s in stats], [s.high - s.median for s in stats]],
            label=_label(system, variant, 90),
            color=_colour(system),
            linestyle=style,
            marker="o",
            capsize=3,
        )
    ideal = list(range(1, top + 1))
    ax.plot(ideal, ideal, color="black", linewidth=0.8, linestyle=":", label="ideal")
    machine = [p.parallelism for p in probes if p.n == top]
    if machine:
        s = summarize(machine)
        ax.errorbar(
            [top],
            [s.median],
            yerr=[[s.median - s.low], [s.high - s.median]],
            fmt="s",
            color="black",
            capsize=3,
            label="machine probe (pure-Python loop in N processes)",
        )
    ax.set_xticks(ideal)
    ax.set_xlabel("workers")
    ax.set_ylabel("speedup over 1 worker (same round)")
    ax.set_title(f"{title}: speedup over the rounds (higher is better)\n{SPREAD}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _handoff(ms: list[Measurement], path: Path) -> bool:
    import matplotlib.pyplot as plt

    lines = figures.rows(ms, model.HANDOFF)
    if not lines:
        return False
    fig, ax = plt.subplots(figsize=(10, 8.5))
    markers = "osD^v<>p*h"
    for i, (system, variant) in enumerate(lines):
        found = sorted(
            (m for m in figures.find(ms, model.HANDOFF, system, variant) if m.samples), key=lambda m: m.x or 0
        )
        if not found:
            continue
        stats = [summarize(m.samples) for m in found]
        xs = [m.x for m in found]
        ax.errorbar(
            xs,
            [s.median * 1e6 for s in stats],
            yerr=[[(s.median - s.low) * 1e6 for s in stats], [(s.high - s.median) * 1e6 for s in stats]],
            label=_label(system, variant, 90),
            color=_colour(system),
            marker=markers[i % len(markers)],
            linestyle="-" if figures.is_subactor(system) and variant == figures.HANDOFF_BUFFER else "--",
            linewidth=2.5 if variant == figures.HANDOFF_BUFFER else 1,
            capsize=3,
        )
    ax.axhline(5, color="black", linewidth=0.8, linestyle=":", label="goal: 5 µs")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = figures.sizes(ms)
    ax.set_xticks(sizes, [fmt_size_label(x) for x in sizes])
    ax.set_xlabel("payload")
    ax.set_ylabel("handoff time, µs (log scale)")
    ax.set_title(f"Handoff of a payload to a worker (lower is better)\n{SPREAD}", fontsize=10)
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _core(ms: list[Measurement], path: Path) -> bool:
    import matplotlib.pyplot as plt

    if not figures.rows(ms, model.CORE_ASK) and not figures.rows(ms, model.CORE_TELL):
        return False
    fig, (ask, tell) = plt.subplots(2, 1, figsize=(9, 5.5))
    _bar_axes(ask, ms, model.CORE_ASK, "Rust core vs raw flume: ask round trip (lower is better)", log=False)
    _bar_axes(tell, ms, model.CORE_TELL, "Rust core vs raw flume: one-way throughput (higher is better)", log=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _process(ms: list[Measurement], path: Path) -> bool:
    """Process actors beside multiprocessing: spawn, ask round trip, tell throughput."""
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    titles = {
        model.SPAWN: "spawn until the first answer (lower is better)",
        model.ROUND_TRIP: "ask round trip of an int (lower is better)",
        model.THROUGHPUT: "tell throughput of ints into one worker (higher is better)",
    }
    panels = [
        (metric, rows)
        for metric in (metrics.SPAWN, metrics.ROUND_TRIP, metrics.THROUGHPUT)
        if (rows := figures.process_rows(ms, metric.key))
    ]
    if not panels:
        return False
    heights = [0.5 * len(rows) + 1.2 for _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, sum(heights) + 0.4), height_ratios=heights, squeeze=False)
    for ax, (metric, rows) in zip(axes[:, 0], panels, strict=True):
        # Spawns range from a fork's few ms to a fresh interpreter's tens: log scale,
        # labelled in plain numbers.
        log = metric.key == model.SPAWN
        _bar_axes(ax, ms, metric.key, titles[metric.key], log=log, only=rows)
        if log:
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    fig.suptitle(f"Process actors beside multiprocessing\n{SPREAD}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _process_handoff(ms: list[Measurement], path: Path) -> bool:
    """Handoff time against payload size: process actors beside SharedMemory and Pipe."""
    import matplotlib.pyplot as plt

    mine = [(model.PROC_HANDOFF, s, v) for s, v in figures.rows(ms, model.PROC_HANDOFF)]
    if not mine:
        return False
    peers = [
        (model.HANDOFF, s, v)
        for s, v in figures.rows(ms, model.HANDOFF)
        if s in figures.MP_SYSTEMS and v in (figures.SHARED_MEMORY, figures.PIPE_BYTES)
    ]
    fig, ax = plt.subplots(figsize=(10, 8))
    markers = "osD^v<>p*h"
    sizes: set[float] = set()
    for i, (metric, system, variant) in enumerate(mine + peers):
        found = sorted((m for m in figures.find(ms, metric, system, variant) if m.samples), key=lambda m: m.x or 0)
        if not found:
            continue
        stats = [summarize(m.samples) for m in found]
        xs = [m.x or 0.0 for m in found]
        sizes.update(xs)
        ax.errorbar(
            xs,
            [s.median * 1e6 for s in stats],
            yerr=[[(s.median - s.low) * 1e6 for s in stats], [(s.high - s.median) * 1e6 for s in stats]],
            label=_label(system, variant, 90),
            color=_colour(system),
            marker=markers[i % len(markers)],
            linestyle="-" if metric == model.PROC_HANDOFF else "--",
            linewidth=2.5 if variant == figures.PROC_HANDOFF else 1,
            alpha=1.0 if metric == model.PROC_HANDOFF else 0.8,
            capsize=3,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ordered = sorted(sizes)
    ax.set_xticks(ordered, [fmt_size_label(x) for x in ordered])
    ax.set_xlabel("payload")
    ax.set_ylabel("handoff time, µs (log scale)")
    ax.set_title(
        "A payload made visible to a worker in another process, which reads its first and last byte "
        f"(lower is better)\n{SPREAD}",
        fontsize=10,
    )
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _auto(ms: list[Measurement], path: Path) -> bool:
    """Placement auto beside interpreter: spawn and ask, from Rust and from Python."""
    import matplotlib.pyplot as plt

    panels = [
        (m, t)
        for m, t in ((model.AUTO_SPAWN, "spawn until the first answer"), (model.AUTO_ASK, "ask round trip"))
        if figures.rows(ms, m)
    ]
    if not panels:
        return False
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 3.2 * len(panels)), squeeze=False)
    for ax, (metric, title) in zip(axes[:, 0], panels, strict=True):
        _bar_axes(ax, ms, metric, f"{title} (lower is better)", log=False)
    fig.suptitle(f"A pure-Python actor: placement auto beside interpreter\n{SPREAD}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _cluster(ms: list[Measurement], path: Path) -> bool:
    """Nodes over NATS: remote ask beside raw request/reply (and Ray's published call
    time, marked as such), remote tell throughput, node loss, each with its goal line."""
    import matplotlib.pyplot as plt

    from harness import goals

    panels = [
        (model.REMOTE_ASK, "round trip through nats-server on loopback (lower is better)"),
        (model.REMOTE_TELL, "remote tell throughput from one sender (higher is better)"),
        (model.NODE_DOWN, "node loss: SIGKILL until a monitor's Down, default settings (lower is better)"),
    ]
    panels = [(m, t) for m, t in panels if figures.rows(ms, m)]
    if not panels:
        return False
    heights = [0.6 * len(figures.rows(ms, m)) + 1.4 for m, _ in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, sum(heights) + 0.6), height_ratios=heights, squeeze=False)
    for ax, (metric, title) in zip(axes[:, 0], panels, strict=True):
        _bar_axes(ax, ms, metric, title, log=False)
        scale, _ = SCALES[metric]
        if metric == model.REMOTE_ASK:
            raw = figures.one(ms, metric, model.RAW_NATS, figures.RAW_NATS_ASK)
            if raw and raw.samples:
                limit = summarize(raw.samples).median * goals.REMOTE_ASK_FACTOR * scale
                ax.axvline(limit, color="black", linestyle=":", linewidth=1, label="goal: 1.5x raw's p50")
            ax.axvline(
                500.0, color="#9467bd", linestyle="--", linewidth=1, label="Ray, published (not measured): ~0.5 ms"
            )
        elif metric == model.REMOTE_TELL:
            ax.axvline(
                goals.REMOTE_TELL_RATE * scale, color="black", linestyle=":", linewidth=1, label="goal: 100,000 msg/s"
            )
        else:
            ax.axvline(goals.NODE_DOWN_LIMIT * scale, color="black", linestyle=":", linewidth=1, label="goal: 2 s")
            for m in figures.find(ms, metric):
                rows = figures.rows(ms, metric)
                position = len(rows) - 1 - rows.index((m.system, m.variant))
                ax.plot([v * scale for v in m.samples], [position] * len(m.samples), "k.", markersize=5)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Nodes over NATS\n{SPREAD}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
