//! Timers: run a closure after a delay, on one thread per actor system.
//!
//! The thread starts with the first timer and ends at shutdown; timers still pending
//! then are abandoned (a pending [`ActorSystem::send_after`] counts as a dead letter).
//!
//! [`ActorSystem::send_after`]: crate::ActorSystem::send_after

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::sync::lock;

/// Identifies a scheduled timer, to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

impl TimerId {
    /// The id as a number (what Python code sees).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The timer with this number.
    pub fn from_u64(n: u64) -> TimerId {
        TimerId(n)
    }
}

/// Something to do when a timer fires.
pub(crate) trait Job: Send {
    /// The timer fired.
    fn run(self: Box<Self>);
    /// The service shut down before the timer fired.
    fn abandon(self: Box<Self>);
}

/// What is due, in deadline order, and the jobs by id.
#[derive(Default)]
struct Queue {
    due: BTreeMap<(Instant, TimerId), ()>,
    jobs: HashMap<TimerId, (Instant, Box<dyn Job>)>,
    next: u64,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

/// The timer service of one actor system.
#[derive(Default)]
pub(crate) struct Timers {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Timers {
    /// Runs `job` after `delay`; `None` once the service has been shut down.
    pub(crate) fn schedule(&self, delay: Duration, job: Box<dyn Job>) -> Option<TimerId> {
        let deadline = crate::deadline_after(delay);
        let id = {
            let mut queue = lock(&self.shared.queue);
            if queue.closed {
                drop(queue);
                job.abandon();
                return None;
            }
            queue.next += 1;
            let id = TimerId(queue.next);
            queue.due.insert((deadline, id), ());
            queue.jobs.insert(id, (deadline, job));
            id
        };
        self.shared.changed.notify_one();
        let mut thread = lock(&self.thread);
        if thread.is_none() {
            let shared = Arc::clone(&self.shared);
            match thread::Builder::new().name("subactor-timers".into()).spawn(move || run(&shared)) {
                Ok(handle) => *thread = Some(handle),
                Err(error) => {
                    tracing::warn!(%error, "cannot start the timer thread");
                    let job = lock(&self.shared.queue).jobs.remove(&id);
                    if let Some((_, job)) = job {
                        job.abandon();
                    }
                    return None;
                }
            }
        }
        Some(id)
    }

    /// Cancels a timer; `true` if it had not run yet.
    pub(crate) fn cancel(&self, id: TimerId) -> bool {
        let mut queue = lock(&self.shared.queue);
        match queue.jobs.remove(&id) {
            Some((deadline, _job)) => {
                queue.due.remove(&(deadline, id));
                true
            }
            None => false,
        }
    }

    /// Stops the thread; pending jobs are abandoned.
    pub(crate) fn shutdown(&self) {
        let pending = {
            let mut queue = lock(&self.shared.queue);
            queue.closed = true;
            queue.due.clear();
            std::mem::take(&mut queue.jobs)
        };
        self.shared.changed.notify_all();
        // Outside the lock: abandoning records dead letters.
        for (_, (_, job)) in pending {
            job.abandon();
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared) {
    let mut queue = lock(&shared.queue);
    loop {
        if queue.closed {
            return;
        }
        let now = Instant::now();
        match queue.due.keys().next().copied() {
            Some((deadline, id)) if deadline <= now => {
                queue.due.remove(&(deadline, id));
                if let Some((_, job)) = queue.jobs.remove(&id) {
                    drop(queue);
                    job.run();
                    queue = lock(&shared.queue);
                }
            }
            Some((deadline, _)) => {
                queue = shared.changed.wait_timeout(queue, deadline - now).map_or_else(|e| e.into_inner().0, |r| r.0);
            }
            None => {
                queue = shared.changed.wait(queue).unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
    }
}
