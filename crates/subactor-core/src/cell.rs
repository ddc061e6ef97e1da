//! The state an actor shares with everyone who holds a reference to it: its mailbox,
//! its lifecycle, and the signals that stop it.
//!
//! # How a mailbox closes without losing a message
//!
//! Senders check that the actor is running, enqueue, then look at `closed`. The actor,
//! once it stops taking messages, sets `closed` and then empties the mailbox. Both sides
//! put a sequentially consistent fence between their write and their read, so for every
//! message either the actor's final drain sees it, or its sender sees `closed` and
//! drains the mailbox itself. Either way the message is handled or dead-lettered, never
//! silently dropped with the channel.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use flume::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use tokio::sync::Notify;

use crate::dead_letters::{DeadLetterReason, DeadLetters};
use crate::sync::lock;
use crate::trace::Carried;
use crate::watchdog::{Interruptible, Watchdog};
use crate::{Actor, ActorId, ActorState, Down, Fault, Interrupt, InterruptCause, MonitorId, Placement, StopReason};

/// A message in a mailbox.
pub(crate) enum Envelope<A: Actor> {
    /// A tell, with its sender's trace context (see [`crate::trace`]).
    Tell(A::Msg, Carried),
    /// An ask, with its sender's trace context.
    Ask(A::Msg, ReplyTo<A>, Carried),
    /// Carries nothing: makes a waiting actor look at its signals.
    Wake,
}

impl<A: Actor> Envelope<A> {
    /// A tell sent now: it carries the sender's trace context when contexts are carried.
    #[inline]
    pub(crate) fn tell(msg: A::Msg) -> Envelope<A> {
        Envelope::Tell(msg, crate::trace::capture())
    }

    /// An ask sent now (see [`Envelope::tell`]).
    #[inline]
    pub(crate) fn ask(msg: A::Msg, reply: ReplyTo<A>) -> Envelope<A> {
        Envelope::Ask(msg, reply, crate::trace::capture())
    }

    /// A tell that carries no context (a system message, or one taken back).
    pub(crate) fn untraced(msg: A::Msg) -> Envelope<A> {
        Envelope::Tell(msg, None)
    }

    pub(crate) fn into_msg(self) -> Option<A::Msg> {
        match self {
            Envelope::Tell(m, _) | Envelope::Ask(m, _, _) => Some(m),
            Envelope::Wake => None,
        }
    }
}

/// What an asker receives: the reply, the handler's error, or a fault of the actor.
pub(crate) type Reply<A> = Result<<A as Actor>::Reply, Failed<<A as Actor>::Error>>;

/// Why a handled message has no reply.
pub(crate) enum Failed<E> {
    /// The handler returned an error.
    Error(E),
    /// The actor failed while handling it.
    Fault(Fault),
}

impl<M, E> From<Failed<E>> for crate::AskError<M, E> {
    fn from(failed: Failed<E>) -> crate::AskError<M, E> {
        match failed {
            Failed::Error(error) => crate::AskError::Failed(error),
            Failed::Fault(fault) => crate::AskError::Fault(fault),
        }
    }
}

/// Where the answer to an ask goes.
pub(crate) enum ReplyTo<A: Actor> {
    /// To an asker waiting on a channel (dropping it tells the asker "no reply").
    Channel(Sender<Reply<A>>),
    /// To a callback, run on the actor's thread.
    Callback(Callback<A>),
}

impl<A: Actor> ReplyTo<A> {
    pub(crate) fn send(self, result: Reply<A>) {
        match self {
            // The asker may have given up (timeout); then nobody wants the reply.
            ReplyTo::Channel(tx) => {
                let _ = tx.send(result);
            }
            ReplyTo::Callback(mut callback) => {
                if let Some(f) = callback.0.take() {
                    f(match result {
                        Ok(reply) => Outcome::Replied(reply),
                        Err(Failed::Error(error)) => Outcome::Failed(error),
                        Err(Failed::Fault(fault)) => Outcome::Fault(fault),
                    });
                }
            }
        }
    }
}

/// What happened to a message sent with [`ActorRef::blocking_ask_then`](crate::ActorRef::blocking_ask_then).
#[derive(Debug)]
pub enum Outcome<R, E> {
    /// The handler answered.
    Replied(R),
    /// The handler failed.
    Failed(E),
    /// The actor failed while handling the message (a panic, a kill, a time limit).
    Fault(Fault),
    /// The actor stopped (was killed, failed, shut down) before handling the message.
    NotHandled,
}

/// A reply callback that runs exactly once: with the handler's outcome, or with
/// [`Outcome::NotHandled`] if the message is dropped unhandled.
pub(crate) struct Callback<A: Actor>(Option<ReplyFn<A>>);

pub(crate) type ReplyFn<A> = Box<dyn FnOnce(Outcome<<A as Actor>::Reply, <A as Actor>::Error>) + Send>;

impl<A: Actor> Callback<A> {
    pub(crate) fn new(f: ReplyFn<A>) -> Callback<A> {
        Callback(Some(f))
    }

    /// Drops the callback without running it (its message went back to the sender).
    pub(crate) fn defuse(&mut self) {
        self.0.take();
    }
}

impl<A: Actor> Drop for Callback<A> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Outcome::NotHandled);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
#[repr(u8)]
pub(crate) enum Signal {
    None = 0,
    /// Restart before the next message, keeping the mailbox (a supervisor's request).
    Restart = 1,
    /// Stop once the mailbox is empty.
    Stop = 2,
    /// Stop before the next message; what is queued becomes dead letters.
    Kill = 3,
}

/// A monitor's callback, run once with the final stop reason.
type MonitorFn = Box<dyn FnOnce(&Down) + Send>;

pub(crate) struct Cell<A: Actor> {
    pub(crate) id: ActorId,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) tx: Sender<Envelope<A>>,
    pub(crate) rx: Receiver<Envelope<A>>,
    state: AtomicU8,
    signal: AtomicU8,
    closed: AtomicBool,
    /// Async senders waiting for room, and how to wake them.
    room: Notify,
    room_waiters: AtomicUsize,
    thread: OnceLock<ThreadId>,
    stop_reason: Mutex<Option<StopReason>>,
    /// Run once with the final stop reason.
    monitors: Mutex<Vec<(MonitorId, MonitorFn)>>,
    /// System messages (a monitor's `Down`, a supervisor's business): handled before the
    /// mailbox, never refused for want of room.
    urgent: Mutex<VecDeque<A::Msg>>,
    urgent_len: AtomicUsize,
    /// The handler running now and whether it was interrupted: `seq << 2 | cause`, or
    /// [`IDLE`] between handlers (see [`Cell::begin_handler`]).
    handler: AtomicU64,
    /// When the running handler's time limit ends, in nanoseconds since [`epoch`];
    /// meaningful only while `handler` names it.
    deadline: AtomicU64,
    next_seq: AtomicU64,
    /// The last handler an interrupt was dispatched for (see [`Cell::claim_interrupt`]).
    interrupting: AtomicU64,
    /// How to break into the running handler (a Python actor's interpreter).
    interrupter: Mutex<Option<Arc<dyn Interrupt>>>,
    pub(crate) watchdog: Arc<Watchdog>,
    /// This cell, for the watchdog.
    me: std::sync::Weak<Cell<A>>,
    /// Dropped when the actor has finished; waiters see the channel disconnect.
    done_tx: Mutex<Option<Sender<()>>>,
    done_rx: Receiver<()>,
    pub(crate) dead_letters: Arc<DeadLetters>,
    /// How long a blocked asker spins for its reply before parking.
    pub(crate) spin: Duration,
    /// The longest a handler may run, if limited.
    pub(crate) time_limit: Option<Duration>,
    /// How many times the actor has been restarted.
    pub(crate) restarts: AtomicU64,
    /// Where the running incarnation's handlers run (set when it starts).
    pub(crate) placement: Mutex<Placement>,
    /// The node the running incarnation's handlers run on, when that is another node.
    pub(crate) node: Mutex<Option<Arc<str>>>,
    /// The mailbox's capacity.
    pub(crate) capacity: usize,
    /// The supervisor whose child this actor is.
    pub(crate) parent: Option<ActorId>,
    /// The actor's counters, while the system collects metrics.
    pub(crate) stats: Option<crate::metrics::ActorStats>,
    /// Who runs the next handler while the actor is idle (see `crate::direct`).
    pub(crate) turn: crate::direct::Turn,
    /// The running incarnation's direct path, if it offers one.
    pub(crate) direct: Mutex<Option<crate::direct::Offer<A>>>,
    /// An ask a caller ran directly and left for the actor's thread to finish.
    pub(crate) unfinished: Mutex<Option<crate::run::Unfinished<A>>>,
}

/// `Cell::handler` between handlers.
const IDLE: u64 = 0;
const CAUSE_BITS: u64 = 0b11;

impl InterruptCause {
    fn bits(self) -> u64 {
        match self {
            InterruptCause::Kill => 1,
            InterruptCause::TimeLimit => 2,
        }
    }

    fn from_bits(bits: u64) -> Option<InterruptCause> {
        match bits & CAUSE_BITS {
            1 => Some(InterruptCause::Kill),
            2 => Some(InterruptCause::TimeLimit),
            _ => None,
        }
    }
}

/// The instant time limits are counted from.
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds from [`epoch`] to `t` (0 before it).
pub(crate) fn nanos_since_epoch(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

/// What an actor's cell needs to be created.
pub(crate) struct CellConfig {
    pub(crate) capacity: usize,
    pub(crate) spin: Duration,
    pub(crate) time_limit: Option<Duration>,
    pub(crate) dead_letters: Arc<DeadLetters>,
    pub(crate) watchdog: Arc<Watchdog>,
    /// Whether the system collects metrics.
    pub(crate) metrics: bool,
    /// The supervisor whose child the actor is.
    pub(crate) parent: Option<ActorId>,
}

impl<A: Actor> Cell<A> {
    /// A new cell; `me` is the weak reference to it that `Arc::new_cyclic` gives.
    pub(crate) fn new(
        id: ActorId,
        name: Option<Arc<str>>,
        config: CellConfig,
        me: std::sync::Weak<Cell<A>>,
    ) -> Cell<A> {
        let (tx, rx) = flume::bounded(config.capacity);
        let (done_tx, done_rx) = flume::bounded(1);
        Cell {
            id,
            name,
            tx,
            rx,
            state: AtomicU8::new(ActorState::Starting as u8),
            signal: AtomicU8::new(Signal::None as u8),
            closed: AtomicBool::new(false),
            room: Notify::new(),
            room_waiters: AtomicUsize::new(0),
            thread: OnceLock::new(),
            stop_reason: Mutex::new(None),
            monitors: Mutex::default(),
            urgent: Mutex::default(),
            urgent_len: AtomicUsize::new(0),
            handler: AtomicU64::new(IDLE),
            deadline: AtomicU64::new(u64::MAX),
            next_seq: AtomicU64::new(1),
            interrupting: AtomicU64::new(0),
            interrupter: Mutex::new(None),
            watchdog: config.watchdog,
            me,
            done_tx: Mutex::new(Some(done_tx)),
            done_rx,
            dead_letters: config.dead_letters,
            spin: config.spin,
            time_limit: config.time_limit,
            restarts: AtomicU64::new(0),
            placement: Mutex::new(Placement::default()),
            node: Mutex::new(None),
            capacity: config.capacity,
            parent: config.parent,
            stats: config.metrics.then(crate::metrics::ActorStats::new),
            turn: crate::direct::Turn::default(),
            direct: Mutex::new(None),
            unfinished: Mutex::new(None),
        }
    }

    /// Records a message meant for this actor that was not delivered.
    pub(crate) fn record_dead_letter(
        &self,
        reason: DeadLetterReason,
        message_type: &'static str,
        message: Option<&crate::Value>,
    ) {
        if let Some(stats) = &self.stats {
            stats.dead_letter();
        }
        self.dead_letters.record_typed(self.id, self.name.as_deref(), reason, message_type, message);
    }

    /// [`record_dead_letter`](Self::record_dead_letter) for a message of any type.
    pub(crate) fn record_dead<M: std::any::Any>(&self, reason: DeadLetterReason, msg: &M) {
        self.record_dead_letter(
            reason,
            std::any::type_name::<M>(),
            (msg as &dyn std::any::Any).downcast_ref::<crate::Value>(),
        );
    }

    /// Messages waiting: the mailbox and the urgent lane.
    pub(crate) fn depth(&self) -> usize {
        self.rx.len() + self.urgent_len.load(Ordering::Relaxed)
    }

    // ---- lifecycle ------------------------------------------------------------------

    pub(crate) fn state(&self) -> ActorState {
        ActorState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: ActorState) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Moves from `from` to `to` unless something else (a stop) moved the state first.
    pub(crate) fn transition(&self, from: ActorState, to: ActorState) -> bool {
        self.state.compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Whether senders may enqueue.
    pub(crate) fn accepting(&self) -> bool {
        matches!(self.state(), ActorState::Running | ActorState::Starting)
    }

    pub(crate) fn signal(&self) -> Signal {
        match self.signal.load(Ordering::Acquire) {
            0 => Signal::None,
            1 => Signal::Restart,
            2 => Signal::Stop,
            _ => Signal::Kill,
        }
    }

    /// Asks the actor to stop (`Stop` once its mailbox is empty, `Kill` now, breaking
    /// into a handler that can be interrupted) or to restart.
    pub(crate) fn request(&self, signal: Signal) {
        // A kill overrides a stop, which overrides a restart; never the other way round.
        // SeqCst: read against `begin_handler`'s write of the handler word.
        self.signal.fetch_max(signal as u8, Ordering::SeqCst);
        if signal >= Signal::Stop {
            let _ = self.state.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s != ActorState::Stopped as u8).then_some(ActorState::Stopping as u8)
            });
        }
        if signal == Signal::Kill {
            if let Some(seq) = self.running_handler() {
                match (self.interrupter(), self.me.upgrade()) {
                    // Interrupting takes the actor's interpreter: the watchdog's job.
                    (Some(_), Some(me)) => {
                        self.watchdog.interrupt(me as Arc<dyn Interruptible>, seq, InterruptCause::Kill);
                    }
                    // A Rust handler can only be told (it may poll for it).
                    _ => {
                        self.mark_interrupted(seq, InterruptCause::Kill);
                    }
                }
            }
        }
        self.wake();
    }

    /// Makes a waiting actor look at its signals and urgent messages. If the mailbox is
    /// full the actor is not waiting and looks before its next message anyway.
    pub(crate) fn wake(&self) {
        self.turn.pushing();
        if self.tx.try_send(Envelope::Wake).is_err() {
            self.turn.not_pushed();
        }
        self.room.notify_waiters();
    }

    /// Consumes a pending restart request; `false` if there is none (or a stop or kill
    /// overrode it).
    pub(crate) fn take_restart(&self) -> bool {
        self.signal
            .compare_exchange(Signal::Restart as u8, Signal::None as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Runs `f` when the actor has stopped for good (at once if it already has).
    pub(crate) fn on_stop(&self, f: MonitorFn) -> MonitorId {
        let id = MonitorId::next();
        let mut monitors = lock(&self.monitors);
        match self.stop_reason() {
            Some(reason) => {
                drop(monitors);
                f(&Down { id: self.id, name: self.name.clone(), reason });
            }
            None => monitors.push((id, f)),
        }
        id
    }

    /// Removes a monitor that has not fired; `true` if it was there.
    pub(crate) fn remove_monitor(&self, id: MonitorId) -> bool {
        let mut monitors = lock(&self.monitors);
        let before = monitors.len();
        monitors.retain(|(m, _)| *m != id);
        monitors.len() != before
    }

    pub(crate) fn bind_thread(&self) {
        self.turn.bind();
        let _ = self.thread.set(thread::current().id());
    }

    /// Whether the caller runs as this actor: on its own thread, or as a caller that
    /// runs its handler with its turn (see `crate::direct`).
    pub(crate) fn is_own_thread(&self) -> bool {
        match crate::direct::holding() {
            Some(id) => id == self.id,
            None => self.thread.get() == Some(&thread::current().id()),
        }
    }

    /// Records the end of the actor, wakes everyone waiting for it and tells its monitors.
    pub(crate) fn finish(&self, reason: StopReason) {
        let monitors = {
            // Under the monitors' lock, so that `on_stop` either sees the reason or is told.
            let mut monitors = lock(&self.monitors);
            *lock(&self.stop_reason) = Some(reason.clone());
            std::mem::take(&mut *monitors)
        };
        self.set_state(ActorState::Stopped);
        let down = Down { id: self.id, name: self.name.clone(), reason };
        for (_, monitor) in monitors {
            monitor(&down);
        }
        // Waiters wake after the monitors are told: whoever saw the actor end sees what
        // its monitors were sent.
        lock(&self.done_tx).take();
        self.room.notify_waiters();
    }

    pub(crate) fn stop_reason(&self) -> Option<StopReason> {
        lock(&self.stop_reason).clone()
    }

    pub(crate) fn done(&self) -> &Receiver<()> {
        &self.done_rx
    }

    // ---- handlers and interrupts ----------------------------------------------------

    /// Marks the start of a handler; returns its sequence number.
    ///
    /// The protocol: `handler` holds `seq << 2` while handler `seq` runs. Whoever
    /// interrupts it (a kill, the watchdog) sets a cause in the low bits with a
    /// compare-and-swap on exactly that value, so an interrupt meant for one handler can
    /// never land on the next; [`Cell::end_handler`] swaps `IDLE` back and reads the
    /// cause.
    ///
    /// `None` if a kill was requested: the handler must not run (the word is `IDLE`
    /// again). A kill requested from here on finds the handler running. Both sides
    /// write their word, then read the other's, all `SeqCst`: a kill that came between
    /// the actor's last look at its signals and this call is seen by one of them, never
    /// missed by both (which left a handler running to its end after a kill).
    pub(crate) fn begin_handler(&self) -> Option<u64> {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        if let Some(limit) = self.time_limit {
            self.deadline.store(nanos_since_epoch(crate::deadline_after(limit)), Ordering::SeqCst);
        }
        self.handler.store(seq << 2, Ordering::SeqCst);
        if self.signal.load(Ordering::SeqCst) == Signal::Kill as u8 {
            self.handler.store(IDLE, Ordering::SeqCst);
            return None;
        }
        Some(seq)
    }

    /// Marks the end of the running handler; returns why it was interrupted, if it was.
    pub(crate) fn end_handler(&self) -> Option<InterruptCause> {
        InterruptCause::from_bits(self.handler.swap(IDLE, Ordering::SeqCst))
    }

    /// The handler running now, if one is and nothing interrupted it yet.
    fn running_handler(&self) -> Option<u64> {
        let word = self.handler.load(Ordering::SeqCst);
        (word != IDLE && word & CAUSE_BITS == 0).then_some(word >> 2)
    }

    /// Whether a handler is running.
    #[cfg(test)]
    pub(crate) fn in_handler(&self) -> bool {
        self.handler.load(Ordering::SeqCst) != IDLE
    }

    /// Whether the running handler has been interrupted (for handlers that check).
    pub(crate) fn interrupt_requested(&self) -> bool {
        self.handler.load(Ordering::Relaxed) & CAUSE_BITS != 0
    }

    pub(crate) fn set_interrupter(&self, interrupter: Option<Arc<dyn Interrupt>>) {
        *lock(&self.interrupter) = interrupter;
    }

    pub(crate) fn interrupter(&self) -> Option<Arc<dyn Interrupt>> {
        lock(&self.interrupter).clone()
    }

    /// Records that handler `seq` is interrupted for `cause`; `false` if it has ended
    /// (or was interrupted already).
    pub(crate) fn mark_interrupted(&self, seq: u64, cause: InterruptCause) -> bool {
        self.handler.compare_exchange(seq << 2, seq << 2 | cause.bits(), Ordering::SeqCst, Ordering::SeqCst).is_ok()
    }

    /// Claims handler `seq` for one interrupt; `false` if one was dispatched already.
    /// Sequence numbers only grow, so a later handler can always be claimed.
    pub(crate) fn claim_interrupt(&self, seq: u64) -> bool {
        self.interrupting.fetch_max(seq, Ordering::AcqRel) < seq
    }

    /// The running handler, if it has run past its deadline at `now` and nothing has
    /// interrupted it yet.
    pub(crate) fn overdue_handler(&self, now: u64) -> Option<u64> {
        // The handler word first: `begin_handler` writes the deadline before it, so the
        // deadline read next is that handler's (or a later one's, never an earlier one's).
        let seq = self.running_handler()?;
        let claimed = self.interrupting.load(Ordering::Acquire) >= seq;
        (!claimed && now >= self.deadline.load(Ordering::SeqCst)).then_some(seq)
    }

    // ---- urgent messages ------------------------------------------------------------

    /// Queues a system message ahead of the mailbox, whatever its fill. Once the actor
    /// has stopped taking messages it becomes a dead letter.
    pub(crate) fn notify(&self, msg: A::Msg) {
        if !self.accepting() {
            self.record_dead(DeadLetterReason::NotRunning, &msg);
            return;
        }
        {
            let mut urgent = lock(&self.urgent);
            urgent.push_back(msg);
            self.urgent_len.fetch_add(1, Ordering::Release);
        }
        self.after_send();
        self.wake();
    }

    /// The next urgent message, if any.
    pub(crate) fn take_urgent(&self) -> Option<A::Msg> {
        if self.urgent_len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let msg = lock(&self.urgent).pop_front()?;
        self.urgent_len.fetch_sub(1, Ordering::Release);
        Some(msg)
    }

    // ---- the mailbox ----------------------------------------------------------------

    /// Called by a sender after each successful enqueue (see the module docs).
    pub(crate) fn after_send(&self) {
        fence(Ordering::SeqCst);
        if self.closed.load(Ordering::Relaxed) {
            self.drain_to_dead_letters(DeadLetterReason::Stopped);
        }
    }

    /// Called by the actor when it takes no more messages: from here on, senders
    /// dead-letter what they enqueue themselves.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    pub(crate) fn drain_to_dead_letters(&self, reason: DeadLetterReason) {
        while let Some(msg) = self.take_urgent() {
            self.record_dead(reason, &msg);
        }
        while let Ok(envelope) = self.rx.try_recv() {
            self.dead_letter(envelope, reason);
        }
    }

    /// Records an undelivered envelope. An asker whose question is dropped here sees
    /// [`AskError::NoReply`](crate::AskError::NoReply) at once.
    pub(crate) fn dead_letter(&self, envelope: Envelope<A>, reason: DeadLetterReason) {
        if let Some(msg) = envelope.into_msg() {
            self.record_dead(reason, &msg);
        }
    }

    /// Called by the actor after it takes a message out of a full mailbox.
    pub(crate) fn made_room(&self) {
        if self.room_waiters.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
    }

    /// Enqueues from async code, waiting for room until `deadline`. On failure the
    /// envelope comes back with the reason.
    pub(crate) async fn send_async(
        &self,
        mut envelope: Envelope<A>,
        deadline: Option<Instant>,
    ) -> Result<(), (Envelope<A>, Refusal)> {
        loop {
            if !self.accepting() {
                return Err((envelope, Refusal::NotRunning));
            }
            envelope = match self.try_send(envelope) {
                Ok(()) => return Ok(()),
                Err((e, Refusal::Full)) => e,
                Err(refused) => return Err(refused),
            };
            // Full: register for a wake-up first, then try again, so that room made
            // between the two attempts is not missed.
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let _waiting = RoomWaiter::register(&self.room_waiters);
            envelope = match self.try_send(envelope) {
                Ok(()) => return Ok(()),
                Err((e, Refusal::Full)) => e,
                Err(refused) => return Err(refused),
            };
            match deadline {
                None => notified.await,
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline.into(), notified).await.is_err() {
                        return Err((envelope, Refusal::Timeout));
                    }
                }
            }
        }
    }

    /// Enqueues if there is room, without waiting.
    pub(crate) fn try_send(&self, envelope: Envelope<A>) -> Result<(), (Envelope<A>, Refusal)> {
        if !self.accepting() {
            return Err((envelope, Refusal::NotRunning));
        }
        self.turn.pushing();
        match self.tx.try_send(envelope) {
            Ok(()) => {
                self.after_send();
                Ok(())
            }
            Err(flume::TrySendError::Full(e)) => {
                self.turn.not_pushed();
                Err((e, Refusal::Full))
            }
            Err(flume::TrySendError::Disconnected(e)) => {
                self.turn.not_pushed();
                Err((e, Refusal::NotRunning))
            }
        }
    }

    /// Enqueues from a blocking caller, waiting for room until `deadline`.
    pub(crate) fn send_blocking(
        &self,
        envelope: Envelope<A>,
        deadline: Option<Instant>,
    ) -> Result<(), (Envelope<A>, Refusal)> {
        if !self.accepting() {
            return Err((envelope, Refusal::NotRunning));
        }
        if self.is_own_thread() {
            // Waiting for room in one's own mailbox would wait forever.
            return self.try_send(envelope);
        }
        self.turn.pushing();
        let result = match deadline {
            None => self.tx.send(envelope).map_err(|e| (e.0, Refusal::NotRunning)),
            Some(deadline) => self.tx.send_deadline(envelope, deadline).map_err(|e| match e {
                flume::SendTimeoutError::Timeout(e) => (e, Refusal::Timeout),
                flume::SendTimeoutError::Disconnected(e) => (e, Refusal::NotRunning),
            }),
        };
        match &result {
            Ok(()) => self.after_send(),
            Err(_) => self.turn.not_pushed(),
        }
        result
    }
}

/// Why an envelope was not enqueued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    NotRunning,
    Full,
    Timeout,
}

/// Counts an async sender as waiting for room for as long as it lives (also when the
/// sending future is dropped mid-wait).
struct RoomWaiter<'a>(&'a AtomicUsize);

impl<'a> RoomWaiter<'a> {
    fn register(count: &'a AtomicUsize) -> RoomWaiter<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        RoomWaiter(count)
    }
}

impl Drop for RoomWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How many actor threads of the process are handling a message (not waiting).
static BUSY: AtomicUsize = AtomicUsize::new(0);

/// The process's usable cores.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, usize::from))
}

/// How many threads of the process are spinning (yielding between polls) for
/// something to arrive (see [`spin_for`]).
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// A spinning thread's claim on a spare core, given back when dropped.
struct SpinSlot(());

impl SpinSlot {
    /// Claims a core for spinning if one is spare: fewer actors are busy and threads
    /// spinning than there are cores. When every core has work (or a spinner), one
    /// more spinning thread would only slow that work down: on 2 cores, a caller and a
    /// process actor's thread spinning at once for the same answer left the child that
    /// computes it no core of its own, and the asks took twice as long.
    fn claim() -> Option<SpinSlot> {
        let spinning = SPINNING.fetch_add(1, Ordering::Relaxed);
        if BUSY.load(Ordering::Relaxed) + spinning < cores() {
            Some(SpinSlot(()))
        } else {
            SPINNING.fetch_sub(1, Ordering::Relaxed);
            None
        }
    }
}

impl SpinSlot {
    /// Whether the core claimed is still spare: actors that became busy since come
    /// first.
    fn still_spare(&self) -> bool {
        BUSY.load(Ordering::Relaxed) + SPINNING.load(Ordering::Relaxed) <= cores()
    }
}

impl Drop for SpinSlot {
    fn drop(&mut self) {
        SPINNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts an actor thread as busy for as long as it lives (see [`Busy::idle`]).
/// Holds whether the thread was counted before.
pub(crate) struct Busy(bool);

thread_local! {
    /// This thread is counted busy (see [`Busy`]).
    static COUNTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Busy {
    pub(crate) fn enter() -> Busy {
        BUSY.fetch_add(1, Ordering::Relaxed);
        Busy(COUNTED.replace(true))
    }

    /// Counts this thread busy unless it is already (an actor's thread in a handler
    /// that asks another actor directly is one busy thread, not two).
    pub(crate) fn enter_once() -> Option<Busy> {
        (!COUNTED.get()).then(Busy::enter)
    }

    /// Counts the thread as idle while `wait` runs.
    pub(crate) fn idle<T>(&self, wait: impl FnOnce() -> T) -> T {
        /// Counts the thread busy again when dropped, however `wait` ends.
        struct BusyAgain;
        impl Drop for BusyAgain {
            fn drop(&mut self) {
                BUSY.fetch_add(1, Ordering::Relaxed);
                COUNTED.set(true);
            }
        }
        BUSY.fetch_sub(1, Ordering::Relaxed);
        COUNTED.set(false);
        let _again = BusyAgain;
        wait()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.fetch_sub(1, Ordering::Relaxed);
        COUNTED.set(self.0);
    }
}

/// Polls `poll` for up to `spin` before giving up: pure spinning for at most 64 polls
/// and 8 microseconds (an answer due in a microsecond or two is taken at once; a poll that is
/// a system call, a socket read, bounds it by time rather than by count), then yielding the CPU
/// between polls, and only with a spare core claimed (fewer actors are busy and threads
/// spinning than there are cores; a process actor's thread stands for its child, which
/// works while the thread waits for it), so that a waiting thread never takes CPU from
/// actors that have work, nor do two waiters take the one spare core between them.
/// The one spin policy of the project: the links to process actors' children wait
/// with it too.
pub fn spin_for<T>(spin: Duration, poll: impl FnMut() -> Option<T>) -> Option<T> {
    // 64 polls that are each a socket read took ~30 us: a process actor's thread spun
    // that long for its child's answer on the very core the child needed. 64 cheap polls
    // (a channel's) take 3-6 us, inside the bound: their waiters are unchanged.
    spin_with(spin, Duration::from_micros(8), poll)
}

/// [`spin_for`] for a poll that is a system call (a socket read): it yields the CPU
/// between polls from the first, with no pure spinning. Such a poll costs about what a
/// yield does, and the peer it waits for may share its core: the scheduler puts a
/// sleeping child on the core of the thread whose write wakes it, and neither moves
/// while both keep running. Pure spinning there held the child off the core for its
/// whole length each round trip (on 2 cores: 27 us round trips that took 6 us with
/// the two on cores of their own, 9 us sharing one while yielding).
pub fn spin_for_syscalls<T>(spin: Duration, poll: impl FnMut() -> Option<T>) -> Option<T> {
    spin_with(spin, Duration::ZERO, poll)
}

fn spin_with<T>(spin: Duration, pure_time: Duration, mut poll: impl FnMut() -> Option<T>) -> Option<T> {
    const PURE_SPINS: u32 = 64;
    if spin.is_zero() {
        return poll();
    }
    let start = Instant::now();
    let mut round = 0u32;
    let mut slot = None;
    loop {
        if let Some(item) = poll() {
            return Some(item);
        }
        if round < PURE_SPINS && start.elapsed() < pure_time {
            round += 1;
            std::hint::spin_loop();
            continue;
        }
        if slot.is_none() {
            slot = SpinSlot::claim();
        }
        if slot.as_ref().is_some_and(SpinSlot::still_spare) && start.elapsed() < spin {
            std::thread::yield_now();
        } else {
            return None;
        }
    }
}

/// Receives from `rx`, spinning for up to `spin` (see [`spin_for`]) before parking
/// until `deadline` (or for good). `Err` tells a timeout from a disconnection.
pub(crate) fn spin_recv<T>(rx: &Receiver<T>, spin: Duration, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
    spin_recv_or(rx, spin, deadline, || {})
}

/// [`spin_recv`], calling `before_park` once the spin has found nothing, before the
/// thread parks (not at all when an item comes while it spins).
pub(crate) fn spin_recv_or<T>(
    rx: &Receiver<T>,
    spin: Duration,
    deadline: Option<Instant>,
    before_park: impl FnOnce(),
) -> Result<T, RecvTimeoutError> {
    let mut disconnected = false;
    let spun = spin_for(spin, || match rx.try_recv() {
        Ok(item) => Some(item),
        Err(TryRecvError::Empty) => None,
        Err(TryRecvError::Disconnected) => {
            disconnected = true;
            None
        }
    });
    if let Some(item) = spun {
        return Ok(item);
    }
    if disconnected {
        return Err(RecvTimeoutError::Disconnected);
    }
    before_park();
    match deadline {
        Some(deadline) => rx.recv_deadline(deadline),
        None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
    }
}

impl<A: Actor> fmt::Debug for Cell<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cell")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod spin_tests {
    use std::time::{Duration, Instant};

    use super::{SpinSlot, cores, spin_for};

    /// With every core taken by spinners, a waiter does not spin for its whole `spin`:
    /// it gives up after its few pure spins (and would park).
    #[test]
    fn a_waiter_does_not_spin_without_a_spare_core() {
        let held: Vec<SpinSlot> = std::iter::from_fn(SpinSlot::claim).take(cores() + 1).collect();
        assert!(held.len() <= cores(), "claimed {} slots on {} cores", held.len(), cores());
        assert!(SpinSlot::claim().is_none(), "a slot beyond the cores was claimed");
        let started = Instant::now();
        assert_eq!(spin_for(Duration::from_secs(30), || None::<()>), None);
        assert!(started.elapsed() < Duration::from_secs(10), "it spun for {:?}", started.elapsed());
        // A slow poll (a socket read, say) ends the pure spinning by time, not after a
        // fixed count of polls.
        let mut slow_polls = 0;
        assert_eq!(
            spin_for(Duration::from_secs(30), || {
                slow_polls += 1;
                std::thread::sleep(Duration::from_micros(20));
                None::<()>
            }),
            None
        );
        assert!(slow_polls <= 2, "{slow_polls} polls of 20 us each without a spare core");
        drop(held);
        // Given back: a waiter may spin again (the item arrives while it does).
        let mut polls = 0;
        assert_eq!(
            spin_for(Duration::from_secs(30), || {
                polls += 1;
                (polls > 200).then_some(7)
            }),
            Some(7)
        );
    }
}
