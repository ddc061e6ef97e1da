//! The watchdog: one thread per actor system that breaks into running handlers.
//!
//! It does two things, both on its own thread, which runs no actor code (a Python
//! actor's interrupter must attach to the actor's interpreter from a thread that has no
//! Python thread state of its own):
//! - it carries out the interrupts that [`kill`](crate::ActorRef::kill) requests;
//! - it watches the handlers of actors with a time limit and interrupts those that run
//!   past it.
//!
//! The thread starts with the first request or watched actor, and ends at shutdown,
//! after every actor thread has been joined (a killed runaway handler needs it).

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tracing::{debug, warn};

use crate::Actor;
use crate::InterruptCause;
use crate::cell::{Cell, nanos_since_epoch};
use crate::sync::lock;

/// What the watchdog needs of an actor's cell, whatever its actor type.
pub(crate) trait Interruptible: Send + Sync {
    /// Claims the right to interrupt handler `seq`: `false` if an interrupt of it is
    /// already under way, so that each handler gets one.
    fn claim(&self, seq: u64) -> bool;
    /// Interrupts handler `seq` for `cause`, if it still runs. May block until the
    /// handler can be reached (a Python interrupter waits for the interpreter's GIL).
    fn interrupt(&self, seq: u64, cause: InterruptCause);
    /// The handler that has run past its deadline at `now` (nanoseconds since the
    /// epoch), if there is one and nothing has interrupted it yet.
    fn overdue(&self, now: u64) -> Option<u64>;
}

/// The shortest and longest pause between two scans of the watched handlers.
const MIN_PERIOD: Duration = Duration::from_millis(1);
const MAX_PERIOD: Duration = Duration::from_millis(20);

#[derive(Default)]
struct State {
    requests: Vec<(Arc<dyn Interruptible>, u64, InterruptCause)>,
    watched: Vec<Weak<dyn Interruptible>>,
    /// How often the watched handlers are scanned: a twentieth of the shortest limit.
    period: Option<Duration>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

/// The watchdog of one actor system.
#[derive(Default)]
pub(crate) struct Watchdog {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Watchdog {
    /// Asks for handler `seq` of `target` to be interrupted.
    pub(crate) fn interrupt(&self, target: Arc<dyn Interruptible>, seq: u64, cause: InterruptCause) {
        {
            let mut state = lock(&self.shared.state);
            if state.closed {
                return;
            }
            state.requests.push((target, seq, cause));
        }
        self.shared.changed.notify_one();
        self.ensure_thread();
    }

    /// Watches the handlers of an actor whose time limit is `limit`.
    pub(crate) fn watch(&self, target: Weak<dyn Interruptible>, limit: Duration) {
        {
            let mut state = lock(&self.shared.state);
            if state.closed {
                return;
            }
            state.watched.push(target);
            let period = (limit / 20).clamp(MIN_PERIOD, MAX_PERIOD);
            state.period = Some(state.period.map_or(period, |p| p.min(period)));
        }
        self.shared.changed.notify_one();
        self.ensure_thread();
    }

    fn ensure_thread(&self) {
        let mut thread = lock(&self.thread);
        if thread.is_some() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        match thread::Builder::new().name("subactor-watchdog".into()).spawn(move || watch(&shared)) {
            Ok(handle) => *thread = Some(handle),
            Err(error) => warn!(%error, "cannot start the watchdog thread: kills and time limits cannot interrupt"),
        }
    }

    /// Stops the thread; later requests are ignored.
    pub(crate) fn shutdown(&self) {
        lock(&self.shared.state).closed = true;
        self.shared.changed.notify_one();
        if let Some(thread) = lock(&self.thread).take() {
            if thread.join().is_err() {
                warn!("the watchdog thread panicked");
            }
        }
    }
}

fn watch(shared: &Shared) {
    loop {
        let (requests, watched) = {
            let mut state = lock(&shared.state);
            if state.requests.is_empty() && !state.closed {
                state = match state.period {
                    Some(period) => {
                        shared.changed.wait_timeout(state, period).unwrap_or_else(PoisonError::into_inner).0
                    }
                    None => shared.changed.wait(state).unwrap_or_else(PoisonError::into_inner),
                };
            }
            if state.closed {
                return;
            }
            state.watched.retain(|w| w.strong_count() > 0);
            let watched: Vec<_> = state.watched.iter().filter_map(Weak::upgrade).collect();
            (std::mem::take(&mut state.requests), watched)
        };
        for (target, seq, cause) in requests {
            dispatch(target, seq, cause);
        }
        let now = nanos_since_epoch(std::time::Instant::now());
        for target in watched {
            if let Some(seq) = target.overdue(now) {
                debug!(seq, "a handler ran past its time limit");
                dispatch(target, seq, InterruptCause::TimeLimit);
            }
        }
    }
}

/// Interrupts on a thread of its own: reaching a handler can take a while (a Python
/// handler in C code that holds its GIL cannot be reached at all), and the watchdog must
/// keep serving every other actor meanwhile.
fn dispatch(target: Arc<dyn Interruptible>, seq: u64, cause: InterruptCause) {
    if !target.claim(seq) {
        return;
    }
    let interrupter = Arc::clone(&target);
    let spawned = thread::Builder::new()
        .name("subactor-interrupt".into())
        .stack_size(256 << 10)
        .spawn(move || interrupter.interrupt(seq, cause));
    if let Err(error) = spawned {
        warn!(%error, "cannot start an interrupt thread: interrupting from the watchdog");
        target.interrupt(seq, cause);
    }
}

impl<A: Actor> Interruptible for Cell<A> {
    fn claim(&self, seq: u64) -> bool {
        self.claim_interrupt(seq)
    }

    fn interrupt(&self, seq: u64, cause: InterruptCause) {
        let confirm = || self.mark_interrupted(seq, cause);
        match self.interrupter() {
            Some(interrupter) => interrupter.interrupt(cause, &confirm),
            // A Rust handler cannot be broken into: a time limit is recorded (the handler
            // counts as failed when it returns, and can poll for it); a kill waits for it.
            None if cause == InterruptCause::TimeLimit => {
                confirm();
            }
            None => {}
        }
    }

    fn overdue(&self, now: u64) -> Option<u64> {
        self.overdue_handler(now)
    }
}
