//! Outcomes delivered to an event loop through an eventfd: how asyncio code, in an
//! actor or in the main interpreter, gets the replies of its asks without a thread
//! waiting for them.
//!
//! One [`Replies`] per event loop: an ask is sent with a reply callback that holds only
//! Rust data (an `Arc<Replies>` and a ticket); the callback, on whichever thread
//! completes the ask, pushes the outcome here and, if it is the first of a batch,
//! makes the eventfd readable. The loop watches the eventfd with `add_reader`; its
//! reader [`take`](Replies::take)s the batch on the loop's own thread, converts it to
//! Python objects there and completes the waiting futures. An abandoned ask's outcome
//! is dropped as Rust data; the eventfd closes when the loop's handle and every pending
//! callback are gone.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustix::event::{EventfdFlags, eventfd};

/// The outcomes that came for one event loop (of type `T`), and how the loop learns of
/// them (see the module docs).
#[derive(Debug)]
pub struct Replies<T> {
    /// Written (1) when the first outcome of a batch arrives; the loop reads it.
    fd: OwnedFd,
    pending: Mutex<Pending<T>>,
}

#[derive(Debug)]
struct Pending<T> {
    next_ticket: u64,
    done: Vec<(u64, T)>,
}

impl<T> Replies<T> {
    /// New, empty replies with their eventfd (non-blocking, close-on-exec).
    pub fn new() -> std::io::Result<Replies<T>> {
        let fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Replies { fd, pending: Mutex::new(Pending { next_ticket: 0, done: Vec::new() }) })
    }

    fn lock(&self) -> MutexGuard<'_, Pending<T>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The eventfd to watch: readable while outcomes wait to be taken.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// A ticket for the next ask (unique within these replies).
    pub fn next_ticket(&self) -> u64 {
        let mut pending = self.lock();
        pending.next_ticket += 1;
        pending.next_ticket
    }

    /// Records the outcome of ask `ticket`; wakes the loop if it is the first since it
    /// last looked. Runs on whichever thread completes the ask.
    pub fn complete(&self, ticket: u64, outcome: T) {
        let mut pending = self.lock();
        let first = pending.done.is_empty();
        pending.done.push((ticket, outcome));
        if first {
            // The counter cannot overflow (one write per batch); a failed write would
            // leave the loop asleep, which nothing here can mend, so it is logged.
            if let Err(error) = rustix::io::write(&self.fd, &1_u64.to_ne_bytes()) {
                tracing::warn!(%error, "cannot wake an event loop for a reply");
            }
        }
    }

    /// Everything that came since the last call; resets the eventfd.
    pub fn take(&self) -> Vec<(u64, T)> {
        let mut pending = self.lock();
        let mut counter = [0_u8; 8];
        // Under the lock, so that the next `complete` finds an empty batch and writes
        // again. EAGAIN (nothing written since) is fine.
        let _ = rustix::io::read(&self.fd, &mut counter);
        std::mem::take(&mut pending.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(replies: &Replies<u32>) -> bool {
        let mut fds = [rustix::event::PollFd::new(&replies.fd, rustix::event::PollFlags::IN)];
        rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 })).unwrap_or(0) == 1
    }

    #[test]
    fn the_fd_is_readable_while_outcomes_wait() {
        let replies = Replies::new().expect("an eventfd");
        assert!(!readable(&replies));
        let (a, b) = (replies.next_ticket(), replies.next_ticket());
        assert_ne!(a, b);
        replies.complete(b, 2);
        replies.complete(a, 1);
        assert!(readable(&replies));
        assert_eq!(replies.take(), vec![(b, 2), (a, 1)]);
        assert!(!readable(&replies), "taking resets the eventfd");
        assert!(replies.take().is_empty());
        replies.complete(a, 3);
        assert!(readable(&replies), "the next batch wakes the loop again");
    }

    #[test]
    fn outcomes_from_other_threads_arrive() {
        let replies = std::sync::Arc::new(Replies::new().expect("an eventfd"));
        let threads: Vec<_> = (0..4_u32)
            .map(|i| {
                let replies = std::sync::Arc::clone(&replies);
                std::thread::spawn(move || replies.complete(u64::from(i), i))
            })
            .collect();
        for thread in threads {
            thread.join().expect("a completing thread");
        }
        assert!(readable(&replies));
        let mut got = replies.take();
        got.sort_unstable();
        assert_eq!(got, vec![(0, 0), (1, 1), (2, 2), (3, 3)]);
    }
}
