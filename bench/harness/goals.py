"""The performance goals (issue 7's, the foundation's spawn goal, issue 12's for
process actors, issue 16's for spawns, issue 13's for buffers, numpy and automatic
placement, issue 14's for nodes over NATS, and issue 17's for what metrics cost), judged
on the figures of one run."""

from __future__ import annotations


from collections.abc import Sequence
from dataclasses import dataclass

from harness import figures, model
from harness.machine import Probe
from harness.model import Measurement
from harness.stats import Summary, fmt_bytes, fmt_duration, fmt_ratio, fmt_size_label, fmt_value, summarize

KB = 1 << 10
GB = 1 << 30


@dataclass(frozen=True)
class Goal:
    """One goal: what it asks, the figure reached, and whether it is met (None: the
    run did not measure it)."""

    name: str
    target: str
    figure: str
    met: bool | None
    note: str = ""


def evaluate(measurements: Sequence[Measurement], probes: Sequence[Probe], cores: int) -> list[Goal]:
    ms = list(measurements)
    return [
        _at_most(ms, "ask round trip Rust -> Python", model.ROUND_TRIP, figures.ASK_RUST, 10e-6, "p50 <= 10 µs"),
        _at_most(ms, "ask round trip Python -> Python", model.ROUND_TRIP, figures.ASK_PYTHON, 15e-6, "p50 <= 15 µs"),
        _throughput(ms),
        _cpu(ms, probes, cores, figures.CPU_TOTAL, "CPU-bound speedup at 2 workers"),
        _cpu(ms, probes, cores, figures.PY_CPU, "CPU-bound speedup at 2 workers, from Python (rt.executor)"),
        _handoff(ms),
        _memory(ms),
        _spawn(ms),
        _warm_spawn(ms),
        *_process(ms),
        *_process_handoff(ms),
        *_numpy(ms, cores),
        *_auto(ms),
        *_cluster(ms),
        *_asyncio(ms),
        *_metrics_cost(ms),
    ]


def _median(ms: list[Measurement], metric: str, system: str, variant: str, x: float | None = None) -> float | None:
    m = figures.one(ms, metric, system, variant, x)
    return summarize(m.samples).median if m and m.samples else None


def _not_measured(name: str, target: str) -> Goal:
    return Goal(name, target, "not measured", None)


def _at_most(ms: list[Measurement], name: str, metric: str, variant: str, limit: float, target: str) -> Goal:
    m = figures.one(ms, metric, model.SUBACTOR, variant)
    if m is None or not m.samples:
        return _not_measured(name, target)
    s = summarize(m.samples)
    figure = f"p50 {fmt_duration(s.median)} (p10-p90 {fmt_duration(s.low)} - {fmt_duration(s.high)})"
    return Goal(name, target, figure, s.median <= limit)


def _throughput(ms: list[Measurement]) -> Goal:
    name, target = "small messages into one Python actor", ">= 1,000,000 msg/s"
    m = figures.one(ms, model.THROUGHPUT, model.SUBACTOR, figures.TELL_RUST)
    if m is None or not m.samples:
        return _not_measured(name, target)
    s = summarize(m.samples)
    spread = f"{s.spread} {fmt_value(s.low, m.unit)} - {fmt_value(s.high, m.unit)}"
    figure = f"{fmt_value(s.median, m.unit)} (median of {s.n}; {spread})"
    return Goal(name, target, figure, s.median >= 1e6)


def _cpu(ms: list[Measurement], probes: Sequence[Probe], cores: int, variant: str, name: str) -> Goal:
    target = ">= 1.85x and >= ProcessPoolExecutor's, same run"
    if cores < 2:
        return Goal(name, target, f"the machine has {cores} core", None)
    ours = figures.speedups(ms, model.SUBACTOR, variant).get(2)
    if not ours:
        return _not_measured(name, target)
    mine = summarize(ours)
    pools = []
    for system in (model.MP_FORK, model.MP_SPAWN):
        theirs = figures.speedups(ms, system, "ProcessPoolExecutor.map, start-up included").get(2)
        if theirs:
            pools.append((system, summarize(theirs)))
    best = max(pools, key=lambda p: p[1].median) if pools else None
    figure = f"{fmt_ratio(mine.median)} (start-up included, median of {mine.n} rounds)"
    if best:
        method = best[0].split("(")[1].rstrip(")")
        figure += f"; ProcessPoolExecutor ({method}) {fmt_ratio(best[1].median)}"
    met = mine.median >= 1.85 and (best is None or mine.median >= best[1].median)
    reasons = []
    if mine.median < 1.85:
        reasons.append("below 1.85×")
    if best and mine.median < best[1].median:
        pool = best[1]
        overlap = mine.low <= pool.high and pool.low <= mine.high
        reasons.append(
            f"{fmt_ratio(pool.median - mine.median)} below the pool's"
            + (
                f", within the spread of both ({fmt_ratio(mine.low)} - {fmt_ratio(mine.high)} against "
                f"{fmt_ratio(pool.low)} - {fmt_ratio(pool.high)})"
                if overlap
                else ""
            )
        )
    machine = [p.parallelism for p in probes if p.n == 2]
    if machine:
        probed = summarize(machine)
        reasons.append(
            f"the machine itself gave {fmt_ratio(probed.median)} parallelism "
            f"(probes {fmt_ratio(probed.low)} - {fmt_ratio(probed.high)})"
        )
    return Goal(name, target, figure, met, "; ".join(reasons))


def _handoff(ms: list[Measurement]) -> Goal:
    name, target = "buffer handoff, 1 KB to 1 GB", "flat, p50 <= 5 µs at every size"
    found = figures.find(ms, model.HANDOFF, model.SUBACTOR, figures.HANDOFF_BUFFER)
    medians = {m.x: summarize(m.samples).median for m in found if m.x is not None and m.samples}
    if not medians:
        return _not_measured(name, target)
    figure = ", ".join(f"{fmt_size_label(x)} {fmt_duration(v)}" for x, v in sorted(medians.items()))
    covered = min(medians) <= KB and max(medians) >= GB
    met = covered and max(medians.values()) <= 5e-6
    return Goal(name, target, figure, met, "" if covered else "1 KB and 1 GB were not both measured")


def _memory(ms: list[Measurement]) -> Goal:
    name, target = "memory per idle actor", "<= 1/5 of a process worker's RSS"
    mine = _median(ms, model.MEMORY, model.SUBACTOR, figures.MEMORY_RSS)
    worker = _median(ms, model.MEMORY, model.MP_SPAWN, "RSS of an idle worker process")
    if mine is None or worker is None:
        return _not_measured(name, target)
    figure = (
        f"{fmt_bytes(mine)} RSS per actor vs {fmt_bytes(worker)} per spawned worker process ({mine / worker:.2f} of it)"
    )
    return Goal(name, target, figure, mine <= worker / 5)


def _spawn(ms: list[Measurement]) -> Goal:
    name, target = "cold spawn latency (the foundation's and issue 16's goal)", "p50 <= bare interpreter creation"
    mine = _median(ms, model.SPAWN, model.SUBACTOR, figures.SPAWN_ACTOR)
    bare = _median(ms, model.SPAWN, model.BASELINE, figures.SPAWN_BARE)
    if mine is None or bare is None:
        return _not_measured(name, target)
    figure = f"{fmt_duration(mine)} vs {fmt_duration(bare)} ({fmt_ratio(mine / bare)})"
    note = "the spawn includes importing the actor's module, the bare creation does not"
    return Goal(name, target, figure, mine <= bare, note)


def _warm_spawn(ms: list[Measurement]) -> Goal:
    """Issue 16's: a spawn that finds a warm-pool interpreter costs <= 1/10 of a
    multiprocessing fork worker's start."""
    return _against_peer(
        ms,
        "warm-pool spawn <= 1/10 of a multiprocessing fork worker's start",
        "p50 <= 1/10 of fork's p50",
        model.SPAWN,
        figures.SPAWN_WARM,
        (model.MP_FORK,),
        1 / 10,
    )


# ---- process actors (issue 12) ------------------------------------------------------

# (name, target, metric, subactor's figures from Rust and from Python, the
# multiprocessing systems compared with (the best figure among them), factor): met
# when the process actor's median is at most factor x the peer's (times), or at least
# factor x it (rates).
_PROCESS_GOALS: tuple[tuple[str, str, str, tuple[str, str], tuple[str, ...], float], ...] = (
    (
        "spawn <= multiprocessing fork's worker start",
        "p50 <= fork's p50",
        model.SPAWN,
        figures.PROCESS_ROWS[model.SPAWN],
        (model.MP_FORK,),
        1.0,
    ),
    (
        "spawn <= 1/5 of forkserver's worker start",
        "p50 <= 1/5 of forkserver's p50",
        model.SPAWN,
        figures.PROCESS_ROWS[model.SPAWN],
        (model.MP_FORKSERVER,),
        1 / 5,
    ),
    (
        "ask round trip <= 1/3 of a Pipe round trip",
        "p50 <= 1/3 of the fastest Pipe's p50",
        model.ROUND_TRIP,
        figures.PROCESS_ROWS[model.ROUND_TRIP],
        figures.MP_SYSTEMS,
        1 / 3,
    ),
    (
        "tell throughput >= 2x a Pipe's",
        "median >= 2x the fastest Pipe's",
        model.THROUGHPUT,
        figures.PROCESS_ROWS[model.THROUGHPUT],
        figures.MP_SYSTEMS,
        2.0,
    ),
)


def _process(ms: list[Measurement]) -> list[Goal]:
    """Issue 12's goals, each judged twice: on the figure taken from Rust and on the one
    taken from Python."""
    found = []
    for name, target, metric, (rust, python), peers, factor in _PROCESS_GOALS:
        for variant, where in ((rust, "from Rust"), (python, "from Python")):
            name_here = f"process actor: {name}, {where}"
            found.append(_against_peer(ms, name_here, target, metric, variant, peers, factor))
    return found


def _against_peer(
    ms: list[Measurement], name: str, target: str, metric: str, variant: str, peers: tuple[str, ...], factor: float
) -> Goal:
    """A goal that subactor's figure ``variant`` is within ``factor`` of the best
    multiprocessing figure among ``peers`` (lowest time, highest rate)."""
    higher = metric == model.THROUGHPUT
    mine = figures.one(ms, metric, model.SUBACTOR, variant)
    candidates = [m for p in peers if (m := figures.one(ms, metric, p, figures.MP_PEER[metric])) and m.samples]
    if mine is None or not mine.samples or not candidates:
        return _not_measured(name, target)
    best = (max if higher else min)(candidates, key=lambda m: summarize(m.samples).median)
    s, t = summarize(mine.samples), summarize(best.samples)
    limit = t.median * factor
    met = s.median >= limit if higher else s.median <= limit
    figure = f"{_described(s, mine.unit)} vs {best.system} {_described(t, best.unit)}: "
    figure += f"{fmt_ratio(s.median / t.median)} the peer's"
    # Whether the verdict holds across both spreads, or only between the medians.
    if higher:
        sure, opposite = s.low >= t.high * factor, s.high < t.low * factor
    else:
        sure, opposite = s.high <= t.low * factor, s.low > t.high * factor
    if met:
        note = "met across both spreads" if sure else "met by the medians; the spreads overlap the target"
    else:
        note = "missed across both spreads" if opposite else "missed by the medians; the spreads overlap the target"
    return Goal(name, target, figure, met, note)


# ---- asyncio actors (issue 16) --------------------------------------------------------

ASYNC_FACTOR = 3.0


def _asyncio(ms: list[Measurement]) -> list[Goal]:
    """Issue 16's goal, in each placement: 100 concurrent asks of an asyncio actor with
    max_concurrency=100, each awaiting a 10 ms sleep, take at most 3x one ask."""
    found = []
    for placement in figures.ASYNC_PLACEMENTS:
        name = f"asyncio actor ({placement}), max_concurrency=100: 100 concurrent asks awaiting 10 ms each"
        target = "all 100 answered within 3x one ask's time (p50s)"
        one = figures.one(ms, model.ASYNC, model.SUBACTOR, figures.async_one(placement))
        many = figures.one(ms, model.ASYNC, model.SUBACTOR, figures.async_many(placement))
        if one is None or many is None or not one.samples or not many.samples:
            found.append(_not_measured(name, target))
            continue
        s1, sn = summarize(one.samples), summarize(many.samples)
        limit = s1.median * ASYNC_FACTOR
        met = sn.median <= limit
        figure = f"100 at once {_described(sn, many.unit)}; one ask {_described(s1, one.unit)}: "
        figure += f"{fmt_ratio(sn.median / s1.median)} one ask"
        if met:
            sure = sn.high <= s1.low * ASYNC_FACTOR
            note = "met across both spreads" if sure else "met by the medians; the spreads overlap the target"
        else:
            opposite = sn.low > s1.high * ASYNC_FACTOR
            note = "missed across both spreads" if opposite else "missed by the medians; the spreads overlap the target"
        found.append(Goal(name, target, figure, met, note))
    return found


def _described(s: Summary, unit: str) -> str:
    """A median with its spread: "p50 1.2 ms (p10-p90 1.0 ms - 1.5 ms)"."""
    return f"p50 {fmt_value(s.median, unit)} ({s.spread} {fmt_value(s.low, unit)} - {fmt_value(s.high, unit)})"


# ---- buffers to process actors, numpy, automatic placement (issue 13) ----------------

# A handoff is flat when every size's p50 is within this factor of the smallest size's.
FLAT = 1.5
# And fast enough when SharedMemory's p50 is at least this many times its own.
SHM_FACTOR = 10.0


def _process_handoff(ms: list[Measurement]) -> list[Goal]:
    """Per source (Rust, Python's main interpreter, a Python actor): flat from 1 KB to
    1 GB, and >= 10x faster than SharedMemory's name-and-attach (the fastest of the run)
    at every size."""
    found = []
    shm = [m for m in figures.find(ms, model.HANDOFF, variant=figures.SHARED_MEMORY) if m.samples]
    for variant, where in (
        (figures.PROC_HANDOFF, "from Rust"),
        (figures.PY_PROC_HANDOFF, "from Python"),
        (figures.PROC_HANDOFF_ACTOR, "from a Python actor"),
    ):
        mine = {
            m.x: summarize(m.samples)
            for m in figures.find(ms, model.PROC_HANDOFF, model.SUBACTOR, variant)
            if m.x is not None and m.samples
        }
        flat_name = f"buffer handoff to a process actor, {where}: flat"
        flat_target = f"1 KB to 1 GB, every p50 within {FLAT:g}x of the smallest size's"
        fast_name = f"buffer handoff to a process actor, {where}: >= 10x faster than SharedMemory"
        fast_target = "p50 <= 1/10 of SharedMemory name-and-attach's, at every size"
        if not mine:
            found += [_not_measured(flat_name, flat_target), _not_measured(fast_name, fast_target)]
            continue
        covered = min(mine) <= KB and max(mine) >= GB
        medians = {x: s.median for x, s in sorted(mine.items())}
        base = medians[min(medians)]
        spread = max(medians.values()) / base
        figure = ", ".join(f"{fmt_size_label(x)} {fmt_duration(v)}" for x, v in medians.items())
        figure += f" (largest p50 {fmt_ratio(spread)} the smallest size's)"
        note = "" if covered else "1 KB and 1 GB were not both measured"
        found.append(Goal(flat_name, flat_target, figure, covered and spread <= FLAT, note))
        # Against the fastest SharedMemory row at each size.
        ratios, sure, opposite, missing = [], True, True, []
        for x, s_ in sorted(mine.items()):
            peers = [summarize(m.samples) for m in shm if m.x == x]
            if not peers:
                missing.append(fmt_size_label(x))
                continue
            t = min(peers, key=lambda p: p.median)
            ratios.append((x, t.median / s_.median))
            sure = sure and s_.high * SHM_FACTOR <= t.low
            opposite = opposite and s_.low * SHM_FACTOR > t.high
        if not ratios:
            found.append(_not_measured(fast_name, fast_target))
            continue
        met = not missing and covered and all(r >= SHM_FACTOR for _, r in ratios)
        figure = "SharedMemory's p50 over the process actor's: " + ", ".join(
            f"{fmt_size_label(x)} {fmt_ratio(r)}" for x, r in ratios
        )
        notes = []
        if missing:
            notes.append(f"SharedMemory not measured at {', '.join(missing)}")
        if met:
            notes.append("met across both spreads" if sure else "met by the medians; the spreads overlap the target")
        else:
            notes.append(
                "missed across both spreads at every size"
                if opposite
                else "missed by the medians; at some size the spreads overlap the target"
            )
        found.append(Goal(fast_name, fast_target, figure, met, "; ".join(notes)))
    return found


def _numpy(ms: list[Measurement], cores: int) -> list[Goal]:
    """The numpy job's speedup at 2 process actors >= the best ProcessPoolExecutor's of
    the same run, from Rust and from Python."""
    found = []
    pools = []
    for system in figures.MP_SYSTEMS:
        theirs = figures.speedups(ms, system, figures.NUMPY_POOL, model.NUMPY).get(2)
        if theirs:
            pools.append((system, summarize(theirs)))
    best = max(pools, key=lambda p: p[1].median) if pools else None
    for variant, where in ((figures.NUMPY_RUST, "from Rust"), (figures.NUMPY_PY, "from Python")):
        name = f"numpy job, 2 process actors, {where}: speedup >= ProcessPoolExecutor's"
        target = ">= the best ProcessPoolExecutor's speedup at 2, same run"
        if cores < 2:
            found.append(Goal(name, target, f"the machine has {cores} core", None))
            continue
        ours = figures.speedups(ms, model.SUBACTOR, variant, model.NUMPY).get(2)
        if not ours or best is None:
            found.append(_not_measured(name, target))
            continue
        mine, pool = summarize(ours), best[1]
        method = best[0].split("(")[1].rstrip(")")
        figure = (
            f"{fmt_ratio(mine.median)} ({mine.spread} {fmt_ratio(mine.low)} - {fmt_ratio(mine.high)}, {mine.n} rounds) "
            f"vs ProcessPoolExecutor ({method}) {fmt_ratio(pool.median)} "
            f"({pool.spread} {fmt_ratio(pool.low)} - {fmt_ratio(pool.high)})"
        )
        met = mine.median >= pool.median
        overlap = mine.low <= pool.high and pool.low <= mine.high
        note = ("met" if met else "missed") + (
            " by the medians; the spreads overlap" if overlap else " across both spreads"
        )
        found.append(Goal(name, target, figure, met, note))
    return found


def _auto(ms: list[Measurement]) -> list[Goal]:
    """``auto`` within noise of ``interpreter``: its p50 within the interpreter
    placement's spread, for spawn and ask, from Rust and from Python."""
    found = []
    for metric, what in ((model.AUTO_SPAWN, "spawn"), (model.AUTO_ASK, "ask round trip")):
        for labels, where in ((figures.AUTO_RUST, "from Rust"), (figures.AUTO_PY, "from Python")):
            name = f"placement auto beside interpreter: {what}, {where}"
            target = "auto's p50 within interpreter's spread"
            auto = figures.one(ms, metric, model.SUBACTOR, labels["auto"])
            interp = figures.one(ms, metric, model.SUBACTOR, labels["interpreter"])
            if auto is None or interp is None or not auto.samples or not interp.samples:
                found.append(_not_measured(name, target))
                continue
            a, i = summarize(auto.samples), summarize(interp.samples)
            figure = f"auto {_described(a, auto.unit)} vs interpreter {_described(i, interp.unit)}: "
            figure += f"{fmt_ratio(a.median / i.median)} of it"
            found.append(Goal(name, target, figure, i.low <= a.median <= i.high))
    return found


# ---- nodes over NATS (issue 14) -----------------------------------------------------

# The remote ask's p50 at most this many times raw request/reply's.
REMOTE_ASK_FACTOR = 1.5
# Remote tells from one sender, per second, at least.
REMOTE_TELL_RATE = 100_000.0
# A node's loss noticed within this many seconds.
NODE_DOWN_LIMIT = 2.0


def _cluster(ms: list[Measurement]) -> list[Goal]:
    found = []
    name, target = "remote ask round trip over NATS", f"p50 <= {REMOTE_ASK_FACTOR:g}x raw async-nats request/reply's"
    mine = figures.one(ms, model.REMOTE_ASK, model.SUBACTOR, figures.REMOTE_ASK_RUST)
    raw = figures.one(ms, model.REMOTE_ASK, model.RAW_NATS, figures.RAW_NATS_ASK)
    if mine is None or raw is None or not mine.samples or not raw.samples:
        found.append(_not_measured(name, target))
    else:
        s, t = summarize(mine.samples), summarize(raw.samples)
        figure = f"{_described(s, mine.unit)} vs raw {_described(t, raw.unit)}: {fmt_ratio(s.median / t.median)}"
        found.append(Goal(name, target, figure, s.median <= REMOTE_ASK_FACTOR * t.median))

    name, target = "remote tell throughput over NATS, one sender", f">= {REMOTE_TELL_RATE:,.0f} msg/s"
    tell = figures.one(ms, model.REMOTE_TELL, model.SUBACTOR, figures.REMOTE_TELL_RUST)
    if tell is None or not tell.samples:
        found.append(_not_measured(name, target))
    else:
        s = summarize(tell.samples)
        figure = f"median {fmt_value(s.median, tell.unit)} of {s.n} runs ({s.spread} "
        figure += f"{fmt_value(s.low, tell.unit)} - {fmt_value(s.high, tell.unit)})"
        found.append(Goal(name, target, figure, s.median >= REMOTE_TELL_RATE))

    name, target = "node loss noticed (SIGKILL to Down), default settings", f"every loss within {NODE_DOWN_LIMIT:g} s"
    down = figures.one(ms, model.NODE_DOWN, model.SUBACTOR, figures.NODE_DOWN_RUST)
    if down is None or not down.samples:
        found.append(_not_measured(name, target))
    else:
        s = summarize(down.samples)
        worst = max(down.samples)
        figure = f"median {fmt_duration(s.median)}, worst {fmt_duration(worst)} of {s.n} kills"
        found.append(Goal(name, target, figure, worst <= NODE_DOWN_LIMIT))
    return found


# ---- what metrics cost (issue 17) ----------------------------------------------------

METRICS_COST_LIMIT = 0.05


def metrics_cost(off: Sequence[float], on: Sequence[float], rate: bool) -> float:
    """What metrics on cost in one run (a fraction; below 0: on was faster).

    Times (asks: thousands of samples each): on / off - 1 of the medians. Rates (a
    figure per chunk of tells, the systems' chunks interleaved, so the same index in both
    series was taken moments apart): paired, 1 minus the median of the pairs' on / off.
    Rates of unequal series (not from one run) fall back to the ratio of the medians."""
    if not rate:
        return summarize(on).median / summarize(off).median - 1
    if len(off) == len(on) and all(a > 0 and b > 0 for a, b in zip(off, on, strict=True)):
        return 1 - summarize([b / a for a, b in zip(off, on, strict=True)]).median
    return 1 - summarize(on).median / summarize(off).median


def _control_reading(ms: list[Measurement]) -> str:
    """The A/A control's reading beside the core's tell figure, if it was taken."""
    _, what, system = figures.METRICS_COST_EXTRA[1]
    off = figures.one(ms, model.METRICS_COST, system, figures.metrics_cost(what, False))
    other = figures.one(ms, model.METRICS_COST, system, figures.metrics_cost(what, True))
    if off is None or other is None or not off.samples or not other.samples:
        return ""
    return f"; A/A control (two systems with metrics off) {metrics_cost(off.samples, other.samples, True) * 100:+.1f}%"


def _metrics_cost(ms: list[Measurement]) -> list[Goal]:
    """Issue 17's goal: metrics on cost at most 5% of the ask round trip and of tell
    throughput, off and on measured in the same run (benches/observe.rs), per figure."""
    found = []
    for _, what, system in figures.METRICS_COST_FIGURES:
        name, target = f"metrics on: {what}", f"cost <= {METRICS_COST_LIMIT:.0%} (off and on, same run)"
        off = figures.one(ms, model.METRICS_COST, system, figures.metrics_cost(what, False))
        on = figures.one(ms, model.METRICS_COST, system, figures.metrics_cost(what, True))
        if off is None or on is None or not off.samples or not on.samples:
            found.append(_not_measured(name, target))
            continue
        a, b = summarize(off.samples), summarize(on.samples)
        rate = off.unit != model.SECONDS
        cost = metrics_cost(off.samples, on.samples, rate)
        figure = f"off {fmt_value(a.median, off.unit)}, on {fmt_value(b.median, on.unit)}: "
        figure += f"on/off {b.median / a.median:.3f}, cost {cost * 100:+.1f}%{' (paired)' if rate else ''}"
        if what == figures.METRICS_COST_FIGURES[3][1]:
            figure += _control_reading(ms)
        found.append(Goal(name, target, figure, cost <= METRICS_COST_LIMIT))
    return found
