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
mod pool;
mod process;
pub mod replies;
mod state;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use subactor_arena::Arena;
use subactor_wire::Exports;

pub use actor::{DEFAULT_KILL_GRACE, PyActor, PythonActor};
pub use error::{ConvertError, HostError, PythonException, ReceiveError, StartError};
pub use ffi::fork;
pub use ffi::main as main_interpreter;
pub use ffi::reclaim::ReclaimStats;
pub use pool::{WarmImports, WarmPoolStats};
pub use process::Launcher;
pub use state::{ClusterStates, Snapshots, StateBackend, StateError, StateStore, Upgrade};

use process::template::{Template, TemplateSettings};

/// How much of the memory that CPython keeps after an own-GIL interpreter ends the
/// host gave back in this process (see `ARCHITECTURE.md`, "Memory of ended
/// interpreters").
pub fn interpreter_memory() -> ReclaimStats {
    ffi::reclaim::stats()
}

/// What serving other processes' calls needs of a runtime (its registry, spawning of
/// Python actors, timers, how Python errors travel): for the cluster's nodes.
pub fn actor_env(system: &subactor_core::ActorSystem) -> Arc<dyn subactor_wire::ActorEnv> {
    Arc::new(process::LocalEnv { system: system.clone() })
}

/// Runs this process as the template of a runtime's process actors, when the runtime
/// started it with [`Launcher::Python`]: the Python package's entry point. Call it on
/// the main thread of a Python process, holding the GIL; it never returns, except with
/// an error when this process was not started as a template.
pub fn run_template() -> Result<std::convert::Infallible, String> {
    process::entry::run_in_python()
}

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

/// A running Python actor and what it keeps across restarts and upgrades.
type Kept = (subactor_core::ActorRef<PyActor>, Arc<state::Keeper>);

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
    processes: ProcessSettings,
    /// The template of process actors, started on first use.
    template: Mutex<Option<Arc<Template>>>,
    /// The actor references sent to process actors' children.
    exports: Arc<Exports>,
    /// Where automatically placed actors of each class (`module:Class`) run (see
    /// `Placement::Auto`).
    placements: Mutex<std::collections::HashMap<String, subactor_core::Placement>>,
    /// The running Python actors of this host, for upgrades.
    keepers: Mutex<std::collections::HashMap<subactor_core::ActorId, Kept>>,
    /// Interpreters kept ready for spawns (none by default).
    warm: Option<pool::WarmPool>,
    /// What the warm pool's interpreters import while they wait.
    warm_imports: pool::WarmImports,
}

/// Why an upgrade could not be asked for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// No Python actor of this runtime has that id (it has stopped, or it is not a
    /// Python actor).
    #[error("no running Python actor {0}")]
    NotRunning(subactor_core::ActorId),
    /// The runtime has shut down.
    #[error("the runtime has shut down")]
    NoHost,
    /// The supervisor did not answer with its children.
    #[error("the supervisor has no running Python children to upgrade")]
    NoChildren,
}

/// How a host starts process actors.
#[derive(Clone, Debug)]
struct ProcessSettings {
    launcher: Launcher,
    preload: Vec<String>,
    spares: usize,
    spin: Duration,
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
        let exports = Arc::new(Exports::new());
        let processes = ProcessSettings {
            launcher: Launcher::SelfExe,
            preload: Vec::new(),
            spares: 1,
            spin: subactor_core::DEFAULT_SPIN,
        };
        Ok(PythonHost {
            python_path,
            arena,
            main_module: None,
            lease: Some(lease),
            processes,
            template: Mutex::new(None),
            exports,
            placements: Mutex::default(),
            keepers: Mutex::default(),
            warm: None,
            warm_imports: pool::WarmImports::default(),
        })
    }

    /// Sets how the template process of process actors is started (this binary by
    /// default; the Python package starts a Python interpreter).
    #[must_use]
    pub fn with_launcher(mut self, launcher: Launcher) -> PythonHost {
        self.processes.launcher = launcher;
        self
    }

    /// Modules the template process imports once, so that every process actor starts
    /// with them loaded (`numpy`, say): a spawn then costs a fork, not an import.
    #[must_use]
    pub fn with_preload(mut self, modules: Vec<String>) -> PythonHost {
        self.processes.preload = modules;
        self
    }

    /// How many children the template keeps forked and waiting (1 by default; 0 forks
    /// each child when it is needed).
    #[must_use]
    pub fn with_spare_processes(mut self, spares: usize) -> PythonHost {
        self.processes.spares = spares;
        self
    }

    /// How long a process actor's link spins for an answer before it sleeps.
    #[must_use]
    pub fn with_spin(mut self, spin: Duration) -> PythonHost {
        self.processes.spin = spin;
        self
    }

    /// Keeps `size` own-GIL interpreters created in advance, each on the thread that
    /// will run the actor that takes it, and refilled in the background as spawns take
    /// them (0, the default: none). A spawn of an interpreter actor that finds one
    /// costs its module's import and constructor, not an interpreter's creation.
    ///
    /// What it costs: each ready interpreter holds its memory while it waits (about
    /// 2.4 MiB of RSS, what an idle actor costs) and a parked thread, and every spawn
    /// that takes one creates the next in the background, on another core if there is
    /// one. Interpreters created in advance see the host's settings of that moment
    /// (Python path, main module): set those first. Call it before spawning.
    ///
    /// Unless [`with_warm_imports`](Self::with_warm_imports) says otherwise, each
    /// interpreter's replacement imports the module of the actor that took it, and is
    /// then handed only to an actor of that module ([`WarmImports::Recent`]).
    #[must_use]
    pub fn with_warm_interpreters(mut self, size: usize) -> PythonHost {
        if let Some(old) = self.warm.take() {
            old.close();
        }
        if size > 0 {
            self.warm = Some(pool::WarmPool::start(
                size,
                self.python_path.clone(),
                self.main_module.clone(),
                self.warm_imports.clone(),
            ));
        }
        self
    }

    /// Which modules the warm pool's interpreters import while they wait (see
    /// [`WarmImports`]; [`WarmImports::Recent`] by default). Call it before
    /// [`with_warm_interpreters`](Self::with_warm_interpreters): a pool already
    /// started is started again.
    #[must_use]
    pub fn with_warm_imports(mut self, imports: WarmImports) -> PythonHost {
        self.warm_imports = imports;
        match self.warm.as_ref().map(|pool| pool.stats().size) {
            Some(size) => self.with_warm_interpreters(size),
            None => self,
        }
    }

    /// How the warm pool ([`with_warm_interpreters`](Self::with_warm_interpreters))
    /// has served spawns so far.
    pub fn warm_pool(&self) -> WarmPoolStats {
        self.warm.as_ref().map(pool::WarmPool::stats).unwrap_or_default()
    }

    /// A thread with a ready interpreter from the warm pool, if there is one.
    pub(crate) fn take_warm(&self, module: &str) -> Option<subactor_core::WarmThread> {
        self.warm.as_ref()?.take(module)
    }

    /// The template of process actors, started now if it is not running.
    pub(crate) fn template(&self) -> Result<Arc<Template>, String> {
        let mut slot = self.template.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(template) = slot.as_ref().filter(|t| t.is_alive()) {
            return Ok(Arc::clone(template));
        }
        if let Some(dead) = slot.take() {
            dead.close();
        }
        let settings = TemplateSettings {
            launcher: self.processes.launcher.clone(),
            python_path: self.python_path.clone(),
            preload: self.processes.preload.clone(),
            main: self.main_module.as_ref().map(Into::into),
            spares: self.processes.spares,
        };
        let template = Template::start(settings)?;
        *slot = Some(Arc::clone(&template));
        Ok(template)
    }

    /// Upgrades a running Python actor in place: once the message in hand (if any) is
    /// handled, its state is taken with `snapshot()` (when the class defines it), the
    /// incarnation ends (its `stopped` hook runs), and a new one starts in a fresh
    /// interpreter (or a new process) with the module loaded anew from its source — or
    /// `upgrade`'s module and class — and gets the state through
    /// `upgrade(self, old_state)` if the new class defines it, else `restore(state)`.
    /// The reference, the mailbox and every queued message stay: nothing is lost, and
    /// messages wait while the new code starts. Returns at once; the actor's
    /// `restarts()` counts the upgrade once it has happened.
    ///
    /// If the new code fails to start (it does not import, or its constructor raises),
    /// that is a failed restart: its supervisor or failure policy decides, and the
    /// carried state stays for the next start.
    pub fn upgrade(&self, actor: subactor_core::ActorId, upgrade: Upgrade) -> Result<(), UpgradeError> {
        let keepers = self.keepers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (actor_ref, keeper) = keepers.get(&actor).ok_or(UpgradeError::NotRunning(actor))?;
        keeper.request_upgrade(upgrade);
        actor_ref.restart();
        Ok(())
    }

    /// Upgrades every running Python child of a supervisor ([`PythonHost::upgrade`]
    /// for each, in start order); returns how many were asked.
    pub fn upgrade_children(
        &self,
        supervisor: &subactor_core::ActorRef<subactor_core::Supervisor>,
        upgrade: &Upgrade,
    ) -> Result<usize, UpgradeError> {
        let mut asked = 0;
        for child in supervisor.children() {
            if let Some(actor) = child.actor::<PyActor>() {
                self.upgrade(actor.id(), upgrade.clone())?;
                asked += 1;
            }
        }
        if asked == 0 {
            return Err(UpgradeError::NoChildren);
        }
        Ok(asked)
    }

    pub(crate) fn register_keeper(&self, actor: &subactor_core::ActorRef<PyActor>, keeper: Arc<state::Keeper>) {
        let mut keepers = self.keepers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        keepers.insert(actor.id(), (actor.clone(), keeper));
    }

    pub(crate) fn forget_keeper(&self, actor: subactor_core::ActorId) {
        let mut keepers = self.keepers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        keepers.remove(&actor);
    }

    /// Starts the template of process actors now rather than at the first process
    /// actor's spawn (preloading takes its time once, here).
    pub fn start_processes(&self) -> Result<(), StartError> {
        self.template().map(drop).map_err(StartError::Process)
    }

    /// Where actors of `class` (`module:Class`) were found to run, if one was placed
    /// automatically.
    pub(crate) fn known_placement(&self, class: &str) -> Option<subactor_core::Placement> {
        self.placements.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(class).copied()
    }

    /// Remembers where actors of `class` run.
    pub(crate) fn remember_placement(&self, class: &str, placement: subactor_core::Placement) {
        let mut placements = self.placements.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if placements.get(class) != Some(&placement) {
            placements.insert(class.to_owned(), placement);
        }
    }

    /// The actor references sent to process actors' children.
    pub(crate) fn exports(&self) -> Arc<Exports> {
        Arc::clone(&self.exports)
    }

    /// How long a process actor's link spins.
    pub(crate) fn spin(&self) -> Duration {
        self.processes.spin
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
        self.stop_processes();
        // Its interpreters end before Python may be finalised.
        if let Some(warm) = self.warm.take() {
            warm.close();
        }
        match self.lease.take() {
            Some(lease) => lease.release(),
            None => Ok(()),
        }
    }
}

impl PythonHost {
    /// Stops the template process (and the spare children it keeps).
    fn stop_processes(&self) {
        let template = self.template.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(template) = template {
            template.close();
        }
    }
}

impl Drop for PythonHost {
    fn drop(&mut self) {
        self.stop_processes();
        // Before the lease (a field declared earlier) is given back.
        if let Some(warm) = self.warm.take() {
            warm.close();
        }
    }
}
