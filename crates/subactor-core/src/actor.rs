//! The [`Actor`] and [`Spawn`] traits, and what an actor sees of itself.

use std::convert::Infallible;
use std::error::Error;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{ActorId, ActorRef, ActorSystem, FailurePolicy, Fault, Placement, StopReason};

/// An actor: state plus a handler, run on its own OS thread.
///
/// The actor value is created on that thread (by [`Spawn::start`]) and never leaves it,
/// so it need not be `Send`: a Python actor holds raw interpreter pointers. Messages are
/// handled one at a time, in the order each sender sent them.
///
/// # Example
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use subactor_core::{Actor, ActorContext, ActorSystem, Props};
///
/// struct Counter(i64);
///
/// impl Actor for Counter {
///     type Msg = i64;
///     type Reply = i64;
///     type Error = Infallible;
///
///     fn handle(&mut self, _ctx: &ActorContext<Self>, n: i64) -> Result<i64, Infallible> {
///         self.0 += n;
///         Ok(self.0)
///     }
/// }
///
/// let system = ActorSystem::builder().build();
/// let counter = system.spawn(Props::new(|| Ok::<_, Infallible>(Counter(0))))?;
/// counter.blocking_tell(5)?;
/// assert_eq!(counter.blocking_ask(1, Duration::from_secs(1))?, 6);
/// system.shutdown();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Actor: Sized + 'static {
    /// What the actor receives.
    type Msg: Send + 'static;
    /// What [`Actor::handle`] answers to an ask.
    type Reply: Send + 'static;
    /// What a failed handler returns: the asker receives it in
    /// [`AskError::Failed`](crate::AskError::Failed); for a tell it is logged.
    type Error: Error + Send + Sync + 'static;

    /// Handles one message that expects a reply (an ask).
    fn handle(&mut self, ctx: &ActorContext<Self>, msg: Self::Msg) -> Result<Self::Reply, Self::Error>;

    /// Handles one message sent with a tell, where nobody waits for the reply. The
    /// default calls [`Actor::handle`] and drops the reply; override it when building a
    /// reply has a cost worth skipping.
    fn handle_tell(&mut self, ctx: &ActorContext<Self>, msg: Self::Msg) -> Result<(), Self::Error> {
        self.handle(ctx, msg).map(drop)
    }

    /// How many consecutive tells the core may hand to [`Actor::handle_tells`] at once
    /// (taken from the mailbox as they are already there: batching never waits for
    /// more). 1, the default, hands every tell to [`Actor::handle_tell`] on its own.
    /// Actors with a time limit are always served one message at a time.
    fn tell_batch(&self) -> usize {
        1
    }

    /// Handles consecutive tells in order, for an actor whose handlers run elsewhere
    /// (a process actor sends them in one round trip). Returns one result per message
    /// handled, in order; messages it did not reach go in [`TellBatch::unhandled`] and
    /// are served next, by this incarnation or the next one. With `stop_at_failure`
    /// (the failure policy is not resume) it stops after the first failed message.
    ///
    /// The default calls [`Actor::handle_tell`] for each message.
    fn handle_tells(
        &mut self,
        ctx: &ActorContext<Self>,
        msgs: Vec<Self::Msg>,
        stop_at_failure: bool,
    ) -> TellBatch<Self::Msg, Self::Error> {
        let mut results = Vec::with_capacity(msgs.len());
        let mut msgs = msgs.into_iter();
        for msg in msgs.by_ref() {
            let result = self.handle_tell(ctx, msg);
            let failed = result.is_err();
            results.push(result);
            if failed && stop_at_failure {
                break;
            }
        }
        TellBatch { results, unhandled: msgs.collect(), handler_times: Vec::new() }
    }

    /// Called when the mailbox is empty, just before the thread waits for the next
    /// message. A Python actor releases its GIL here; everything it handled since the
    /// last wait ran under one attach.
    fn before_wait(&mut self) {}

    /// Called when the thread wakes with a message, before it is handled.
    fn after_wait(&mut self) {}

    /// Called once on the actor's thread after the last message, before the actor is
    /// dropped.
    fn stopped(&mut self, _ctx: &ActorContext<Self>, _reason: &StopReason) {}

    /// How other threads break into this actor's running handler, if they can: asked
    /// once after the actor starts. Without one, a kill waits for the handler to return
    /// and a time limit is noticed when it does; a Rust handler can poll
    /// [`ActorContext::interrupt_requested`] to end early.
    fn interrupter(&self) -> Option<Arc<dyn Interrupt>> {
        None
    }

    /// Whether the actor can still handle messages. An actor whose handlers run
    /// elsewhere (a process actor's child process) answers `Err` with the fault once
    /// that place is gone: the incarnation then fails, as after a panic (it is never
    /// resumed), and its supervisor or failure policy decides what follows.
    ///
    /// The core asks before it takes each message off the mailbox, when the actor is
    /// woken by its [`HealthAlarm`], and after a handler returns an error (an error
    /// from an unhealthy actor is reported to the asker as the fault). Keep it cheap.
    fn health(&mut self) -> Result<(), Fault> {
        Ok(())
    }

    /// Where this actor's handlers run, reported by its references once it has
    /// started.
    fn placement(&self) -> Placement {
        Placement::Thread
    }

    /// How a blocked asker may run an ask itself while the actor is idle, if it may:
    /// asked once after the actor starts (see [`DirectAsk`](crate::DirectAsk)). For an
    /// actor whose handler is a round trip to another place (a process actor), so that
    /// the asker talks to that place without the actor's thread between them.
    fn direct(&self) -> Option<Arc<dyn crate::DirectAsk<Self>>> {
        None
    }

    /// The node of a cluster this actor's handlers run on, when that is not this
    /// runtime (an actor supervised here whose handlers run on another node): a label of
    /// its metrics. Asked once after the actor starts.
    fn node(&self) -> Option<Arc<str>> {
        None
    }

    /// How many messages this actor handles at once: 1, the default, one after the
    /// other through [`Actor::handle`]. Above 1 (an asyncio actor's `max_concurrency`),
    /// the core hands each message to [`Actor::begin`] as long as fewer are in hand,
    /// and collects their outcomes with [`Actor::finished`]; the actor rings the
    /// [`Waker`] given to [`Actor::set_waker`] when one is ready. Asked once after the
    /// actor starts.
    ///
    /// Such an actor enforces time limits itself, per message (it is given none by the
    /// watchdog), reporting [`Finished::Interrupted`].
    fn max_concurrency(&self) -> usize {
        1
    }

    /// Receives the waker that tells the core outcomes are ready (an actor whose
    /// [`max_concurrency`](Actor::max_concurrency) is above 1).
    fn set_waker(&mut self, _waker: Waker) {}

    /// Starts handling `msg` without waiting for it: its outcome, under `token`, comes
    /// later from [`Actor::finished`]. `reply`: someone waits for the reply (an ask).
    /// `Err`: it could not even start, and that is its outcome.
    ///
    /// Must be overridden by an actor whose [`max_concurrency`](Actor::max_concurrency)
    /// is above 1; the default calls [`Actor::handle`] and keeps nothing, so it panics
    /// to say the actor is incomplete.
    fn begin(
        &mut self,
        _ctx: &ActorContext<Self>,
        _token: u64,
        _msg: Self::Msg,
        _reply: bool,
    ) -> Result<(), Self::Error> {
        panic!("an actor whose max_concurrency() is above 1 must implement Actor::begin and Actor::finished")
    }

    /// The outcomes of the messages begun that ended since the last call, with their
    /// tokens (never waits).
    fn finished(&mut self, _ctx: &ActorContext<Self>) -> Vec<Ended<Self>> {
        Vec::new()
    }

    /// Interrupts every message in hand, for `cause` (a kill, or the actor failing):
    /// their outcomes come from [`Actor::finished`] as they end.
    fn cancel_all(&mut self, _cause: InterruptCause) {}
}

/// A message begun with [`Actor::begin`] that ended: its token and how.
pub type Ended<A> = (u64, Finished<<A as Actor>::Reply, <A as Actor>::Error>);

/// How a message begun with [`Actor::begin`] ended.
#[derive(Debug)]
pub enum Finished<R, E> {
    /// The handler answered (an answer to a tell is dropped).
    Replied(R),
    /// The handler failed.
    Failed(E),
    /// The handler was interrupted: killed ([`Actor::cancel_all`]), or past its time
    /// limit.
    Interrupted(InterruptCause),
}

/// Tells the core that an actor handling several messages at once has outcomes ready
/// (see [`Actor::max_concurrency`]). Cheap to clone; ringing after the actor has
/// gone does nothing.
#[derive(Clone)]
pub struct Waker(Arc<dyn Fn() + Send + Sync>);

impl Waker {
    pub(crate) fn new(f: impl Fn() + Send + Sync + 'static) -> Waker {
        Waker(Arc::new(f))
    }

    /// Wakes the actor's thread to collect outcomes.
    pub fn wake(&self) {
        (self.0)();
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waker")
    }
}

/// What [`Actor::handle_tells`] did with a batch of tells.
#[derive(Debug)]
pub struct TellBatch<M, E> {
    /// The outcome of each message handled, in order.
    pub results: Vec<Result<(), E>>,
    /// The messages not reached, in order.
    pub unhandled: Vec<M>,
    /// How long each handled message's handler ran, in order, where the actor knows it
    /// (a process actor's child times them); empty when it does not. With metrics on,
    /// the core records them in the actor's handler-time histogram.
    pub handler_times: Vec<std::time::Duration>,
}

/// Wakes an actor's thread so that it asks [`Actor::health`] even while it waits for
/// mail: how a process actor's watcher reports a child that died between messages.
/// Holds the actor weakly; ringing after the actor has gone does nothing.
#[derive(Clone)]
pub struct HealthAlarm(Arc<dyn Fn() + Send + Sync>);

impl HealthAlarm {
    /// Wakes the actor.
    pub fn ring(&self) {
        (self.0)();
    }
}

impl fmt::Debug for HealthAlarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HealthAlarm")
    }
}

/// Why a running handler is being interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InterruptCause {
    /// The actor was [`kill`](crate::ActorRef::kill)ed.
    Kill,
    /// The handler ran past the actor's time limit ([`SpawnOptions::time_limit`]).
    TimeLimit,
}

/// Breaks into an actor's running handler from another thread.
///
/// Called on the actor system's watchdog thread, which runs no actor code and holds no
/// Python thread state. A Python actor's interrupter takes the actor's interpreter
/// (which pauses the handler) and raises an exception in it.
pub trait Interrupt: Send + Sync {
    /// Interrupts the handler running now, for `cause`.
    ///
    /// The handler meant may have ended by the time this runs, and the next one may
    /// have started: an implementation first brings the actor's thread to a point where
    /// it cannot start another handler (a Python interrupter holds the interpreter's
    /// GIL), then calls `confirm`, and interrupts only if it returns `true`.
    fn interrupt(&self, cause: InterruptCause, confirm: &dyn Fn() -> bool);
}

/// A recipe that starts an actor on its thread: a Python module and class with its
/// arguments, or a Rust factory ([`Props`]).
///
/// [`Spawn::start`] takes `&mut self` so that the same recipe can start the actor again.
pub trait Spawn: Send + 'static {
    /// The actor it starts.
    type Actor: Actor;
    /// Why starting can fail.
    type Error: Error + Send + Sync + 'static;

    /// The name, mailbox capacity and thread placement of the actor.
    fn options(&self) -> &SpawnOptions;

    /// Builds the actor. Runs on the actor's own thread.
    fn start(&mut self, ctx: &ActorContext<Self::Actor>) -> Result<Self::Actor, Self::Error>;

    /// Called on the actor's thread once its first start succeeded and the spawner has
    /// been told (so that work done here, such as a warm pool's refill, is off the
    /// spawn's critical path); not after restarts, nor when the start failed.
    fn spawned(&mut self) {}

    /// Called on the actor's thread once the actor has stopped for good, after its last
    /// incarnation is dropped: releases whatever the recipe kept across restarts.
    fn release(&mut self) {}

    /// Where the actor's handlers will run, as references report it while the actor
    /// starts (once it runs, [`Actor::placement`] says).
    fn placement(&self) -> Placement {
        Placement::Thread
    }

    /// A thread started in advance to run this actor (a warm pool's), instead of a new
    /// one; called once per spawn, on the spawner's thread. `None` (the default): the
    /// actor gets a thread of its own, named after it.
    fn warm_thread(&mut self, _system: &crate::ActorSystem) -> Option<crate::WarmThread> {
        None
    }

    /// The failure policy when the options set none: restart under a supervisor,
    /// resume without one.
    fn default_failure_policy(&self, supervised: bool) -> FailurePolicy {
        if supervised { FailurePolicy::Restart } else { FailurePolicy::Resume }
    }
}

/// Options common to every actor, set on its recipe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    /// A unique name, shown in logs and thread names; the actor can be looked up by it.
    pub name: Option<Arc<str>>,
    /// The mailbox capacity; the system default when `None`.
    pub mailbox_capacity: Option<usize>,
    /// The CPU core to pin the actor's thread to.
    pub core: Option<usize>,
    /// What to do when a handler fails; `None`: restart under a supervisor, resume
    /// without one.
    pub on_failure: Option<FailurePolicy>,
    /// The longest a handler may run; one that runs longer is interrupted (where the
    /// actor can be, see [`Actor::interrupter`]) and counts as failed.
    pub time_limit: Option<Duration>,
}

impl SpawnOptions {
    /// Sets the actor's name.
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the mailbox capacity (at least 1).
    #[must_use]
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = Some(capacity);
        self
    }

    /// Pins the actor's thread to a CPU core (0-based).
    #[must_use]
    pub fn pin_to_core(mut self, core: usize) -> Self {
        self.core = Some(core);
        self
    }

    /// Sets what happens when a handler fails.
    #[must_use]
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.on_failure = Some(policy);
        self
    }

    /// Limits how long one handler may run.
    #[must_use]
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = Some(limit);
        self
    }
}

/// The recipe for a Rust actor: a factory that builds it, and its options.
///
/// The factory runs on the actor's thread, and again if the actor is restarted. A
/// recipe whose factory can be cloned can be a supervisor's child
/// ([`ChildSpec`](crate::ChildSpec)).
#[derive(Clone)]
pub struct Props<F> {
    factory: F,
    options: SpawnOptions,
}

impl<F> Props<F> {
    /// A recipe that builds the actor with `factory`.
    pub fn new<A, E>(factory: F) -> Self
    where
        F: FnMut() -> Result<A, E>,
    {
        Props { factory, options: SpawnOptions::default() }
    }

    /// Sets the actor's name.
    #[must_use]
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.options = self.options.name(name);
        self
    }

    /// Sets the mailbox capacity (at least 1).
    #[must_use]
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.options = self.options.mailbox_capacity(capacity);
        self
    }

    /// Pins the actor's thread to a CPU core (0-based).
    #[must_use]
    pub fn pin_to_core(mut self, core: usize) -> Self {
        self.options = self.options.pin_to_core(core);
        self
    }

    /// Sets what happens when a handler fails.
    #[must_use]
    pub fn on_failure(mut self, policy: FailurePolicy) -> Self {
        self.options = self.options.on_failure(policy);
        self
    }

    /// Limits how long one handler may run.
    #[must_use]
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.options = self.options.time_limit(limit);
        self
    }
}

impl<F> fmt::Debug for Props<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Props").field("options", &self.options).finish_non_exhaustive()
    }
}

impl<A, E, F> Spawn for Props<F>
where
    A: Actor,
    E: Error + Send + Sync + 'static,
    F: FnMut() -> Result<A, E> + Send + 'static,
{
    type Actor = A;
    type Error = E;

    fn options(&self) -> &SpawnOptions {
        &self.options
    }

    fn start(&mut self, _ctx: &ActorContext<A>) -> Result<A, E> {
        (self.factory)()
    }
}

/// A convenient error type for Rust actors that cannot fail to start.
pub type NeverFails = Infallible;

/// What a running actor knows about itself and the system it belongs to.
pub struct ActorContext<A: Actor> {
    pub(crate) myself: ActorRef<A>,
    pub(crate) system: ActorSystem,
}

impl<A: Actor> ActorContext<A> {
    /// A reference to this actor.
    pub fn myself(&self) -> &ActorRef<A> {
        &self.myself
    }

    /// The system the actor runs in.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.myself.id()
    }

    /// The actor's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.myself.name()
    }

    /// Whether the running handler has been asked to end: the actor was killed, or the
    /// handler ran past its time limit. A long Rust handler can poll this.
    pub fn interrupt_requested(&self) -> bool {
        self.myself.cell.interrupt_requested()
    }

    /// An alarm that wakes this actor's thread to look at its [`Actor::health`].
    pub fn health_alarm(&self) -> HealthAlarm {
        let cell = Arc::downgrade(&self.myself.cell);
        HealthAlarm(Arc::new(move || {
            if let Some(cell) = cell.upgrade() {
                cell.wake();
            }
        }))
    }
}

impl<A: Actor> fmt::Debug for ActorContext<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorContext").field("myself", &self.myself).finish_non_exhaustive()
    }
}
