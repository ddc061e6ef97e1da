//! The actor model of subactor, with no Python in it.
//!
//! An actor is a value implementing [`Actor`], running on its own OS thread, reached
//! through an [`ActorRef`]. Its mailbox is bounded: senders wait for room
//! ([`ActorRef::tell`], [`ActorRef::blocking_tell`]) or get their message back
//! ([`ActorRef::try_tell`]), so a fast producer cannot make memory grow without bound.
//! Asks ([`ActorRef::ask`], [`ActorRef::blocking_ask`]) return the handler's reply, or a
//! typed [`AskError`].
//!
//! Actors stop gracefully ([`ActorRef::stop`]: the queue is handled first) or at once
//! ([`ActorRef::kill`]: the queue goes to the [`DeadLetters`]). An [`ActorSystem`]
//! spawns them, finds them by name, and shuts them all down.
//!
//! The Python host (`subactor-host`) implements [`Actor`] and [`Spawn`] for Python
//! actors; this crate is tested and benchmarked with Rust actors alone. What crosses
//! between actors of different interpreters is a [`Value`]; [`codec`] turns values into
//! bytes.
//!
//! Semantics worth knowing:
//! - messages from one sender arrive in the order sent; senders are not ordered among
//!   themselves;
//! - a message is handled, or returned to its sender in an error, or counted as a dead
//!   letter: never dropped silently;
//! - every actor has a `tracing` span (`actor`, with its id and name), and every message a
//!   `trace`-level span (`tell` or `ask`) inside it.

mod actor;
mod actor_ref;
mod any_ref;
mod cell;
pub use cell::{Outcome, spin_for, spin_for_syscalls};
pub mod codec;
mod dead_letters;
mod direct;
mod error;
mod lifecycle;
pub mod metrics;
mod pipeline;
mod placement;
mod run;
mod supervisor;
mod sync;
mod system;
mod timers;
pub mod trace;
mod value;
mod warm;
mod watchdog;

pub use actor::{
    Actor, ActorContext, Ended, Finished, HealthAlarm, Interrupt, InterruptCause, NeverFails, Props, Spawn,
    SpawnOptions, TellBatch, Waker,
};
pub use actor_ref::ActorRef;
pub use any_ref::{AnyRef, BoxError, RemoteActor, ValueCallback};
pub use dead_letters::{DeadLetter, DeadLetterReason, DeadLetters};
pub use direct::DirectAsk;
pub use error::{AskError, Death, Fault, SendError, SpawnError};
pub use lifecycle::{ActorId, ActorState, Down, FailurePolicy, MonitorId, StopReason};
pub use metrics::{ActorMetrics, Metrics};
pub use pipeline::{
    DEFAULT_STAGE_CAPACITY, Failure, LEAST_LOADED_SLOTS, Output, Pipeline, PipelineBuilder, PipelineError, Routing,
};
pub use placement::{Placement, UnknownPlacement};
pub use supervisor::{
    Backoff, ChildInfo, ChildSpec, Intensity, RestartType, Strategy, Supervisor, SupervisorError, SupervisorMsg,
    SupervisorSpec,
};
pub use system::{
    ActorSystem, DEFAULT_MAILBOX_CAPACITY, DEFAULT_SPIN, NameClaimError, NameService, PendingSpawn, Spawned,
    SystemBuilder,
};
pub use timers::TimerId;
pub use value::{MAX_DEPTH, Value, ValueError};
pub use warm::{ThreadJob, WarmThread};

#[cfg(any(test, feature = "proptest"))]
pub mod testing;

#[cfg(test)]
mod tests;

/// The instant `after` from now, saturating: a timeout too large to be an instant (a
/// user's `Duration::MAX`) is a deadline about a century away, not a panic.
pub fn deadline_after(after: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(after).unwrap_or_else(|| {
        let century = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
        now.checked_add(century).unwrap_or(now)
    })
}
