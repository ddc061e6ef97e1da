//! Actor identity and lifecycle states.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A process-wide unique actor id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ActorId(u64);

impl ActorId {
    pub(crate) fn next() -> ActorId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ActorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id with this number (as Python code sees ids).
    pub fn from_u64(n: u64) -> ActorId {
        ActorId(n)
    }
}

/// Identifies a monitor, to remove it ([`ActorRef::demonitor`](crate::ActorRef::demonitor)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorId(u64);

impl MonitorId {
    pub(crate) fn next() -> MonitorId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        MonitorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number (what Python code sees).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The monitor with this number.
    pub fn from_u64(n: u64) -> MonitorId {
        MonitorId(n)
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where an actor is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ActorState {
    /// Its thread is building it (for a Python actor: creating the interpreter,
    /// importing the module, calling the constructor).
    Starting = 0,
    /// Handling messages.
    Running = 1,
    /// Asked to stop: takes no new messages, finishes what it must.
    Stopping = 2,
    /// Gone: its thread has finished with it (a Python actor's interpreter has ended).
    Stopped = 3,
}

impl ActorState {
    pub(crate) fn from_u8(n: u8) -> ActorState {
        match n {
            0 => ActorState::Starting,
            1 => ActorState::Running,
            2 => ActorState::Stopping,
            _ => ActorState::Stopped,
        }
    }
}

/// Why an actor stopped.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StopReason {
    /// [`stop`](crate::ActorRef::stop)ped: it handled everything queued first.
    Normal,
    /// [`kill`](crate::ActorRef::kill)ed, or shut down with its system: what was queued
    /// went to the dead letters.
    Killed,
    /// Its recipe failed to build it.
    StartFailed(Arc<str>),
    /// Its handler panicked (Rust actors); what was queued went to the dead letters.
    Panicked(Arc<str>),
    /// It failed (a handler error with a failure policy other than resume, a panic, a
    /// time limit) and was not restarted; what was queued went to the dead letters.
    Failed(Arc<str>),
}

impl StopReason {
    /// Whether this is an abnormal end (anything but a graceful [`StopReason::Normal`]).
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, StopReason::Normal)
    }
}

/// What a monitor is told when the actor it watches stops for good.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Down {
    /// The actor that stopped.
    pub id: ActorId,
    /// Its name, if it had one.
    pub name: Option<Arc<str>>,
    /// Why it stopped.
    pub reason: StopReason,
}

/// What an actor does when one of its handlers fails (returns an error).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FailurePolicy {
    /// Keep serving with the same state (the default for actors without a supervisor).
    #[default]
    Resume,
    /// Restart: a fresh actor from the recipe, on the same thread, with the same
    /// mailbox (queued messages survive). Decided by the supervisor when there is one;
    /// the default for supervised actors.
    Restart,
    /// Stop, dead-lettering what is queued.
    Stop,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Normal => f.write_str("stopped"),
            StopReason::Killed => f.write_str("killed"),
            StopReason::StartFailed(why) => write!(f, "failed to start: {why}"),
            StopReason::Panicked(why) => write!(f, "panicked: {why}"),
            StopReason::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}
