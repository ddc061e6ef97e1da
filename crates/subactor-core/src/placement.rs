//! [`Placement`]: where an actor's handler runs.

use std::fmt;
use std::str::FromStr;

/// Where an actor's handler runs. The actor model is the same everywhere (the mailbox,
/// supervision, monitors and dead letters live with the actor's cell in the process
/// that spawned it); only the place that runs `receive` differs.
///
/// A running actor reports its placement through [`ActorRef::placement`](crate::ActorRef::placement)
/// and [`AnyRef::placement`](crate::AnyRef::placement).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Placement {
    /// On the actor's own thread, in this process: a Rust actor.
    #[default]
    Thread,
    /// In a CPython subinterpreter with its own GIL, on the actor's own thread.
    Interpreter,
    /// In the main interpreter of a child process: every extension module works there,
    /// and a crash ends only that process.
    Process,
    /// A request, never what a running actor reports: an interpreter when the actor's
    /// code allows it, else a process (see the host's `PythonActor::placement`).
    Auto,
}

impl Placement {
    /// The placement's name, as Python code spells it (`"interpreter"`, `"process"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Thread => "thread",
            Placement::Interpreter => "interpreter",
            Placement::Process => "process",
            Placement::Auto => "auto",
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A placement name that is not one of [`Placement`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown placement {0:?} (expected \"auto\", \"interpreter\" or \"process\")")]
pub struct UnknownPlacement(pub String);

impl FromStr for Placement {
    type Err = UnknownPlacement;

    fn from_str(s: &str) -> Result<Placement, UnknownPlacement> {
        match s {
            "thread" => Ok(Placement::Thread),
            "interpreter" => Ok(Placement::Interpreter),
            "process" => Ok(Placement::Process),
            "auto" => Ok(Placement::Auto),
            other => Err(UnknownPlacement(other.to_owned())),
        }
    }
}
