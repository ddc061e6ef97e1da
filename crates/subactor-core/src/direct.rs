//! The turn: who runs an idle actor's next handler.
//!
//! An actor whose handlers run elsewhere (a process actor: its handler is a round trip
//! to its child) can let a blocked asker run an ask itself while the actor is idle, so
//! that the round trip goes caller -> child -> caller instead of caller -> actor thread
//! -> child -> actor thread -> caller: two wake-ups a message, not four, and on a
//! machine with few cores one thread less wanting one. It is the same actor: the core's
//! `call` and `settle` run the handler and report it, the handler word lets kills and
//! time limits break into it, and a failure fails the incarnation on the actor's thread.
//!
//! The turn is one word: `BUSY` (the actor's thread has it), `IDLE` (the thread waits
//! for mail with nothing in hand and an empty mailbox), `DIRECT` (a caller has it) or
//! `HANDED` (a caller gave it back for the thread to act on: a failure to report, an
//! ask to finish). A caller takes it only from `IDLE`, and only if every envelope ever
//! pushed into the mailbox has been taken and finished by the thread (`pushed` against
//! `done`): so an ask never overtakes a message its sender queued before it (per-sender
//! FIFO), whoever runs it. The thread takes the turn back before it touches anything of
//! the actor's, waiting while a caller has it.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::actor::Actor;
use crate::error::Fault;
use crate::run::Failure;

/// How a caller runs an idle actor's handler on its own thread (see the module docs).
/// An actor offers one through [`Actor::direct`]; it must share whatever the handler
/// uses with the actor, which does not touch it while a caller has the turn.
pub trait DirectAsk<A: Actor>: Send + Sync {
    /// Begins handling `msg` as an ask: what [`Actor::handle`] does before it waits.
    fn begin(&self, msg: A::Msg) -> Result<(), A::Error>;
    /// Waits until `deadline` (for good with `None`) for the outcome of the ask begun;
    /// `None` if it has not come by then: the ask is still in hand, and a later call
    /// finishes it (the caller's next wait, or the actor's thread once the caller has
    /// stopped waiting).
    fn finish(&self, deadline: Option<Instant>) -> Option<Result<A::Reply, A::Error>>;
    /// `Err` with the fault once the place where the handlers run is gone (as
    /// [`Actor::health`]).
    fn health(&self) -> Result<(), Fault>;
}

const BUSY: u8 = 0;
const IDLE: u8 = 1;
const DIRECT: u8 = 2;
const HANDED: u8 = 3;

/// How long the actor's thread spins for the turn before it parks.
const TURN_SPIN: Duration = Duration::from_micros(20);

/// The turn of one actor (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Turn {
    state: AtomicU8,
    /// Envelopes pushed (or being pushed) into the mailbox.
    pushed: AtomicU64,
    /// Envelopes the actor's thread had taken and finished when it last went idle.
    done: AtomicU64,
    /// Envelopes the actor's thread has taken from the mailbox in all, over every
    /// incarnation (written by that thread only, when a stretch of serving ends).
    taken: AtomicU64,
    /// The actor's thread, to unpark when the turn comes back.
    thread: OnceLock<Thread>,
    /// The actor's thread waits for the turn.
    awaiting: AtomicBool,
    /// A failure of the incarnation that a caller's handler ended with.
    failure: Mutex<Option<Failure>>,
    /// A caller left an ask unfinished (its deadline passed): the thread finishes it.
    unfinished: AtomicBool,
}

impl Turn {
    /// Called before an envelope is pushed into the mailbox.
    pub(crate) fn pushing(&self) {
        self.pushed.fetch_add(1, Ordering::SeqCst);
    }

    /// Called when a push counted by [`Turn::pushing`] did not happen.
    pub(crate) fn not_pushed(&self) {
        self.pushed.fetch_sub(1, Ordering::SeqCst);
    }

    /// The actor's thread: binds the turn to it.
    pub(crate) fn bind(&self) {
        let _ = self.thread.set(thread::current());
    }

    /// How many envelopes the actor's thread had taken when its last stretch of
    /// serving ended (see [`Turn::set_taken`]).
    pub(crate) fn taken(&self) -> u64 {
        self.taken.load(Ordering::SeqCst)
    }

    /// The actor's thread, ending a stretch of serving, records how many envelopes it
    /// has taken in all: the next incarnation counts on from there.
    pub(crate) fn set_taken(&self, taken: u64) {
        self.taken.store(taken, Ordering::SeqCst);
    }

    /// The actor's thread, about to wait for mail with nothing in hand and its mailbox
    /// found empty, having taken `taken` envelopes from it in all: lets callers in.
    pub(crate) fn open(&self, taken: u64) {
        self.done.store(taken, Ordering::SeqCst);
        self.state.store(IDLE, Ordering::SeqCst);
    }

    /// The actor's thread takes the turn back after a wait opened by [`Turn::open`],
    /// waiting while a caller has it. Returns what a caller handed over: a failure
    /// that ends the incarnation, and whether an ask is left to finish.
    pub(crate) fn close(&self) -> Handed {
        loop {
            match self.state.compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return Handed::default(),
                Err(HANDED) => {
                    self.state.store(BUSY, Ordering::SeqCst);
                    return Handed {
                        failure: crate::sync::lock(&self.failure).take(),
                        unfinished: self.unfinished.swap(false, Ordering::SeqCst),
                    };
                }
                Err(_) => self.await_release(),
            }
        }
    }

    fn await_release(&self) {
        let spun = crate::cell::spin_for(TURN_SPIN, || (self.state.load(Ordering::SeqCst) != DIRECT).then_some(()));
        if spun.is_some() {
            return;
        }
        self.awaiting.store(true, Ordering::SeqCst);
        while self.state.load(Ordering::SeqCst) == DIRECT {
            // Unparked by the caller that gives the turn back; the timeout only guards.
            thread::park_timeout(Duration::from_millis(50));
        }
        self.awaiting.store(false, Ordering::SeqCst);
    }

    /// Whether a caller may find the turn free now (a hint: [`Turn::claim`] decides).
    pub(crate) fn idle(&self) -> bool {
        self.state.load(Ordering::Relaxed) == IDLE
    }

    /// A caller: takes the turn if the actor is idle and has finished everything ever
    /// pushed into its mailbox.
    pub(crate) fn claim(&self) -> bool {
        if self.state.load(Ordering::Relaxed) != IDLE {
            return false;
        }
        if self.state.compare_exchange(IDLE, DIRECT, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return false;
        }
        if self.pushed.load(Ordering::SeqCst) != self.done.load(Ordering::SeqCst) {
            self.release();
            return false;
        }
        true
    }

    /// A caller gives the turn back, the actor idle again.
    pub(crate) fn release(&self) {
        self.state.store(IDLE, Ordering::SeqCst);
        self.unpark();
    }

    /// A caller gives the turn back for the actor's thread to act on (it wakes the
    /// thread through its mailbox after this).
    pub(crate) fn hand(&self, failure: Option<Failure>, unfinished: bool) {
        if failure.is_some() {
            *crate::sync::lock(&self.failure) = failure;
        }
        self.unfinished.store(unfinished, Ordering::SeqCst);
        self.state.store(HANDED, Ordering::SeqCst);
        self.unpark();
    }

    fn unpark(&self) {
        if self.awaiting.load(Ordering::SeqCst) {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
    }
}

thread_local! {
    /// The actors whose turn this thread has (a direct ask can serve a call that asks
    /// another actor directly).
    static HOLDING: std::cell::RefCell<Vec<crate::ActorId>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The actor whose handler this thread runs now as a caller with its turn, if it runs
/// one: what that handler asks, it asks as that actor (asking it again would wait for
/// itself).
pub(crate) fn holding() -> Option<crate::ActorId> {
    HOLDING.with_borrow(|held| held.last().copied())
}

/// Marks this thread as having actor `id`'s turn until dropped.
pub(crate) struct Holding(());

impl Holding {
    pub(crate) fn enter(id: crate::ActorId) -> Holding {
        HOLDING.with_borrow_mut(|held| held.push(id));
        Holding(())
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        HOLDING.with_borrow_mut(|held| {
            held.pop();
        });
    }
}

/// What a caller handed to the actor's thread with the turn.
#[derive(Debug, Default)]
pub(crate) struct Handed {
    pub(crate) failure: Option<Failure>,
    pub(crate) unfinished: bool,
}

/// The direct path an incarnation offers, with its failure policy.
pub(crate) type Offer<A> = (Arc<dyn DirectAsk<A>>, crate::lifecycle::FailurePolicy);

#[cfg(test)]
mod tests;
