//! Messages that could not be delivered.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::metrics::{DeadLetterRecord, RECENT_DEAD_LETTERS};
use crate::sync::lock;
use crate::{ActorId, Value};

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
    /// A tell whose handler failed (with a failure policy other than resume).
    Failed,
}

/// A message that was not delivered, as subscribers see it.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// The actor it was meant for.
    pub recipient: ActorId,
    /// That actor's name, if it has one.
    pub name: Option<Arc<str>>,
    /// Why it was not delivered.
    pub reason: DeadLetterReason,
    /// The Rust type of the message.
    pub message_type: &'static str,
    /// The message itself, when it is a [`Value`] and still exists (a failed tell was
    /// consumed by its handler).
    pub message: Option<Value>,
}

/// How many dead letters a subscriber may have waiting before newer ones skip it.
const SUBSCRIBER_CAPACITY: usize = 4096;

/// The sink for undelivered messages: it counts them, logs each through `tracing`
/// (target `subactor::dead_letters`, level `debug`), and hands them to subscribers.
#[derive(Debug, Default)]
pub struct DeadLetters {
    count: AtomicU64,
    /// Whether anyone subscribes (then failed tells keep a copy of their message).
    subscribed: AtomicBool,
    subscribers: Mutex<Vec<flume::Sender<DeadLetter>>>,
    /// The latest dead letters, without their messages.
    recent: Mutex<VecDeque<DeadLetterRecord>>,
}

impl DeadLetters {
    /// How many messages have become dead letters so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// A stream of the dead letters from now on. A subscriber that falls more than 4096
    /// behind misses the newer ones (they are still counted and logged); dropping the
    /// receiver ends the subscription.
    ///
    /// While anyone subscribes, a [`Value`] told to an actor whose failures are not
    /// resumed is copied before its handler runs, so that a tell whose handler fails
    /// reaches subscribers with its message.
    pub fn subscribe(&self) -> flume::Receiver<DeadLetter> {
        let (tx, rx) = flume::bounded(SUBSCRIBER_CAPACITY);
        lock(&self.subscribers).push(tx);
        self.subscribed.store(true, Ordering::Relaxed);
        rx
    }

    /// A stream of every dead letter from now on, none missed: for audits and tests that
    /// must account for each message. Unread letters stay in memory until read.
    pub fn subscribe_all(&self) -> flume::Receiver<DeadLetter> {
        let (tx, rx) = flume::unbounded();
        lock(&self.subscribers).push(tx);
        self.subscribed.store(true, Ordering::Relaxed);
        rx
    }

    /// The latest dead letters (up to [`RECENT_DEAD_LETTERS`]), oldest first, without
    /// their messages.
    pub fn recent(&self) -> Vec<DeadLetterRecord> {
        lock(&self.recent).iter().cloned().collect()
    }

    /// Whether dead letters should carry their message where that costs a copy.
    pub(crate) fn wants_messages(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    /// Records a message that was not delivered to `recipient` (the core does this for
    /// its own actors; links record what they could not deliver across).
    pub fn record<M: Any>(&self, recipient: ActorId, name: Option<&str>, reason: DeadLetterReason, msg: &M) {
        self.record_typed(
            recipient,
            name,
            reason,
            std::any::type_name::<M>(),
            (msg as &dyn Any).downcast_ref::<Value>(),
        );
    }

    pub(crate) fn record_typed(
        &self,
        recipient: ActorId,
        name: Option<&str>,
        reason: DeadLetterReason,
        message_type: &'static str,
        message: Option<&Value>,
    ) {
        self.count.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            target: "subactor::dead_letters",
            %recipient,
            name = name.unwrap_or(""),
            ?reason,
            message_type,
            "dead letter"
        );
        {
            let mut recent = lock(&self.recent);
            if recent.len() == RECENT_DEAD_LETTERS {
                recent.pop_front();
            }
            recent.push_back(DeadLetterRecord {
                recipient,
                name: name.map(Arc::from),
                reason,
                message_type,
                at: SystemTime::now(),
            });
        }
        let mut subscribers = lock(&self.subscribers);
        if subscribers.is_empty() {
            return;
        }
        let letter =
            DeadLetter { recipient, name: name.map(Arc::from), reason, message_type, message: message.cloned() };
        subscribers.retain(|tx| !matches!(tx.try_send(letter.clone()), Err(flume::TrySendError::Disconnected(_))));
        if subscribers.is_empty() {
            self.subscribed.store(false, Ordering::Relaxed);
        }
    }
}
