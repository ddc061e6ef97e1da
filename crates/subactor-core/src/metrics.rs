//! Metrics of actors and of their system: what [`ActorSystem::metrics`] returns.
//!
//! Collected by the one run loop every actor goes through (`run.rs`), whatever its
//! placement, so an interpreter actor, a process actor and an actor on another node are
//! counted alike; the placement is a label. Off unless
//! [`SystemBuilder::metrics`](crate::SystemBuilder::metrics) turns them on: then each
//! actor's cell has an [`ActorStats`], whose counters only its own thread writes (plain
//! loads and stores of atomics, no read-modify-write on the message path), and whose
//! handler-time histogram (the Prometheus client's, lock-free) is fed a sample of the
//! handlers (see [`HANDLER_SAMPLE`]). An actor that takes one message at a time counts on
//! its run loop's stack ([`Tally`]) and adds to its `ActorStats` in bulk (with each
//! timed handler, before an ask's reply, before its thread parks for mail), so that a message
//! costs an increment and a test, and the cell's shared cache lines are written once
//! in a while. A process actor's child times its handlers itself and sends the times
//! with each batch of tells. Off, the message path pays one branch.
//!
//! [`ActorSystem::metrics`]: crate::ActorSystem::metrics

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use prometheus::core::Metric as _;
use prometheus::{Histogram, HistogramOpts};

use crate::sync::lock;
use crate::{ActorId, ActorState, Placement};

/// The upper bounds (seconds) of the handler-time histogram's buckets: 1 µs to 10 s.
pub const HANDLER_BUCKETS: &[f64] = &[
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// The upper bounds (seconds) of the spawn-time histogram's buckets: 100 µs to 10 s.
pub const SPAWN_BUCKETS: &[f64] =
    &[1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Which handlers are timed: one message in `HANDLER_SAMPLE` while the actor's handlers
/// are fast (the last one timed took under [`SLOW_HANDLER`]), every message otherwise.
/// Reading the clock twice costs about as much as a fast handler's share of a tell
/// (~200 ns a message here), so fast handlers are sampled; slow ones, whose times
/// matter, are all timed, at a cost that is lost in their own.
pub const HANDLER_SAMPLE: u64 = 16;

/// See [`HANDLER_SAMPLE`].
pub const SLOW_HANDLER: Duration = Duration::from_micros(20);

/// Handlers are timed one in `TINY_HANDLER_SAMPLE` while they are tiny (the last one
/// timed took under [`TINY_HANDLER`]): there, two clock reads and a histogram update cost as much as the
/// handler and its message together (~100 ns against ~50 ns a message in the core), and
/// a sample of one in 1024 is still ten thousand a second at the core's 10-20 million
/// messages a second (one in 128 cost ~3.3% of a drained mailbox's rate; one in 1024
/// ~2%, cargo bench --bench observe).
pub const TINY_HANDLER_SAMPLE: u64 = 1024;

/// See [`TINY_HANDLER_SAMPLE`].
pub const TINY_HANDLER: Duration = Duration::from_micros(1);

/// Which ticks are timed after a handler that took `took`: a mask, timed when
/// `tick & mask == 0`.
pub(crate) fn sample_mask(took: Duration) -> u64 {
    if took >= SLOW_HANDLER {
        0
    } else if took >= TINY_HANDLER {
        HANDLER_SAMPLE - 1
    } else {
        TINY_HANDLER_SAMPLE - 1
    }
}

/// How many of the most recent dead letters the system keeps for
/// [`Metrics::recent_dead_letters`].
pub const RECENT_DEAD_LETTERS: usize = 200;

fn histogram(name: &str, buckets: &[f64]) -> Histogram {
    Histogram::with_opts(HistogramOpts::new(name, name).buckets(buckets.to_vec()))
        .unwrap_or_else(|e| unreachable!("the buckets are valid constants: {e}"))
}

/// Adds one to a counter that only one thread writes: no read-modify-write.
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
}

/// An actor's counters, kept in its cell while metrics are on.
pub(crate) struct ActorStats {
    /// Messages whose handler ran (tells and asks, failed ones included). Written by the
    /// actor's thread only, like the next three.
    handled: AtomicU64,
    failed: AtomicU64,
    interrupts: AtomicU64,
    /// Handler calls so far, for sampling.
    ticks: AtomicU64,
    /// Which ticks are timed, from the time of the last handler timed (see
    /// [`sample_mask`]): the one sampling rule of both run loops.
    mask: AtomicU64,
    handler_time: Histogram,
    /// Written by whichever thread records a dead letter for this actor.
    dead_letters: AtomicU64,
    /// How long the latest (re)start took, in nanoseconds.
    start_nanos: AtomicU64,
    last_failure: Mutex<Option<FailureRecord>>,
    spawned_at: SystemTime,
}

impl ActorStats {
    pub(crate) fn new() -> ActorStats {
        ActorStats {
            handled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            interrupts: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            mask: AtomicU64::new(HANDLER_SAMPLE - 1),
            handler_time: histogram("subactor_handler_seconds", HANDLER_BUCKETS),
            dead_letters: AtomicU64::new(0),
            start_nanos: AtomicU64::new(0),
            last_failure: Mutex::new(None),
            spawned_at: SystemTime::now(),
        }
    }

    /// Called before a handler by the loop that handles several messages at once (the
    /// one-at-a-time loop counts with a [`Tally`]): the instant to time it from, if this
    /// one is timed.
    #[inline]
    pub(crate) fn begin(&self) -> Option<Instant> {
        let n = self.ticks.load(Ordering::Relaxed);
        self.ticks.store(n.wrapping_add(1), Ordering::Relaxed);
        (n & self.mask.load(Ordering::Relaxed) == 0).then(Instant::now)
    }

    /// Called after a handler (on the actor's thread): counts it, and records its time if
    /// it was timed.
    #[inline]
    pub(crate) fn end(&self, timer: Option<Instant>, failed: bool, interrupted: bool) {
        bump(&self.handled);
        if failed {
            bump(&self.failed);
        }
        if interrupted {
            bump(&self.interrupts);
        }
        if let Some(started) = timer {
            let took = started.elapsed();
            self.mask.store(sample_mask(took), Ordering::Relaxed);
            self.handler_time.observe(took.as_secs_f64());
        }
    }

    /// Adds counts kept elsewhere (a [`Tally`]'s); only the actor's thread calls it.
    fn add(&self, handled: u64, failed: u64, interrupts: u64) {
        self.handled.store(self.handled.load(Ordering::Relaxed).wrapping_add(handled), Ordering::Relaxed);
        if failed != 0 {
            self.failed.store(self.failed.load(Ordering::Relaxed).wrapping_add(failed), Ordering::Relaxed);
        }
        if interrupts != 0 {
            self.interrupts.store(self.interrupts.load(Ordering::Relaxed).wrapping_add(interrupts), Ordering::Relaxed);
        }
    }

    pub(crate) fn dead_letter(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn started(&self, took: Duration) {
        self.start_nanos.store(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub(crate) fn failure(&self, message: &str) {
        *lock(&self.last_failure) = Some(FailureRecord { message: message.into(), at: SystemTime::now() });
    }
}

/// The counts of an actor that handles one message at a time, kept by its run loop (on
/// its thread's stack, not in shared memory) and added to its [`ActorStats`] in bulk:
/// when a handler is timed (one in [`HANDLER_SAMPLE`] while they are fast, every one
/// while they are slow), before an ask's reply is sent (so that whoever got the reply
/// sees the counts of every message before it), before the thread parks for mail (not
/// when mail comes while it spins), and when the loop ends (dropped). A message that goes
/// well and is not timed costs one increment (its tick, which also counts it) and one
/// test: the cell's shared cache lines are written once in a while, not on every
/// message. Its
/// handlers are timed one in [`TINY_HANDLER_SAMPLE`] while tiny, one in
/// [`HANDLER_SAMPLE`] while fast, every one while slow.
pub(crate) struct Tally<'a> {
    stats: &'a ActorStats,
    /// Handler calls so far (for sampling); the messages handled one by one since the
    /// last publication are `ticks - published`.
    ticks: u64,
    published: u64,
    /// Messages handled in batches since the last publication.
    batched: u64,
    failed: u64,
    interrupts: u64,
    /// Which ticks are timed (see [`sample_mask`]).
    mask: u64,
}

impl<'a> Tally<'a> {
    pub(crate) fn new(stats: &'a ActorStats) -> Tally<'a> {
        let ticks = stats.ticks.load(Ordering::Relaxed);
        Tally {
            stats,
            ticks,
            published: ticks,
            batched: 0,
            failed: 0,
            interrupts: 0,
            mask: stats.mask.load(Ordering::Relaxed),
        }
    }

    /// Called before a handler: the instant to time it from, if this one is timed. The
    /// tick counts the message as handled (every `begin` has its `end`).
    #[inline]
    pub(crate) fn begin(&mut self) -> Option<Instant> {
        let n = self.ticks;
        self.ticks = n.wrapping_add(1);
        (n & self.mask == 0).then(Instant::now)
    }

    /// Called after a handler: records its time if it was timed, counts a failure;
    /// with `publish` (an ask, about to be answered), the counts are published now. A
    /// message that went well and was not timed costs nothing here.
    #[inline]
    pub(crate) fn end(&mut self, timer: Option<Instant>, failed: bool, interrupted: bool, publish: bool) {
        if timer.is_some() || failed || interrupted || publish {
            self.end_rarely(timer, failed, interrupted);
        }
    }

    #[cold]
    #[inline(never)]
    fn end_rarely(&mut self, timer: Option<Instant>, failed: bool, interrupted: bool) {
        self.failed += u64::from(failed);
        self.interrupts += u64::from(interrupted);
        if let Some(started) = timer {
            let took = started.elapsed();
            self.mask = sample_mask(took);
            self.stats.handler_time.observe(took.as_secs_f64());
        }
        self.publish();
    }

    /// Counts `n` messages handled together (a batch of tells), `failed` of them failed,
    /// and records the handler times the actor measured (all of them: a batch comes from
    /// an actor whose handlers run elsewhere, far slower than recording a time); then
    /// publishes.
    pub(crate) fn end_batch(&mut self, n: u64, failed: u64, interrupted: bool, times: &[Duration]) {
        self.batched += n;
        self.failed += failed;
        self.interrupts += u64::from(interrupted);
        for took in times {
            self.stats.handler_time.observe(took.as_secs_f64());
        }
        if let Some(last) = times.last() {
            self.mask = sample_mask(*last);
        }
        self.publish();
    }

    /// Adds what was counted since the last time to the actor's [`ActorStats`].
    #[inline]
    pub(crate) fn publish(&mut self) {
        let handled = self.ticks.wrapping_sub(self.published).wrapping_add(self.batched);
        if handled == 0 && self.interrupts == 0 {
            return;
        }
        self.stats.add(handled, self.failed, self.interrupts);
        self.published = self.ticks;
        self.batched = 0;
        self.failed = 0;
        self.interrupts = 0;
    }
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        self.publish();
        // The next incarnation's tally (or the concurrent loop) goes on from here.
        self.stats.ticks.store(self.ticks, Ordering::Relaxed);
        self.stats.mask.store(self.mask, Ordering::Relaxed);
    }
}

/// A system's own counters, kept while metrics are on.
pub(crate) struct SystemStats {
    /// Spawn times by placement (indexed by [`placement_index`]).
    spawn_time: [Histogram; 4],
    spawned: AtomicU64,
    /// What actors that have stopped for good had counted.
    retired: Mutex<Totals>,
    started_at: SystemTime,
}

fn placement_index(placement: Placement) -> usize {
    match placement {
        Placement::Thread => 0,
        Placement::Interpreter => 1,
        Placement::Process => 2,
        Placement::Auto => 3,
    }
}

const PLACEMENTS: [Placement; 4] = [Placement::Thread, Placement::Interpreter, Placement::Process, Placement::Auto];

impl SystemStats {
    pub(crate) fn new() -> SystemStats {
        SystemStats {
            spawn_time: std::array::from_fn(|_| histogram("subactor_spawn_seconds", SPAWN_BUCKETS)),
            spawned: AtomicU64::new(0),
            retired: Mutex::new(Totals::default()),
            started_at: SystemTime::now(),
        }
    }

    /// Records a spawn (the first start of an actor) that took `took`.
    pub(crate) fn spawned(&self, placement: Placement, took: Duration) {
        self.spawned.fetch_add(1, Ordering::Relaxed);
        self.spawn_time[placement_index(placement)].observe(took.as_secs_f64());
    }

    /// Adds the counts of an actor that stopped for good.
    pub(crate) fn retire(&self, actor: &ActorMetrics) {
        lock(&self.retired).add(actor);
    }
}

/// Totals over actors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Messages whose handler ran.
    pub handled: u64,
    /// Of those, the ones whose handler failed (an error, a panic, a kill, a time limit).
    pub failed: u64,
    /// Restarts.
    pub restarts: u64,
    /// Handlers broken into by a kill or a time limit.
    pub interrupts: u64,
    /// Dead letters meant for these actors.
    pub dead_letters: u64,
}

impl Totals {
    fn add(&mut self, actor: &ActorMetrics) {
        self.handled += actor.handled;
        self.failed += actor.failed;
        self.restarts += actor.restarts;
        self.interrupts += actor.interrupts;
        self.dead_letters += actor.dead_letters;
    }
}

/// A histogram's state: cumulative counts per upper bound, as Prometheus has them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, observations at or below it)`, bounds ascending; the
    /// implicit `+Inf` bucket is [`count`](Self::count).
    pub buckets: Vec<(f64, u64)>,
    /// How many observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum: f64,
}

impl HistogramSnapshot {
    fn of(histogram: &Histogram) -> HistogramSnapshot {
        let proto = histogram.metric();
        let h = proto.get_histogram();
        HistogramSnapshot {
            buckets: h.get_bucket().iter().map(|b| (b.upper_bound(), b.cumulative_count())).collect(),
            count: h.get_sample_count(),
            sum: h.get_sample_sum(),
        }
    }

    /// The value below which a fraction `q` (0 to 1) of the observations fall, by linear
    /// interpolation within the bucket (as Prometheus' `histogram_quantile`); `None`
    /// without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * self.count as f64;
        let mut lower = (0.0, 0u64);
        for &(bound, cumulative) in &self.buckets {
            if cumulative as f64 >= rank {
                let in_bucket = (cumulative - lower.1) as f64;
                if in_bucket == 0.0 {
                    return Some(bound);
                }
                return Some(lower.0 + (bound - lower.0) * ((rank - lower.1 as f64) / in_bucket));
            }
            lower = (bound, cumulative);
        }
        // Above the highest bound.
        Some(lower.0)
    }
}

/// An actor's last failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureRecord {
    /// What failed (the error, panic or fault).
    pub message: Arc<str>,
    /// When.
    pub at: SystemTime,
}

/// One live actor, as [`ActorSystem::metrics`](crate::ActorSystem::metrics) sees it.
#[derive(Clone, Debug)]
pub struct ActorMetrics {
    /// Its id.
    pub id: ActorId,
    /// Its name, if it has one.
    pub name: Option<Arc<str>>,
    /// The supervisor it is a child of, if any.
    pub parent: Option<ActorId>,
    /// The Rust type of the actor (for a Python actor, the host's `PyActor`; a
    /// supervisor's is `Supervisor`), without its module path.
    pub kind: &'static str,
    /// Where its handlers run.
    pub placement: Placement,
    /// The node its handlers run on, for an actor on another node of a cluster.
    pub node: Option<Arc<str>>,
    /// Where it is in its life.
    pub state: ActorState,
    /// Messages waiting in its mailbox (system messages included).
    pub mailbox_depth: usize,
    /// Its mailbox's capacity.
    pub mailbox_capacity: usize,
    /// Messages whose handler ran, failed ones included.
    pub handled: u64,
    /// Of those, the ones that failed (an error, a panic, a kill, a time limit).
    pub failed: u64,
    /// How many times it was restarted.
    pub restarts: u64,
    /// Dead letters meant for it.
    pub dead_letters: u64,
    /// Handlers broken into by a kill or a time limit.
    pub interrupts: u64,
    /// Handler times (a sample: see [`HANDLER_SAMPLE`]).
    pub handler_time: HistogramSnapshot,
    /// How long its latest start (or restart) took.
    pub start_time: Duration,
    /// Its latest failure.
    pub last_failure: Option<FailureRecord>,
    /// When it was spawned.
    pub spawned_at: SystemTime,
}

impl ActorMetrics {
    pub(crate) fn base(id: ActorId, name: Option<Arc<str>>, kind: &'static str) -> ActorMetrics {
        ActorMetrics {
            id,
            name,
            parent: None,
            kind,
            placement: Placement::Thread,
            node: None,
            state: ActorState::Starting,
            mailbox_depth: 0,
            mailbox_capacity: 0,
            handled: 0,
            failed: 0,
            restarts: 0,
            dead_letters: 0,
            interrupts: 0,
            handler_time: HistogramSnapshot::default(),
            start_time: Duration::ZERO,
            last_failure: None,
            spawned_at: SystemTime::UNIX_EPOCH,
        }
    }

    /// Fills in what `stats` counted.
    pub(crate) fn fill(&mut self, stats: &ActorStats) {
        self.handled = stats.handled.load(Ordering::Relaxed);
        self.failed = stats.failed.load(Ordering::Relaxed);
        self.interrupts = stats.interrupts.load(Ordering::Relaxed);
        self.dead_letters = stats.dead_letters.load(Ordering::Relaxed);
        self.handler_time = HistogramSnapshot::of(&stats.handler_time);
        self.start_time = Duration::from_nanos(stats.start_nanos.load(Ordering::Relaxed));
        self.last_failure = lock(&stats.last_failure).clone();
        self.spawned_at = stats.spawned_at;
    }

    /// Its placement as a label: `"node"` for an actor on another node, else the
    /// placement's name.
    pub fn placement_label(&self) -> &'static str {
        if self.node.is_some() { "node" } else { self.placement.as_str() }
    }
}

/// A dead letter as the system remembers it (the latest [`RECENT_DEAD_LETTERS`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetterRecord {
    /// The actor it was meant for.
    pub recipient: ActorId,
    /// That actor's name, if it has one.
    pub name: Option<Arc<str>>,
    /// Why it was not delivered.
    pub reason: crate::DeadLetterReason,
    /// The Rust type of the message.
    pub message_type: &'static str,
    /// When.
    pub at: SystemTime,
}

/// A snapshot of a system: every live actor, and the system's totals.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Whether metrics are collected (without, only the actors' structure, states,
    /// mailboxes, restarts and the dead letters are known; the rest is zero).
    pub enabled: bool,
    /// When the snapshot was taken.
    pub at: SystemTime,
    /// When the system started.
    pub started_at: SystemTime,
    /// The live actors, by id.
    pub actors: Vec<ActorMetrics>,
    /// Totals over every actor the system ran, stopped ones included.
    pub totals: Totals,
    /// Actors spawned so far.
    pub spawned: u64,
    /// Dead letters so far (including those for actors elsewhere).
    pub dead_letters: u64,
    /// Spawn times (until the actor runs) by placement, for placements that had spawns.
    pub spawn_time: Vec<(Placement, HistogramSnapshot)>,
    /// The latest dead letters, oldest first.
    pub recent_dead_letters: Vec<DeadLetterRecord>,
}

impl Metrics {
    pub(crate) fn collect(
        stats: Option<&SystemStats>,
        mut actors: Vec<ActorMetrics>,
        dead_letters: u64,
        recent_dead_letters: Vec<DeadLetterRecord>,
        started_at: SystemTime,
    ) -> Metrics {
        actors.sort_by_key(|a| a.id);
        let mut totals = stats.map(|s| *lock(&s.retired)).unwrap_or_default();
        for actor in &actors {
            totals.add(actor);
        }
        let spawn_time = stats
            .map(|s| {
                PLACEMENTS
                    .iter()
                    .zip(&s.spawn_time)
                    .map(|(p, h)| (*p, HistogramSnapshot::of(h)))
                    .filter(|(_, h)| h.count > 0)
                    .collect()
            })
            .unwrap_or_default();
        Metrics {
            enabled: stats.is_some(),
            at: SystemTime::now(),
            started_at: stats.map_or(started_at, |s| s.started_at),
            actors,
            totals,
            spawned: stats.map_or(0, |s| s.spawned.load(Ordering::Relaxed)),
            dead_letters,
            spawn_time,
            recent_dead_letters,
        }
    }

    /// The live actor with this id.
    pub fn actor(&self, id: ActorId) -> Option<&ActorMetrics> {
        self.actors.iter().find(|a| a.id == id)
    }

    /// The live actor with this name.
    pub fn named(&self, name: &str) -> Option<&ActorMetrics> {
        self.actors.iter().find(|a| a.name.as_deref() == Some(name))
    }
}

/// The last path segment of a type name, generics dropped (`Supervisor`, `PyActor`).
pub(crate) fn short_type_name(full: &'static str) -> &'static str {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}
