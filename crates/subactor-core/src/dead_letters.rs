//! Messages that could not be delivered.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ActorId;

/// Why a message became a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeadLetterReason {
    /// Sent to an actor that was no longer running (the sender got it back in its
    /// error).
    NotRunning,
    /// Still queued when the actor was killed or shut down.
    Killed,
    /// Enqueued while the actor was closing its mailbox.
    Stopped,
    /// Still queued when the actor's handler panicked.
    Panicked,
    /// A delayed message found the mailbox full when its timer fired.
    MailboxFull,
    /// A delayed message was still pending when the system shut down.
    ShutDown,
}

/// The sink for undelivered messages: it counts them and logs each through `tracing`
/// (target `subactor::dead_letters`, level `debug`).
#[derive(Debug, Default)]
pub struct DeadLetters {
    count: AtomicU64,
}

impl DeadLetters {
    /// How many messages have become dead letters so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn record(&self, recipient: ActorId, name: Option<&str>, reason: DeadLetterReason, message_type: &str) {
        self.count.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            target: "subactor::dead_letters",
            %recipient,
            name = name.unwrap_or(""),
            ?reason,
            message_type,
            "dead letter"
        );
    }
}
