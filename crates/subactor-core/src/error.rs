//! The errors of sending, asking and spawning.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A failure of the actor while it handled a message, reported to whoever waits for
/// that message's outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Fault {
    /// The handler panicked (Rust actors).
    #[error("the handler panicked: {0}")]
    Panicked(Arc<str>),
    /// The actor was killed while handling the message, which was interrupted.
    #[error("the actor was killed while handling the message")]
    Killed,
    /// The handler ran past the actor's time limit.
    #[error("the handler ran past its time limit of {0:?}")]
    TimeLimit(Duration),
    /// The process that ran the handler died (a process actor's child: a crash in C
    /// code, `os._exit`, the kernel's OOM killer, a signal from outside).
    #[error("the actor's process died: {0}")]
    Died(Death),
}

/// How a process that ran an actor's handlers ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum Death {
    /// It was killed by a signal (`SIGSEGV`, `SIGKILL`, ...).
    #[error("killed by signal {number} ({name}){}", if *.core_dumped { ", core dumped" } else { "" })]
    Signal {
        /// The signal's number.
        number: i32,
        /// The signal's name, such as `"SIGSEGV"`.
        name: Arc<str>,
        /// Whether it dumped core.
        core_dumped: bool,
    },
    /// It exited by itself (`os._exit(3)`, `sys.exit` outside a handler).
    #[error("exited with status {0}")]
    Exited(i32),
    /// The connection to it broke, and how it ended is not known.
    #[error("lost: {0}")]
    Lost(Arc<str>),
}

/// A tell was not delivered. The message comes back in the error: nothing is lost.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError<M> {
    /// The mailbox is full (only [`try_tell`](crate::ActorRef::try_tell) returns this;
    /// the other tells wait for room).
    #[error("the actor's mailbox is full")]
    Full(M),
    /// The actor is stopping or has stopped.
    #[error("the actor is not running")]
    Stopped(M),
}

impl<M> SendError<M> {
    /// The message that was not delivered.
    pub fn into_message(self) -> M {
        match self {
            SendError::Full(m) | SendError::Stopped(m) => m,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Full(_) => f.write_str("Full(..)"),
            SendError::Stopped(_) => f.write_str("Stopped(..)"),
        }
    }
}

/// An ask got no successful reply.
///
/// Where the message was never delivered, it comes back in the error.
#[derive(thiserror::Error)]
pub enum AskError<M, E> {
    /// The actor is stopping or has stopped; the message was not delivered.
    #[error("the actor is not running")]
    Stopped(M),
    /// The mailbox stayed full until the timeout; the message was not delivered.
    #[error("the actor's mailbox stayed full until the timeout")]
    MailboxFull(M),
    /// The actor asked itself, which could never be answered; the message was not
    /// delivered.
    #[error("an actor cannot ask itself (it would wait for its own reply forever)")]
    SelfAsk(M),
    /// The message was delivered, but no reply came within the timeout. The actor may
    /// still handle it.
    #[error("no reply within the timeout")]
    Timeout,
    /// The actor stopped (was killed, failed, or shut down) before replying.
    #[error("the actor stopped before replying")]
    NoReply,
    /// The handler failed; this is its error.
    #[error(transparent)]
    Failed(E),
    /// The actor failed while handling the message: it panicked, was killed, or ran
    /// past its time limit.
    #[error(transparent)]
    Fault(Fault),
}

impl<M, E> AskError<M, E> {
    /// The message, if it was never delivered.
    pub fn into_message(self) -> Option<M> {
        match self {
            AskError::Stopped(m) | AskError::MailboxFull(m) | AskError::SelfAsk(m) => Some(m),
            AskError::Timeout | AskError::NoReply | AskError::Failed(_) | AskError::Fault(_) => None,
        }
    }

    /// The handler's error, if the handler failed.
    pub fn handler_error(&self) -> Option<&E> {
        match self {
            AskError::Failed(e) => Some(e),
            _ => None,
        }
    }
}

impl<M, E: fmt::Debug> fmt::Debug for AskError<M, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AskError::Stopped(_) => f.write_str("Stopped(..)"),
            AskError::MailboxFull(_) => f.write_str("MailboxFull(..)"),
            AskError::SelfAsk(_) => f.write_str("SelfAsk(..)"),
            AskError::Timeout => f.write_str("Timeout"),
            AskError::NoReply => f.write_str("NoReply"),
            AskError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            AskError::Fault(fault) => f.debug_tuple("Fault").field(fault).finish(),
        }
    }
}

/// An actor could not be spawned. `E` is the recipe's own start error.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError<E> {
    /// The system (or runtime) has shut down.
    #[error("cannot spawn: the actor system has shut down")]
    ShutDown,
    /// Another running actor has this name.
    #[error("cannot spawn: an actor named {0:?} is already running")]
    NameTaken(String),
    /// The spawn options are not usable.
    #[error("cannot spawn: {0}")]
    InvalidOptions(String),
    /// The operating system refused a thread.
    #[error("cannot spawn: the actor's thread could not be started: {0}")]
    Thread(#[source] std::io::Error),
    /// The recipe failed to build the actor.
    #[error(transparent)]
    Start(E),
    /// The recipe panicked while building the actor.
    #[error("the actor panicked while starting: {0}")]
    Panicked(String),
}

impl<E> SpawnError<E> {
    /// The recipe's start error, if that is what went wrong.
    pub fn start_error(&self) -> Option<&E> {
        match self {
            SpawnError::Start(e) => Some(e),
            _ => None,
        }
    }
}
