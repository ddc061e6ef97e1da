"""REPORT.md: every metric as a table (median, spread, ratio against subactor), its plot,
how it was measured, the goals and whether the run met them, and the machine it ran on.

:func:`render` is a pure function of a :class:`RunData`, so the report can be written
again from a saved run (``python -m harness --from target/bench/run.json``) and tested
without running anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import figures, goals, metrics, model
from harness.machine import Load, MachineInfo, Probe
from harness.model import Measurement
from harness.stats import (
    Summary,
    advantage,
    fmt_duration,
    fmt_ratio,
    fmt_size_label,
    fmt_value,
    summarize,
)

# A spread wider than this (relative to the median) is marked: the samples fall into
# groups, and the median depends on which group was the larger in this run.
WIDE = 1.0
# The machine counts as shared when others used more than this share of its CPU, or
# when a parallelism probe found less than this share of its cores.
BUSY = 0.10
SLOW = 0.9


@dataclass
class RunData:
    """Everything one run produced, as the report needs it."""

    machine: MachineInfo
    command: str
    quick: bool
    rounds: int
    seconds: float
    load: Load
    probes: list[Probe]
    measurements: list[Measurement]
    notes: list[str]
    rust_meta: dict[str, Any]
    plots: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine.to_json(),
            "command": self.command,
            "quick": self.quick,
            "rounds": self.rounds,
            "seconds": self.seconds,
            "load": self.load.to_json(),
            "probes": [p.to_json() for p in self.probes],
            "measurements": [m.to_json() for m in self.measurements],
            "notes": self.notes,
            "rust_meta": self.rust_meta,
            "plots": self.plots,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> RunData:
        load = {k: v for k, v in data["load"].items() if k != "others"}
        load["loadavg_before"] = tuple(load["loadavg_before"])
        load["loadavg_after"] = tuple(load["loadavg_after"])
        return RunData(
            machine=MachineInfo(**data["machine"]),
            command=data["command"],
            quick=data["quick"],
            rounds=data["rounds"],
            seconds=data["seconds"],
            load=Load(**load),
            probes=[Probe(p["n"], p["alone"], p["together"]) for p in data["probes"]],
            measurements=[Measurement.from_json(m) for m in data["measurements"]],
            notes=list(data["notes"]),
            rust_meta=dict(data["rust_meta"]),
            plots=dict(data.get("plots", {})),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json()))

    @staticmethod
    def load_from(path: Path) -> RunData:
        return RunData.from_json(json.loads(path.read_text()))


def summaries(data: RunData) -> dict[str, Any]:
    """The run without its raw samples: what bench/results/results.json keeps."""
    out = data.to_json()
    out["measurements"] = []
    for m in data.measurements:
        s = summarize(m.samples) if m.samples else None
        entry = m.to_json()
        del entry["samples"]
        entry["summary"] = (
            None
            if s is None
            else {
                "n": s.n,
                "median": s.median,
                "low": s.low,
                "high": s.high,
                "p99": s.p99,
                "spread": s.spread,
            }
        )
        out["measurements"].append(entry)
    return out


# ---- rendering -------------------------------------------------------------------


def render(data: RunData) -> str:
    ms = data.measurements
    cores = data.machine.cores
    fill = {
        "limit": int(data.rust_meta.get("cpu_limit", 0)),
        "chunks": int(data.rust_meta.get("cpu_chunks", 0)),
        "cores": cores,
        "numpy_tasks": int(data.rust_meta.get("numpy_tasks", 0)),
        "numpy_size": int(data.rust_meta.get("numpy_size", 0)),
        "nats_server": str(data.rust_meta.get("nats_server", "nats-server")),
        "ray": f"Quoted, not measured: {figures.RAY_PUBLISHED}. It is a figure of another system on another "
        "machine, for scale only; no ratio is taken from it.",
    }
    out: list[str] = []
    out += _header(data)
    out += _machine(data)
    out += _goals(goals.evaluate(ms, data.probes, cores))
    out += _summary(ms)
    number = 0
    for metric in (metrics.SPAWN, metrics.ROUND_TRIP, metrics.THROUGHPUT):
        number += 1
        out += _section(number, metric, data, fill)
        out += _plain_table(ms, metric, "subactor advantage")
    number += 1
    out += _section(number, metrics.PROCESS, data, fill)
    out += _process_tables(ms)
    number += 1
    out += _section(number, metrics.CPU, data, fill)
    out += _cpu_table(ms, data.probes)
    number += 1
    out += _section(number, metrics.HANDOFF, data, fill)
    out += _handoff_tables(ms, data.quick)
    number += 1
    out += _section(number, metrics.MEMORY, data, fill)
    out += _plain_table(ms, metrics.MEMORY, "subactor advantage")
    number += 1
    out += _section(number, metrics.CORE_ASK, data, fill)
    out += ["**Ask round trip**", ""]
    out += _plain_table(ms, metrics.CORE_ASK, "core overhead")
    out += ["**One-way throughput**", ""]
    out += _plain_table(ms, metrics.CORE_TELL, "core overhead")
    number += 1
    out += _section(number, metrics.PROC_HANDOFF, data, fill)
    out += _process_handoff_tables(ms)
    number += 1
    out += _section(number, metrics.NUMPY, data, fill)
    out += _speedup_table(ms, model.NUMPY, data.probes, figures.NUMPY_RUST)
    number += 1
    out += _section(number, metrics.AUTO, data, fill)
    out += _auto_table(ms)
    number += 1
    out += _section(number, metrics.CLUSTER, data, fill)
    out += _cluster_tables(ms)
    number += 1
    out += _section(number, metrics.ASYNC, data, fill)
    out += _asyncio_table(ms)
    number += 1
    out += _section(number, metrics.METRICS_COST, data, fill)
    out += _metrics_cost_table(ms)
    out += _pipeline(ms)
    out += _reading()
    out += _notes(data.notes)
    return "\n".join(out).rstrip() + "\n"


def _header(data: RunData) -> list[str]:
    kind = "quick run (`--quick`: fewer samples, smaller CPU job)" if data.quick else "full run"
    commit = data.machine.commit[:12] + (" with uncommitted changes" if data.machine.dirty else "")
    return [
        "# subactor beside its peers: benchmark report",
        "",
        f"Written by `bench/run` on {data.machine.date}: a {kind} of {data.rounds} rounds that took "
        f"{data.seconds / 60:.1f} min, at commit `{commit}`. Every figure below was measured in this one run; "
        "none is copied from elsewhere.",
        "",
        "Reproduce it with:",
        "",
        "```sh",
        data.command,
        "```",
        "",
    ]


def _machine(data: RunData) -> list[str]:
    m, load = data.machine, data.load
    share = load.others / load.capacity if load.capacity else 0.0
    parallelism = [p.parallelism for p in data.probes]
    rows = [
        ["cores", str(m.cores)],
        ["CPU", m.cpu_model],
        ["kernel", m.kernel],
        ["memory", f"{m.memory_gib:.1f} GiB"],
        ["Python of the peers", m.python],
        ["Python of subactor's benchmarks", str(data.rust_meta.get("python", "unknown"))],
        ["Python environment", m.python_env or "no PYTHON* variable that changes the figures"],
        ["Rust", m.rustc],
        ["commit", f"`{m.commit}`" + (" (+ uncommitted changes)" if m.dirty else "")],
        [
            "load average (1, 5, 15 min)",
            f"{_loadavg(load.loadavg_before)} at the start, {_loadavg(load.loadavg_after)} at the end",
        ],
        [
            "CPU used by other processes",
            f"{load.others:.0f} core-seconds of the {load.capacity:.0f} available during the run ({share:.0%}); "
            f"steal time {load.steal:.1f} s",
        ],
        [
            "parallelism probe, per round",
            ", ".join(fmt_ratio(p) for p in parallelism) + f" (ideal {fmt_ratio(float(m.cores))})"
            if parallelism
            else "not run",
        ],
    ]
    out = ["## Machine", ""] + _table(["", ""], rows) + [""]
    worst = min(parallelism, default=float(m.cores))
    signs = []
    if share > BUSY:
        signs.append(f"other processes used {share:.0%} of its CPU")
    if worst < SLOW * m.cores:
        signs.append(
            f"the parallelism probe found as little as {fmt_ratio(worst)} of the ideal {fmt_ratio(float(m.cores))}"
            + ("" if share > BUSY else " (a virtual machine's host can take a core away unseen from inside)")
        )
    if signs:
        out += [
            f"**The machine was shared during this run**: {'; '.join(signs)}. Figures that need every core (the "
            "CPU-bound speedup above all) are bounded by that, and every figure is noisier than on an idle machine. "
            "Systems were measured round by round, one after the other, so the load fell on all of them alike.",
            "",
        ]
    return out


def _loadavg(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def _goals(results: list[goals.Goal]) -> list[str]:
    rows = []
    for g in results:
        met = {True: "**met**", False: "**missed**", None: "not measured"}[g.met]
        rows.append([g.name, g.target, g.figure + (f" ({g.note})" if g.note else ""), met])
    return ["## Goals", ""] + _table(["goal", "target", "figure in this run", ""], rows) + [""]


@dataclass(frozen=True)
class _Figure:
    """One median of the summary, with what it is."""

    system: str
    label: str
    value: float
    unit: str

    def cell(self) -> str:
        return f"{fmt_value(self.value, self.unit)} ({self.label})"


def _summary(ms: list[Measurement]) -> list[str]:
    rows = []
    for title, mine, peers, higher in _summary_items(ms):
        row = [title, mine.cell()]
        for candidates in (peers, [p for p in peers if p.system in figures.PARALLEL_PEERS]):
            if candidates:
                best = (max if higher else min)(candidates, key=lambda f: f.value)
                row += [f"{best.system}: {best.cell()}", fmt_ratio(advantage(mine.value, best.value, higher))]
            else:
                row += ["not measured", ""]
        rows.append(row)
    if not rows:
        return []
    header = ["metric", "subactor", "best peer", "subactor advantage", "best parallel peer", "subactor advantage"]
    return (
        [
            "## Summary",
            "",
            "Medians. The advantage is how many times better subactor's figure is (below 1: the peer's is). "
            "Parallel peers are those that run Python on several cores at once: multiprocessing and the PEP 734 "
            "interpreters (threads share one GIL).",
            "",
        ]
        + _table(header, rows)
        + [""]
    )


def _summary_items(ms: list[Measurement]) -> list[tuple[str, _Figure, list[_Figure], bool]]:
    """(title, subactor's figure, the peers' figures, higher is better) per metric."""
    items: list[tuple[str, _Figure, list[_Figure], bool]] = []

    def peers_of(found: list[Measurement]) -> list[_Figure]:
        return [
            _Figure(m.system, m.variant, summarize(m.samples).median, m.unit)
            for m in found
            if m.samples and m.system in model.SYSTEMS and not figures.is_subactor(m.system)
        ]

    for metric, variant in (
        (metrics.SPAWN, figures.SPAWN_ACTOR),
        (metrics.ROUND_TRIP, figures.ASK_PYTHON),
        (metrics.THROUGHPUT, figures.TELL_RUST),
    ):
        mine = figures.one(ms, metric.key, model.SUBACTOR, variant)
        if mine and mine.samples:
            figure = _Figure(model.SUBACTOR, variant, summarize(mine.samples).median, mine.unit)
            items.append((metric.title, figure, peers_of(figures.find(ms, metric.key)), metric.higher_is_better))

    for variant, how, where in (
        (figures.CPU_TOTAL, "start-up included", ""),
        (figures.PY_CPU, "rt.executor().map, start-up included", ", from Python"),
    ):
        speedups = figures.speedups(ms, model.SUBACTOR, variant)
        if not speedups or max(speedups) < 2:
            continue
        n = max(speedups)
        figure = _Figure(model.SUBACTOR, how, summarize(speedups[n]).median, "x")
        peers = []
        for system, theirs_variant in figures.rows(ms, model.CPU):
            theirs = figures.speedups(ms, system, theirs_variant).get(n)
            if theirs and system in model.SYSTEMS and not figures.is_subactor(system):
                peers.append(_Figure(system, theirs_variant, summarize(theirs).median, "x"))
        items.append((f"CPU-bound speedup at {n} workers{where}", figure, peers, True))
        mine_time = figures.one(ms, model.CPU, model.SUBACTOR, variant, float(n))
        if mine_time and mine_time.samples:
            figure = _Figure(model.SUBACTOR, how, summarize(mine_time.samples).median, model.SECONDS)
            times = peers_of(figures.find(ms, model.CPU, x=float(n)))
            items.append((f"CPU-bound job, wall time at {n} workers{where}", figure, times, False))

    for metric, what in (
        (metrics.SPAWN, "spawn"),
        (metrics.ROUND_TRIP, "ask round trip"),
        (metrics.THROUGHPUT, "tell throughput"),
    ):
        variant = figures.PROCESS_ROWS[metric.key][0]
        mine = figures.one(ms, metric.key, model.SUBACTOR, variant)
        if mine and mine.samples:
            figure = _Figure(model.SUBACTOR, variant, summarize(mine.samples).median, mine.unit)
            mp = [
                m
                for s, v in figures.process_rows(ms, metric.key)
                if s in figures.MP_SYSTEMS and (m := figures.one(ms, metric.key, s, v))
            ]
            items.append((f"Process actor: {what} (from Rust)", figure, peers_of(mp), metric.higher_is_better))

    handed = {m.x: m for m in figures.find(ms, model.PROC_HANDOFF, model.SUBACTOR, figures.PROC_HANDOFF) if m.samples}
    if handed:
        size = max(x for x in handed if x is not None)
        figure = _Figure(model.SUBACTOR, figures.PROC_HANDOFF, summarize(handed[size].samples).median, model.SECONDS)
        mp = [m for m in figures.find(ms, model.HANDOFF, x=size) if m.system in figures.MP_SYSTEMS]
        items.append((f"Process actor: handoff of {fmt_size_label(size)} (from Rust)", figure, peers_of(mp), False))

    numpy = figures.speedups(ms, model.SUBACTOR, figures.NUMPY_RUST, model.NUMPY)
    if numpy and max(numpy) >= 2:
        n = max(numpy)
        figure = _Figure(model.SUBACTOR, figures.NUMPY_RUST, summarize(numpy[n]).median, "x")
        pools = []
        for system in figures.MP_SYSTEMS:
            theirs = figures.speedups(ms, system, figures.NUMPY_POOL, model.NUMPY).get(n)
            if theirs:
                pools.append(_Figure(system, figures.NUMPY_POOL, summarize(theirs).median, "x"))
        items.append((f"numpy job on process actors, speedup at {n}", figure, pools, True))

    buffers = {m.x: m for m in figures.find(ms, model.HANDOFF, model.SUBACTOR, figures.HANDOFF_BUFFER) if m.samples}
    if buffers:
        size = max(x for x in buffers if x is not None)
        figure = _Figure(model.SUBACTOR, "arena Buffer", summarize(buffers[size].samples).median, model.SECONDS)
        items.append(
            (f"handoff of {fmt_size_label(size)}", figure, peers_of(figures.find(ms, model.HANDOFF, x=size)), False)
        )

    mine = figures.one(ms, model.MEMORY, model.SUBACTOR, figures.MEMORY_RSS)
    if mine and mine.samples:
        figure = _Figure(model.SUBACTOR, figures.MEMORY_RSS, summarize(mine.samples).median, mine.unit)
        rss = [m for m in figures.find(ms, model.MEMORY) if m.variant.startswith("RSS")]
        items.append((metrics.MEMORY.title + " (RSS)", figure, peers_of(rss), False))
    return items


def _section(number: int, metric: metrics.Metric, data: RunData, fill: dict[str, Any]) -> list[str]:
    out = [f"## {number}. {metric.title}", "", metric.method.format(**fill), ""]
    if metric.key in data.plots:
        out += [f"![{metric.title}]({data.plots[metric.key]})", ""]
    return out


def _spread(s: Summary, unit: str) -> str:
    mark = " †" if s.relative_spread > WIDE else ""
    return f"{fmt_value(s.low, unit)} – {fmt_value(s.high, unit)}{mark}"


def _plain_table(ms: list[Measurement], metric: metrics.Metric, ratio_name: str) -> list[str]:
    """system | how | median | spread | n | ratio against subactor's reference row."""
    rows = []
    for system, variant in figures.rows(ms, metric.key):
        m = figures.one(ms, metric.key, system, variant)
        if m is None or not m.samples:
            continue
        s = summarize(m.samples)
        rows.append(
            [system, variant, fmt_value(s.median, m.unit), _spread(s, m.unit), str(s.n), _ratio_cell(ms, metric, m, s)]
        )
    if not rows:
        return ["Not measured in this run.", ""]
    return _table(["system", "how", "median", "spread", "n", ratio_name], rows) + [""]


def _ratio_cell(ms: list[Measurement], metric: metrics.Metric, m: Measurement, s: Summary) -> str:
    ref = metrics.reference(ms, metric.key, m.variant)
    if ref is None:
        return ""
    if (m.system, m.variant) == ref:
        return "reference"
    if figures.is_subactor(m.system) and metric.key not in (model.CORE_ASK, model.CORE_TELL):
        return ""
    other = figures.one(ms, metric.key, *ref)
    if other is None or not other.samples:
        return ""
    ref_median = summarize(other.samples).median
    if metric.key in (model.CORE_ASK, model.CORE_TELL):
        # The core's cost over this row's.
        return fmt_ratio(advantage(s.median, ref_median, metric.higher_is_better))
    return fmt_ratio(advantage(ref_median, s.median, metric.higher_is_better))


def _process_tables(ms: list[Measurement]) -> list[str]:
    """Per metric, the process actor's rows and multiprocessing's, with the process
    actor's advantage over each row, from Rust and from Python."""
    out: list[str] = []
    header = ["system", "how", "median", "spread", "n", "advantage, from Rust", "advantage, from Python"]
    for metric, what in (
        (metrics.SPAWN, "Spawn, until the first answer"),
        (metrics.ROUND_TRIP, "Ask round trip"),
        (metrics.THROUGHPUT, "Tell throughput into one worker"),
    ):
        references = [
            figures.one(ms, metric.key, model.SUBACTOR, variant) for variant in figures.PROCESS_ROWS[metric.key]
        ]
        rows = []
        for system, variant in figures.process_rows(ms, metric.key):
            m = figures.one(ms, metric.key, system, variant)
            if m is None or not m.samples:
                continue
            s = summarize(m.samples)
            cells = []
            for ref in references:
                if ref is None or not ref.samples:
                    cells.append("")
                elif (system, variant) == (ref.system, ref.variant):
                    cells.append("reference")
                elif figures.is_subactor(system):
                    cells.append("")
                else:
                    ref_median = summarize(ref.samples).median
                    cells.append(fmt_ratio(advantage(ref_median, s.median, metric.higher_is_better)))
            rows.append([system, variant, fmt_value(s.median, m.unit), _spread(s, m.unit), str(s.n), *cells])
        out += [f"**{what}**", ""]
        out += (_table(header, rows) if rows else ["Not measured in this run."]) + [""]
    return out


def _cpu_table(ms: list[Measurement], probes: Sequence[Probe]) -> list[str]:
    return _speedup_table(ms, model.CPU, probes, figures.CPU_TOTAL)


def _speedup_table(ms: list[Measurement], metric: str, probes: Sequence[Probe], reference: str) -> list[str]:
    """Times at 1..N workers, speedups with their spread, and subactor's advantage (its
    ``reference`` row's) in speedup and time at the most workers."""
    lines = figures.rows(ms, metric)
    if not lines:
        return ["Not measured in this run.", ""]
    workers = sorted({int(m.x) for m in figures.find(ms, metric) if m.x is not None})
    top = max(workers)
    mine = figures.speedups(ms, model.SUBACTOR, reference, metric).get(top)
    header = ["system", "how"] + [f"time, {w} worker{'s' if w > 1 else ''}" for w in workers]
    header += [f"speedup at {w}" for w in workers if w > 1]
    header += ["rounds", f"subactor advantage: speedup at {top}", f"subactor advantage: time at {top}"]
    mine_time = _median_of(figures.one(ms, metric, model.SUBACTOR, reference, float(top)))
    rows = []
    for system, variant in lines:
        row = [system, variant]
        for w in workers:
            m = figures.one(ms, metric, system, variant, float(w))
            row.append(fmt_duration(summarize(m.samples).median) if m and m.samples else "")
        speedups = figures.speedups(ms, system, variant, metric)
        for w in workers:
            if w > 1:
                s = speedups.get(w)
                row.append(f"{fmt_ratio(summarize(s).median)} ({_spread(summarize(s), 'x')})" if s else "")
        theirs = speedups.get(top)
        row.append(str(len(theirs)) if theirs else "")
        if (system, variant) == (model.SUBACTOR, reference):
            row += ["reference", "reference"]
        elif figures.is_subactor(system):
            row += ["", ""]
        else:
            their_time = _median_of(figures.one(ms, metric, system, variant, float(top)))
            row.append(
                fmt_ratio(advantage(summarize(mine).median, summarize(theirs).median, True)) if mine and theirs else ""
            )
            row.append(fmt_ratio(advantage(mine_time, their_time, False)) if mine_time and their_time else "")
        rows.append(row)
    machine = [p.parallelism for p in probes if p.n == top]
    if machine:
        probed = summarize(machine)
        row = ["machine (probe)", f"the same pure-Python loop in 1, then {top} processes"] + [""] * len(workers)
        row += [""] * (len([w for w in workers if w > 1]) - 1)
        row += [f"{fmt_ratio(probed.median)} ({_spread(probed, 'x')})", str(probed.n), "", ""]
        rows.append(row)
    return _table(header, rows) + [""]


def _process_handoff_tables(ms: list[Measurement]) -> list[str]:
    """The process actor's handoffs and multiprocessing's, per size; then how many times
    faster each process-actor row is than the fastest SharedMemory and Pipe rows."""
    mine = [(s, v) for s, v in figures.rows(ms, model.PROC_HANDOFF) if figures.is_subactor(s)]
    peers = [
        (s, v)
        for s, v in figures.rows(ms, model.HANDOFF)
        if s in figures.MP_SYSTEMS and v in (figures.SHARED_MEMORY, figures.PIPE_BYTES)
    ]
    if not mine:
        return ["Not measured in this run.", ""]
    sizes = sorted(set(figures.sizes(ms, model.PROC_HANDOFF)) | {x for x in figures.sizes(ms) if peers})
    labels = [fmt_size_label(x) for x in sizes]
    medians = []
    for metric, (system, variant) in [(model.PROC_HANDOFF, r) for r in mine] + [(model.HANDOFF, r) for r in peers]:
        cells = []
        for x in sizes:
            m = figures.one(ms, metric, system, variant, x)
            if m is None or not m.samples:
                cells.append("—")
                continue
            s = summarize(m.samples)
            cells.append(f"{fmt_duration(s.median)} ({_spread(s, 's')})")
        medians.append([system, variant] + cells)
    out = ["Median (spread) of each handoff:", ""] + _table(["system", "how"] + labels, medians) + [""]

    def fastest(variant: str, x: float) -> float | None:
        found = [
            summarize(m.samples).median
            for m in figures.find(ms, model.HANDOFF, variant=variant, x=x)
            if m.system in figures.MP_SYSTEMS and m.samples
        ]
        return min(found) if found else None

    ratios = []
    for system, variant in mine:
        for peer, what in ((figures.SHARED_MEMORY, "SharedMemory"), (figures.PIPE_BYTES, "Pipe send_bytes()")):
            row = [variant, f"the fastest {what}"]
            for x in sizes:
                m = figures.one(ms, model.PROC_HANDOFF, system, variant, x)
                theirs = fastest(peer, x)
                if m is None or not m.samples or theirs is None:
                    row.append("—")
                else:
                    row.append(fmt_ratio(advantage(summarize(m.samples).median, theirs, False)))
            ratios.append(row)
    out += [
        "How many times faster the process actor's handoff is than multiprocessing's (medians; above 1: "
        "the process actor is faster):",
        "",
    ]
    out += _table(["process actor", "beside"] + labels, ratios) + [""]
    scale = []
    for variant, where in ((figures.PROC_ASK, "from Rust"), (figures.PY_PROC_ASK, "from Python")):
        m = figures.one(ms, model.ROUND_TRIP, model.SUBACTOR, variant)
        if m and m.samples:
            scale.append(f"{where} p50 {fmt_duration(summarize(m.samples).median)}")
    if scale:
        out += [
            "For scale, the same run's ask round trip of an int (no buffer) to a process actor (section 4): "
            + ", ".join(scale)
            + ". What a handoff costs beyond it is the buffer's.",
            "",
        ]
    return out


def _auto_table(ms: list[Measurement]) -> list[str]:
    """Spawn and ask with placement auto and interpreter, from Rust and from Python."""
    rows = []
    for labels in (figures.AUTO_RUST, figures.AUTO_PY):
        for placement in ("interpreter", "auto"):
            row = [labels[placement]]
            for metric in (model.AUTO_SPAWN, model.AUTO_ASK):
                m = figures.one(ms, metric, model.SUBACTOR, labels[placement])
                other = figures.one(ms, metric, model.SUBACTOR, labels["interpreter"])
                if m is None or not m.samples:
                    row += ["—", ""]
                    continue
                s = summarize(m.samples)
                row.append(f"{fmt_value(s.median, m.unit)} ({_spread(s, m.unit)}, n={s.n})")
                if placement == "interpreter" or other is None or not other.samples:
                    row.append("reference" if placement == "interpreter" else "")
                else:
                    row.append(fmt_ratio(s.median / summarize(other.samples).median))
            rows.append(row)
    if all(cell in ("—", "", "reference") for row in rows for cell in row[1:]):
        return ["Not measured in this run.", ""]
    header = ["how", "spawn until the first answer", "auto / interpreter", "ask round trip", "auto / interpreter"]
    return _table(header, rows) + [""]


def _cluster_tables(ms: list[Measurement]) -> list[str]:
    """Remote ask beside raw request/reply, remote tell throughput, node loss."""
    out: list[str] = []
    for metric, what, reference in (
        (model.REMOTE_ASK, "Round trip through nats-server", (model.SUBACTOR, figures.REMOTE_ASK_RUST)),
        (model.REMOTE_TELL, "Tell throughput from one sender", None),
        (model.NODE_DOWN, "Node loss, SIGKILL until Down", None),
    ):
        rows = []
        ref = figures.one(ms, metric, *reference) if reference else None
        for system, variant in figures.rows(ms, metric):
            m = figures.one(ms, metric, system, variant)
            if m is None or not m.samples:
                continue
            s = summarize(m.samples)
            row = [system, variant, fmt_value(s.median, m.unit), _spread(s, m.unit), fmt_value(s.p99, m.unit), str(s.n)]
            if reference:
                if (system, variant) == reference:
                    row.append("reference")
                elif ref is not None and ref.samples:
                    row.append(fmt_ratio(summarize(ref.samples).median / s.median))
                else:
                    row.append("")
            rows.append(row)
        header = ["system", "how", "median", "spread", "p99", "n"] + (["subactor / this row"] if reference else [])
        out += [f"**{what}**", ""] + (_table(header, rows) if rows else ["Not measured in this run."]) + [""]
    return out


def _median_of(m: Measurement | None) -> float | None:
    return summarize(m.samples).median if m and m.samples else None


def _handoff_tables(ms: list[Measurement], quick: bool) -> list[str]:
    lines = figures.rows(ms, model.HANDOFF)
    sizes = figures.sizes(ms)
    if not lines:
        return ["Not measured in this run.", ""]
    labels = [fmt_size_label(x) for x in sizes]
    medians, ratios = [], []
    mine = {
        m.x: summarize(m.samples).median
        for m in figures.find(ms, model.HANDOFF, model.SUBACTOR, figures.HANDOFF_BUFFER)
        if m.samples
    }
    for system, variant in lines:
        cells, adv = [], []
        for x in sizes:
            m = figures.one(ms, model.HANDOFF, system, variant, x)
            if m is None or not m.samples:
                cells.append("—")
                adv.append("—")
                continue
            s = summarize(m.samples)
            cells.append(f"{fmt_duration(s.median)} ({_spread(s, 's')})")
            adv.append(fmt_ratio(advantage(mine[x], s.median, False)) if x in mine else "")
        medians.append([system, variant] + cells)
        if not figures.is_subactor(system) or variant != figures.HANDOFF_BUFFER:
            ratios.append([system, variant] + adv)
    out = ["Median (spread) of each handoff:", ""] + _table(["system", "how"] + labels, medians) + [""]
    out += ["subactor's arena Buffer is this many times faster than each row (below 1: the row is faster):", ""]
    out += _table(["system", "how"] + labels, ratios) + [""]
    if quick:
        out += [
            "In `--quick`, handoffs that copy 1 GB are left out of the peers (seconds per copy); see the notes.",
            "",
        ]
    return out


def _asyncio_table(ms: list[Measurement]) -> list[str]:
    """system | how | median | spread | n | 100 at once over one: each "100 at once" row
    divided by the "one" row of the same actor (or of asyncio alone)."""
    ones = {
        figures.async_many(p): figures.one(ms, model.ASYNC, model.SUBACTOR, figures.async_one(p))
        for p in figures.ASYNC_PLACEMENTS
    }
    ones[figures.ASYNC_BASE_MANY] = figures.one(ms, model.ASYNC, model.BASELINE, figures.ASYNC_BASE_ONE)
    rows = []
    for system, variant in figures.rows(ms, model.ASYNC):
        m = figures.one(ms, model.ASYNC, system, variant)
        if m is None or not m.samples:
            continue
        s = summarize(m.samples)
        one = ones.get(variant)
        ratio = fmt_ratio(s.median / summarize(one.samples).median) if one is not None and one.samples else ""
        rows.append([system, variant, fmt_value(s.median, m.unit), _spread(s, m.unit), str(s.n), ratio])
    if not rows:
        return ["Not measured in this run.", ""]
    return _table(["system", "how", "median", "spread", "n", "100 at once ÷ one"], rows) + [""]


def _metrics_cost_table(ms: list[Measurement]) -> list[str]:
    """figure | metrics off | metrics on (median, spread, n each) | on/off | cost."""
    rows = []
    for _, what, system in figures.METRICS_COST_FIGURES + figures.METRICS_COST_EXTRA:
        off = figures.one(ms, model.METRICS_COST, system, figures.metrics_cost(what, False))
        on = figures.one(ms, model.METRICS_COST, system, figures.metrics_cost(what, True))
        if off is None or on is None or not off.samples or not on.samples:
            continue
        a, b = summarize(off.samples), summarize(on.samples)
        cost = goals.metrics_cost(off.samples, on.samples, off.unit != model.SECONDS)
        cells = [f"{fmt_value(s.median, m.unit)} ({_spread(s, m.unit)}, n={s.n})" for s, m in ((a, off), (b, on))]
        rows.append([system, what, *cells, f"{b.median / a.median:.3f}", f"{cost * 100:+.1f}%"])
    if not rows:
        return ["Not measured in this run.", ""]
    return _table(["system", "figure", "metrics off", "metrics on", "on / off", "cost"], rows) + [""]


def _pipeline(ms: list[Measurement]) -> list[str]:
    lines = figures.rows(ms, model.PIPELINE)
    if not lines:
        return []
    out = [f"## {metrics.PIPELINE.title}", "", metrics.PIPELINE.method, ""]
    workers = sorted({int(m.x) for m in figures.find(ms, model.PIPELINE) if m.x is not None})
    rows = []
    for system, variant in lines:
        row = [variant]
        base = None
        for w in workers:
            m = figures.one(ms, model.PIPELINE, system, variant, float(w))
            if m is None or not m.samples:
                row.append("")
                continue
            median = summarize(m.samples).median
            base = base or median
            row.append(fmt_value(median, m.unit) + (f" ({fmt_ratio(median / base)})" if w > 1 and base else ""))
        rows.append(row)
    header = ["pipeline"] + [f"{w} worker{'s' if w > 1 else ''} per stage" for w in workers]
    return out + _table(header, rows) + [""]


def _reading() -> list[str]:
    return [
        "## Reading the figures",
        "",
        "- **Median** of all samples of a figure: round trips and handoffs are timed one by one; throughputs, "
        "speedups and memory give one sample per round or batch.",
        "- **Spread**: p10 – p90 of the samples, or min – max when there are fewer than 10. A † marks a spread "
        "wider than the median itself: the samples fall into groups (on a shared 2-core machine, round trips whose "
        "two threads the scheduler placed on one core or on two), and the median depends on which group was larger "
        "in this run.",
        "- **subactor advantage**: how many times better subactor's figure is than the row's (above 1: subactor is "
        "better; below 1: the row is). Rows of subactor itself other than the reference are not compared.",
        "- Nothing here is a test: the machines are shared and noisy, and no figure fails a build.",
        "",
    ]


def _notes(notes: list[str]) -> list[str]:
    if not notes:
        return []
    return ["## Not measured, and why", ""] + [f"- {n}" for n in notes] + [""]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "|".join(" --- " for _ in header) + "|"] + [line(r) for r in rows]
