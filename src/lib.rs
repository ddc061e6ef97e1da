//! # subactor
//!
//! Actors for Python, driven from Rust. Every Python actor is a CPython subinterpreter
//! with its own GIL (PEP 684, Python 3.12+) on its own OS thread, so actors run Python
//! code in parallel on every core of one process, with no pickling of plain values and
//! no process per worker.
//!
//! ```no_run
//! use std::time::Duration;
//! use subactor::{PythonActor, Runtime, Value};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = Runtime::builder().python_path(["examples/python"]).build()?; // starts Python once
//! let counter = rt.spawn(PythonActor::new("primes", "Counter").args((0,)).name("c"))?;
//! counter.tell(5).await?; // waits while the mailbox is full
//! let total = counter.ask(1, Duration::from_secs(1)).await?; // receive()'s return value
//! assert_eq!(total, Value::from(6));
//! rt.shutdown()?; // ends every interpreter, then Python
//! # Ok(())
//! # }
//! ```
//!
//! A Python actor is a class with a `receive(self, msg)` method:
//!
//! ```python
//! class Counter:
//!     def __init__(self, start):
//!         self.total = start
//!
//!     def receive(self, n):
//!         self.total += n
//!         return self.total
//! ```
//!
//! Rust actors implement [`Actor`] and are spawned from a [`Props`] on the same
//! runtime. What crosses between actors is a [`Value`]: `None`, bools, ints of any
//! size, floats, `str`, `bytes`, lists, tuples, dicts, sets and frozensets are converted
//! natively; any other picklable object travels pickled.
//!
//! The crates behind this facade: `subactor-core` (the actor model, no Python) and
//! `subactor-host` (the interpreters). See `ARCHITECTURE.md` for the map.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[cfg(feature = "cluster")]
pub use node::{NodeActor, OnNode, RemoteFailure, RemoteStartError};
pub use subactor_arena::{Arena, ArenaConfig, ArenaError, ArenaStats, Buffer, BufferMut};
#[cfg(feature = "cluster")]
pub use subactor_cluster::{Auth, Cluster, ClusterConfig, ClusterError, NodeInfo};

#[cfg(feature = "cluster")]
mod node;
pub use subactor_core::trace;
#[cfg(feature = "otel")]
pub use subactor_observe::otel;
#[cfg(feature = "observe")]
pub use subactor_observe::{ObserveConfig, ObserveError, Observer};

/// Metrics of actors and of their runtime ([`Runtime::metrics`]).
pub mod metrics {
    pub use subactor_core::metrics::*;
    #[cfg(feature = "observe")]
    pub use subactor_observe::{json, prom, top};
}
pub use subactor_core::{
    Actor, ActorContext, ActorId, ActorRef, ActorState, ActorSystem, AnyRef, AskError, Backoff, BoxError, ChildInfo,
    ChildSpec, DeadLetter, DeadLetterReason, DeadLetters, Death, DirectAsk, Down, Failure, FailurePolicy, Fault,
    HealthAlarm, Intensity, Interrupt, InterruptCause, MAX_DEPTH, MonitorId, NeverFails, Outcome, Output, PendingSpawn,
    Pipeline, PipelineBuilder, PipelineError, Placement, Props, RestartType, Routing, SendError, Spawn, SpawnError,
    SpawnOptions, Spawned, StopReason, Strategy, Supervisor, SupervisorError, SupervisorSpec, TimerId,
    UnknownPlacement, Value, ValueError, codec,
};
pub use subactor_host::{
    ConvertError, DEFAULT_KILL_GRACE, HostError, Launcher, MainModule, PyActor, PythonActor, PythonException,
    PythonHost, ReceiveError, ReclaimStats, Snapshots, StartError, StateError, StateStore, Upgrade, UpgradeError,
    WarmImports, WarmPoolStats, fork, interpreter_memory,
};

/// A reference to a Python actor.
pub type PyRef = ActorRef<PyActor>;

/// The errors of [`Runtime`] itself.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Python could not be started or finalised.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The arena's configuration is not usable.
    #[error(transparent)]
    Arena(#[from] ArenaError),
    /// `shutdown` was called from an actor's own thread, which shutdown must wait for.
    #[error("cannot shut the runtime down from inside one of its actors")]
    ShutdownFromActor,
    /// The observation endpoint could not start.
    #[cfg(feature = "observe")]
    #[error(transparent)]
    Observe(#[from] ObserveError),
    /// Joining the cluster failed.
    #[cfg(feature = "cluster")]
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A spawn on another node was asked of a runtime that is not in a cluster.
    #[error("cannot spawn on node {0:?}: this runtime did not join a cluster")]
    NotInCluster(String),
    /// Spawning on another node failed.
    #[error("cannot spawn on node {node:?}: {why}")]
    RemoteSpawn {
        /// The node.
        node: String,
        /// Why.
        why: String,
    },
}

/// Configures a [`Runtime`].
#[derive(Debug, Default)]
pub struct RuntimeBuilder {
    python_path: Option<Vec<PathBuf>>,
    main_module: Option<MainModule>,
    arena: Option<ArenaConfig>,
    system: subactor_core::SystemBuilder,
    launcher: Option<Launcher>,
    preload: Vec<String>,
    spare_processes: Option<usize>,
    warm_interpreters: usize,
    warm_imports: WarmImports,
    spin: Option<Duration>,
    #[cfg(feature = "cluster")]
    cluster: Option<ClusterConfig>,
    #[cfg(feature = "observe")]
    observe: Option<ObserveConfig>,
}

impl RuntimeBuilder {
    /// Collects metrics of every actor: messages handled and failed, handler times,
    /// restarts, dead letters, interrupts, spawn times ([`Runtime::metrics`]). Off by
    /// default; on, a few nanoseconds a message.
    #[must_use]
    pub fn metrics(mut self, on: bool) -> Self {
        self.system = self.system.metrics(on);
        self
    }

    /// Serves the runtime's metrics (Prometheus text at `/metrics`), its live view
    /// (`/`) and the JSON that `subactor top` reads, at `config.addr` (loopback by
    /// default: `ObserveConfig::at("127.0.0.1:9464")`, port 0 for a free one, see
    /// [`Runtime::observer_addr`]). Turns metrics on.
    #[cfg(feature = "observe")]
    #[must_use]
    pub fn observe(mut self, config: ObserveConfig) -> Self {
        self.system = self.system.metrics(true);
        self.observe = Some(config);
        self
    }

    /// The folders put first on every Python actor's `sys.path`, so that modules in
    /// them can be spawned by dotted name. Relative paths are resolved against the
    /// current directory when the runtime is built. Default: the current directory.
    #[must_use]
    pub fn python_path<P: Into<PathBuf>>(mut self, folders: impl IntoIterator<Item = P>) -> Self {
        self.python_path = Some(folders.into_iter().map(Into::into).collect());
        self
    }

    /// The main program of the Python process that drives this runtime (the `subactor`
    /// Python package sets it): actors that need a class, function or pickled object it
    /// defines load it as `__mp_main__`, without running its `if __name__ == "__main__":`
    /// block. See [`MainModule`].
    #[must_use]
    pub fn main_module(mut self, main: MainModule) -> Self {
        self.main_module = Some(main);
        self
    }

    /// The mailbox capacity of actors that do not set their own (1024 by default).
    #[must_use]
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.system = self.system.mailbox_capacity(capacity);
        self
    }

    /// How long an idle actor, or a blocked asker, spins before parking its thread
    /// (50 µs by default; zero disables spinning). See
    /// [`SystemBuilder::spin`](subactor_core::SystemBuilder::spin).
    #[must_use]
    pub fn spin(mut self, spin: Duration) -> Self {
        self.system = self.system.spin(spin);
        self.spin = Some(spin);
        self
    }

    /// Modules imported once in the template process that process actors are forked
    /// from (see [`Placement::Process`]), so that each of them starts with these loaded:
    /// `preload(["numpy"])` makes a numpy actor's spawn cost a fork, not an import.
    /// A module that fails to import makes process-actor spawns fail with its error.
    #[must_use]
    pub fn preload<S: Into<String>>(mut self, modules: impl IntoIterator<Item = S>) -> Self {
        self.preload = modules.into_iter().map(Into::into).collect();
        self
    }

    /// How many process-actor children the template keeps forked and waiting (1 by
    /// default: a spawn hands one over and another is forked in the background).
    #[must_use]
    pub fn spare_processes(mut self, spares: usize) -> Self {
        self.spare_processes = Some(spares);
        self
    }

    /// How many own-GIL interpreters the runtime keeps created in advance for spawns of
    /// interpreter actors, refilled in the background (0 by default: each spawn creates
    /// its interpreter). A spawn that finds one costs the actor's import and
    /// constructor only. Each ready interpreter holds about 2.4 MiB of RSS and a parked
    /// thread while it waits. See [`PythonHost::with_warm_interpreters`].
    #[must_use]
    pub fn warm_interpreters(mut self, size: usize) -> Self {
        self.warm_interpreters = size;
        self
    }

    /// Which modules the warm pool's interpreters import while they wait
    /// ([`WarmImports::Recent`] by default: the module of the actor that took the
    /// interpreter each one replaces). An interpreter that imported a module is handed
    /// only to an actor of that module; see [`WarmImports`].
    #[must_use]
    pub fn warm_imports(mut self, imports: WarmImports) -> Self {
        self.warm_imports = imports;
        self
    }

    /// Joins a cluster over NATS as a node: its actors reach (and are reached by) the
    /// actors of the other nodes, names are unique across the cluster, and actors can
    /// be spawned on other nodes ([`Runtime::spawn_on`]).
    #[cfg(feature = "cluster")]
    #[must_use]
    pub fn cluster(mut self, config: ClusterConfig) -> Self {
        self.cluster = Some(config);
        self
    }

    /// How the template of process actors is started: this program's own binary by
    /// default ([`Launcher::SelfExe`]), which subactor takes over before `main`.
    #[must_use]
    pub fn launcher(mut self, launcher: Launcher) -> Self {
        self.launcher = Some(launcher);
        self
    }

    /// The shared-memory arena of the runtime's buffers (see [`Runtime::arena`]):
    /// segment size, large-buffer threshold, total size limit. Default:
    /// [`ArenaConfig::default`] (64 MiB segments, 1 GiB in all).
    #[must_use]
    pub fn arena(mut self, config: ArenaConfig) -> Self {
        self.arena = Some(config);
        self
    }

    /// Starts the runtime: takes a share of the process's Python, initialising it if
    /// this is the first runtime of the process.
    pub fn build(self) -> Result<Runtime, Error> {
        let python_path = self.python_path.unwrap_or_else(|| vec![PathBuf::from(".")]);
        let arena = Arena::with_config(self.arena.unwrap_or_default())?;
        let mut host = PythonHost::start(python_path, arena.clone())?
            .with_main_module(self.main_module)
            .with_preload(self.preload);
        if let Some(launcher) = self.launcher {
            host = host.with_launcher(launcher);
        }
        if let Some(spares) = self.spare_processes {
            host = host.with_spare_processes(spares);
        }
        if let Some(spin) = self.spin {
            host = host.with_spin(spin);
        }
        // Last: the pool's interpreters see the settings above.
        host = host.with_warm_imports(self.warm_imports).with_warm_interpreters(self.warm_interpreters);
        let host = Arc::new(host);
        let mut system = self.system.extension(Arc::clone(&host));
        #[cfg(feature = "cluster")]
        let cluster = match self.cluster {
            Some(config) => {
                let cluster = Cluster::connect(config)?;
                system = system
                    .names(cluster.names())
                    .extension(Arc::new(subactor_wire::NodesExt(cluster.as_nodes())))
                    .extension(Arc::new(subactor_host::ClusterStates(Arc::new(node::ClusterStateStore(
                        cluster.clone(),
                    )))))
                    .extension(Arc::new(cluster.clone()));
                Some(cluster)
            }
            None => None,
        };
        let system = system.build();
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &cluster {
            cluster.attach(&system, subactor_host::actor_env(&system), arena.clone());
        }
        #[cfg(feature = "observe")]
        let observer = match self.observe {
            Some(config) => match Observer::start(system.clone(), config) {
                Ok(observer) => Some(observer),
                Err(error) => {
                    system.shutdown();
                    return Err(error.into());
                }
            },
            None => None,
        };
        tracing::info!(python = ?host.python_version(), "runtime started");
        Ok(Runtime {
            #[cfg(feature = "observe")]
            observer: Mutex::new(observer),
            system,
            arena,
            host: Mutex::new(Some(host)),
            #[cfg(feature = "cluster")]
            cluster,
        })
    }
}

/// Runs Rust and Python actors. Dropping it shuts it down.
///
/// Several runtimes may exist in one process: they share its Python, which is finalised
/// when the last one shuts down (and started again by the next one).
#[derive(Debug)]
pub struct Runtime {
    system: ActorSystem,
    arena: Arena,
    host: Mutex<Option<Arc<PythonHost>>>,
    #[cfg(feature = "cluster")]
    cluster: Option<Cluster>,
    #[cfg(feature = "observe")]
    observer: Mutex<Option<Observer>>,
}

impl Runtime {
    /// A snapshot of every live actor (its supervisor, placement, state, mailbox,
    /// restarts and, with metrics on, its counters and handler times) and of the
    /// runtime's totals. See [`RuntimeBuilder::metrics`].
    pub fn metrics(&self) -> metrics::Metrics {
        self.system.metrics()
    }

    /// Where the observation endpoint listens, if [`RuntimeBuilder::observe`] started
    /// one.
    #[cfg(feature = "observe")]
    pub fn observer_addr(&self) -> Option<std::net::SocketAddr> {
        self.observer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(Observer::addr)
    }

    /// Starts configuring a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// A runtime with the default settings.
    pub fn new() -> Result<Runtime, Error> {
        Runtime::builder().build()
    }

    /// Spawns an actor — a [`PythonActor`], or a Rust actor's [`Props`] — and waits
    /// until it has started (for a Python actor: its interpreter exists, its module is
    /// imported and its constructor has returned).
    ///
    /// Blocks for as long as that takes; from async code, call it through
    /// `tokio::task::spawn_blocking`.
    ///
    /// In a process forked from this one while the runtime was open, it fails with
    /// [`SpawnError::ShutDown`]: the runtime's threads exist only in the parent.
    pub fn spawn<S: Spawn>(&self, spec: S) -> Result<ActorRef<S::Actor>, SpawnError<S::Error>> {
        self.begin_spawn(spec)?.wait()
    }

    /// Begins a spawn and returns at once: the [`PendingSpawn`] gives the actor's
    /// reference once it has started ([`PendingSpawn::wait`],
    /// [`PendingSpawn::wait_timeout`]), and dropping it gives the spawn up (the actor is
    /// killed once it has started). [`Runtime::spawn`] is this and a wait.
    ///
    /// In a process forked from this one while the runtime was open, it fails with
    /// [`SpawnError::ShutDown`].
    pub fn begin_spawn<S: Spawn>(&self, spec: S) -> Result<PendingSpawn<S>, SpawnError<S::Error>> {
        if let Err(forked) = subactor_host::fork::check_not_forked() {
            tracing::warn!(%forked, "spawn refused");
            return Err(SpawnError::ShutDown);
        }
        self.system.begin_spawn(spec)
    }

    /// Spawns `count` workers from the same recipe (a pool, e.g. for a pipeline stage).
    /// A named recipe gives names suffixed `-0`, `-1`, ...
    pub fn spawn_workers(&self, spec: &PythonActor, count: usize) -> Result<Vec<PyRef>, SpawnError<StartError>> {
        let base = spec.options().name.clone();
        (0..count)
            .map(|i| {
                let worker = match &base {
                    Some(name) => spec.clone().name(format!("{name}-{i}")),
                    None => spec.clone(),
                };
                self.spawn(worker)
            })
            .collect()
    }

    /// The running actor of type `A` with this name.
    pub fn lookup<A: Actor>(&self, name: &str) -> Option<ActorRef<A>> {
        self.system.lookup(name)
    }

    /// The Python actor named `name`, on this runtime or (in a cluster) on any node.
    pub fn lookup_any(&self, name: &str) -> Option<AnyRef> {
        if let Some(actor) = self.system.lookup::<PyActor>(name) {
            return Some(actor.into());
        }
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.cluster {
            return cluster.lookup(name);
        }
        None
    }

    /// The cluster this runtime is a node of, if it joined one.
    #[cfg(feature = "cluster")]
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// Spawns a Python actor on the cluster's node `node` (this runtime's own name
    /// spawns here). The reference reaches it from anywhere; its mailbox lives on that
    /// node, and what is sent from here waits in this node's outbox for it (bounded:
    /// senders wait when it is full).
    #[cfg(feature = "cluster")]
    pub fn spawn_on(&self, node: &str, spec: PythonActor) -> Result<AnyRef, Error> {
        let cluster = self.cluster.as_ref().ok_or_else(|| Error::NotInCluster(node.to_owned()))?;
        let request = spec.to_request();
        cluster.spawn_on(node, request).map_err(|why| Error::RemoteSpawn { node: node.to_owned(), why })
    }

    /// The shared-memory arena: buffers allocated here and frozen travel to Python
    /// actors as [`Value::Buffer`] without a copy, arriving as read-only
    /// `subactor.Buffer`s; actors allocate from it too (`subactor.alloc(n)`).
    pub fn arena(&self) -> &Arena {
        &self.arena
    }

    /// The dead-letter sink: messages that could not be delivered.
    pub fn dead_letters(&self) -> &DeadLetters {
        self.system.dead_letters()
    }

    /// Upgrades a running Python actor in place (see [`PythonHost::upgrade`]): its
    /// module is loaded anew from its source (or `upgrade` names another module and
    /// class), its state carried over through `snapshot()` and `upgrade(old_state)` /
    /// `restore(state)`; the reference, the mailbox and every queued message stay.
    pub fn upgrade(&self, actor: &PyRef, upgrade: Upgrade) -> Result<(), UpgradeError> {
        self.host()?.upgrade(actor.id(), upgrade)
    }

    /// Upgrades every running Python child of a supervisor; returns how many.
    pub fn upgrade_children(
        &self,
        supervisor: &ActorRef<Supervisor>,
        upgrade: &Upgrade,
    ) -> Result<usize, UpgradeError> {
        self.host()?.upgrade_children(supervisor, upgrade)
    }

    fn host(&self) -> Result<Arc<PythonHost>, UpgradeError> {
        self.system.extension::<PythonHost>().ok_or(UpgradeError::NoHost)
    }

    /// The actor system underneath, for code written against `subactor-core`.
    pub fn system(&self) -> &ActorSystem {
        &self.system
    }

    /// How the warm pool ([`RuntimeBuilder::warm_interpreters`]) has served spawns
    /// (all zero without one, and after shutdown).
    pub fn warm_pool(&self) -> WarmPoolStats {
        self.host
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|h| h.warm_pool())
            .unwrap_or_default()
    }

    /// The running Python's version, as (major, minor, micro).
    pub fn python_version(&self) -> Option<(u8, u8, u8)> {
        self.host.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().map(|h| h.python_version())
    }

    /// Shuts down: kills every actor (each finishes the message it is handling; queued
    /// messages become dead letters), ends every interpreter on its own thread, then —
    /// if this was the process's last runtime — finalises Python. Spawning afterwards
    /// fails with [`SpawnError::ShutDown`]. Calling it again does nothing.
    ///
    /// In a process forked from this one while the runtime was open, it returns
    /// [`HostError::ForkedChild`] and touches nothing: the actors and their threads
    /// exist only in the parent. (Dropping the runtime there leaks the child's copy.)
    pub fn shutdown(&self) -> Result<(), Error> {
        subactor_host::fork::check_not_forked().map_err(HostError::from)?;
        if self.system.is_actor_thread() {
            return Err(Error::ShutdownFromActor);
        }
        #[cfg(feature = "observe")]
        if let Some(mut observer) = self.observer.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            observer.stop();
        }
        self.system.shutdown();
        #[cfg(feature = "cluster")]
        if let Some(cluster) = &self.cluster {
            cluster.leave();
        }
        let host = self.host.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        // If someone still holds the host (only possible outside the runtime's actors),
        // Python is finalised when they let go.
        if let Some(Ok(host)) = host.map(Arc::try_unwrap) {
            host.close()?;
        }
        Ok(())
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if subactor_host::fork::inherited_runtime() {
            // A forked child: nothing to shut down here, and releasing Python's share
            // would wait for the parent's threads.
            let host = self.host.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            std::mem::forget(host);
            return;
        }
        if let Err(error) = self.shutdown() {
            tracing::warn!(%error, "runtime shutdown failed");
        }
    }
}
