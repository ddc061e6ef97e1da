//! The interpreter host of subactor: one actor = one own-GIL CPython subinterpreter
//! (PEP 684) on one dedicated OS thread.
//!
//! [`PythonHost`] is a runtime's share of the process's Python (the main interpreter,
//! started on first use and finalised after the last share is gone) plus that
//! runtime's settings. [`PythonActor`] is the recipe of a Python actor; spawning it on
//! an [`ActorSystem`](subactor_core::ActorSystem) whose builder was given the host as an
//! extension creates the interpreter on the actor's thread and instantiates the class
//! there. [`PyActor`] is the running actor.
//!
//! Values cross interpreters as [`Value`](subactor_core::Value)s, converted with the C
//! API on each side (no pickling for the built-in types). All FFI lives in the private
//! `ffi` module.

mod actor;
mod error;
mod ffi;

use std::path::PathBuf;

use subactor_arena::Arena;

pub use actor::{PyActor, PythonActor};
pub use error::{ConvertError, HostError, PythonException, ReceiveError, StartError};
pub use ffi::main as main_interpreter;

/// The main program of a Python process that drives a runtime (through the `subactor`
/// Python package), for actors that need what it defines.
///
/// Classes and functions defined in a main script belong to the module `__main__`. An
/// actor of such a class (spawned as module `"__main__"`), or one that unpickles such an
/// object, loads the main program as the module `__mp_main__` — so that its
/// `if __name__ == "__main__":` block does not run — and sees it as `__main__`, as
/// multiprocessing's spawn start method does. Actors that never need it never load it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MainModule {
    /// A script run as `python path/to/script.py`.
    Script(PathBuf),
    /// A module run as `python -m package.module`.
    Module(String),
}

/// A runtime's share of the process's Python, and its settings for Python actors.
///
/// Put it in an actor system as an extension (`ActorSystem::builder().extension(host)`);
/// the `subactor` facade's `Runtime` does this for you.
#[derive(Debug)]
pub struct PythonHost {
    python_path: Vec<String>,
    arena: Arena,
    main_module: Option<MainModule>,
    lease: Option<ffi::process::Lease>,
}

impl PythonHost {
    /// Takes a share of the process's Python (initialising it if needed), for actors
    /// whose `sys.path` starts with `python_path` and whose `subactor.alloc` and
    /// `Buffer.from_bytes` allocate from `arena`.
    pub fn start(python_path: Vec<PathBuf>, arena: Arena) -> Result<PythonHost, HostError> {
        let lease = ffi::process::Lease::acquire()?;
        let python_path = python_path
            .into_iter()
            .map(|p| std::path::absolute(&p).unwrap_or(p).to_string_lossy().into_owned())
            .collect();
        Ok(PythonHost { python_path, arena, main_module: None, lease: Some(lease) })
    }

    /// Sets the main program that actors load when they need what it defines (see
    /// [`MainModule`]).
    #[must_use]
    pub fn with_main_module(mut self, main: Option<MainModule>) -> PythonHost {
        self.main_module = main;
        self
    }

    /// The main program actors load when they need what it defines.
    pub fn main_module(&self) -> Option<&MainModule> {
        self.main_module.as_ref()
    }

    /// The running Python's version, as (major, minor, micro).
    pub fn python_version(&self) -> (u8, u8, u8) {
        let v = self.lease.as_ref().map(ffi::process::Lease::version);
        v.map_or((0, 0, 0), |v| (v.major, v.minor, v.micro))
    }

    /// The arena of actors' buffers.
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The folders put first on every actor's `sys.path`.
    pub fn python_path(&self) -> &[String] {
        &self.python_path
    }

    /// Gives the share back. If it was the last one and subactor started Python,
    /// Python is finalised now and any error it reports is returned.
    ///
    /// Every actor of this host must have stopped: they hold the host until then.
    pub fn close(mut self) -> Result<(), HostError> {
        match self.lease.take() {
            Some(lease) => lease.release(),
            None => Ok(()),
        }
    }
}
