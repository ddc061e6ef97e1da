//! The body of an actor's thread: start the actor, serve its mailbox, and on a failure
//! (or a supervisor's request) start it again on this same thread, with the same
//! mailbox, until it stops for good.
//!
//! # What counts as a failure
//!
//! An incarnation of an actor fails when a handler panics, when it returns an error or
//! runs past its time limit under a [`FailurePolicy`] other than
//! [`FailurePolicy::Resume`], or when its recipe fails to build it again after a
//! restart. A panic is never resumed: the actor's state may be half-updated. The
//! message being handled is always reported (the asker gets the error or the
//! [`Fault`], a tell becomes a dead letter); messages still queued stay in the mailbox
//! for the next incarnation.
//!
//! What happens next: under a supervisor, it decides (restart, after an optional
//! backoff, or stop). Without one, [`FailurePolicy::Restart`] restarts in place and
//! anything else stops the actor.
//!
//! If the thread itself dies (a panic outside any handler), the actor ends with
//! [`StopReason::Panicked`] as if it had been killed: monitors are told, the queue goes
//! to the dead letters, and waiting askers get `NoReply`.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tracing::{debug, error, info_span, trace_span, warn};

use crate::cell::{Busy, Cell, Envelope, Failed, ReplyTo, Signal, spin_recv_or};
use crate::dead_letters::DeadLetterReason;
use crate::supervisor::{Decision, ParentLink};
use crate::{
    Actor, ActorContext, ActorRef, ActorState, ActorSystem, FailurePolicy, Fault, InterruptCause, Spawn, SpawnError,
    StopReason, TellBatch, Value,
};

/// Envelopes taken off the mailbox and not handled yet (the rest of a batch of tells
/// after a failure): served before the mailbox, by the next incarnation if need be.
type Pending<A> = VecDeque<Envelope<A>>;

/// How an actor's thread reports its start to its spawner ([`crate::PendingSpawn`]).
pub(crate) struct Started<E> {
    pub(crate) tx: flume::Sender<Result<(), SpawnError<E>>>,
    /// Set by a spawner that gave up waiting.
    pub(crate) abandoned: Arc<AtomicBool>,
}

impl<E> Started<E> {
    /// Reports the start; `false` if the spawner has given up waiting (it will never
    /// take the reference). The flag is read after the send: a spawner that gives up
    /// sets it before it looks for a report, so one of the two sees the other.
    fn report(self, result: Result<(), SpawnError<E>>) -> bool {
        let sent = self.tx.send(result).is_ok();
        sent && !self.abandoned.load(Ordering::SeqCst)
    }
}

/// Why an incarnation of an actor ended abnormally.
#[derive(Debug)]
pub(crate) struct Failure {
    kind: FailureKind,
    message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FailureKind {
    /// A handler error, or the recipe failing to start the actor again.
    Error,
    Panic,
    TimeLimit,
    /// The place that ran the handlers is gone (a process actor's child died).
    Died,
}

impl Failure {
    fn reason(&self) -> StopReason {
        match self.kind {
            FailureKind::Panic => StopReason::Panicked(self.message.as_str().into()),
            FailureKind::Error | FailureKind::TimeLimit | FailureKind::Died => {
                StopReason::Failed(self.message.as_str().into())
            }
        }
    }
}

/// How a stretch of serving ended.
enum Exit {
    /// For good.
    Stopped(StopReason),
    /// The incarnation failed; the actor may be restarted.
    Failed(Failure),
    /// A supervisor asked for a restart (a sibling failed).
    Restart,
}

/// How the actor's life ended.
enum End<E> {
    /// It never started: the spawner gets this error.
    NeverStarted(SpawnError<E>, StopReason),
    /// It ran and stopped.
    Stopped(StopReason),
}

/// Runs an actor on the calling (new) thread until it stops for good.
pub(crate) fn run<S: Spawn>(
    mut spec: S,
    cell: Arc<Cell<S::Actor>>,
    system: ActorSystem,
    started: Started<S::Error>,
    parent: Option<ParentLink>,
) {
    let span = info_span!("actor", id = %cell.id, name = cell.name.as_deref().unwrap_or(""));
    let _entered = span.enter();
    cell.bind_thread();
    let ctx = ActorContext { myself: ActorRef::new(Arc::clone(&cell)), system };
    let mut started = Some(started);
    let mut pending = Pending::new();
    let end = catch_unwind(AssertUnwindSafe(|| live(&mut spec, &ctx, &mut started, parent.as_ref(), &mut pending)))
        .unwrap_or_else(|panic| {
            let message = format!("the actor's thread died: {}", panic_message(&*panic));
            error!(%message, "actor thread panicked outside its handlers");
            End::Stopped(StopReason::Panicked(message.into()))
        });
    if catch_unwind(AssertUnwindSafe(|| spec.release())).is_err() {
        warn!("the recipe's release hook panicked");
    }
    let (reason, spawn_error) = match end {
        End::NeverStarted(error, reason) => (reason, Some(error)),
        End::Stopped(reason) => (reason, None),
    };
    cell.set_interrupter(None);
    cell.set_state(ActorState::Stopping);
    cell.close();
    let dead = match (&reason, &spawn_error) {
        (_, Some(_)) => DeadLetterReason::NotRunning,
        (StopReason::Panicked(_), _) => DeadLetterReason::Panicked,
        _ => DeadLetterReason::Killed,
    };
    for envelope in pending.drain(..) {
        cell.dead_letter(envelope, dead);
    }
    cell.drain_to_dead_letters(dead);
    debug!(%reason, "actor stopped");
    ctx.system.forget(cell.id, cell.name.as_deref());
    cell.finish(reason);
    if let (Some(error), Some(started)) = (spawn_error, started) {
        let _ = started.report(Err(error));
    }
}

/// Starts, serves and restarts the actor; returns how its life ended.
fn live<S: Spawn>(
    spec: &mut S,
    ctx: &ActorContext<S::Actor>,
    started: &mut Option<Started<S::Error>>,
    parent: Option<&ParentLink>,
    pending: &mut Pending<S::Actor>,
) -> End<S::Error> {
    let cell = &ctx.myself.cell;
    if let Some(core) = spec.options().core {
        if let Err(why) = pin(core) {
            return End::NeverStarted(SpawnError::InvalidOptions(why.clone()), StopReason::StartFailed(why.into()));
        }
    }
    let policy = spec.options().on_failure.unwrap_or_else(|| spec.default_failure_policy(parent.is_some()));
    *crate::sync::lock(&cell.placement) = spec.placement();
    loop {
        let starting = cell.stats.as_ref().map(|_| Instant::now());
        let mut actor = match catch_unwind(AssertUnwindSafe(|| spec.start(ctx))) {
            Ok(Ok(actor)) => actor,
            Ok(Err(error)) => {
                debug!(%error, "actor failed to start");
                let message = error.to_string();
                if started.is_some() {
                    return End::NeverStarted(SpawnError::Start(error), StopReason::StartFailed(message.into()));
                }
                let failure = Failure { kind: FailureKind::Error, message: format!("restart failed: {message}") };
                match after_failure(cell, parent, policy, &failure) {
                    Some(()) => continue,
                    None => return End::Stopped(StopReason::StartFailed(message.into())),
                }
            }
            Err(panic) => {
                let message = panic_message(&*panic);
                if started.is_some() {
                    return End::NeverStarted(
                        SpawnError::Panicked(message.clone()),
                        StopReason::StartFailed(message.into()),
                    );
                }
                let failure = Failure { kind: FailureKind::Panic, message: format!("restart panicked: {message}") };
                match after_failure(cell, parent, policy, &failure) {
                    Some(()) => continue,
                    None => return End::Stopped(StopReason::StartFailed(message.into())),
                }
            }
        };
        cell.set_interrupter(actor.interrupter());
        *crate::sync::lock(&cell.placement) = actor.placement();
        *crate::sync::lock(&cell.node) = actor.node();
        if let (Some(stats), Some(starting)) = (&cell.stats, starting) {
            let took = starting.elapsed();
            stats.started(took);
            if started.is_some() {
                if let Some(system) = ctx.system.stats() {
                    system.spawned(actor.placement(), took);
                }
            }
        }
        // A stop or kill that came while the actor was starting leaves it Stopping.
        cell.transition(ActorState::Starting, ActorState::Running);
        match started.take() {
            Some(started) => {
                if !started.report(Ok(())) {
                    // Nobody will have its reference (a Python spawn interrupted by a
                    // signal): it goes, as a kill would end it.
                    debug!("the spawner gave up waiting: the actor is killed");
                    ctx.myself.kill();
                }
                debug!("actor started");
                if catch_unwind(AssertUnwindSafe(|| spec.spawned())).is_err() {
                    warn!("the recipe's spawned hook panicked");
                }
            }
            None => debug!("actor restarted"),
        }
        let exit = if actor.max_concurrency() > 1 {
            serve_concurrently(&mut actor, ctx, policy, pending)
        } else {
            // Callers may run asks while the actor is idle (see `crate::direct`); the
            // offer goes before the actor does, while this thread has the turn.
            let offer = if cell.time_limit.is_none() { actor.direct() } else { None };
            *crate::sync::lock(&cell.direct) = offer.map(|direct| (direct, policy));
            let exit = serve(&mut actor, ctx, policy, pending);
            *crate::sync::lock(&cell.direct) = None;
            exit
        };
        let reason = match &exit {
            Exit::Stopped(reason) => reason.clone(),
            Exit::Failed(failure) => failure.reason(),
            Exit::Restart => StopReason::Failed("restart requested by the supervisor".into()),
        };
        if catch_unwind(AssertUnwindSafe(|| actor.stopped(ctx, &reason))).is_err() {
            warn!("actor's stopped hook panicked");
        }
        cell.set_interrupter(None);
        // The old actor (for a Python actor: its interpreter) goes before a new one starts.
        drop(actor);
        match exit {
            Exit::Stopped(reason) => return End::Stopped(reason),
            Exit::Restart => {
                cell.restarts.fetch_add(1, Ordering::Relaxed);
                debug!("restarting on the supervisor's request");
            }
            Exit::Failed(failure) => {
                warn!(failure = %failure.message, "actor failed");
                if after_failure(cell, parent, policy, &failure).is_none() {
                    return End::Stopped(reason);
                }
            }
        }
        // Senders may keep queueing while the next incarnation starts.
        cell.transition(ActorState::Running, ActorState::Starting);
    }
}

/// Pins the calling (actor) thread to `core`. The kernel is the judge of which cores
/// this process may use (the spawner's own affinity does not limit its actors').
fn pin(core: usize) -> Result<(), String> {
    // A cpu_set_t holds 1,024 CPUs; core_affinity would index past it.
    const CPU_SETSIZE: usize = 1024;
    if core < CPU_SETSIZE && core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(format!("cannot pin to core {core}: it is not one of the cores this process may run on"))
    }
}

/// Decides whether a failed actor restarts, counting the restart if it does: `Some` to
/// restart now, `None` to stop.
fn after_failure<A: Actor>(
    cell: &Cell<A>,
    parent: Option<&ParentLink>,
    policy: FailurePolicy,
    failure: &Failure,
) -> Option<()> {
    if cell.signal() >= Signal::Stop {
        return None;
    }
    let restart = match (parent, policy) {
        (_, FailurePolicy::Stop) => None,
        (Some(parent), _) => restart_after(cell, parent, &failure.message),
        (None, FailurePolicy::Restart) => Some(()),
        // Unsupervised and resuming: only a panic (or a failed restart) ends up here.
        (None, FailurePolicy::Resume) => None,
    };
    if let Some(stats) = &cell.stats {
        stats.failure(&failure.message);
    }
    if restart.is_some() {
        cell.restarts.fetch_add(1, Ordering::Relaxed);
        // A restart request that came with the failure is served by this restart.
        cell.take_restart();
    }
    restart
}

/// Asks the supervisor what to do about a failure, and waits out its backoff. `None`:
/// stop (the supervisor said so or is gone, or the actor was told to stop meanwhile).
fn restart_after<A: Actor>(cell: &Cell<A>, parent: &ParentLink, failure: &str) -> Option<()> {
    let stop_requested = || cell.signal() >= Signal::Stop;
    match parent.decide(cell.id, failure.to_owned(), &stop_requested) {
        Decision::Stop => None,
        Decision::Restart(delay) => {
            let until = crate::deadline_after(delay);
            while Instant::now() < until {
                if stop_requested() {
                    return None;
                }
                thread::sleep((until - Instant::now()).min(Duration::from_millis(5)));
            }
            Some(())
        }
    }
}

/// Handles messages until the actor is stopped, killed, fails, or is asked to restart.
fn serve<A: Actor>(actor: &mut A, ctx: &ActorContext<A>, policy: FailurePolicy, pending: &mut Pending<A>) -> Exit {
    let cell = &*ctx.myself.cell;
    let busy = Busy::enter();
    let batch = if cell.time_limit.is_some() { 1 } else { actor.tell_batch().max(1) };
    // Counted on this thread's stack, published in bulk (see `Tally`).
    let mut tally = cell.stats.as_ref().map(crate::metrics::Tally::new);
    // Envelopes taken from the mailbox over the actor's life, for the turn (see
    // `crate::direct`): kept in the cell when this stretch of serving ends.
    struct Taken<'a>(&'a crate::direct::Turn, std::cell::Cell<u64>);
    impl Drop for Taken<'_> {
        fn drop(&mut self) {
            self.0.set_taken(self.1.get());
        }
    }
    let kept = Taken(&cell.turn, std::cell::Cell::new(cell.turn.taken()));
    let taken = &kept.1;
    let take = |pending: &mut Pending<A>| match pending.pop_front() {
        Some(envelope) => Ok(envelope),
        None => cell.rx.try_recv().inspect(|_| taken.set(taken.get() + 1)),
    };
    let direct = crate::sync::lock(&cell.direct).is_some();
    loop {
        if cell.signal() == Signal::Kill {
            return Exit::Stopped(StopReason::Killed);
        }
        if let Err(fault) = actor.health() {
            return Exit::Failed(Failure { kind: FailureKind::Died, message: fault.to_string() });
        }
        if let Some(msg) = cell.take_urgent() {
            if let Err(exit) = deliver(actor, ctx, Envelope::untraced(msg), policy, tally.as_mut()) {
                return exit;
            }
            continue;
        }
        let envelope = match take(pending) {
            Ok(envelope) => envelope,
            Err(_) => match cell.signal() {
                Signal::Kill => return Exit::Stopped(StopReason::Killed),
                Signal::Stop => {
                    // Graceful: the mailbox is empty. Close it, then handle whatever
                    // raced in before the close.
                    cell.close();
                    while let Some(envelope) = cell.take_urgent().map(Envelope::untraced).or_else(|| take(pending).ok())
                    {
                        if let Err(exit) = deliver(actor, ctx, envelope, policy, tally.as_mut()) {
                            return exit;
                        }
                    }
                    return Exit::Stopped(StopReason::Normal);
                }
                Signal::Restart if cell.take_restart() => return Exit::Restart,
                Signal::Restart | Signal::None => {
                    actor.before_wait();
                    if direct {
                        cell.turn.open(taken.get());
                    }
                    // The counts are published before the thread parks, not when mail
                    // comes while it spins: a sender that keeps the mailbox nearly
                    // empty would otherwise have the cell's counters written after
                    // every message or two.
                    let next = busy.idle(|| {
                        spin_recv_or(&cell.rx, cell.spin, None, || {
                            if let Some(tally) = &mut tally {
                                tally.publish();
                            }
                        })
                    });
                    if next.is_ok() {
                        taken.set(taken.get() + 1);
                    }
                    let handed = if direct { cell.turn.close() } else { Default::default() };
                    actor.after_wait();
                    if handed.unfinished {
                        if let Err(exit) = finish_direct(actor, cell, policy) {
                            if let Ok(envelope) = next {
                                pending.push_front(envelope);
                            }
                            return exit;
                        }
                    }
                    if let Some(failure) = handed.failure {
                        // A caller's handler failed the incarnation; what came meanwhile
                        // is served by the next one.
                        if let Ok(envelope) = next {
                            pending.push_front(envelope);
                        }
                        return Exit::Failed(failure);
                    }
                    match next {
                        Ok(envelope) => envelope,
                        Err(_) => return Exit::Stopped(StopReason::Normal),
                    }
                }
            },
        };
        cell.made_room();
        if cell.signal() == Signal::Kill {
            cell.dead_letter(envelope, DeadLetterReason::Killed);
            return Exit::Stopped(StopReason::Killed);
        }
        // A message taken off the mailbox cannot be put back, so a requested restart
        // happens after it is handled.
        let delivered = match envelope {
            Envelope::Tell(msg, trace) if batch > 1 && trace.is_none() => {
                let mut msgs = vec![msg];
                while msgs.len() < batch {
                    match take(pending) {
                        Ok(Envelope::Tell(msg, None)) => {
                            cell.made_room();
                            msgs.push(msg);
                        }
                        Ok(other) => {
                            pending.push_front(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                deliver_tells(actor, ctx, msgs, policy, pending, tally.as_mut())
            }
            envelope => deliver(actor, ctx, envelope, policy, tally.as_mut()),
        };
        if let Err(exit) = delivered {
            return exit;
        }
        if cell.signal() == Signal::Restart && cell.take_restart() {
            return Exit::Restart;
        }
    }
}

/// How long the thread of an actor that handles several messages at once waits for an
/// outcome or for mail before it looks at its signals again.
const CONCURRENT_POLL: Duration = Duration::from_millis(20);
/// How long a killed actor's messages in hand may take to end after their
/// cancellation before they are reported killed regardless.
const CANCEL_WAIT: Duration = Duration::from_secs(2);

/// What the core keeps of a message begun: where its reply goes, and a copy of a tell
/// for the dead letters.
type InHand<A> = std::collections::HashMap<u64, (Option<crate::cell::ReplyTo<A>>, Option<Value>, Option<Instant>)>;

/// [`serve`] for an actor that handles up to [`Actor::max_concurrency`] messages at
/// once: messages are begun in mailbox order while fewer are in hand, and each is
/// reported when it ends. A failure (under a policy other than resume) stops the
/// taking of new messages; the incarnation fails once those in hand have ended. A stop
/// waits for everything queued and in hand; a restart request for what is in hand; a
/// kill cancels what is in hand ([`Actor::cancel_all`]).
fn serve_concurrently<A: Actor>(
    actor: &mut A,
    ctx: &ActorContext<A>,
    policy: FailurePolicy,
    pending: &mut Pending<A>,
) -> Exit {
    let cell = &*ctx.myself.cell;
    let busy = Busy::enter();
    let max = actor.max_concurrency();
    let (ready_tx, ready_rx) = flume::bounded::<()>(1);
    actor.set_waker(crate::actor::Waker::new(move || {
        let _ = ready_tx.try_send(());
    }));
    let mut in_hand: InHand<A> = InHand::new();
    let mut next_token = 0_u64;
    let mut failure: Option<Failure> = None;
    let mut closing = false;
    loop {
        collect_finished(actor, ctx, &mut in_hand, &mut failure, policy);
        let signal = cell.signal();
        if signal == Signal::Kill {
            cancel_in_hand(actor, ctx, &mut in_hand, &ready_rx, policy);
            return Exit::Stopped(StopReason::Killed);
        }
        if let Err(fault) = actor.health() {
            for (_, (reply, copy, _)) in in_hand.drain() {
                report_fault(cell, reply, copy.as_ref(), &fault);
            }
            return Exit::Failed(Failure { kind: FailureKind::Died, message: fault.to_string() });
        }
        let taking = failure.is_none() && signal != Signal::Restart;
        while taking && in_hand.len() < max {
            let Some(envelope) = cell
                .take_urgent()
                .map(Envelope::untraced)
                .or_else(|| pending.pop_front())
                .or_else(|| cell.rx.try_recv().ok())
            else {
                break;
            };
            cell.made_room();
            let (msg, reply) = match envelope {
                Envelope::Tell(msg, _) => (msg, None),
                Envelope::Ask(msg, reply, _) => (msg, Some(reply)),
                Envelope::Wake => continue,
            };
            let copy = (reply.is_none() && policy != FailurePolicy::Resume && cell.dead_letters.wants_messages())
                .then(|| (&msg as &dyn Any).downcast_ref::<Value>().cloned())
                .flatten();
            next_token += 1;
            let wants_reply = reply.is_some();
            let timer = cell.stats.as_ref().and_then(crate::metrics::ActorStats::begin);
            let handled = match catch_unwind(AssertUnwindSafe(|| actor.begin(ctx, next_token, msg, wants_reply))) {
                Ok(Ok(())) => {
                    in_hand.insert(next_token, (reply, copy, timer));
                    continue;
                }
                Ok(Err(error)) => Handled::Error(error),
                Err(panic) => Handled::Panic(panic_message(&*panic)),
            };
            if let Some(failed) = settle(actor, cell, handled, reply, copy.as_ref(), policy, None, timer) {
                failure.get_or_insert(failed);
            }
        }
        if in_hand.is_empty() {
            if let Some(failure) = failure.take() {
                return Exit::Failed(failure);
            }
            if signal == Signal::Restart && cell.take_restart() {
                return Exit::Restart;
            }
            if signal == Signal::Stop && pending.is_empty() && cell.rx.is_empty() {
                if closing {
                    return Exit::Stopped(StopReason::Normal);
                }
                // Graceful: close the mailbox, then handle whatever raced in.
                cell.close();
                closing = true;
                continue;
            }
        }
        let room = in_hand.len() < max && failure.is_none() && signal != Signal::Restart;
        let received = busy.idle(|| {
            if room {
                flume::Selector::new()
                    .recv(&cell.rx, Result::ok)
                    .recv(&ready_rx, |_| None)
                    .wait_timeout(CONCURRENT_POLL)
                    .ok()
                    .flatten()
            } else {
                let _ = ready_rx.recv_timeout(CONCURRENT_POLL);
                None
            }
        });
        if let Some(envelope) = received {
            pending.push_back(envelope);
        }
    }
}

/// Reports the outcomes that are ready; the first failure is kept in `failure`.
fn collect_finished<A: Actor>(
    actor: &mut A,
    ctx: &ActorContext<A>,
    in_hand: &mut InHand<A>,
    failure: &mut Option<Failure>,
    policy: FailurePolicy,
) {
    for (token, finished) in actor.finished(ctx) {
        let Some((reply, copy, timer)) = in_hand.remove(&token) else { continue };
        let handled = match finished {
            crate::actor::Finished::Replied(value) => Handled::Ok(Some(value)),
            crate::actor::Finished::Failed(error) => Handled::Error(error),
            crate::actor::Finished::Interrupted(cause) => Handled::Interrupted(cause, None),
        };
        // A tell's answer is dropped, as `handle_tell` would.
        let handled = if reply.is_none() { handled.map_ok(|_| None) } else { handled };
        if let Some(failed) = settle(actor, &ctx.myself.cell, handled, reply, copy.as_ref(), policy, None, timer) {
            failure.get_or_insert(failed);
        }
    }
}

/// A kill: cancels what is in hand, reports each as it ends (within [`CANCEL_WAIT`]),
/// then reports the rest killed.
fn cancel_in_hand<A: Actor>(
    actor: &mut A,
    ctx: &ActorContext<A>,
    in_hand: &mut InHand<A>,
    ready: &flume::Receiver<()>,
    policy: FailurePolicy,
) {
    if in_hand.is_empty() {
        return;
    }
    actor.cancel_all(InterruptCause::Kill);
    let until = Instant::now() + CANCEL_WAIT;
    let mut ignored = None;
    while !in_hand.is_empty() && Instant::now() < until {
        let _ = ready.recv_timeout(CONCURRENT_POLL);
        collect_finished(actor, ctx, in_hand, &mut ignored, policy);
    }
    for (_, (reply, copy, _)) in in_hand.drain() {
        if let Some(stats) = &ctx.myself.cell.stats {
            stats.end(None, true, true);
        }
        report_fault(&ctx.myself.cell, reply, copy.as_ref(), &Fault::Killed);
    }
}

/// Reports a message in hand lost to `fault`.
fn report_fault<A: Actor>(cell: &Cell<A>, reply: Option<crate::cell::ReplyTo<A>>, copy: Option<&Value>, fault: &Fault) {
    match reply {
        Some(reply) => reply.send(Err(Failed::Fault(fault.clone()))),
        None => {
            let reason = if *fault == Fault::Killed { DeadLetterReason::Killed } else { DeadLetterReason::Failed };
            cell.record_dead_letter(reason, std::any::type_name::<A::Msg>(), copy);
        }
    }
}

/// Handles a batch of consecutive tells (see [`Actor::handle_tells`]) with each
/// message's failure reported as [`deliver`] reports a tell's; what the batch did not
/// reach goes back to `pending`. `Err` ends this incarnation.
fn deliver_tells<A: Actor>(
    actor: &mut A,
    ctx: &ActorContext<A>,
    msgs: Vec<A::Msg>,
    policy: FailurePolicy,
    pending: &mut Pending<A>,
    tally: Option<&mut crate::metrics::Tally<'_>>,
) -> Result<(), Exit> {
    let cell = &*ctx.myself.cell;
    let span = trace_span!("tells", count = msgs.len());
    let _entered = span.enter();
    // Failed tells are reported with their message to dead-letter subscribers.
    let copies: Vec<Option<Value>> = if policy != FailurePolicy::Resume && cell.dead_letters.wants_messages() {
        msgs.iter().map(|msg| (msg as &dyn Any).downcast_ref::<Value>().cloned()).collect()
    } else {
        Vec::new()
    };
    let count = msgs.len();
    if cell.begin_handler().is_none() {
        // Killed just before: the batch is not begun.
        if let Some(tally) = tally {
            tally.end_batch(count as u64, count as u64, true, &[]);
        }
        for msg in msgs {
            cell.dead_letter(Envelope::untraced(msg), DeadLetterReason::Killed);
        }
        return Err(Exit::Stopped(StopReason::Killed));
    }
    let result = catch_unwind(AssertUnwindSafe(|| actor.handle_tells(ctx, msgs, policy != FailurePolicy::Resume)));
    let interrupted = cell.end_handler();
    let type_name = std::any::type_name::<A::Msg>();
    let dead_letter = |i: usize, reason: DeadLetterReason| {
        cell.record_dead_letter(reason, type_name, copies.get(i).and_then(Option::as_ref));
    };
    let (TellBatch { results, unhandled, handler_times }, tally) = match (result, tally) {
        (Ok(batch), tally) => (batch, tally),
        (Err(panic), tally) => {
            let message = panic_message(&*panic);
            if let Some(tally) = tally {
                tally.end_batch(count as u64, count as u64, false, &[]);
            }
            for i in 0..count {
                dead_letter(i, DeadLetterReason::Panicked);
            }
            return Err(Exit::Failed(Failure { kind: FailureKind::Panic, message: format!("panicked: {message}") }));
        }
    };
    let handled = results.len();
    if let Some(tally) = tally {
        let failed = results.iter().filter(|r| r.is_err()).count();
        // The times the actor measured (a process actor's child times its handlers).
        let times = if handler_times.len() == handled { &handler_times[..] } else { &[] };
        tally.end_batch(handled as u64, failed as u64, interrupted.is_some(), times);
    }
    let mut failure = None;
    for (i, result) in results.into_iter().enumerate() {
        let Err(error) = result else { continue };
        if interrupted == Some(InterruptCause::Kill) && i + 1 == handled {
            debug!(%error, "the handler was interrupted by a kill");
            dead_letter(i, DeadLetterReason::Killed);
            continue;
        }
        if let Err(fault) = actor.health() {
            debug!(%error, "the handler failed with its actor");
            dead_letter(i, DeadLetterReason::Failed);
            failure = Some(Failure { kind: FailureKind::Died, message: fault.to_string() });
            break;
        }
        warn!(%error, "handler failed on a tell");
        if policy != FailurePolicy::Resume {
            dead_letter(i, DeadLetterReason::Failed);
            failure = Some(Failure { kind: FailureKind::Error, message: error.to_string() });
            break;
        }
    }
    for msg in unhandled.into_iter().rev() {
        pending.push_front(Envelope::untraced(msg));
    }
    match failure {
        Some(_) if cell.signal() == Signal::Kill => Err(Exit::Stopped(StopReason::Killed)),
        Some(failure) => Err(Exit::Failed(failure)),
        None => Ok(()),
    }
}

/// What a handler call came to, as the core sees it.
enum Handled<R, E> {
    Ok(R),
    Error(E),
    Panic(String),
    Interrupted(InterruptCause, Option<E>),
}

/// Runs one handler under the interrupt protocol (see `Cell::begin_handler`).
fn call<A: Actor, R>(cell: &Cell<A>, handler: impl FnOnce() -> Result<R, A::Error>) -> Handled<R, A::Error> {
    if cell.begin_handler().is_none() {
        // Killed just before: the handler is not begun.
        return Handled::Interrupted(InterruptCause::Kill, None);
    }
    end_call(cell, catch_unwind(AssertUnwindSafe(handler)))
}

/// Ends a handler begun under the interrupt protocol, with how it returned.
fn end_call<A: Actor, R>(cell: &Cell<A>, result: thread::Result<Result<R, A::Error>>) -> Handled<R, A::Error> {
    let interrupted = cell.end_handler();
    match (result, interrupted) {
        (Err(panic), _) => Handled::Panic(panic_message(&*panic)),
        // A kill that came as the handler returned takes nothing from its result.
        (Ok(Ok(reply)), None | Some(InterruptCause::Kill)) => Handled::Ok(reply),
        (Ok(Err(error)), None) => Handled::Error(error),
        (Ok(result), Some(cause)) => Handled::Interrupted(cause, result.err()),
    }
}

/// Handles one envelope. `Err` ends this incarnation of the actor. The message that
/// failed is reported: an asker gets the error or fault, a tell becomes a dead letter.
fn deliver<A: Actor>(
    actor: &mut A,
    ctx: &ActorContext<A>,
    envelope: Envelope<A>,
    policy: FailurePolicy,
    mut tally: Option<&mut crate::metrics::Tally<'_>>,
) -> Result<(), Exit> {
    let cell = &*ctx.myself.cell;
    // A failed tell is reported with its message to dead-letter subscribers: the
    // handler consumes it, so keep a copy while anyone subscribes.
    let mut copy = None;
    let timer = match (&envelope, tally.as_deref_mut()) {
        (Envelope::Wake, _) | (_, None) => None,
        (_, Some(tally)) => tally.begin(),
    };
    let (handled, reply) = match envelope {
        Envelope::Tell(msg, trace) => {
            let span = if crate::trace::enabled() {
                crate::trace::receive_span(cell.id, cell.name.as_deref(), "tell", trace)
            } else {
                trace_span!("tell")
            };
            let _entered = span.enter();
            if policy != FailurePolicy::Resume && cell.dead_letters.wants_messages() {
                copy = (&msg as &dyn Any).downcast_ref::<Value>().cloned();
            }
            (call(cell, || actor.handle_tell(ctx, msg)).map_ok(|()| None), None)
        }
        Envelope::Ask(msg, reply, trace) => {
            let span = if crate::trace::enabled() {
                crate::trace::receive_span(cell.id, cell.name.as_deref(), "ask", trace)
            } else {
                trace_span!("ask")
            };
            let _entered = span.enter();
            (call(cell, || actor.handle(ctx, msg)).map_ok(Some), Some(reply))
        }
        Envelope::Wake => return Ok(()),
    };
    let failure = settle(actor, cell, handled, reply, copy.as_ref(), policy, tally, timer);
    match failure {
        // Killed meanwhile: the kill wins over a restart.
        Some(_) if cell.signal() == Signal::Kill => Err(Exit::Stopped(StopReason::Killed)),
        Some(failure) => Err(Exit::Failed(failure)),
        None => Ok(()),
    }
}

/// Reports how a message's handler ended — to its asker, or as a dead letter for a
/// failed tell (with `copy`, its message, for subscribers) — and says whether the
/// incarnation fails because of it. It is counted in `tally` (the one-at-a-time loop's),
/// else in the cell's stats directly.
#[allow(clippy::too_many_arguments)]
fn settle<A: Actor>(
    actor: &mut A,
    cell: &Cell<A>,
    handled: Handled<Option<A::Reply>, A::Error>,
    reply: Option<crate::cell::ReplyTo<A>>,
    copy: Option<&Value>,
    policy: FailurePolicy,
    tally: Option<&mut crate::metrics::Tally<'_>>,
    timer: Option<Instant>,
) -> Option<Failure> {
    settle_with(|| actor.health(), cell, handled, reply, copy, policy, tally, timer)
}

/// [`settle`], asking `health` where the handlers run after a handler error.
#[allow(clippy::too_many_arguments)]
fn settle_with<A: Actor>(
    health: impl FnOnce() -> Result<(), Fault>,
    cell: &Cell<A>,
    handled: Handled<Option<A::Reply>, A::Error>,
    reply: Option<crate::cell::ReplyTo<A>>,
    copy: Option<&Value>,
    policy: FailurePolicy,
    tally: Option<&mut crate::metrics::Tally<'_>>,
    timer: Option<Instant>,
) -> Option<Failure> {
    let (failed, interrupted) = match &handled {
        Handled::Ok(_) => (false, false),
        Handled::Error(_) | Handled::Panic(_) => (true, false),
        Handled::Interrupted(..) => (true, true),
    };
    match (tally, &cell.stats) {
        // Published before an asker gets the reply.
        (Some(tally), _) => tally.end(timer, failed, interrupted, reply.is_some()),
        (None, Some(stats)) => stats.end(timer, failed, interrupted),
        (None, None) => {}
    }
    let limit = cell.time_limit.unwrap_or_default();
    let (outcome, failure) = match handled {
        Handled::Ok(value) => (Ok(value), None),
        Handled::Error(error) => match health() {
            // The handler failed because the place it ran in is gone: a fault, never
            // resumed.
            Err(fault) => {
                debug!(%error, "the handler failed with its actor");
                let failure = Failure { kind: FailureKind::Died, message: fault.to_string() };
                (Err(Failed::Fault(fault)), Some(failure))
            }
            Ok(()) => {
                let failure = (policy != FailurePolicy::Resume)
                    .then(|| Failure { kind: FailureKind::Error, message: error.to_string() });
                if reply.is_none() {
                    warn!(%error, "handler failed on a tell");
                }
                (Err(Failed::Error(error)), failure)
            }
        },
        Handled::Panic(message) => {
            let failure = Failure { kind: FailureKind::Panic, message: format!("panicked: {message}") };
            (Err(Failed::Fault(Fault::Panicked(message.into()))), Some(failure))
        }
        Handled::Interrupted(InterruptCause::Kill, error) => {
            if let Some(error) = error {
                debug!(%error, "the handler was interrupted by a kill");
            }
            (Err(Failed::Fault(Fault::Killed)), None)
        }
        Handled::Interrupted(InterruptCause::TimeLimit, error) => {
            if let Some(error) = error {
                warn!(%error, "the handler was interrupted at its time limit");
            }
            let failure = (policy != FailurePolicy::Resume).then(|| Failure {
                kind: FailureKind::TimeLimit,
                message: format!("the handler ran past its time limit of {limit:?}"),
            });
            (Err(Failed::Fault(Fault::TimeLimit(limit))), failure)
        }
    };
    match (reply, outcome) {
        (Some(reply), Ok(value)) => reply.send(Ok(value.unwrap_or_else(|| unreachable!("an ask has a reply")))),
        (Some(reply), Err(failed)) => reply.send(Err(failed)),
        (None, Ok(_)) => {}
        (None, Err(failed)) => {
            let reason = match failed {
                Failed::Fault(Fault::Panicked(_)) => Some(DeadLetterReason::Panicked),
                Failed::Fault(Fault::Killed) => Some(DeadLetterReason::Killed),
                Failed::Fault(Fault::TimeLimit(_) | Fault::Died(_)) => Some(DeadLetterReason::Failed),
                Failed::Error(_) => failure.is_some().then_some(DeadLetterReason::Failed),
            };
            if let Some(reason) = reason {
                cell.record_dead_letter(reason, std::any::type_name::<A::Msg>(), copy);
            }
        }
    }
    failure
}

impl<R, E> Handled<R, E> {
    fn map_ok<T>(self, f: impl FnOnce(R) -> T) -> Handled<T, E> {
        match self {
            Handled::Ok(r) => Handled::Ok(f(r)),
            Handled::Error(e) => Handled::Error(e),
            Handled::Panic(m) => Handled::Panic(m),
            Handled::Interrupted(c, e) => Handled::Interrupted(c, e),
        }
    }
}

/// Runs `msg` as an ask on the calling thread if the actor is idle and offers a direct
/// path (see `crate::direct`); its outcome goes to `reply`. `wait` says until when to
/// wait for the outcome next, or `None` to stop waiting: the actor's thread then
/// finishes the ask and sends its outcome. `Err` gives the message and `reply` back
/// when the ask must go through the mailbox.
pub(crate) fn ask_direct<A: Actor>(
    cell: &Cell<A>,
    msg: A::Msg,
    reply: ReplyTo<A>,
    mut wait: impl FnMut() -> Option<Instant>,
) -> Result<(), (A::Msg, ReplyTo<A>)> {
    if !cell.turn.claim() {
        return Err((msg, reply));
    }
    let offer = crate::sync::lock(&cell.direct).clone();
    let Some((direct, policy)) = offer.filter(|_| cell.signal() == Signal::None && cell.state() == ActorState::Running)
    else {
        cell.turn.release();
        return Err((msg, reply));
    };
    if cell.begin_handler().is_none() {
        // Killed just now: the mailbox reports it as for any message.
        cell.turn.release();
        return Err((msg, reply));
    }
    // This thread stands for the actor's (and for the place its handler runs) while it
    // waits for the outcome.
    let busy = Busy::enter_once();
    let holding = crate::direct::Holding::enter(cell.id);
    let timer = cell.stats.as_ref().and_then(crate::metrics::ActorStats::begin);
    let span = if crate::trace::enabled() {
        crate::trace::receive_span(cell.id, cell.name.as_deref(), "ask", crate::trace::capture())
    } else {
        trace_span!("ask")
    };
    let entered = span.enter();
    let result = catch_unwind(AssertUnwindSafe(|| {
        direct.begin(msg)?;
        loop {
            let Some(deadline) = wait() else { return Ok(None) };
            if let Some(outcome) = direct.finish(Some(deadline)) {
                return outcome.map(Some);
            }
        }
    }));
    let result = match result {
        Ok(Ok(None)) => {
            // The caller stops waiting: the actor's thread finishes the ask (its
            // handler still counts as running, so a kill still reaches it).
            drop((entered, holding, busy));
            *crate::sync::lock(&cell.unfinished) = Some(Unfinished { reply, timer });
            cell.turn.hand(None, true);
            cell.wake();
            return Ok(());
        }
        Ok(Ok(Some(reply))) => Ok(Ok(reply)),
        Ok(Err(error)) => Ok(Err(error)),
        Err(panic) => Err(panic),
    };
    let handled = end_call(cell, result);
    let failure = settle_with(|| direct.health(), cell, handled.map_ok(Some), Some(reply), None, policy, None, timer);
    drop((entered, holding, busy));
    match failure {
        // A kill (its request woke the actor's thread) wins over the failure.
        Some(failure) if cell.signal() != Signal::Kill => {
            cell.turn.hand(Some(failure), false);
            cell.wake();
        }
        _ => cell.turn.release(),
    }
    Ok(())
}

/// An ask whose caller stopped waiting for it: the actor's thread finishes it.
pub(crate) struct Unfinished<A: Actor> {
    reply: ReplyTo<A>,
    timer: Option<Instant>,
}

/// The actor's thread finishes an ask a caller left (see [`ask_direct`]).
fn finish_direct<A: Actor>(actor: &mut A, cell: &Cell<A>, policy: FailurePolicy) -> Result<(), Exit> {
    let Some(Unfinished { reply, timer }) = crate::sync::lock(&cell.unfinished).take() else {
        return Ok(());
    };
    let Some((direct, _)) = crate::sync::lock(&cell.direct).clone() else {
        // Unreachable: the offer lasts as long as the incarnation.
        return Ok(());
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        direct.finish(None).unwrap_or_else(|| unreachable!("a wait without a deadline ends with the outcome"))
    }));
    let handled = end_call(cell, result);
    match settle(actor, cell, handled.map_ok(Some), Some(reply), None, policy, None, timer) {
        Some(_) if cell.signal() == Signal::Kill => Err(Exit::Stopped(StopReason::Killed)),
        Some(failure) => Err(Exit::Failed(failure)),
        None => Ok(()),
    }
}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
