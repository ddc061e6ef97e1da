//! [`ActorSystem`]: spawns actors on their threads, knows them by name, shuts them down.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use tracing::{debug, info_span, warn};

use crate::cell::{Cell, CellConfig, Signal};
use crate::dead_letters::{DeadLetterReason, DeadLetters};
use crate::metrics::{ActorMetrics, Metrics, SystemStats, short_type_name};
use crate::run::{Started, run};
use crate::supervisor::ParentLink;
use crate::sync::lock;
use crate::timers::{Job, TimerId, Timers};
use crate::watchdog::{Interruptible, Watchdog};
use crate::{Actor, ActorId, ActorRef, AnyRef, Spawn, SpawnError, Value};

/// A registry of names beyond this runtime (a cluster's): a name is claimed there when
/// an actor that has it is spawned, and released when the actor stops.
pub trait NameService: Send + Sync {
    /// Claims `name` for actor `id` of this runtime.
    fn claim(&self, name: &str, id: ActorId) -> Result<(), NameClaimError>;
    /// Releases `name`, if actor `id` still holds it.
    fn release(&self, name: &str, id: ActorId);
}

/// Why a name could not be claimed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameClaimError {
    /// Another actor (on another node) has it.
    #[error("the name is taken")]
    Taken,
    /// The registry could not be reached.
    #[error("the name registry is unavailable: {0}")]
    Unavailable(String),
}

/// The default mailbox capacity.
pub const DEFAULT_MAILBOX_CAPACITY: usize = 1024;

/// The default time an idle actor (or a blocked asker) spins before parking.
pub const DEFAULT_SPIN: Duration = Duration::from_micros(50);

/// The stack size of actor threads: Python code expects the 8 MiB of a main thread.
pub(crate) const ACTOR_STACK_SIZE: usize = 8 << 20;

/// Runs actors, each on its own OS thread.
///
/// Cloning is cheap and gives another handle to the same system. Actors run until they
/// are stopped or killed, or until [`shutdown`](Self::shutdown); dropping references to
/// an actor does not stop it.
#[derive(Clone)]
pub struct ActorSystem {
    inner: Arc<Inner>,
}

struct Inner {
    mailbox_capacity: usize,
    spin: Duration,
    dead_letters: Arc<DeadLetters>,
    names: Mutex<HashMap<Arc<str>, ActorId>>,
    live: Mutex<HashMap<ActorId, Arc<dyn Control>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
    extensions: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    timers: Timers,
    watchdog: Arc<Watchdog>,
    names_beyond: Option<Arc<dyn NameService>>,
    /// The system's own counters, while metrics are on.
    stats: Option<SystemStats>,
    started_at: SystemTime,
}

/// What the system needs of an actor of any type.
trait Control: Send + Sync {
    fn request(&self, signal: Signal);
    fn is_own_thread(&self) -> bool;
    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    fn metrics(&self) -> ActorMetrics;
}

impl<A: Actor> Control for Cell<A> {
    fn metrics(&self) -> ActorMetrics {
        let mut m = ActorMetrics::base(self.id, self.name.clone(), short_type_name(std::any::type_name::<A>()));
        m.parent = self.parent;
        m.placement = *lock(&self.placement);
        m.node = lock(&self.node).clone();
        m.state = self.state();
        m.mailbox_depth = self.depth();
        m.mailbox_capacity = self.capacity;
        if let Some(stats) = &self.stats {
            m.fill(stats);
        }
        m.restarts = self.restarts.load(Ordering::Relaxed);
        m
    }

    fn request(&self, signal: Signal) {
        Cell::request(self, signal);
    }

    fn is_own_thread(&self) -> bool {
        Cell::is_own_thread(self)
    }

    fn as_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// Configures an [`ActorSystem`].
#[derive(Default)]
pub struct SystemBuilder {
    mailbox_capacity: Option<usize>,
    spin: Option<Duration>,
    extensions: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
    names: Option<Arc<dyn NameService>>,
    metrics: bool,
}

impl SystemBuilder {
    /// Collects metrics of every actor (messages handled and failed, handler times,
    /// restarts, dead letters, interrupts, spawn times: see [`ActorSystem::metrics`]).
    /// Off by default; on, they cost a few nanoseconds a message.
    #[must_use]
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// The mailbox capacity of actors whose recipe does not set one
    /// ([`DEFAULT_MAILBOX_CAPACITY`] unless set).
    #[must_use]
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = Some(capacity);
        self
    }

    /// How long an idle actor, or a blocked asker, spins before parking its thread
    /// ([`DEFAULT_SPIN`] unless set). Spinning trades a little CPU for round trips of a
    /// few microseconds instead of a futex wake-up each way; zero disables it.
    #[must_use]
    pub fn spin(mut self, spin: Duration) -> Self {
        self.spin = Some(spin);
        self
    }

    /// Makes `value` available to every actor's recipe through
    /// [`ActorSystem::extension`]: this is how the Python host reaches Python actors
    /// without the core knowing about Python.
    #[must_use]
    pub fn extension<T: Any + Send + Sync>(mut self, value: Arc<T>) -> Self {
        self.extensions.insert(TypeId::of::<T>(), value);
        self
    }

    /// Makes actor names unique beyond this runtime too (across a cluster): a spawn
    /// claims its name in `names`, which refuses a name taken elsewhere.
    #[must_use]
    pub fn names(mut self, names: Arc<dyn NameService>) -> Self {
        self.names = Some(names);
        self
    }

    /// Builds the system.
    pub fn build(self) -> ActorSystem {
        ActorSystem {
            inner: Arc::new(Inner {
                mailbox_capacity: self.mailbox_capacity.unwrap_or(DEFAULT_MAILBOX_CAPACITY),
                spin: self.spin.unwrap_or(DEFAULT_SPIN),
                dead_letters: Arc::default(),
                names: Mutex::default(),
                live: Mutex::default(),
                threads: Mutex::default(),
                closed: AtomicBool::new(false),
                extensions: RwLock::new(self.extensions),
                timers: Timers::default(),
                watchdog: Arc::default(),
                names_beyond: self.names,
                stats: self.metrics.then(SystemStats::new),
                started_at: SystemTime::now(),
            }),
        }
    }
}

impl fmt::Debug for SystemBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemBuilder")
            .field("mailbox_capacity", &self.mailbox_capacity)
            .field("spin", &self.spin)
            .finish_non_exhaustive()
    }
}

impl ActorSystem {
    /// Starts configuring a system.
    pub fn builder() -> SystemBuilder {
        SystemBuilder::default()
    }

    /// Spawns an actor on a new thread and waits until it has started.
    ///
    /// Blocks for as long as the recipe takes (tens of milliseconds for a Python actor);
    /// from async code, call it through `tokio::task::spawn_blocking`.
    pub fn spawn<S: Spawn>(&self, spec: S) -> Result<ActorRef<S::Actor>, SpawnError<S::Error>> {
        self.spawn_child(spec, None)
    }

    /// Begins a spawn: the actor's thread is started and the actor starts on it; the
    /// [`PendingSpawn`] gives its reference once it has started, which the caller may
    /// wait for in slices (to handle signals between them, as the Python package does)
    /// or give up. [`ActorSystem::spawn`] is this and [`PendingSpawn::wait`].
    pub fn begin_spawn<S: Spawn>(&self, spec: S) -> Result<PendingSpawn<S>, SpawnError<S::Error>> {
        self.begin_spawn_child(spec, None)
    }

    /// Spawns an actor whose failures are decided by `parent` (a supervisor).
    pub(crate) fn spawn_child<S: Spawn>(
        &self,
        spec: S,
        parent: Option<ParentLink>,
    ) -> Result<ActorRef<S::Actor>, SpawnError<S::Error>> {
        self.begin_spawn_child(spec, parent)?.wait()
    }

    fn begin_spawn_child<S: Spawn>(
        &self,
        mut spec: S,
        parent: Option<ParentLink>,
    ) -> Result<PendingSpawn<S>, SpawnError<S::Error>> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(SpawnError::ShutDown);
        }
        let options = spec.options().clone();
        let capacity = options.mailbox_capacity.unwrap_or(inner.mailbox_capacity);
        if capacity == 0 {
            return Err(SpawnError::InvalidOptions("the mailbox capacity must be at least 1".into()));
        }
        if options.time_limit.is_some_and(|limit| limit.is_zero()) {
            return Err(SpawnError::InvalidOptions("the time limit must be longer than zero".into()));
        }
        let id = ActorId::next();
        if let Some(name) = &options.name {
            {
                let mut names = lock(&inner.names);
                if names.contains_key(name) {
                    return Err(SpawnError::NameTaken(name.to_string()));
                }
                names.insert(Arc::clone(name), id);
            }
            if let Some(beyond) = &inner.names_beyond {
                if let Err(refused) = beyond.claim(name, id) {
                    lock(&inner.names).remove(name);
                    return Err(match refused {
                        NameClaimError::Taken => SpawnError::NameTaken(name.to_string()),
                        NameClaimError::Unavailable(why) => {
                            SpawnError::InvalidOptions(format!("cannot register the name {name:?}: {why}"))
                        }
                    });
                }
            }
        }
        let config = CellConfig {
            capacity,
            spin: inner.spin,
            time_limit: options.time_limit,
            dead_letters: Arc::clone(&inner.dead_letters),
            watchdog: Arc::clone(&inner.watchdog),
            metrics: inner.stats.is_some(),
            parent: parent.as_ref().map(ParentLink::supervisor_id),
        };
        let cell = Arc::new_cyclic(|me| Cell::<S::Actor>::new(id, options.name.clone(), config, me.clone()));
        if let Some(limit) = options.time_limit {
            let weak: Weak<dyn Interruptible> = Arc::downgrade(&cell) as Weak<Cell<S::Actor>>;
            inner.watchdog.watch(weak, limit);
        }
        lock(&inner.live).insert(id, Arc::clone(&cell) as Arc<dyn Control>);

        let (started_tx, started_rx) = flume::bounded(1);
        let abandoned = Arc::new(AtomicBool::new(false));
        let started_tx = Started { tx: started_tx, abandoned: Arc::clone(&abandoned) };
        let thread_name = match &options.name {
            Some(name) => format!("actor:{name}"),
            None => format!("actor{id}"),
        };
        let system = self.clone();
        let thread_cell = Arc::clone(&cell);
        let warm = spec.warm_thread(self);
        let job =
            crate::ThreadJob::new(thread_name, Box::new(move || run(spec, thread_cell, system, started_tx, parent)));
        let own_thread = |job: crate::ThreadJob| {
            thread::Builder::new().name(job.name().to_owned()).stack_size(ACTOR_STACK_SIZE).spawn(move || job.run())
        };
        let spawned = match warm {
            Some(warm) => match warm.run(job) {
                Ok(handle) => Ok(handle),
                // It ended before it took the job: a thread of its own.
                Err(job) => own_thread(job),
            },
            None => own_thread(job),
        };
        let handle = match spawned {
            Ok(handle) => handle,
            Err(e) => {
                self.forget(id, options.name.as_deref());
                return Err(SpawnError::Thread(e));
            }
        };
        {
            let mut threads = lock(&inner.threads);
            // Reap threads of actors that have finished, so the list stays short.
            threads.retain(|t| !t.is_finished());
            threads.push(handle);
        }
        Ok(PendingSpawn { cell: Some(cell), started: started_rx, abandoned })
    }

    /// The running actor of type `A` with this name, if there is one.
    pub fn lookup<A: Actor>(&self, name: &str) -> Option<ActorRef<A>> {
        let id = *lock(&self.inner.names).get(name)?;
        let control = Arc::clone(lock(&self.inner.live).get(&id)?);
        control.as_any().downcast::<Cell<A>>().ok().map(ActorRef::new)
    }

    /// How many actors are alive (starting, running or stopping).
    pub fn actor_count(&self) -> usize {
        lock(&self.inner.live).len()
    }

    /// Whether the system collects metrics ([`SystemBuilder::metrics`]).
    pub fn metrics_enabled(&self) -> bool {
        self.inner.stats.is_some()
    }

    /// A snapshot of every live actor (its supervisor, placement, state, mailbox,
    /// restarts, and, with metrics on, its counters and handler times) and of the
    /// system's totals. Cheap enough to take every second: it reads each actor's
    /// counters without stopping it.
    pub fn metrics(&self) -> Metrics {
        let controls: Vec<_> = lock(&self.inner.live).values().cloned().collect();
        let actors = controls.iter().map(|c| c.metrics()).collect();
        Metrics::collect(
            self.inner.stats.as_ref(),
            actors,
            self.inner.dead_letters.count(),
            self.inner.dead_letters.recent(),
            self.inner.started_at,
        )
    }

    pub(crate) fn stats(&self) -> Option<&SystemStats> {
        self.inner.stats.as_ref()
    }

    /// The dead-letter sink.
    pub fn dead_letters(&self) -> &DeadLetters {
        &self.inner.dead_letters
    }

    /// The dead-letter sink, shared: for what records dead letters without holding the
    /// system (a link's references to actors that are gone).
    pub fn dead_letter_sink(&self) -> Arc<DeadLetters> {
        Arc::clone(&self.inner.dead_letters)
    }

    /// The extension of type `T` given to the builder, until shutdown.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let extensions = self.inner.extensions.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let value = Arc::clone(extensions.get(&TypeId::of::<T>())?);
        value.downcast::<T>().ok()
    }

    /// Tells `msg` to `target` after `delay`, without blocking anyone meanwhile. If,
    /// when the time comes, the mailbox is full or the actor has stopped, the message is
    /// a dead letter; so is a message still pending at shutdown. Returns `None` after
    /// shutdown.
    pub fn send_after(&self, delay: Duration, target: AnyRef, msg: Value) -> Option<TimerId> {
        let mail = DelayedMail { target, msg, dead_letters: Arc::clone(&self.inner.dead_letters) };
        self.inner.timers.schedule(delay, Box::new(mail))
    }

    /// Runs a job after a delay on the timer thread.
    pub(crate) fn schedule(&self, delay: Duration, job: Box<dyn Job>) -> Option<TimerId> {
        self.inner.timers.schedule(delay, job)
    }

    /// Cancels a timer of [`send_after`](Self::send_after); `true` if it had not fired.
    pub fn cancel_timer(&self, id: TimerId) -> bool {
        self.inner.timers.cancel(id)
    }

    /// Whether the calling thread is the thread of one of this system's live actors.
    pub fn is_actor_thread(&self) -> bool {
        lock(&self.inner.live).values().any(|actor| actor.is_own_thread())
    }

    /// Whether [`shutdown`](Self::shutdown) has been called.
    pub fn is_shut_down(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Kills every actor and waits for all their threads to finish. Afterwards,
    /// spawning fails with [`SpawnError::ShutDown`] and the extensions are dropped.
    ///
    /// Killed actors finish the message they are handling; what is queued goes to the
    /// dead letters. Calling it again does nothing. Called by an actor of this system,
    /// it cannot wait for that actor's own thread, which ends after the handler returns.
    pub fn shutdown(&self) {
        let inner = &self.inner;
        // A second caller still waits for every thread, so that returning always means
        // that no actor is left.
        inner.closed.store(true, Ordering::Release);
        let span = info_span!("shutdown");
        let _entered = span.enter();
        loop {
            let live: Vec<_> = lock(&inner.live).values().cloned().collect();
            for actor in &live {
                actor.request(Signal::Kill);
            }
            let current = thread::current().id();
            let threads: Vec<_> =
                std::mem::take(&mut *lock(&inner.threads)).into_iter().filter(|t| t.thread().id() != current).collect();
            if threads.is_empty() {
                if live.is_empty() || live.iter().all(|actor| actor.is_own_thread()) {
                    break;
                }
                // An actor between registration and the push of its thread handle.
                thread::sleep(Duration::from_millis(1));
                continue;
            }
            debug!(actors = live.len(), threads = threads.len(), "joining actor threads");
            for thread in threads {
                if thread.join().is_err() {
                    warn!("an actor thread panicked outside its handlers");
                }
            }
        }
        inner.timers.shutdown();
        inner.watchdog.shutdown();
        inner.extensions.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    pub(crate) fn forget(&self, id: ActorId, name: Option<&str>) {
        let gone = lock(&self.inner.live).remove(&id);
        if let (Some(stats), Some(gone)) = (&self.inner.stats, gone) {
            stats.retire(&gone.metrics());
        }
        if let Some(name) = name {
            let mut names = lock(&self.inner.names);
            if names.get(name) == Some(&id) {
                names.remove(name);
                drop(names);
                if let Some(beyond) = &self.inner.names_beyond {
                    beyond.release(name, id);
                }
            }
        }
    }
}

impl fmt::Debug for ActorSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorSystem")
            .field("actors", &self.actor_count())
            .field("shut_down", &self.is_shut_down())
            .finish_non_exhaustive()
    }
}

/// The job of [`ActorSystem::send_after`].
struct DelayedMail {
    target: AnyRef,
    msg: Value,
    dead_letters: Arc<DeadLetters>,
}

impl Job for DelayedMail {
    fn run(self: Box<Self>) {
        let DelayedMail { target, msg, dead_letters } = *self;
        // A refusal by a stopped actor is recorded by try_tell itself.
        if let Err(crate::SendError::Full(msg)) = target.try_tell(msg) {
            dead_letters.record(target.id(), target.name(), DeadLetterReason::MailboxFull, &msg);
        }
    }

    fn abandon(self: Box<Self>) {
        self.dead_letters.record(self.target.id(), self.target.name(), DeadLetterReason::ShutDown, &self.msg);
    }
}

/// A spawn under way ([`ActorSystem::begin_spawn`]): the actor's reference once it has
/// started. Dropped before it gave it (the caller gave up), the actor is killed as soon
/// as it has started; a start that failed is only reported.
#[must_use = "dropping it kills the actor once it has started"]
pub struct PendingSpawn<S: Spawn> {
    /// `None` once the outcome was taken.
    cell: Option<Arc<Cell<S::Actor>>>,
    started: flume::Receiver<Result<(), SpawnError<S::Error>>>,
    abandoned: Arc<AtomicBool>,
}

/// How a spawn of `S` ended: the actor's reference, or why it did not start.
pub type Spawned<S> = Result<ActorRef<<S as Spawn>::Actor>, SpawnError<<S as Spawn>::Error>>;

impl<S: Spawn> fmt::Debug for PendingSpawn<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingSpawn").field("actor", &self.cell.as_ref().map(|cell| cell.id)).finish()
    }
}

impl<S: Spawn> PendingSpawn<S> {
    /// Waits until the actor has started (its reference) or could not start.
    pub fn wait(mut self) -> Spawned<S> {
        let report = self.started.recv().map_err(|_| flume::RecvTimeoutError::Disconnected);
        // Only a timeout gives no outcome, and `recv` has none.
        self.outcome(report).unwrap_or_else(|| Err(never_reported()))
    }

    /// Waits up to `timeout`: the outcome, or `Err(self)` while the actor is still
    /// starting.
    pub fn wait_timeout(mut self, timeout: Duration) -> Result<Spawned<S>, Self> {
        let report = self.started.recv_timeout(timeout);
        match self.outcome(report) {
            Some(outcome) => Ok(outcome),
            None => Err(self),
        }
    }

    /// Whether the actor's thread has reported how its start went.
    #[cfg(test)]
    pub(crate) fn reported(&self) -> bool {
        !self.started.is_empty()
    }

    /// The outcome a report gives, `None` for a wait that timed out.
    fn outcome(
        &mut self,
        report: Result<Result<(), SpawnError<S::Error>>, flume::RecvTimeoutError>,
    ) -> Option<Spawned<S>> {
        match report {
            Ok(Ok(())) => Some(Ok(ActorRef::new(self.cell.take()?))),
            Ok(Err(error)) => {
                self.cell = None;
                Some(Err(error))
            }
            Err(flume::RecvTimeoutError::Timeout) => None,
            Err(flume::RecvTimeoutError::Disconnected) => {
                self.cell = None;
                Some(Err(never_reported()))
            }
        }
    }
}

/// The error of a spawn whose actor thread ended without saying how its start went.
fn never_reported<E>() -> SpawnError<E> {
    SpawnError::Panicked("the actor thread ended before reporting".into())
}

impl<S: Spawn> Drop for PendingSpawn<S> {
    fn drop(&mut self) {
        let Some(cell) = self.cell.take() else { return };
        // Set before looking for a report: an actor thread that reports after this
        // sees the flag and kills its actor itself (`Started::report`).
        self.abandoned.store(true, Ordering::SeqCst);
        if let Ok(Ok(())) = self.started.try_recv() {
            debug!(id = %cell.id, "a spawn given up: its actor had started, it is killed");
            ActorRef::new(cell).kill();
        }
    }
}
